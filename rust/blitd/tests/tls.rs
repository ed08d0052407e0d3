//! TLS on both planes over real loopback TCP, with certificates from
//! `blitd tls self-signed`: round trips, certificate and scheme errors, the
//! data plane's handling of plain connections, and the generated files.

mod common;

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Once};

use blit_client::{Client, ClientOptions, TransferOptions, pull, push};
use blit_core::{Address, CancelToken, ErrorKind, Progress, RemoteAddress};
use blitd::grants::DEFAULT_TOKEN_TTL;
use blitd::{Server, ServerOptions};
use common::{DEADLINE, TestConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const BLITD: &str = env!("CARGO_BIN_EXE_blitd");

/// Output of `blitd tls self-signed` in a temporary directory.
struct TlsFiles {
    dir: TempDir,
    /// The `[daemon.tls]` lines printed on stdout.
    config_lines: String,
}

impl TlsFiles {
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

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

fn self_signed(host: &str) -> TlsFiles {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = run_blitd(&["tls", "self-signed", "--out", out, "--host", host]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    TlsFiles {
        dir,
        config_lines: text(&output.stdout),
    }
}

/// A daemon running on its own runtime, so the blocking client can run on
/// the test thread.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    config: TestConfig,
}

impl Daemon {
    /// Starts a daemon with `daemon_extra` added to its `[daemon]` table.
    fn start(daemon_extra: &str) -> Daemon {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = TestConfig::new(daemon_extra);
        let server = runtime
            .block_on(Server::start(config.load(), ServerOptions::default()))
            .unwrap();
        Daemon {
            runtime,
            server: Some(server),
            config,
        }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Returns the daemon's address with the scheme `scheme`.
    fn address(&self, scheme: &str) -> RemoteAddress {
        let url = format!("{scheme}://{}/", self.server().control_addr());
        let Address::Remote(address) = Address::parse(url.as_ref()).unwrap() else {
            panic!("not a remote address: {url}");
        };
        address
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn with_ca(ca: &Path) -> ClientOptions {
    ClientOptions {
        tls_ca: Some(ca.to_path_buf()),
        ..ClientOptions::default()
    }
}

fn build_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::write(root.join("a/one.txt"), b"one").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("a/b/big.bin"), big).unwrap();
    std::fs::write(root.join("zero"), b"").unwrap();
}

fn assert_same_files(expected: &Path, actual: &Path) {
    for name in ["a/one.txt", "a/b/big.bin", "zero"] {
        assert_eq!(
            std::fs::read(expected.join(name)).unwrap(),
            std::fs::read(actual.join(name)).unwrap(),
            "content of {name}"
        );
    }
}

/// Log events of this process, one line of `name=value` fields each, so
/// that tests can see which path a transfer took.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct CaptureLayer;

struct FieldWriter<'a>(&'a mut String);

impl tracing::field::Visit for FieldWriter<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, "{}={value} ", field.name());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CaptureLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut line = String::new();
        event.record(&mut FieldWriter(&mut line));
        EVENTS.lock().unwrap().push(line);
    }
}

fn capture_events() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing_subscriber::registry()
            .with(CaptureLayer)
            .with(tracing_subscriber::filter::LevelFilter::DEBUG)
            .init();
    });
}

/// Returns whether the client opened data connections over TLS to
/// `data_addr`.
fn used_tls_data_plane(data_addr: std::net::SocketAddr) -> bool {
    EVENTS.lock().unwrap().iter().any(|line| {
        line.contains("data connections opened")
            && line.contains(&format!("address={data_addr} "))
            && line.contains("tls=true")
    })
}

