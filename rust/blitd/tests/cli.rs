//! The `blitd` binary: --check-config, --version, --help, refusing to start,
//! and stopping on SIGTERM and SIGINT.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use blit_proto::v2::StatusRequest;
use common::{DEADLINE, TestConfig, connect};

const BLITD: &str = env!("CARGO_BIN_EXE_blitd");

fn run_blitd(args: &[&str]) -> Output {
    Command::new(BLITD)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_valid() {
    let config = TestConfig::new("");
    let output = run_blitd(&["--check-config", "--config", config.path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), "config OK: 2 modules");
}

#[test]
fn check_config_rejects_unknown_key() {
    let config = TestConfig::new("listen_adr = \"127.0.0.1:1\"");
    let path = config.path.to_str().unwrap();
    let output = run_blitd(&["--check-config", "--config", path]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("listen_adr"), "{stderr}");
    // Line 5: after [daemon], listen_addr, data_port and auth.
    assert!(stderr.contains(&format!("{path}:5")), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}

#[test]
fn check_config_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let output = run_blitd(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("absent.toml"), "{stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn check_config_accepts_token_auth() {
    let config = TestConfig::new("");
    let text_before = std::fs::read_to_string(&config.path).unwrap();
    let token = text_before.replace(
        "auth = \"none\"",
        "auth = \"token\"\ntoken_file = \"/nonexistent/tokens\"",
    );
    std::fs::write(&config.path, token).unwrap();
    let output = run_blitd(&["--check-config", "--config", config.path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        !text(&output.stderr).contains("warning"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout).trim(), "config OK: 2 modules");
}

#[test]
fn version_prints_version() {
    let output = run_blitd(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout).trim(),
        format!("blitd {}", blit_core::VERSION)
    );
}

#[test]
fn help_explains_options() {
    let output = run_blitd(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for option in [
        "--config",
        "--check-config",
        "--log-level",
        "--shutdown-timeout",
        "--version",
        "--help",
        "/etc/blit/config.toml",
        "SIGTERM",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
}

#[test]
fn unknown_option_exits_2() {
    let output = run_blitd(&["--no-such-option"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--no-such-option"));
}

#[test]
fn sigterm_stops_daemon() {
    stops_on_signal(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sigint_stops_daemon() {
    stops_on_signal(libc::SIGINT, "SIGINT");
}

/// Starts the daemon, waits until it responds to Status, sends `signal` and
/// checks that it exits 0 and logs its start and stop.
fn stops_on_signal(signal: libc::c_int, name: &str) {
    let config = TestConfig::new("");
    let daemon = Daemon::start(&config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = connect(daemon.control_addr).await;
        let status = client.status(StatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.modules.len(), 2);
    });

    let (status, log) = daemon.stop(signal);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("blitd started"), "{log}");
    assert!(log.contains("serving module"), "{log}");
    assert!(log.contains(&format!("received {name}")), "{log}");
    assert!(log.contains("blitd stopped"), "{log}");
}

#[test]
fn rejected_token_logged_without_token() {
    let config = TestConfig::new("");
    let mut daemon = Daemon::start(&config);
    let token = [0xab_u8; 32];
    let mut client = std::net::TcpStream::connect(daemon.data_addr).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    client.write_all(&token).unwrap();
    let mut buffer = [0u8; 8];
    assert_eq!(
        client.read(&mut buffer).unwrap(),
        0,
        "the daemon wrote bytes"
    );

    let peer = client.local_addr().unwrap().to_string();
    let line = daemon.wait_for_line(|line| line.contains("connection rejected"));
    assert!(line.contains(&peer), "{line}");
    assert!(line.contains("unknown token"), "{line}");

    let (status, log) = daemon.stop(libc::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
    for secret in ["abab", "ab, ab", "171, 171"] {
        assert!(!log.contains(secret), "the log shows the token:\n{log}");
    }
}

/// A `blitd` process started on a test config, with its stderr log
/// collected line by line.
struct Daemon {
    child: Child,
    control_addr: SocketAddr,
    data_addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts blitd and waits for its start line.
    fn start(config: &TestConfig) -> Daemon {
        let mut child = spawn_daemon(config);
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut daemon = Daemon {
            child,
            control_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            data_addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            lines,
            log: Vec::new(),
            reader: Some(reader),
        };
        let start_line = daemon.wait_for_line(|line| line.contains("blitd started"));
        daemon.control_addr = field_addr(&start_line, "control=");
        daemon.data_addr = field_addr(&start_line, "data=");
        daemon
    }

    /// Returns the first log line, from now on, that matches.
    fn wait_for_line(&mut self, matches: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let remaining = DEADLINE.saturating_sub(started.elapsed());
            let line = self.lines.recv_timeout(remaining).unwrap_or_else(|err| {
                panic!(
                    "no expected log line within {DEADLINE:?} ({err}):\n{}",
                    self.log.join("\n")
                )
            });
            self.log.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }

    /// Sends `signal`, waits for the exit and returns it with the whole log.
    fn stop(mut self, signal: libc::c_int) -> (ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory-safety preconditions; `pid` is our
        // child, which has not been waited for, so the pid is not reused.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = wait_for_exit(&mut self.child);
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log.extend(self.lines.try_iter());
        (status, self.log.join("\n"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A failed test leaves no daemon behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field_addr(line: &str, prefix: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in {line}"))
        .parse()
        .unwrap()
}

fn spawn_daemon(config: &TestConfig) -> Child {
    Command::new(BLITD)
        .args([
            "--config",
            config.path.to_str().unwrap(),
            "--log-level",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("blitd did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn log_never_contains_token() {
    let config = TestConfig::new("");
    let store = config.dir().join("tokens.toml");
    let contents = std::fs::read_to_string(&config.path).unwrap().replace(
        "auth = \"none\"",
        &format!("auth = \"token\"\ntoken_file = {store:?}"),
    );
    std::fs::write(&config.path, contents).unwrap();
    let created = run_blitd(&[
        "token",
        "create",
        "--name",
        "logged",
        "--modules",
        "alpha",
        "--permissions",
        "read,write",
        "--config",
        config.path.to_str().unwrap(),
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_string();
    let secret = token["blit_".len()..].to_string();
    let mut daemon = Daemon::start(&config);

    let url = format!("blit://{}/", daemon.control_addr);
    let blit_core::Address::Remote(address) = blit_core::Address::parse(url.as_ref()).unwrap()
    else {
        panic!("not a remote address: {url}");
    };
    let with = |token: &str| {
        let options = blit_client::ClientOptions {
            token: Some(token.to_string()),
            ..blit_client::ClientOptions::default()
        };
        blit_client::Client::connect(&address, &options).unwrap()
    };
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("f"), b"content").unwrap();
    let progress = blit_core::Progress::new();
    let cancel = blit_core::CancelToken::new();
    let client = with(&token);
    blit_client::push(
        &client,
        source.path(),
        "alpha",
        b"",
        &Default::default(),
        &progress,
        &cancel,
    )
    .unwrap();
    let denied = client.list("beta", b"", false).unwrap_err();
    assert_eq!(denied.kind(), blit_core::ErrorKind::PermissionDenied);
    let near_miss = format!("{}0", &token[..token.len() - 1]);
    assert!(with(&near_miss).status().is_err());
    daemon.wait_for_line(|line| line.contains("request denied"));

    let (status, log) = daemon.stop(libc::SIGTERM);

    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("logged"), "the token name is logged: {log}");
    assert!(!log.contains(&secret), "{log}");
    assert!(!log.contains(&secret[..12]), "{log}");
    assert!(!log.contains(&secret.to_uppercase()), "{log}");
    assert!(!log.contains("blake3:"), "{log}");
}
