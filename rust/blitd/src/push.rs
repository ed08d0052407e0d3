//! The Push RPC: the daemon is the receiving end.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blit_core::fsops::{self, Kind};
use blit_core::{Error, ErrorKind, Filter, Progress, Result};
use blit_proto::convert::{entry_from_proto, status_from_error, summary_to_proto};
use blit_proto::v2::push_request::Message as Incoming;
use blit_proto::v2::push_response::Message as Outgoing;
use blit_proto::v2::{NeedList, PushRequest, PushResponse, PushStart};
use blit_transfer::chunks::ChunkReader;
use blit_transfer::frame::FrameReader;
use blit_transfer::paths;
use blit_transfer::receiver::{Receiver, ReceiverOptions, Target};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::auth::Identity;
use crate::config::ModuleConfig;
use crate::grants::DEFAULT_TOKEN_TTL;
use crate::log_limit::PeerAddr;
use crate::modules::{self, ClientPath};
use crate::state::DaemonState;
use crate::tokens::Permission;

/// Data connections offered to a client per session.
pub(crate) const DATA_CONNECTIONS: usize = 4;

/// How long the daemon waits, after the client's finish message, for data
/// connections that the client says it opened.
const DATA_WAIT: Duration = Duration::from_secs(60);

type Responses = mpsc::Sender<std::result::Result<PushResponse, Status>>;

/// Validates the start of a push and runs the session in a task that
/// streams responses into `responses`.
pub(crate) async fn start(
    state: Arc<DaemonState>,
    peer: Option<SocketAddr>,
    identity: Identity,
    mut requests: Streaming<PushRequest>,
    responses: Responses,
) -> Result<()> {
    let start = match requests.message().await {
        Ok(Some(PushRequest {
            message: Some(Incoming::Start(start)),
        })) => start,
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a push must begin with a PushStart message",
            ));
        }
        Err(status) => {
            return Err(Error::new(
                ErrorKind::Network,
                format!("push stream failed: {status}"),
            ));
        }
    };
    // Permissions are checked before the module is looked up, so a token
    // cannot learn which modules outside its scope exist.
    let options = start.options.clone().unwrap_or_default();
    identity.require(&start.module, Permission::Write)?;
    if options.mirror {
        identity.require(&start.module, Permission::Delete)?;
    }
    let module = state.module_for_peer(&start.module, peer)?.clone();
    modules::check_writable(&module, "push")?;
    let path = ClientPath::parse(&module, &start.path)?;
    // The client's patterns protect entries relative to the destination, and
    // the module's apply at the destination's place in the module: the
    // receiver neither writes nor deletes what either excludes.
    let filter = Filter::new(&options.exclude)?
        .nested_in(module.exclude.write_filter().clone(), path.as_path());
    let slot = state.acquire_slot(&module)?;
    let (root, target) = open_destination(&module, &path, &start, options.dry_run)?;

    let session = state.begin_session()?;
    let data = state.grants().register(session.id())?;
    let data_port = if options.force_grpc_data {
        0
    } else {
        state.data_addr().port()
    };
    let grant = data.issue_grant(DATA_CONNECTIONS, DEFAULT_TOKEN_TTL, data_port)?;
    let receiver = Arc::new(Receiver::new(
        root,
        target,
        ReceiverOptions {
            mirror: options.mirror,
            checksum: options.checksum,
            fsync: options.fsync,
            dry_run: options.dry_run,
            filter,
        },
        Progress::new(),
        session.cancel_token().clone(),
    ));
    tracing::info!(
        session = session.id(),
        peer = %PeerAddr(peer),
        token = identity.name(),
        module = %module.name,
        path = %path.display(),
        mirror = options.mirror,
        dry_run = options.dry_run,
        "push started"
    );
    send(&responses, Outgoing::Grant(grant)).await?;

    tokio::spawn(async move {
        let started = Instant::now();
        let mut data = data;
        let result = run(&receiver, &mut requests, &responses, &mut data).await;
        // Every data connection has ended. The slot is freed before the
        // client learns the outcome, so that its next request never finds
        // the slot still taken.
        drop(slot);
        match result {
            Ok(summary) => {
                tracing::info!(
                    session = session.id(),
                    peer = %PeerAddr(peer),
                    module = %module.name,
                    transferred = summary.transferred,
                    skipped = summary.skipped,
                    deleted = summary.deleted,
                    failed = summary.failed,
                    bytes = summary.bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "push finished"
                );
                let _ = send(&responses, Outgoing::Summary(summary_to_proto(&summary))).await;
            }
            Err(err) => {
                session.cancel_token().cancel();
                tracing::warn!(
                    session = session.id(),
                    peer = %PeerAddr(peer),
                    module = %module.name,
                    error = %err,
                    seconds = started.elapsed().as_secs_f64(),
                    "push failed"
                );
                let _ = responses.send(Err(status_from_error(&err))).await;
            }
        }
        drop(session);
    });
    Ok(())
}

