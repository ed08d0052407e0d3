//! Push, pull, list and purge between the blocking client and an
//! in-process daemon over real loopback TCP.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use blit_client::{Client, ClientOptions, TransferOptions, pull, push};
use blit_core::{Address, CancelToken, ErrorKind, Progress, RemoteAddress, Summary};
use blitd::{Server, ServerOptions};
use common::TestConfig;

/// A daemon running on its own runtime, so the blocking client can run on
/// the test thread.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    config: TestConfig,
    client: Client,
}

impl Daemon {
    fn start() -> Daemon {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        // Authentication on, as in production, with one token for everything.
        let config = TestConfig::new("");
        let store = config.dir().join("tokens.toml");
        let text = std::fs::read_to_string(&config.path).unwrap().replace(
            "auth = \"none\"",
            &format!("auth = \"token\"\ntoken_file = {store:?}"),
        );
        std::fs::write(&config.path, text).unwrap();
        let token = blitd::tokens::create(
            &store,
            &blitd::tokens::NewToken {
                name: "tests".into(),
                modules: vec!["*".into()],
                permissions: blitd::tokens::Permission::parse_list("read,write,delete,admin")
                    .unwrap(),
                expires: None,
                replace: false,
            },
        )
        .unwrap();
        let server = runtime
            .block_on(blitd::Server::start(
                config.load(),
                ServerOptions::default(),
            ))
            .unwrap();
        let url = format!("blit://{}/", server.control_addr());
        let Address::Remote(address) = Address::parse(url.as_ref()).unwrap() else {
            panic!("not a remote address: {url}");
        };
        let options = ClientOptions {
            token: Some(token),
            ..ClientOptions::default()
        };
        let client = Client::connect(&address, &options).unwrap();
        Daemon {
            runtime,
            server: Some(server),
            config,
            client,
        }
    }

    fn module(&self, name: &str) -> std::path::PathBuf {
        self.config.module_path(name)
    }

    fn push(
        &self,
        src: &Path,
        module: &str,
        dest: &str,
        options: &TransferOptions,
    ) -> blit_core::Result<Summary> {
        push(
            &self.client,
            src,
            module,
            dest.as_bytes(),
            options,
            &Progress::new(),
            &CancelToken::new(),
        )
    }

