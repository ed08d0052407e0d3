//! Token authentication and per-module permissions against a real daemon on
//! loopback, with tokens made by the real `blitd token` command.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use blit_client::{Client, ClientOptions, TransferOptions, push};
use blit_core::{Address, CancelToken, ErrorKind, Progress, RemoteAddress};
use blitd::{Server, ServerOptions};
use common::{DEADLINE, TestConfig};

/// A daemon with `auth = "token"` on its own runtime.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    config: TestConfig,
    address: RemoteAddress,
}

fn token_config() -> TestConfig {
    let config = TestConfig::new("");
    let store = config.dir().join("tokens.toml");
    let text = std::fs::read_to_string(&config.path).unwrap().replace(
        "auth = \"none\"",
        &format!("auth = \"token\"\ntoken_file = {store:?}"),
    );
    std::fs::write(&config.path, text).unwrap();
    config
}

impl Daemon {
    fn start(config: TestConfig) -> Daemon {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = runtime
            .block_on(Server::start(config.load(), ServerOptions::default()))
            .unwrap();
        let url = format!("blit://{}/", server.control_addr());
        let Address::Remote(address) = Address::parse(url.as_ref()).unwrap() else {
            panic!("not a remote address: {url}");
        };
        Daemon {
            runtime,
            server: Some(server),
            config,
            address,
        }
    }

    fn client(&self, token: Option<&str>) -> Client {
        let options = ClientOptions {
            token: Some(token.unwrap_or("").to_string()),
            ..ClientOptions::default()
        };
        Client::connect(&self.address, &options).unwrap()
    }

    fn restart(mut self) -> Daemon {
        let server = self.server.take().unwrap();
        self.runtime.block_on(server.shutdown());
        let config = std::mem::replace(&mut self.config, TestConfig::new(""));
        drop(self);
        Daemon::start(config)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// Runs `blitd token ...` on the config and returns stdout, failing the
/// test on a non-zero exit.
fn token_command(config: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_blitd"))
        .arg("token")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "blitd token {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn create(config: &Path, name: &str, modules: &str, permissions: &str) -> String {
    let out = token_command(
        config,
        &[
            "create",
            "--name",
            name,
            "--modules",
            modules,
            "--permissions",
            permissions,
        ],
    );
    out.trim().to_string()
}

/// Polls `check` until it returns true or the deadline passes.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn push_dir(
    client: &Client,
    module: &str,
    options: &TransferOptions,
) -> blit_core::Result<blit_core::Summary> {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("f"), b"data").unwrap();
    push(
        client,
        scratch.path(),
        module,
        b"",
        options,
        &Progress::new(),
        &CancelToken::new(),
    )
}

#[test]
fn missing_and_unknown_tokens_rejected_alike() {
    let daemon = Daemon::start(token_config());

    let anonymous = daemon.client(None).status().unwrap_err();
    let unknown = daemon.client(Some("blit_0000")).status().unwrap_err();

    assert_eq!(anonymous.kind(), ErrorKind::Unauthenticated);
    assert_eq!(unknown.kind(), ErrorKind::Unauthenticated);
    assert_eq!(anonymous.message(), unknown.message());
    assert!(
        anonymous.message().contains("--token-file"),
        "{}",
        anonymous.message()
    );
}

