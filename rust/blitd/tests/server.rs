//! The in-process server on loopback: Status, ListModules, sessions and
//! graceful shutdown.

mod common;

use std::time::Duration;

use blit_core::ErrorKind;
use blit_proto::v2::{ListModulesRequest, StatusRequest};
use blitd::{Server, ServerOptions, ShutdownOutcome};
use common::{DEADLINE, TestConfig, connect, start_server};

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_daemon() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    assert!(server.control_addr().ip().is_loopback());
    assert_ne!(server.control_addr().port(), 0);
    assert_ne!(server.data_addr().port(), 0);
    assert_ne!(server.control_addr().port(), server.data_addr().port());
    assert_eq!(server.data_addr().ip(), server.control_addr().ip());

    let mut client = connect(server.control_addr()).await;
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.version, blit_core::VERSION);
    assert!(status.uptime_seconds < DEADLINE.as_secs());
    assert_eq!(status.active_sessions, 0);
    let names: Vec<&str> = status.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_modules_returns_config() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    let mut client = connect(server.control_addr()).await;
    let modules = client
        .list_modules(ListModulesRequest {})
        .await
        .unwrap()
        .into_inner()
        .modules;
    assert_eq!(modules.len(), 2);
    assert_eq!(modules[0].name, "alpha");
    assert_eq!(modules[0].comment, "first module");
    assert!(!modules[0].read_only);
    assert_eq!(modules[1].name, "beta");
    assert_eq!(modules[1].comment, "");
    assert!(modules[1].read_only);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_counts_sessions() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    let mut client = connect(server.control_addr()).await;

    let first = server.state().begin_session().unwrap();
    let second = server.state().begin_session().unwrap();
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active_sessions, 2);

    drop(first);
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active_sessions, 1);

    drop(second);
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.active_sessions, 0);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn module_lookup_names_module() {
    let (server, config) = start_server(ServerOptions::default()).await;
    let alpha = server.state().module("alpha").unwrap();
    assert_eq!(alpha.path, config.module_path("alpha"));
    let err = server.state().module("gamma").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("\"gamma\""), "{}", err.message());

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_tls_cert_fails_start() {
    let config = TestConfig::new("\n[daemon.tls]\ncert = \"/absent/c.pem\"\nkey = \"/k.pem\"");
    let err = Server::start(config.load(), ServerOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("/absent/c.pem"), "{}", err.message());
    assert!(
        err.message().contains("[daemon.tls] cert"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn port_in_use_names_address() {
    let (first, _config) = start_server(ServerOptions::default()).await;
    let config = TestConfig::new("");
    let text = std::fs::read_to_string(&config.path)
        .unwrap()
        .replace("127.0.0.1:0", &first.control_addr().to_string());
    std::fs::write(&config.path, text).unwrap();
    let err = Server::start(config.load(), ServerOptions::default())
        .await
        .unwrap_err();
    assert!(
        err.message().contains(&first.control_addr().to_string()),
        "{}",
        err.message()
    );
    assert!(err.message().contains("listen_addr"), "{}", err.message());

    first.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_closes_listeners() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    let control_addr = server.control_addr();
    let data_addr = server.data_addr();
    let mut client = connect(control_addr).await;

    let outcome = tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown with no sessions did not finish");
    assert_eq!(outcome, ShutdownOutcome::Drained);

    // The accept loops drop their listeners as they stop, which may take a
    // moment after shutdown returns; poll against the deadline.
    for (addr, plane) in [(control_addr, "control"), (data_addr, "data")] {
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            assert!(
                started.elapsed() < DEADLINE,
                "{plane} plane still accepts connections"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        client.status(StatusRequest {}).await.is_err(),
        "Status succeeded after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_waits_for_sessions() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    let mut client = connect(server.control_addr()).await;
    let state = std::sync::Arc::clone(server.state());
    let session = state.begin_session().unwrap();

    let shutdown = tokio::spawn(server.shutdown());
    let started = std::time::Instant::now();
    while !state.is_shutting_down() {
        assert!(started.elapsed() < DEADLINE, "shutdown did not begin");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rejected = state.begin_session().unwrap_err();
    assert_eq!(rejected.kind(), ErrorKind::Network);
    assert!(
        !shutdown.is_finished(),
        "shutdown finished while a session was running"
    );
    assert!(!session.is_cancelled());

    // New RPCs fail while the running session still holds up shutdown.
    let started = std::time::Instant::now();
    while client.status(StatusRequest {}).await.is_ok() {
        assert!(
            started.elapsed() < DEADLINE,
            "Status still succeeds while shutting down"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!shutdown.is_finished());

    drop(session);
    let outcome = tokio::time::timeout(DEADLINE, shutdown)
        .await
        .expect("shutdown did not finish after the last session ended")
        .unwrap();
    assert_eq!(outcome, ShutdownOutcome::Drained);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_server_stops_accepting() {
    let (server, _config) = start_server(ServerOptions::default()).await;
    let control_addr = server.control_addr();
    let data_addr = server.data_addr();
    connect(control_addr).await;
    drop(server);

    let started = std::time::Instant::now();
    loop {
        let control = tokio::net::TcpStream::connect(control_addr).await;
        let data = tokio::net::TcpStream::connect(data_addr).await;
        if control.is_err() && data.is_err() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "a dropped server still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_timeout_cancels_sessions() {
    let options = ServerOptions {
        shutdown_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let (server, _config) = start_server(options).await;
    let session = server.state().begin_session().unwrap();
    let id = session.id().to_string();

    let outcome = tokio::time::timeout(DEADLINE, server.shutdown())
        .await
        .expect("shutdown did not finish after its timeout");
    assert_eq!(outcome, ShutdownOutcome::SessionsCancelled(vec![id]));
    assert!(session.is_cancelled());
    assert!(session.cancel_token().is_cancelled());
    tokio::time::timeout(DEADLINE, session.cancelled())
        .await
        .expect("cancelled() did not complete");
}