fn round_trip(daemon: &Daemon, client: &Client, options: &TransferOptions) {
    let source = tempfile::tempdir().unwrap();
    build_tree(source.path());
    let pushed = push(
        client,
        source.path(),
        "alpha",
        b"tree",
        options,
        &Progress::new(),
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(pushed.failed, 0);
    assert_same_files(
        source.path(),
        &daemon.config.module_path("alpha").join("tree"),
    );

    let back = tempfile::tempdir().unwrap();
    let pulled = pull(
        client,
        "alpha",
        b"tree",
        back.path(),
        options,
        &Progress::new(),
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(pulled.failed, 0);
    assert_same_files(source.path(), back.path());
}

#[test]
fn data_plane_round_trip_over_tls() {
    capture_events();
    let files = self_signed("localhost");
    let daemon = Daemon::start(&files.config_lines);
    let client = Client::connect(&daemon.address("blits"), &with_ca(&files.ca())).unwrap();

    round_trip(&daemon, &client, &TransferOptions::default());

    assert!(
        used_tls_data_plane(daemon.server().data_addr()),
        "the transfers did not use TLS data connections to {}",
        daemon.server().data_addr()
    );
}

#[test]
fn grpc_fallback_round_trip_over_tls() {
    let files = self_signed("localhost");
    let daemon = Daemon::start(&files.config_lines);
    let client = Client::connect(&daemon.address("blits"), &with_ca(&files.ca())).unwrap();
    let options = TransferOptions {
        force_grpc_data: true,
        ..TransferOptions::default()
    };

    round_trip(&daemon, &client, &options);
}

#[test]
fn client_without_ca_rejected() {
    let files = self_signed("localhost");
    let daemon = Daemon::start(&files.config_lines);
    let address = daemon.address("blits");

    let err = Client::connect(&address, &ClientOptions::default())
        .err()
        .expect("a client without the CA connected");

    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    let port = address.port.to_string();
    assert!(err.message().contains(&port), "{err}");
    assert!(err.message().contains("--tls-ca"), "{err}");
}

#[test]
fn certificate_for_other_host_rejected() {
    let files = self_signed("files.example.com");
    let daemon = Daemon::start(&files.config_lines);

    let err = Client::connect(&daemon.address("blits"), &with_ca(&files.ca()))
        .err()
        .expect("a certificate for another host was accepted");

    assert_eq!(err.kind(), ErrorKind::Network, "{err}");
    assert!(err.message().contains("127.0.0.1"), "{err}");
    assert!(err.message().contains("--host 127.0.0.1"), "{err}");
}

#[test]
fn plain_client_told_to_use_blits() {
    let files = self_signed("localhost");
    let daemon = Daemon::start(&files.config_lines);
    let address = daemon.address("blit");

    // The HTTP/2 handshake does not wait for the daemon, so the mismatch
    // shows at connect time or at the first request.
    let err = match Client::connect(&address, &ClientOptions::default()) {
        Ok(client) => client.list_modules().unwrap_err(),
        Err(err) => err,
    };

    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("requires TLS"), "{err}");
    let expected = format!("blits://{}/", daemon.server().control_addr());
    assert!(err.message().contains(&expected), "{err}");
}

#[test]
fn tls_client_to_plain_daemon_rejected() {
    let files = self_signed("localhost");
    let daemon = Daemon::start("");

    let err = Client::connect(&daemon.address("blits"), &with_ca(&files.ca()))
        .err()
        .expect("a blits:// client connected to a plain daemon");

    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("does not serve TLS"), "{err}");
    let expected = format!("blit://{}/", daemon.server().control_addr());
    assert!(err.message().contains(&expected), "{err}");
}

#[test]
fn ca_with_plain_address_rejected() {
    let files = self_signed("localhost");
    let daemon = Daemon::start("");

    let err = Client::connect(&daemon.address("blit"), &with_ca(&files.ca()))
        .err()
        .expect("a CA file was accepted for blit://");

    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message().contains("blits://"), "{err}");
}

fn tls_connector(ca: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[test]
fn data_plane_rejects_plain_token() {
    let files = self_signed("localhost");
    let daemon = Daemon::start(&files.config_lines);
    let data_addr = daemon.server().data_addr();
    let mut session = daemon
        .server()
        .state()
        .grants()
        .register("plain-token")
        .unwrap();
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];

    // A plain connection that presents a valid token gets at most a TLS
    // alert record (type 21, 2 bytes of payload) before the daemon closes it.
    let mut plain = std::net::TcpStream::connect(data_addr).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    std::io::Write::write_all(&mut plain, &token).unwrap();
    let mut received = Vec::new();
    match plain.read_to_end(&mut received) {
        Ok(_) => {}
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
    assert!(
        received.is_empty() || (received.len() == 7 && received[0] == 21),
        "the daemon answered a plain connection with {received:?}"
    );
    assert!(session.try_next_connection().is_none());

    // The same token still admits a TLS connection.
    let connector = tls_connector(&files.ca());
    daemon.runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(data_addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = connector.connect(name, tcp).await.unwrap();
        client.write_all(&token).await.unwrap();
        client.write_all(b"after the token").await.unwrap();
        client.flush().await.unwrap();

        let mut connection = tokio::time::timeout(DEADLINE, session.next_connection())
            .await
            .expect("the TLS connection did not reach the session")
            .expect("the session's channel closed");
        assert!(connection.stream.is_tls());
        let mut after = [0u8; 15];
        tokio::time::timeout(DEADLINE, connection.stream.read_exact(&mut after))
            .await
            .expect("bytes after the token did not arrive")
            .unwrap();
        assert_eq!(&after, b"after the token");
    });
}

#[test]
fn self_signed_files_usable() {
    let files = self_signed("localhost");

    for name in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(files.dir.path().join(name).is_file(), "{name} is missing");
    }
    let key_mode = std::fs::metadata(files.dir.path().join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(
        files.config_lines.starts_with("[daemon.tls]\n"),
        "{}",
        files.config_lines
    );

    let config = TestConfig::new(&files.config_lines);
    let output = run_blitd(&["--check-config", "--config", config.path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), "config OK: 2 modules");
}

#[test]
fn self_signed_keeps_existing_files() {
    let files = self_signed("localhost");
    let before = std::fs::read(files.dir.path().join("key.pem")).unwrap();
    let out = files.dir.path().to_str().unwrap();

    let output = run_blitd(&["tls", "self-signed", "--out", out, "--host", "localhost"]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("--force"),
        "{}",
        text(&output.stderr)
    );
    let after = std::fs::read(files.dir.path().join("key.pem")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn check_config_rejects_mismatched_key() {
    let first = self_signed("localhost");
    let second = self_signed("localhost");
    let lines = format!(
        "[daemon.tls]\ncert = {:?}\nkey = {:?}\n",
        first.dir.path().join("cert.pem"),
        second.dir.path().join("key.pem")
    );
    let config = TestConfig::new(&lines);

    let output = run_blitd(&["--check-config", "--config", config.path.to_str().unwrap()]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot be used together"), "{stderr}");
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
}