#[test]
fn permissions_enforced_per_module() {
    let config = token_config();
    let reader = create(&config.path, "reader", "alpha", "read");
    let writer = create(&config.path, "writer", "*", "read,write");
    let daemon = Daemon::start(config);

    let as_reader = daemon.client(Some(&reader));
    assert!(as_reader.list("alpha", b"", false).is_ok());
    let err = push_dir(&as_reader, "alpha", &TransferOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.message().contains("write"), "{}", err.message());
    assert!(err.message().contains("alpha"), "{}", err.message());
    let err = as_reader.list("beta", b"", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.message().contains("beta"), "{}", err.message());
    // A module that does not exist looks the same as one outside the scope.
    let err = as_reader.list("gamma", b"", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);

    let as_writer = daemon.client(Some(&writer));
    assert!(push_dir(&as_writer, "alpha", &TransferOptions::default()).is_ok());
    let mirror = TransferOptions {
        mirror: true,
        ..TransferOptions::default()
    };
    let err = push_dir(&as_writer, "alpha", &mirror).unwrap_err();
    assert!(err.message().contains("delete"), "{}", err.message());
    let err = as_writer.purge("alpha", &[b"f".to_vec()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    // beta is read-only in the config, whatever the token allows.
    let err = push_dir(&as_writer, "beta", &TransferOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
}

#[test]
fn list_modules_shows_readable_modules() {
    let config = token_config();
    let reader = create(&config.path, "reader", "alpha", "read");
    let admin = create(&config.path, "admin", "alpha", "admin");
    let daemon = Daemon::start(config);

    let names = |token: &str| -> Vec<String> {
        let modules = daemon.client(Some(token)).list_modules().unwrap();
        modules.into_iter().map(|m| m.name).collect()
    };

    assert_eq!(names(&reader), ["alpha"]);
    assert_eq!(names(&admin), ["alpha", "beta"]);
}

#[test]
fn list_shows_access_of_the_token() {
    let config = token_config();
    let reader = create(&config.path, "reader", "alpha", "read");
    let writer = create(&config.path, "writer", "*", "read,write");
    let daemon = Daemon::start(config);

    let access = |token: &str| -> Vec<(String, bool)> {
        let modules = daemon.client(Some(token)).list_modules().unwrap();
        modules.into_iter().map(|m| (m.name, m.read_only)).collect()
    };

    // alpha is read-write in the config, beta read-only.
    assert_eq!(access(&reader), [("alpha".to_string(), true)]);
    assert_eq!(
        access(&writer),
        [("alpha".to_string(), false), ("beta".to_string(), true)]
    );
}

#[test]
fn revoked_and_created_tokens_apply_without_restart() {
    let config = token_config();
    let token = create(&config.path, "temp", "*", "read");
    let daemon = Daemon::start(config);
    assert!(daemon.client(Some(&token)).status().is_ok());

    token_command(&daemon.config.path, &["revoke", "temp"]);
    assert!(eventually(|| daemon.client(Some(&token)).status().is_err()));
    let err = daemon.client(Some(&token)).status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    let fresh = create(&daemon.config.path, "fresh", "*", "read");
    assert!(eventually(|| daemon.client(Some(&fresh)).status().is_ok()));
}

#[test]
fn expired_token_rejected() {
    let config = token_config();
    let out = token_command(
        &config.path,
        &[
            "create",
            "--name",
            "brief",
            "--modules",
            "*",
            "--permissions",
            "read",
            "--expires",
            "2s",
        ],
    );
    let token = out.trim().to_string();
    let daemon = Daemon::start(config);

    assert!(eventually(|| daemon.client(Some(&token)).status().is_err()));
    let err = daemon.client(Some(&token)).status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
}

#[test]
fn tokens_survive_restart() {
    let config = token_config();
    let token = create(&config.path, "durable", "*", "read");
    let daemon = Daemon::start(config);
    assert!(daemon.client(Some(&token)).status().is_ok());

    let daemon = daemon.restart();

    assert!(daemon.client(Some(&token)).status().is_ok());
}

#[test]
fn store_and_listing_hold_no_token() {
    let config = token_config();
    let token = create(&config.path, "secret", "*", "read,write");
    let secret = &token["blit_".len()..];

    let store = std::fs::read_to_string(config.dir().join("tokens.toml")).unwrap();
    let listing = token_command(&config.path, &["list"]);

    for text in [&store, &listing] {
        assert!(!text.contains(secret));
        assert!(!text.contains(&secret.to_uppercase()));
        assert!(!text.contains(&secret[..12]));
    }
    assert!(listing.contains("secret"), "{listing}");
    assert!(listing.contains("read,write"), "{listing}");
}

#[test]
fn duplicate_name_rejected_without_replace() {
    let config = token_config();
    create(&config.path, "twice", "*", "read");

    let output = Command::new(env!("CARGO_BIN_EXE_blitd"))
        .args([
            "token",
            "create",
            "--name",
            "twice",
            "--modules",
            "*",
            "--permissions",
            "read",
        ])
        .arg("--config")
        .arg(&config.path)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--replace"));
    assert!(output.stdout.is_empty());
}

#[test]
fn unreadable_store_rejects_every_token() {
    let config = token_config();
    let token = create(&config.path, "fragile", "*", "read");
    let store = config.dir().join("tokens.toml");
    let original = std::fs::read_to_string(&store).unwrap();
    let daemon = Daemon::start(config);
    assert!(daemon.client(Some(&token)).status().is_ok());

    std::fs::write(&store, "this is not a token store [").unwrap();
    assert!(eventually(|| daemon.client(Some(&token)).status().is_err()));
    let err = daemon.client(Some(&token)).status().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);

    std::fs::write(&store, original).unwrap();
    assert!(eventually(|| daemon.client(Some(&token)).status().is_ok()));
}

#[test]
fn bearer_scheme_case_insensitive() {
    let config = token_config();
    let token = create(&config.path, "cased", "*", "read");
    let daemon = Daemon::start(config);
    let url = format!("http://{}:{}", daemon.address.host, daemon.address.port);

    let codes = daemon.runtime.block_on(async {
        let mut client = blit_proto::v2::blit_client::BlitClient::connect(url)
            .await
            .unwrap();
        let mut codes = Vec::new();
        for scheme in ["bearer", "BEARER", "Basic"] {
            let mut request = tonic::Request::new(blit_proto::v2::StatusRequest {});
            let value = format!("{scheme} {token}").parse().unwrap();
            request.metadata_mut().insert("authorization", value);
            codes.push(
                client
                    .status(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| s.code()),
            );
        }
        codes
    });

    assert_eq!(codes[0], Ok(()));
    assert_eq!(codes[1], Ok(()));
    assert_eq!(codes[2], Err(tonic::Code::Unauthenticated));
}
