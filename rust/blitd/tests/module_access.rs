//! The access keys of a module (`hosts_allow`, `hosts_deny`, `list`,
//! `max_connections`, `exclude`) and `[daemon] max_connections`, against an
//! in-process daemon over loopback TCP. Every client here connects from
//! 127.0.0.1.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blit_client::{Client, ClientOptions, TransferOptions, pull, push};
use blit_core::{Address, CancelToken, ErrorKind, Progress, RemoteAddress, Summary};
use blit_proto::v2::{
    PullRequest, PullResponse, PullStart, PushRequest, PushResponse, PushStart, pull_request,
    pull_response, push_request, push_response,
};
use blitd::tokens::{self, NewToken, Permission};
use blitd::{Server, ServerOptions};
use common::{DEADLINE, TestConfig};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// A daemon running on its own runtime, so the blocking client can run on
/// the test thread.
struct Daemon {
    runtime: tokio::runtime::Runtime,
    server: Option<Server>,
    config: TestConfig,
    address: RemoteAddress,
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

    /// Starts a daemon with `auth = "none"` and the given extra keys.
    fn with_keys(daemon_keys: &str, alpha_keys: &str, beta_keys: &str) -> Daemon {
        Daemon::start(TestConfig::with_module_keys(
            daemon_keys,
            alpha_keys,
            beta_keys,
        ))
    }

    /// Connects a client that sends `token`; an empty token sends none,
    /// which a daemon with `auth = "none"` accepts.
    fn client(&self, token: &str) -> Client {
        let options = ClientOptions {
            token: Some(token.to_string()),
            ..ClientOptions::default()
        };
        Client::connect(&self.address, &options).unwrap()
    }

    fn module(&self, name: &str) -> PathBuf {
        self.config.module_path(name)
    }

    fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

/// Switches a test config to token authentication with a store beside it,
/// and returns the store's path.
fn use_tokens(config: &TestConfig) -> PathBuf {
    let store = config.dir().join("tokens.toml");
    let text = fs::read_to_string(&config.path).unwrap().replace(
        "auth = \"none\"",
        &format!("auth = \"token\"\ntoken_file = {store:?}"),
    );
    fs::write(&config.path, text).unwrap();
    store
}

/// Creates a token for every module with the permissions in `permissions`
/// (such as `"read,write"`) and returns it.
fn create_token(store: &Path, name: &str, permissions: &str) -> String {
    tokens::create(
        store,
        &NewToken {
            name: name.into(),
            modules: vec!["*".into()],
            permissions: Permission::parse_list(permissions).unwrap(),
            expires: None,
            replace: false,
        },
    )
    .unwrap()
}

fn write(path: &Path, content: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn push_to(
    client: &Client,
    src: &Path,
    module: &str,
    dest: &str,
    options: &TransferOptions,
) -> blit_core::Result<Summary> {
    push(
        client,
        src,
        module,
        dest.as_bytes(),
        options,
        &Progress::new(),
        &CancelToken::new(),
    )
}

fn pull_from(client: &Client, module: &str, path: &str, dst: &Path) -> blit_core::Result<Summary> {
    pull(
        client,
        module,
        path.as_bytes(),
        dst,
        &TransferOptions::default(),
        &Progress::new(),
        &CancelToken::new(),
    )
}

/// Returns the module names of `client`'s module list, after checking that
/// its Status reply lists the same modules.
fn listed_modules(client: &Client) -> Vec<String> {
    let listed: Vec<String> = client
        .list_modules()
        .unwrap()
        .into_iter()
        .map(|module| module.name)
        .collect();
    let status: Vec<String> = client
        .status()
        .unwrap()
        .modules
        .into_iter()
        .map(|module| module.name)
        .collect();
    assert_eq!(listed, status, "ListModules and Status disagree");
    listed
}

/// Returns the paths of a recursive listing, sorted.
fn listed_paths(client: &Client, module: &str, path: &str) -> Vec<String> {
    let mut paths: Vec<String> = client
        .list(module, path.as_bytes(), true)
        .unwrap()
        .into_iter()
        .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
        .collect();
    paths.sort();
    paths
}

/// Returns every path below `root`, relative to it and sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let path = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            paths.push(path.to_string_lossy().into_owned());
        }
    }
    paths.sort();
    paths
}