    fn pull(
        &self,
        module: &str,
        path: &str,
        dst: &Path,
        options: &TransferOptions,
    ) -> blit_core::Result<Summary> {
        pull(
            &self.client,
            module,
            path.as_bytes(),
            dst,
            options,
            &Progress::new(),
            &CancelToken::new(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn build_tree(root: &Path) {
    write(&root.join("a/one.txt"), b"one");
    write(
        &root.join("a/b/big.bin"),
        &(0..5_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    write(&root.join("zero"), b"");
    write(&root.join("name with space"), b"space");
    fs::create_dir_all(root.join("empty")).unwrap();
    symlink("a/one.txt", root.join("link")).unwrap();
    symlink("/nonexistent", root.join("dangling")).unwrap();
    fs::set_permissions(root.join("a/one.txt"), fs::Permissions::from_mode(0o600)).unwrap();
}

fn assert_same_tree(expected: &Path, actual: &Path) {
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(expected.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let mut actual_names: Vec<_> = fs::read_dir(actual.join(&rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        actual_names.sort();
        assert_eq!(names, actual_names, "entries of {}", rel.display());
        for name in names {
            let path = rel.join(&name);
            let e = fs::symlink_metadata(expected.join(&path)).unwrap();
            let a = fs::symlink_metadata(actual.join(&path)).unwrap();
            assert_eq!(e.file_type(), a.file_type(), "{}", path.display());
            assert_eq!(
                e.modified().unwrap(),
                a.modified().unwrap(),
                "mtime of {}",
                path.display()
            );
            if e.is_symlink() {
                assert_eq!(
                    fs::read_link(expected.join(&path)).unwrap(),
                    fs::read_link(actual.join(&path)).unwrap()
                );
                continue;
            }
            assert_eq!(
                e.permissions().mode(),
                a.permissions().mode(),
                "mode of {}",
                path.display()
            );
            if e.is_dir() {
                stack.push(path);
            } else {
                assert_eq!(
                    fs::read(expected.join(&path)).unwrap(),
                    fs::read(actual.join(&path)).unwrap(),
                    "{}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn push_pull_round_trip() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);

    let pushed = daemon
        .push(&src, "alpha", "backup", &TransferOptions::default())
        .unwrap();
    assert_eq!(pushed.failed, 0, "{:?}", pushed.failures);
    assert_eq!(pushed.bytes, 5_000_000 + 3 + 5);
    assert_same_tree(&src, &daemon.module("alpha").join("backup"));

    let pulled_dir = scratch.path().join("pulled");
    let pulled = daemon
        .pull("alpha", "backup", &pulled_dir, &TransferOptions::default())
        .unwrap();
    assert_eq!(pulled.failed, 0, "{:?}", pulled.failures);
    assert_same_tree(&src, &pulled_dir);

    let again = daemon
        .push(&src, "alpha", "backup", &TransferOptions::default())
        .unwrap();
    assert_eq!(again.transferred, 0, "{again:?}");
    assert_eq!(again.bytes, 0);
}

/// More files than the receiver lets wait for their bytes, so the manifest
/// is held back while the data connections catch up, on both ends.
#[test]
fn push_pull_beyond_pending_bound() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    let count = blit_transfer::receiver::MAX_PENDING_FILES + 2_000;
    for n in 0..count {
        write(
            &src.join(format!("d{:02}/f{n:05}", n % 20)),
            n.to_string().as_bytes(),
        );
    }

    let pushed = daemon
        .push(&src, "alpha", "many", &TransferOptions::default())
        .unwrap();
    assert_eq!(pushed.failed, 0, "{:?}", pushed.failures);
    // The 20 directories count as transferred entries too.
    assert_eq!(pushed.transferred, count as u64 + 20);
    assert_same_tree(&src, &daemon.module("alpha").join("many"));

    let pulled_dir = scratch.path().join("pulled");
    let pulled = daemon
        .pull("alpha", "many", &pulled_dir, &TransferOptions::default())
        .unwrap();
    assert_eq!(pulled.failed, 0, "{:?}", pulled.failures);
    assert_eq!(pulled.transferred, count as u64 + 20);
    assert_same_tree(&src, &pulled_dir);
}

#[test]
fn grpc_fallback_round_trip() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);
    let options = TransferOptions {
        force_grpc_data: true,
        ..TransferOptions::default()
    };

    let pushed = daemon.push(&src, "alpha", "", &options).unwrap();
    assert_eq!(pushed.failed, 0, "{:?}", pushed.failures);
    assert_same_tree(&src, &daemon.module("alpha"));

    let pulled_dir = scratch.path().join("pulled");
    let pulled = daemon.pull("alpha", "", &pulled_dir, &options).unwrap();
    assert_eq!(pulled.failed, 0, "{:?}", pulled.failures);
    assert_same_tree(&src, &pulled_dir);
}

#[test]
fn mirror_deletes_on_each_side() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);
    let module = daemon.module("alpha");
    write(&module.join("stray/file"), b"x");
    write(&module.join("a/extra"), b"x");
    let mirror = TransferOptions {
        mirror: true,
        ..TransferOptions::default()
    };

    let copied = daemon
        .push(&src, "alpha", "", &TransferOptions::default())
        .unwrap();
    assert_eq!(copied.deleted, 0);
    assert!(module.join("stray/file").exists());
    let mirrored = daemon.push(&src, "alpha", "", &mirror).unwrap();
    assert_eq!(mirrored.deleted, 3, "{mirrored:?}");
    assert_same_tree(&src, &module);

    let local = scratch.path().join("local");
    write(&local.join("only-here"), b"x");
    let pulled = daemon.pull("alpha", "", &local, &mirror).unwrap();
    assert_eq!(pulled.deleted, 1);
    assert_same_tree(&src, &local);
}

#[test]
fn single_file_push_and_pull() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("report.txt");
    write(&file, b"report");
    fs::create_dir_all(daemon.module("alpha").join("docs")).unwrap();

    daemon
        .push(&file, "alpha", "docs", &TransferOptions::default())
        .unwrap();
    daemon
        .push(&file, "alpha", "renamed.txt", &TransferOptions::default())
        .unwrap();
    assert_eq!(
        fs::read(daemon.module("alpha").join("docs/report.txt")).unwrap(),
        b"report"
    );
    assert_eq!(
        fs::read(daemon.module("alpha").join("renamed.txt")).unwrap(),
        b"report"
    );

    let local = scratch.path().join("copy.txt");
    daemon
        .pull("alpha", "renamed.txt", &local, &TransferOptions::default())
        .unwrap();
    assert_eq!(fs::read(&local).unwrap(), b"report");
}

#[test]
fn read_only_and_unknown_modules_rejected() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("f"), b"f");

    let err = daemon
        .push(scratch.path(), "beta", "", &TransferOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert!(err.message().contains("beta"), "{}", err.message());
    let err = daemon.client.purge("beta", &[b"x".to_vec()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);

    let err = daemon
        .push(scratch.path(), "gamma", "", &TransferOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("gamma"), "{}", err.message());

    // The daemon keeps serving after rejections.
    assert!(daemon.client.status().is_ok());
}

#[test]
fn escaping_paths_rejected() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("f"), b"f");
    let outside = scratch.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    symlink(&outside, daemon.module("alpha").join("escape")).unwrap();

    for dest in ["../up", "/abs", "a/../../b"] {
        let err = daemon
            .push(scratch.path(), "alpha", dest, &TransferOptions::default())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{dest}");
    }
    let err = daemon
        .push(
            scratch.path(),
            "alpha",
            "escape/in",
            &TransferOptions::default(),
        )
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Internal, "{}", err.message());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    // Listing the link shows the link itself, not what it points to.
    write(&outside.join("secret"), b"s");
    let listed = daemon.client.list("alpha", b"escape", true).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, blit_transfer::EntryKind::Symlink);
    let err = daemon
        .client
        .list("alpha", b"escape/secret", false)
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Internal, "{}", err.message());
    let err = daemon
        .pull(
            "alpha",
            "escape/secret",
            &scratch.path().join("p"),
            &TransferOptions::default(),
        )
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Internal, "{}", err.message());
}

