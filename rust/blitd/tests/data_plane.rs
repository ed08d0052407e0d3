//! The data-plane listener over real loopback TCP: token admission,
//! rejection, the token deadline, and a push whose data connection
//! breaks.

mod common;

use std::io::ErrorKind as IoErrorKind;
use std::time::{Duration, Instant};

use blitd::grants::{DEFAULT_TOKEN_TTL, DataConnection, DataSession, DataToken};
use blitd::{Server, ServerOptions};
use common::{DEADLINE, start_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Token deadline of the test server: short, so the slow-client tests
/// finish quickly.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(1);

async fn start() -> (Server, common::TestConfig) {
    start_server(ServerOptions {
        data_token_timeout: TOKEN_TIMEOUT,
        ..ServerOptions::default()
    })
    .await
}

fn register(server: &Server, session_id: &str) -> DataSession {
    server.state().grants().register(session_id).unwrap()
}

async fn connect_with(server: &Server, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(server.data_addr()).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

async fn next_connection(session: &mut DataSession) -> DataConnection {
    tokio::time::timeout(DEADLINE, session.next_connection())
        .await
        .expect("no connection reached the session")
        .expect("the session's channel closed")
}

/// Waits until the daemon closes `stream` and checks that it wrote nothing
/// first. A close with unread client bytes may arrive as a reset.
async fn assert_closed_silently(stream: &mut TcpStream) {
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer))
        .await
        .expect("the daemon did not close the connection");
    match read {
        Ok(0) => {}
        Ok(count) => panic!("the daemon wrote {count} bytes before closing"),
        Err(err) => assert_eq!(err.kind(), IoErrorKind::ConnectionReset, "{err}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn good_token_reaches_session() {
    let (server, _config) = start().await;
    let mut session = register(&server, "good");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];

    let mut client = connect_with(&server, &token).await;
    client.write_all(b"after the token").await.unwrap();

    let mut connection = next_connection(&mut session).await;
    assert_eq!(connection.peer, client.local_addr().unwrap());
    let mut received = [0u8; 15];
    tokio::time::timeout(DEADLINE, connection.stream.read_exact(&mut received))
        .await
        .expect("bytes after the token did not arrive")
        .unwrap();
    assert_eq!(&received, b"after the token");

    connection.stream.write_all(b"reply").await.unwrap();
    let mut reply = [0u8; 5];
    tokio::time::timeout(DEADLINE, client.read_exact(&mut reply))
        .await
        .expect("the session's reply did not arrive")
        .unwrap();
    assert_eq!(&reply, b"reply");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_converts_to_blocking_std() {
    let (server, _config) = start().await;
    let mut session = register(&server, "blocking");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];
    let mut client = connect_with(&server, &token).await;
    client.write_all(b"x").await.unwrap();

    let connection = next_connection(&mut session).await;
    let mut stream = connection.into_blocking().unwrap();
    let received = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).map(|()| byte[0])
    });
    let byte = tokio::time::timeout(DEADLINE, received)
        .await
        .expect("blocking read did not finish")
        .unwrap()
        .unwrap();
    assert_eq!(byte, b'x');

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_route_to_their_sessions() {
    let (server, _config) = start().await;
    let mut first = register(&server, "first");
    let mut second = register(&server, "second");
    let first_token = first.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];
    let second_token = second.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];

    let second_client = connect_with(&server, &second_token).await;
    let first_client = connect_with(&server, &first_token).await;

    let to_first = next_connection(&mut first).await;
    let to_second = next_connection(&mut second).await;
    assert_eq!(to_first.peer, first_client.local_addr().unwrap());
    assert_eq!(to_second.peer, second_client.local_addr().unwrap());

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_token_closed_silently() {
    let (server, _config) = start().await;
    let mut session = register(&server, "bad");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];
    let mut forged: DataToken = token;
    forged[31] ^= 0x80;

    let mut client = connect_with(&server, &forged).await;
    assert_closed_silently(&mut client).await;
    assert!(session.try_next_connection().is_none());

    // The forged attempt did not use up the real token.
    let _real = connect_with(&server, &token).await;
    next_connection(&mut session).await;

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_token_closed_silently() {
    let (server, _config) = start().await;
    let mut session = register(&server, "reuse");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];

    let _first = connect_with(&server, &token).await;
    next_connection(&mut session).await;

    let mut replay = connect_with(&server, &token).await;
    assert_closed_silently(&mut replay).await;
    assert!(session.try_next_connection().is_none());

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ended_session_token_rejected() {
    let (server, _config) = start().await;
    let session = register(&server, "ended");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];
    drop(session);

    let mut client = connect_with(&server, &token).await;
    assert_closed_silently(&mut client).await;

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_client_closed_after_deadline() {
    let (server, _config) = start().await;
    let _session = register(&server, "silent");
    let mut client = TcpStream::connect(server.data_addr()).await.unwrap();
    let connected = Instant::now();

    // The daemon closes the connection TOKEN_TIMEOUT after accepting it,
    // which is after `connected`, so a shorter read must still time out.
    let mut buffer = [0u8; 1];
    let early = tokio::time::timeout(TOKEN_TIMEOUT / 5, client.read(&mut buffer)).await;
    assert!(
        early.is_err() || connected.elapsed() >= TOKEN_TIMEOUT,
        "the connection closed before the token deadline"
    );

    assert_closed_silently(&mut client).await;

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn partial_token_closed_after_deadline() {
    let (server, _config) = start().await;
    let mut session = register(&server, "partial");
    let token = session.issue(1, DEFAULT_TOKEN_TTL).unwrap()[0];

    let mut client = connect_with(&server, &token[..16]).await;
    assert_closed_silently(&mut client).await;
    assert!(session.try_next_connection().is_none());

    server.shutdown().await;
}

/// A data connection that breaks during a push ends the session with the
/// reader's error at once, without waiting for a `Finish` that a client
/// whose connection broke may never send.
#[tokio::test(flavor = "multi_thread")]
async fn broken_data_connection_ends_push() {
    use blit_proto::v2::{
        Entry, EntryKind, ManifestBatch, PushRequest, PushStart, push_request, push_response,
    };

    let (server, _config) = start().await;
    let mut grpc = common::connect(server.control_addr()).await;
    let (requests, stream) = tokio::sync::mpsc::channel::<PushRequest>(4);
    let send = |message| PushRequest {
        message: Some(message),
    };
    requests
        .send(send(push_request::Message::Start(PushStart {
            module: "alpha".into(),
            path: b"dst".to_vec().into(),
            ..PushStart::default()
        })))
        .await
        .unwrap();
    let mut responses = grpc
        .push(tokio_stream::wrappers::ReceiverStream::new(stream))
        .await
        .unwrap()
        .into_inner();
    let grant = match responses.message().await.unwrap().unwrap().message {
        Some(push_response::Message::Grant(grant)) => grant,
        other => panic!("expected a data grant, got {other:?}"),
    };

    // One 10-byte file, which the daemon then expects on a data connection.
    requests
        .send(send(push_request::Message::Manifest(ManifestBatch {
            first_index: 0,
            entries: vec![Entry {
                path: b"f".to_vec().into(),
                kind: EntryKind::File as i32,
                size: 10,
                mode: 0o644,
                ..Entry::default()
            }],
        })))
        .await
        .unwrap();
    let need = tokio::time::timeout(DEADLINE, responses.message())
        .await
        .expect("no need-list")
        .unwrap()
        .unwrap();
    assert!(
        matches!(need.message, Some(push_response::Message::Need(ref list)) if list.indices == [0]),
        "{need:?}"
    );

    // A frame with an unknown tag breaks the data stream.
    let mut data = connect_with(&server, &grant.tokens[0]).await;
    data.write_all(&[0xee]).await.unwrap();

    let ended = tokio::time::timeout(DEADLINE, responses.message())
        .await
        .expect("the push went on after its data connection broke");
    let status = ended.expect_err("the push ended without an error");
    assert!(
        status.message().contains("unknown data frame tag"),
        "{}",
        status.message()
    );
    drop(requests);
}