/// Polls `check` until it returns true or [`DEADLINE`] passes.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A push or pull session that the daemon keeps running, because the
/// client has neither sent its finish message nor closed the request
/// stream. Dropping it closes the stream, which ends the session.
struct HeldSession {
    _requests: Box<dyn std::any::Any + Send>,
    _responses: Box<dyn std::any::Any + Send>,
}

/// Starts a pull of `module`'s root over raw gRPC and waits for its data
/// grant, which the daemon sends after it took the operation's slot.
fn hold_pull(daemon: &Daemon, module: &str) -> HeldSession {
    let addr = daemon.server().control_addr();
    daemon.runtime.block_on(async {
        let mut grpc = common::connect(addr).await;
        let (requests, stream) = mpsc::channel::<PullRequest>(4);
        requests
            .send(PullRequest {
                message: Some(pull_request::Message::Start(PullStart {
                    module: module.into(),
                    ..PullStart::default()
                })),
            })
            .await
            .unwrap();
        let mut responses: Streaming<PullResponse> = grpc
            .pull(ReceiverStream::new(stream))
            .await
            .unwrap()
            .into_inner();
        let first = tokio::time::timeout(DEADLINE, responses.message())
            .await
            .expect("no reply to PullStart")
            .unwrap()
            .unwrap();
        assert!(
            matches!(first.message, Some(pull_response::Message::Grant(_))),
            "the pull did not start: {first:?}"
        );
        HeldSession {
            _requests: Box::new(requests),
            _responses: Box::new(responses),
        }
    })
}

/// Starts a push into `module`'s root over raw gRPC and waits for its data
/// grant.
fn hold_push(daemon: &Daemon, module: &str) -> HeldSession {
    let addr = daemon.server().control_addr();
    daemon.runtime.block_on(async {
        let mut grpc = common::connect(addr).await;
        let (requests, stream) = mpsc::channel::<PushRequest>(4);
        requests
            .send(PushRequest {
                message: Some(push_request::Message::Start(PushStart {
                    module: module.into(),
                    ..PushStart::default()
                })),
            })
            .await
            .unwrap();
        let mut responses: Streaming<PushResponse> = grpc
            .push(ReceiverStream::new(stream))
            .await
            .unwrap()
            .into_inner();
        let first = tokio::time::timeout(DEADLINE, responses.message())
            .await
            .expect("no reply to PushStart")
            .unwrap()
            .unwrap();
        assert!(
            matches!(first.message, Some(push_response::Message::Grant(_))),
            "the push did not start: {first:?}"
        );
        HeldSession {
            _requests: Box::new(requests),
            _responses: Box::new(responses),
        }
    })
}

/// Asserts that `result` failed with `kind` and a message containing each
/// of `parts`.
fn assert_error<T: std::fmt::Debug>(
    result: blit_core::Result<T>,
    kind: ErrorKind,
    parts: &[&str],
    operation: &str,
) {
    let err = result.expect_err(operation);
    assert_eq!(err.kind(), kind, "{operation}: {}", err.message());
    for part in parts {
        assert!(
            err.message().contains(part),
            "{operation}: {:?} lacks {part:?}",
            err.message()
        );
    }
}

// --- hosts_allow and hosts_deny ---

#[test]
fn denied_peer_rejected_on_every_rpc() {
    let config = TestConfig::with_module_keys("", "hosts_deny = [\"127.0.0.1/32\"]", "");
    let store = use_tokens(&config);
    let token = create_token(&store, "everything", "read,write,delete,admin");
    let daemon = Daemon::start(config);
    let client = daemon.client(&token);
    let module = daemon.module("alpha");
    write(&module.join("kept.txt"), b"kept");
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("src/new.txt"), b"new");
    let expected = ["module \"alpha\"", "127.0.0.1"];

    assert_error(
        client.list("alpha", b"", false),
        ErrorKind::PermissionDenied,
        &expected,
        "list",
    );
    assert_error(
        pull_from(&client, "alpha", "", &scratch.path().join("pulled")),
        ErrorKind::PermissionDenied,
        &expected,
        "pull",
    );
    assert_error(
        push_to(
            &client,
            &scratch.path().join("src"),
            "alpha",
            "",
            &TransferOptions::default(),
        ),
        ErrorKind::PermissionDenied,
        &expected,
        "push",
    );
    let mirror = TransferOptions {
        mirror: true,
        ..TransferOptions::default()
    };
    assert_error(
        push_to(&client, &scratch.path().join("src"), "alpha", "", &mirror),
        ErrorKind::PermissionDenied,
        &expected,
        "push --mirror",
    );
    assert_error(
        client.purge("alpha", &[b"kept.txt".to_vec()]),
        ErrorKind::PermissionDenied,
        &expected,
        "purge",
    );
    // The message names the peer, never the token.
    let err = client.list("alpha", b"", false).unwrap_err();
    assert!(!err.message().contains(&token), "{}", err.message());

    assert_eq!(tree(&module), ["kept.txt"]);
    assert!(!scratch.path().join("pulled").exists());
    // Even an admin token does not see a module that rejects its peer.
    assert_eq!(listed_modules(&client), ["beta"]);
    // The daemon keeps serving the other module.
    assert!(client.list("beta", b"", false).unwrap().is_empty());
}