async fn send(responses: &Responses, message: Outgoing) -> Result<()> {
    responses
        .send(Ok(PushResponse {
            message: Some(message),
        }))
        .await
        .map_err(|_| Error::new(ErrorKind::Network, "the client closed the push session"))
}

/// Opens where the push lands: a directory to fill, or a directory and the
/// name of the single file. A destination that the module's `exclude`
/// patterns match, or that lies in an excluded directory, is rejected
/// before anything is opened or created.
fn open_destination(
    module: &ModuleConfig,
    path: &ClientPath,
    start: &PushStart,
    dry_run: bool,
) -> Result<(Option<OwnedFd>, Target)> {
    modules::check_writable_path(module, path.as_path())?;
    let root = modules::open_root(module)?;
    let parts = path.components();
    let map = |err: std::io::Error| modules::map_open_error(module, path, err);
    if start.source_name.is_empty() {
        let dir = if dry_run {
            match paths::open_dir(&root, &parts) {
                Ok(dir) => Some(dir),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(map(err)),
            }
        } else {
            Some(paths::create_dir(&root, &parts).map_err(map)?)
        };
        return Ok((dir, Target::Dir));
    }

    let source_name = OsStr::from_bytes(&start.source_name);
    paths::components(&start.source_name)
        .ok()
        .filter(|parts| parts.len() == 1)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "source_name must be one path component",
            )
        })?;
    // An existing directory or a trailing '/' receives the file under its
    // own name; otherwise the last component is the new name.
    let into_dir =
        path.trailing_slash || parts.is_empty() || paths::open_dir(&root, &parts).is_ok();
    if into_dir {
        modules::check_writable_path(module, &path.as_path().join(source_name))?;
        let dir = if dry_run {
            paths::open_dir(&root, &parts).ok()
        } else {
            Some(paths::create_dir(&root, &parts).map_err(map)?)
        };
        return Ok((dir, Target::File(source_name.to_os_string())));
    }
    let (last, parents) = parts.split_last().expect("parts is not empty");
    let dir = paths::open_dir(&root, parents).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "the directory of {} does not exist in module {}; create it first or end the \
                     destination with '/'",
                    path.display(),
                    module.name
                ),
            )
        } else {
            map(err)
        }
    })?;
    if fsops::stat_at(&dir, last).is_ok_and(|meta| meta.kind == Kind::Dir) {
        modules::check_writable_path(module, &path.as_path().join(source_name))?;
        return Ok((Some(dir), Target::File(source_name.to_os_string())));
    }
    Ok((Some(dir), Target::File(OsString::from(*last))))
}