#[test]
fn list_and_purge() {
    let daemon = Daemon::start();
    let module = daemon.module("alpha");
    write(&module.join("dir/inner/file"), b"123");
    write(&module.join("top"), b"t");

    let flat = daemon.client.list("alpha", b"", false).unwrap();
    let names: Vec<_> = flat
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    assert_eq!(names, ["dir", "top"]);
    let deep = daemon.client.list("alpha", b"dir", true).unwrap();
    let names: Vec<_> = deep
        .iter()
        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
        .collect();
    assert_eq!(names, ["inner", "inner/file"]);
    assert_eq!(deep[1].size, 3);
    let err = daemon.client.list("alpha", b"missing", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let modules = daemon.client.list_modules().unwrap();
    assert_eq!(modules.len(), 2);

    assert_eq!(daemon.client.purge("alpha", &[b"dir".to_vec()]).unwrap(), 3);
    assert!(!module.join("dir").exists());
    let err = daemon.client.purge("alpha", &[Vec::new()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(module.exists());
    let err = daemon
        .client
        .purge("alpha", &[b"nothing".to_vec()])
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn dry_run_push_changes_nothing() {
    let daemon = Daemon::start();
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    build_tree(&src);
    let dry = TransferOptions {
        dry_run: true,
        ..TransferOptions::default()
    };

    let summary = daemon.push(&src, "alpha", "new/place", &dry).unwrap();

    assert!(summary.transferred > 0);
    assert!(!daemon.module("alpha").join("new").exists());
}

#[test]
fn unreachable_daemon_is_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let address = RemoteAddress {
        tls: false,
        host: "127.0.0.1".into(),
        port,
        module: None,
        path: String::new(),
    };
    let err = Client::connect(&address, &ClientOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Network);
    assert!(
        err.message().contains(&port.to_string()),
        "{}",
        err.message()
    );
}