#[test]
fn host_rules_follow_rsyncd() {
    // (alpha's keys, whether 127.0.0.1 is admitted)
    let cases = [
        ("hosts_deny = [\"127.0.0.1/32\"]", false),
        ("hosts_deny = [\"127.0.0.0/8\"]", false),
        ("hosts_deny = [\"::ffff:127.0.0.1\"]", false),
        ("hosts_deny = [\"10.0.0.0/8\"]", true),
        ("hosts_allow = [\"10.0.0.0/8\"]", false),
        (
            "hosts_allow = [\"10.0.0.0/8\", \"::1\", \"fd00::/8\"]",
            false,
        ),
        ("hosts_allow = [\"127.0.0.1\"]", true),
        ("hosts_allow = [\"::ffff:127.0.0.0/104\"]", true),
        // An allow match overrides a deny match.
        (
            "hosts_allow = [\"127.0.0.0/8\"]\nhosts_deny = [\"127.0.0.1/32\"]",
            true,
        ),
        (
            "hosts_allow = [\"127.0.0.1\"]\nhosts_deny = [\"0.0.0.0/0\"]",
            true,
        ),
        // With both lists, a peer that matches neither is admitted.
        (
            "hosts_allow = [\"10.0.0.0/8\"]\nhosts_deny = [\"192.0.2.0/24\"]",
            true,
        ),
        (
            "hosts_allow = [\"10.0.0.0/8\"]\nhosts_deny = [\"127.0.0.0/8\"]",
            false,
        ),
        // Empty lists are no rules at all.
        ("hosts_allow = []\nhosts_deny = []", true),
    ];
    for (keys, admitted) in cases {
        let daemon = Daemon::with_keys("", keys, "");
        let client = daemon.client("");
        let listed = client.list("alpha", b"", false);
        assert_eq!(listed.is_ok(), admitted, "{keys}: {listed:?}");
        if !admitted {
            assert_error(
                listed,
                ErrorKind::PermissionDenied,
                &["module \"alpha\"", "127.0.0.1"],
                keys,
            );
        }
        let expected: &[&str] = if admitted {
            &["alpha", "beta"]
        } else {
            &["beta"]
        };
        assert_eq!(listed_modules(&client), expected, "{keys}");
    }
}

// --- list = false ---

#[test]
fn unlisted_module_hidden_from_non_admin() {
    let config = TestConfig::with_module_keys("", "list = false", "");
    let store = use_tokens(&config);
    let user = create_token(&store, "user", "read,write");
    let admin = create_token(&store, "admin", "read,admin");
    let daemon = Daemon::start(config);
    let user = daemon.client(&user);
    let admin = daemon.client(&admin);

    assert_eq!(listed_modules(&user), ["beta"]);
    assert_eq!(listed_modules(&admin), ["alpha", "beta"]);

    // The module stays usable by name.
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("src/f.txt"), b"f");
    let pushed = push_to(
        &user,
        &scratch.path().join("src"),
        "alpha",
        "dir",
        &TransferOptions::default(),
    )
    .unwrap();
    assert_eq!(pushed.transferred, 1);
    assert_eq!(listed_paths(&user, "alpha", ""), ["dir", "dir/f.txt"]);
    pull_from(&user, "alpha", "dir", &scratch.path().join("back")).unwrap();
    assert_eq!(
        fs::read(scratch.path().join("back/f.txt")).unwrap(),
        b"f".to_vec()
    );
}