/// Drives one push session after the grant: manifest batches in, need-lists
/// out, data from the data plane or from chunks, and finally the summary.
async fn run(
    receiver: &Arc<Receiver>,
    requests: &mut Streaming<PushRequest>,
    responses: &Responses,
    data: &mut crate::grants::DataSession,
) -> Result<blit_core::Summary> {
    let mut readers: Vec<JoinHandle<Result<()>>> = Vec::new();
    let mut chunk_input: Option<crossbeam_channel::Sender<Vec<u8>>> = None;
    let mut connections = 0usize;
    let mut data_open = true;
    // A reader that fails ends the session at once: the files it would
    // have carried never arrive, so waiting for `Finish` could be forever.
    let (failed_input, mut failed_readers) = tokio::sync::mpsc::unbounded_channel::<Error>();
    let finish_connections = loop {
        tokio::select! {
            Some(err) = failed_readers.recv() => return Err(err),
            message = requests.message() => {
                let message = message.map_err(|status| {
                    Error::new(ErrorKind::Network, format!("push stream failed: {}", status.message()))
                })?;
                let Some(PushRequest { message: Some(message) }) = message else {
                    return Err(Error::new(ErrorKind::Network, "the client ended the push before finishing"));
                };
                match message {
                    Incoming::Start(_) => {
                        return Err(Error::new(ErrorKind::InvalidArgument, "a push has one PushStart message"));
                    }
                    Incoming::Manifest(batch) => {
                        let entries = batch
                            .entries
                            .into_iter()
                            .map(entry_from_proto)
                            .collect::<Result<Vec<_>>>()?;
                        let batch_receiver = Arc::clone(receiver);
                        let first_index = batch.first_index;
                        // Bytes on data connections keep flowing while the
                        // manifest waits; bytes in this stream would not.
                        let hold_back = connections > 0 && chunk_input.is_none();
                        let mut accepted = tokio::task::spawn_blocking(move || {
                            if hold_back {
                                batch_receiver.wait_for_room();
                            }
                            batch_receiver.accept_batch(first_index, entries)
                        });
                        // While the batch waits for room, connections that
                        // arrive late still get readers, or the files on
                        // them could never free that room.
                        let indices = loop {
                            tokio::select! {
                                result = &mut accepted => break result.map_err(join_error)??,
                                connection = data.next_connection(), if data_open => match connection {
                                    Some(connection) => {
                                        connections += 1;
                                        readers.push(spawn_socket_reader(receiver, connection, &failed_input)?);
                                    }
                                    None => data_open = false,
                                },
                            }
                        };
                        send(responses, Outgoing::Need(NeedList { indices })).await?;
                    }
                    Incoming::ManifestEnd(_) => {
                        let receiver = Arc::clone(receiver);
                        tokio::task::spawn_blocking(move || receiver.end_manifest())
                            .await
                            .map_err(join_error)?;
                    }
                    Incoming::Data(chunk) => {
                        let input = chunk_input.get_or_insert_with(|| {
                            let (input, reader) = ChunkReader::channel();
                            let receiver = Arc::clone(receiver);
                            let failed = failed_input.clone();
                            readers.push(tokio::task::spawn_blocking(move || {
                                let result = receiver.receive(&mut FrameReader::Reader(Box::new(reader)));
                                report_failure(&result, &failed);
                                result
                            }));
                            input
                        });
                        let input = input.clone();
                        let frames = chunk.frames.to_vec();
                        // The channel is bounded, so a slow disk slows the
                        // client down instead of filling memory.
                        tokio::task::spawn_blocking(move || input.send(frames))
                            .await
                            .map_err(join_error)?
                            .map_err(|_| Error::new(ErrorKind::Transfer, "the data stream reader stopped"))?;
                    }
                    Incoming::Finish(finish) => break finish.data_connections as usize,
                }
            }
            connection = data.next_connection(), if data_open => match connection {
                Some(connection) => {
                    connections += 1;
                    readers.push(spawn_socket_reader(receiver, connection, &failed_input)?);
                }
                None => data_open = false,
            }
        }
    };

    // Every byte is on its way: collect the remaining connections, close the
    // fallback stream and wait for each reader to reach its end frame.
    if finish_connections > DATA_CONNECTIONS {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "the client reports {finish_connections} data connections, more than the {DATA_CONNECTIONS} granted"
            ),
        ));
    }
    while connections < finish_connections {
        let connection = tokio::time::timeout(DATA_WAIT, data.next_connection())
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Network,
                    "timed out waiting for the client's data connections",
                )
            })?;
        let Some(connection) = connection else { break };
        connections += 1;
        readers.push(spawn_socket_reader(receiver, connection, &failed_input)?);
    }
    drop(chunk_input);
    for reader in readers {
        reader.await.map_err(join_error)??;
    }
    let receiver = Arc::clone(receiver);
    tokio::task::spawn_blocking(move || receiver.finish())
        .await
        .map_err(join_error)
}

fn spawn_socket_reader(
    receiver: &Arc<Receiver>,
    connection: crate::grants::DataConnection,
    failed: &tokio::sync::mpsc::UnboundedSender<Error>,
) -> Result<JoinHandle<Result<()>>> {
    let stream = connection.into_blocking()?;
    let receiver = Arc::clone(receiver);
    let failed = failed.clone();
    Ok(tokio::task::spawn_blocking(move || {
        let result = receiver.receive(&mut stream.into_frame_reader());
        report_failure(&result, &failed);
        result
    }))
}

/// Passes a copy of a reader's error to the session loop, which ends the
/// session with it.
fn report_failure(result: &Result<()>, failed: &tokio::sync::mpsc::UnboundedSender<Error>) {
    if let Err(err) = result {
        // The loop has already ended when the channel is closed.
        let _ = failed.send(Error::new(err.kind(), err.message().to_string()));
    }
}

pub(crate) fn join_error(err: tokio::task::JoinError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("a transfer task failed: {err}"),
    )
}
