//! The Pull RPC: the daemon is the sending end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use blit_core::{Error, ErrorKind, Failure, Filter, Progress, Result};
use blit_proto::convert::{entry_to_proto, failures_to_proto, status_from_error};
use blit_proto::v2::pull_request::Message as Incoming;
use blit_proto::v2::pull_response::Message as Outgoing;
use blit_proto::v2::{
    DataChunk, ManifestBatch, ManifestEnd, PullRequest, PullResponse, TransferSummary,
};
use blit_transfer::chunks::ChunkWriter;
use blit_transfer::frame::FrameWriter;
use blit_transfer::manifest::{self, BATCH_BYTES, BATCH_ENTRIES, WalkOptions};
use blit_transfer::sender::Sender;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::auth::Identity;
use crate::grants::DEFAULT_TOKEN_TTL;
use crate::log_limit::PeerAddr;
use crate::modules::{self, ClientPath, Source};
use crate::push::{DATA_CONNECTIONS, join_error};
use crate::state::DaemonState;
use crate::tokens::Permission;

type Responses = mpsc::Sender<std::result::Result<PullResponse, Status>>;

/// Validates the start of a pull and runs the session in a task that
/// streams responses into `responses`.
pub(crate) async fn start(
    state: Arc<DaemonState>,
    peer: Option<SocketAddr>,
    identity: Identity,
    mut requests: Streaming<PullRequest>,
    responses: Responses,
) -> Result<()> {
    let start = match requests.message().await {
        Ok(Some(PullRequest {
            message: Some(Incoming::Start(start)),
        })) => start,
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a pull must begin with a PullStart message",
            ));
        }
        Err(status) => {
            return Err(Error::new(
                ErrorKind::Network,
                format!("pull stream failed: {status}"),
            ));
        }
    };
    // Checked before the lookup, so a token cannot probe other modules.
    identity.require(&start.module, Permission::Read)?;
    let module = state.module_for_peer(&start.module, peer)?.clone();
    let options = start.options.clone().unwrap_or_default();
    let path = ClientPath::parse(&module, &start.path)?;
    // The module's patterns apply at the pulled path's place in the module,
    // so the walk leaves out what they exclude.
    let filter = Filter::new(&options.exclude)?
        .nested_in(module.exclude.read_filter().clone(), path.as_path());
    let slot = state.acquire_slot(&module)?;
    let source = modules::open_source(&module, &path)?;

    let session = state.begin_session()?;
    let data = state.grants().register(session.id())?;
    let data_port = if options.force_grpc_data {
        0
    } else {
        state.data_addr().port()
    };
    let mut grant = data.issue_grant(DATA_CONNECTIONS, DEFAULT_TOKEN_TTL, data_port)?;
    let (walk_root, single) = match source {
        Source::Dir(dir) => (dir, None),
        Source::Single { dir, name } => {
            grant.single_file_name = Bytes::copy_from_slice(name.as_encoded_bytes());
            (dir, Some(name))
        }
    };
    let sender_root = rustix::io::dup(&walk_root).map_err(|err| {
        Error::new(
            ErrorKind::ResourceExhausted,
            format!("cannot duplicate a descriptor: {err}"),
        )
    })?;
    let progress = Progress::new();
    let sender = Arc::new(Sender::new(
        sender_root,
        single.clone(),
        Arc::clone(&progress),
        session.cancel_token().clone(),
    ));
    tracing::info!(
        session = session.id(),
        peer = %PeerAddr(peer),
        token = identity.name(),
        module = %module.name,
        path = %path.display(),
        mirror = options.mirror,
        "pull started"
    );
    send(&responses, Outgoing::Grant(grant)).await?;

    tokio::spawn(async move {
        let started = Instant::now();
        let mut data = data;
        let walker = {
            let sender = Arc::clone(&sender);
            let responses = responses.clone();
            let cancel = session.cancel_token().clone();
            let checksum = options.checksum;
            let progress = Arc::clone(&progress);
            tokio::task::spawn_blocking(move || {
                let result = walk(
                    &sender,
                    &walk_root,
                    single.as_deref(),
                    &filter,
                    checksum,
                    &progress,
                    &cancel,
                    &responses,
                );
                // Even a failed walk has sent its last batch.
                sender.manifest_complete();
                result
            })
        };
        let force_chunks = options.force_grpc_data;
        let result = run(&sender, &mut requests, &responses, &mut data, force_chunks).await;
        if result.is_err() {
            session.cancel_token().cancel();
            sender.close();
        }
        let walked = walker.await.map_err(join_error).and_then(|r| r);
        let outcome = result.and_then(|sent| walked.map(|failures| (sent, failures)));
        // The walk and every data connection have ended. The slot is freed
        // before the client learns the outcome, so that its next request
        // never finds the slot still taken.
        drop(slot);
        match outcome {
            Ok((_, failures)) => {
                let snapshot = progress.snapshot();
                tracing::info!(
                    session = session.id(),
                    peer = %PeerAddr(peer),
                    module = %module.name,
                    files = sender.files_sent(),
                    bytes = snapshot.bytes_done,
                    failed = failures.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "pull finished"
                );
                let summary = TransferSummary {
                    transferred: sender.files_sent(),
                    bytes: snapshot.bytes_done,
                    failed: failures.len() as u64,
                    failures: failures_to_proto(&failures),
                    ..TransferSummary::default()
                };
                let _ = send(&responses, Outgoing::Summary(summary)).await;
            }
            Err(err) => {
                tracing::warn!(
                    session = session.id(),
                    peer = %PeerAddr(peer),
                    module = %module.name,
                    error = %err,
                    seconds = started.elapsed().as_secs_f64(),
                    "pull failed"
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
        .send(Ok(PullResponse {
            message: Some(message),
        }))
        .await
        .map_err(|_| Error::new(ErrorKind::Network, "the client closed the pull session"))
}

fn blocking_send(responses: &Responses, message: Outgoing) -> Result<()> {
    responses
        .blocking_send(Ok(PullResponse {
            message: Some(message),
        }))
        .map_err(|_| Error::new(ErrorKind::Network, "the client closed the pull session"))
}

/// Streams the manifest; returns the entries that the walk skipped.
#[allow(clippy::too_many_arguments)]
fn walk(
    sender: &Sender,
    root: &std::os::fd::OwnedFd,
    single: Option<&std::ffi::OsStr>,
    filter: &Filter,
    checksum: bool,
    progress: &Progress,
    cancel: &blit_core::CancelToken,
    responses: &Responses,
) -> Result<Vec<Failure>> {
    let mut failures = Vec::new();
    let mut batch = Vec::with_capacity(BATCH_ENTRIES);
    let mut batch_bytes = 0usize;
    let mut next_index = 0u64;
    let mut flush = |batch: &mut Vec<blit_transfer::Entry>| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(batch);
        sender.batch_sent(next_index, &entries);
        let first_index = next_index;
        next_index += entries.len() as u64;
        blocking_send(
            responses,
            Outgoing::Manifest(ManifestBatch {
                first_index,
                entries: entries.iter().map(entry_to_proto).collect(),
            }),
        )
    };
    match single {
        Some(name) => batch.push(manifest::single_entry(root, name, checksum)?),
        None => {
            let options = WalkOptions { filter, checksum };
            manifest::walk(
                root,
                &options,
                progress,
                cancel,
                &mut |entry| {
                    batch_bytes += entry.batch_weight();
                    batch.push(entry);
                    if batch.len() >= BATCH_ENTRIES || batch_bytes >= BATCH_BYTES {
                        flush(&mut batch)?;
                        batch_bytes = 0;
                    }
                    Ok(())
                },
                &mut |failed| failures.push(failed),
            )?;
        }
    }
    flush(&mut batch)?;
    blocking_send(
        responses,
        Outgoing::ManifestEnd(ManifestEnd {
            entries: next_index,
            failures: failures_to_proto(&failures),
        }),
    )?;
    Ok(failures)
}

/// Handles need-lists, data connections and the fallback request until the
/// client's finish message, and waits for every writer to end.
async fn run(
    sender: &Arc<Sender>,
    requests: &mut Streaming<PullRequest>,
    responses: &Responses,
    data: &mut crate::grants::DataSession,
    force_chunks: bool,
) -> Result<()> {
    let mut writers: Vec<JoinHandle<Result<()>>> = Vec::new();
    let mut chunks_started = false;
    if force_chunks {
        writers.push(spawn_chunk_writer(sender, responses));
        chunks_started = true;
    }
    let mut data_open = true;
    loop {
        tokio::select! {
            message = requests.message() => {
                let message = message.map_err(|status| {
                    Error::new(ErrorKind::Network, format!("pull stream failed: {}", status.message()))
                })?;
                let Some(PullRequest { message: Some(message) }) = message else {
                    return Err(Error::new(ErrorKind::Network, "the client ended the pull before finishing"));
                };
                match message {
                    Incoming::Start(_) => {
                        return Err(Error::new(ErrorKind::InvalidArgument, "a pull has one PullStart message"));
                    }
                    Incoming::Need(need) => {
                        sender.need(&need.indices)?;
                    }
                    Incoming::DataFallback(_) => {
                        if !chunks_started {
                            tracing::info!("client cannot reach the data port; sending data over gRPC");
                            writers.push(spawn_chunk_writer(sender, responses));
                            chunks_started = true;
                        }
                    }
                    Incoming::Finish(_) => break,
                }
            }
            connection = data.next_connection(), if data_open => match connection {
                Some(connection) => {
                    let stream = connection.into_blocking()?;
                    let sender = Arc::clone(sender);
                    writers.push(tokio::task::spawn_blocking(move || {
                        stream.send_frames(|writer| sender.run_connection(writer))
                    }));
                }
                None => data_open = false,
            }
        }
    }
    for writer in writers {
        writer.await.map_err(join_error)??;
    }
    Ok(())
}

fn spawn_chunk_writer(sender: &Arc<Sender>, responses: &Responses) -> JoinHandle<Result<()>> {
    let sender = Arc::clone(sender);
    let responses = responses.clone();
    tokio::task::spawn_blocking(move || {
        let mut chunks = ChunkWriter::new(|chunk: Vec<u8>| {
            blocking_send(
                &responses,
                Outgoing::Data(DataChunk {
                    frames: chunk.into(),
                }),
            )
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::BrokenPipe, err.to_string()))
        });
        sender.run_connection(&mut FrameWriter::Writer(&mut chunks))?;
        std::io::Write::flush(&mut chunks)
            .map_err(|err| Error::new(ErrorKind::Network, format!("pull session failed: {err}")))
    })
}