#[test]
fn unlisted_module_hidden_without_auth() {
    let daemon = Daemon::with_keys("", "list = false", "list = true");
    let client = daemon.client("");
    assert_eq!(listed_modules(&client), ["beta"]);
    write(&daemon.module("alpha").join("f.txt"), b"f");
    assert_eq!(listed_paths(&client, "alpha", ""), ["f.txt"]);
}

// --- max_connections ---

#[test]
fn module_limit_rejects_until_holder_ends() {
    let daemon = Daemon::with_keys("", "max_connections = 1", "");
    let client = daemon.client("");
    write(&daemon.module("alpha").join("f.txt"), b"f");
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("src/g.txt"), b"g");
    let expected = ["module \"alpha\" has reached max_connections = 1"];

    let held = hold_pull(&daemon, "alpha");
    assert_error(
        client.list("alpha", b"", false),
        ErrorKind::ResourceExhausted,
        &expected,
        "list",
    );
    assert_error(
        pull_from(&client, "alpha", "", &scratch.path().join("pulled")),
        ErrorKind::ResourceExhausted,
        &expected,
        "pull",
    );
    assert_error(
        push_to(
            &client,
            &scratch.path().join("src"),
            "alpha",
            "",
            &TransferOptions::default(),
        ),
        ErrorKind::ResourceExhausted,
        &expected,
        "push",
    );
    assert_error(
        client.purge("alpha", &[b"f.txt".to_vec()]),
        ErrorKind::ResourceExhausted,
        &expected,
        "purge",
    );
    assert!(daemon.module("alpha").join("f.txt").exists());
    // Other modules and daemon-wide RPCs are not limited.
    client.list("beta", b"", false).unwrap();
    assert_eq!(listed_modules(&client), ["alpha", "beta"]);

    // Closing the request stream ends the session and frees its slot.
    drop(held);
    assert!(
        eventually(|| client.list("alpha", b"", false).is_ok()),
        "the slot of the ended pull was not freed"
    );
}

#[test]
fn push_session_holds_daemon_slot() {
    let daemon = Daemon::with_keys("max_connections = 1", "", "");
    let client = daemon.client("");
    let expected = ["max_connections = 1", "[daemon]"];

    let held = hold_push(&daemon, "alpha");
    // The daemon-wide limit covers every module.
    assert_error(
        client.list("beta", b"", false),
        ErrorKind::ResourceExhausted,
        &expected,
        "list beta",
    );
    assert_error(
        client.list("alpha", b"", false),
        ErrorKind::ResourceExhausted,
        &expected,
        "list alpha",
    );
    client.status().unwrap();

    drop(held);
    assert!(
        eventually(|| client.list("beta", b"", false).is_ok()),
        "the slot of the ended push was not freed"
    );
}

#[test]
fn slots_freed_after_each_operation() {
    // With a limit of 1, each operation must find the slot of the one
    // before it free, whether that one succeeded or failed.
    let daemon = Daemon::with_keys("max_connections = 1", "max_connections = 1", "");
    let client = daemon.client("");
    let scratch = tempfile::tempdir().unwrap();
    write(&scratch.path().join("src/f.txt"), b"f");
    let src = scratch.path().join("src");

    for round in 0..3 {
        let dest = format!("round{round}");
        push_to(&client, &src, "alpha", &dest, &TransferOptions::default()).unwrap();
        let local = scratch.path().join(&dest);
        pull_from(&client, "alpha", &dest, &local).unwrap();
        assert_eq!(listed_paths(&client, "alpha", &dest), ["f.txt"]);
        assert_error(
            client.list("alpha", b"missing", false),
            ErrorKind::NotFound,
            &[],
            "list missing",
        );
        assert_error(
            pull_from(&client, "alpha", "missing", &scratch.path().join("x")),
            ErrorKind::NotFound,
            &[],
            "pull missing",
        );
        assert_error(
            push_to(
                &client,
                &src,
                "alpha",
                &format!("{dest}/f.txt/x"),
                &TransferOptions::default(),
            ),
            ErrorKind::Conflict,
            &[],
            "push under a file",
        );
        assert_error(
            client.purge("alpha", &[b"missing".to_vec()]),
            ErrorKind::NotFound,
            &[],
            "purge missing",
        );
        assert_eq!(client.purge("alpha", &[dest.into_bytes()]).unwrap(), 2);
    }
}

// --- exclude ---

const EXCLUDE: &str = "exclude = [\"*.key\", \"/private/\", \"cache/\"]";

/// Fills alpha with entries that [`EXCLUDE`] hides and entries it does not.
fn fill_alpha(daemon: &Daemon) -> PathBuf {
    let module = daemon.module("alpha");
    write(&module.join("a.txt"), b"a");
    write(&module.join("id.key"), b"secret key");
    write(&module.join("private/p.txt"), b"private");
    write(&module.join("sub/ok.txt"), b"ok");
    write(&module.join("sub/x.key"), b"another key");
    write(&module.join("sub/cache/c.txt"), b"cached");
    write(&module.join("sub/deep/private/d.txt"), b"not anchored");
    module
}

const HIDDEN: [&str; 6] = [
    "id.key",
    "private",
    "private/p.txt",
    "sub/cache",
    "sub/cache/c.txt",
    "sub/x.key",
];

#[test]
fn exclude_hides_entries_from_list() {
    let daemon = Daemon::with_keys("", EXCLUDE, "");
    fill_alpha(&daemon);
    let client = daemon.client("");

    assert_eq!(
        listed_paths(&client, "alpha", ""),
        [
            "a.txt",
            "sub",
            "sub/deep",
            "sub/deep/private",
            "sub/deep/private/d.txt",
            "sub/ok.txt"
        ]
    );
    let flat: Vec<String> = client
        .list("alpha", b"sub", false)
        .unwrap()
        .into_iter()
        .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
        .collect();
    assert_eq!(flat, ["deep", "ok.txt"]);

    // A hidden path gets the message of a missing one.
    let missing = client.list("alpha", b"nothing", false).unwrap_err();
    for hidden in HIDDEN {
        let err = client.list("alpha", hidden.as_bytes(), true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{hidden}");
        assert_eq!(
            err.message().replace(hidden, "nothing"),
            missing.message(),
            "{hidden}"
        );
    }
    // Below a hidden directory, a missing path or one under a file is not
    // found either.
    for path in ["private/none", "private/p.txt/x", "sub/cache/c.txt/x"] {
        let err = client.list("alpha", path.as_bytes(), true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{path}: {}", err.message());
    }
}

#[test]
fn exclude_hides_entries_from_pull() {
    let daemon = Daemon::with_keys("", EXCLUDE, "");
    fill_alpha(&daemon);
    let client = daemon.client("");
    let scratch = tempfile::tempdir().unwrap();

    let whole = scratch.path().join("whole");
    pull_from(&client, "alpha", "", &whole).unwrap();
    assert_eq!(
        tree(&whole),
        [
            "a.txt",
            "sub",
            "sub/deep",
            "sub/deep/private",
            "sub/deep/private/d.txt",
            "sub/ok.txt"
        ]
    );
    // The module's patterns apply relative to the module's root, also when
    // the pull starts in a subdirectory.
    let sub = scratch.path().join("sub");
    pull_from(&client, "alpha", "sub", &sub).unwrap();
    assert_eq!(
        tree(&sub),
        ["deep", "deep/private", "deep/private/d.txt", "ok.txt"]
    );
    for hidden in HIDDEN {
        let dst = scratch.path().join("hidden");
        let err = pull_from(&client, "alpha", hidden, &dst).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{hidden}");
        assert!(!dst.exists(), "{hidden}");
    }
}

#[test]
fn exclude_protects_entries_from_push() {
    let daemon = Daemon::with_keys("", EXCLUDE, "");
    let module = fill_alpha(&daemon);
    let client = daemon.client("");
    let scratch = tempfile::tempdir().unwrap();
    let src = scratch.path().join("src");
    write(&src.join("a.txt"), b"new a");
    write(&src.join("id.key"), b"overwritten");
    write(&src.join("new.key"), b"planted");
    write(&src.join("private/p.txt"), b"overwritten");
    write(&src.join("private/planted.txt"), b"planted");
    write(&src.join("sub/ok.txt"), b"new ok");
    // A file where an excluded directory is must not replace it.
    write(&src.join("sub/cache"), b"not a directory");

    let summary = push_to(&client, &src, "alpha", "", &TransferOptions::default()).unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    // Only a.txt, sub and sub/ok.txt count: excluded entries are skipped
    // silently.
    assert_eq!(summary.transferred + summary.skipped, 3, "{summary:?}");
    assert_eq!(fs::read(module.join("a.txt")).unwrap(), b"new a");
    assert_eq!(fs::read(module.join("sub/ok.txt")).unwrap(), b"new ok");
    assert_eq!(fs::read(module.join("id.key")).unwrap(), b"secret key");
    assert_eq!(fs::read(module.join("private/p.txt")).unwrap(), b"private");
    assert!(!module.join("new.key").exists());
    assert!(!module.join("private/planted.txt").exists());
    assert_eq!(fs::read(module.join("sub/cache/c.txt")).unwrap(), b"cached");

    // A mirror push deletes what the source lacks, except excluded entries.
    let mirror_src = scratch.path().join("mirror");
    write(&mirror_src.join("a.txt"), b"mirrored a");
    fs::create_dir_all(mirror_src.join("sub")).unwrap();
    let mirror = TransferOptions {
        mirror: true,
        ..TransferOptions::default()
    };
    let summary = push_to(&client, &mirror_src, "alpha", "", &mirror).unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(
        tree(&module),
        [
            "a.txt",
            "id.key",
            "private",
            "private/p.txt",
            "sub",
            "sub/cache",
            "sub/cache/c.txt",
            "sub/x.key"
        ]
    );
    assert_eq!(fs::read(module.join("a.txt")).unwrap(), b"mirrored a");
    assert_eq!(fs::read(module.join("sub/x.key")).unwrap(), b"another key");

    // The same holds for a mirror push into a subdirectory, where the
    // module's patterns apply at the subdirectory's place.
    let summary = push_to(&client, &mirror_src, "alpha", "sub", &mirror).unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(fs::read(module.join("sub/cache/c.txt")).unwrap(), b"cached");
    assert_eq!(fs::read(module.join("sub/x.key")).unwrap(), b"another key");
    assert_eq!(fs::read(module.join("sub/a.txt")).unwrap(), b"mirrored a");
}

#[test]
fn excluded_push_destination_rejected() {
    let daemon = Daemon::with_keys("", EXCLUDE, "");
    let module = fill_alpha(&daemon);
    let client = daemon.client("");
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("dir");
    write(&dir.join("f.txt"), b"f");
    let key = scratch.path().join("new.key");
    write(&key, b"planted");
    let plain = scratch.path().join("plain.txt");
    write(&plain, b"plain");
    let options = TransferOptions::default();

    let cases: [(&Path, &str); 6] = [
        (&dir, "private"),
        (&dir, "private/inner"),
        (&dir, "sub/cache"),
        (&key, ""),
        (&key, "sub/"),
        (&plain, "sub/renamed.key"),
    ];
    for (src, dest) in cases {
        assert_error(
            push_to(&client, src, "alpha", dest, &options),
            ErrorKind::PermissionDenied,
            &["excluded", "module alpha"],
            &format!("push {} to {dest:?}", src.display()),
        );
    }
    assert!(!module.join("new.key").exists());
    assert!(!module.join("sub/new.key").exists());
    assert!(!module.join("sub/renamed.key").exists());
    assert!(!module.join("private/inner").exists());
    assert!(!module.join("private/f.txt").exists());
    assert!(!module.join("sub/cache/f.txt").exists());
}

#[test]
fn exclude_protects_entries_from_purge() {
    let daemon = Daemon::with_keys("", EXCLUDE, "");
    let module = fill_alpha(&daemon);
    let client = daemon.client("");

    let missing = client.purge("alpha", &[b"nothing".to_vec()]).unwrap_err();
    for hidden in HIDDEN {
        let err = client
            .purge("alpha", &[hidden.as_bytes().to_vec()])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{hidden}");
        assert_eq!(
            err.message().replace(hidden, "nothing"),
            missing.message(),
            "{hidden}"
        );
        assert!(module.join(hidden).exists(), "{hidden}");
    }

    // Purging a directory deletes what is visible in it and keeps the
    // excluded entries with the directories that lead to them.
    let deleted = client.purge("alpha", &[b"sub".to_vec()]).unwrap();
    // sub/ok.txt, sub/deep/private/d.txt, sub/deep/private, sub/deep.
    assert_eq!(deleted, 4);
    assert_eq!(
        tree(&module),
        [
            "a.txt",
            "id.key",
            "private",
            "private/p.txt",
            "sub",
            "sub/cache",
            "sub/cache/c.txt",
            "sub/x.key"
        ]
    );
    assert_eq!(client.purge("alpha", &[b"a.txt".to_vec()]).unwrap(), 1);
}
