//! Pull: receive a module's manifest, ask for the files that differ, and
//! write the bytes that the daemon sends into a local tree.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use blit_core::fsops;
use blit_core::{CancelToken, Error, ErrorKind, Filter, Phase, Progress, Result, Summary};
use blit_proto::convert::{entry_from_proto, failures_from_proto};
use blit_proto::v2;
use blit_proto::v2::pull_request::Message as Outgoing;
use blit_proto::v2::pull_response::Message as Incoming;
use blit_transfer::chunks::ChunkReader;
use blit_transfer::frame::FrameReader;
use blit_transfer::receiver::{Receiver, ReceiverOptions, Target};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cancel_watch::{AbortableStream, CancelWatch};
use crate::data_stream::DataStream;
use crate::push::connect_data;
use crate::{Client, TransferOptions};

/// Pulls `path` inside `module` into the local `dst`. A directory's
/// contents fill `dst`, which is created if missing; a single file goes
/// into `dst` when that is a directory or ends in `/`, else `dst` is its
/// new name.
///
/// # Errors
///
/// Returns an error when the pull cannot start or the session breaks;
/// entries that fail are counted in the summary instead.
pub fn pull(
    client: &Client,
    module: &str,
    path: &[u8],
    dst: &Path,
    options: &TransferOptions,
    progress: &Arc<Progress>,
    cancel: &CancelToken,
) -> Result<Summary> {
    let started = Instant::now();
    let filter = Filter::new(&options.exclude)?;
    let (requests, request_stream) = mpsc::channel::<v2::PullRequest>(crate::MESSAGE_QUEUE);
    let send = |message: Outgoing| {
        requests
            .blocking_send(v2::PullRequest {
                message: Some(message),
            })
            .map_err(|_| Error::new(ErrorKind::Network, "the pull session closed"))
    };
    send(Outgoing::Start(v2::PullStart {
        module: module.to_string(),
        path: path.to_vec().into(),
        options: Some(options.to_proto()),
    }))?;

    let mut rpc = client.rpc();
    // Cancellation ends the request stream, which the daemon reads as an
    // abandoned session.
    let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
    let request = client.request(AbortableStream::new(
        ReceiverStream::new(request_stream),
        aborted,
    ));
    let mut responses = client
        .runtime
        .block_on(rpc.pull(request))
        .map_err(|status| client.error(&status))?
        .into_inner();
    let next = |responses: &mut tonic::Streaming<v2::PullResponse>| {
        client
            .runtime
            .block_on(responses.message())
            .map_err(|status| client.error(&status))
    };
    let grant = match next(&mut responses)?.and_then(|r| r.message) {
        Some(Incoming::Grant(grant)) => grant,
        _ => {
            return Err(Error::new(
                ErrorKind::Internal,
                "blitd did not start the pull session with a data grant",
            ));
        }
    };

    let single = match grant.single_file_name.as_ref() {
        [] => None,
        // The name comes from the daemon; one plain component only, so it
        // cannot point outside the destination.
        name if is_single_component(name) => Some(OsStr::from_bytes(name).to_os_string()),
        name => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "blitd sent an invalid file name {:?} for the pulled file",
                    String::from_utf8_lossy(name)
                ),
            ));
        }
    };
    let (root, target) = open_destination(dst, single, options.dry_run)?;
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
        Arc::clone(progress),
        cancel.clone(),
    ));

    // Data arrives on data-plane connections, or as chunks in this stream.
    let mut connections = Vec::new();
    if !options.force_grpc_data && grant.data_port != 0 {
        match connect_data(client, &grant) {
            Ok(streams) => connections = streams,
            Err(reason) => {
                tracing::warn!(
                    "cannot reach the data port {} of blitd at {}: {reason}; receiving data over \
                     the control connection instead, which is slower",
                    grant.data_port,
                    client.address.host
                );
                send(Outgoing::DataFallback(v2::DataFallback {}))?;
            }
        }
    }
    let used = connections.len() as u32;
    let sockets = connections
        .iter()
        .filter_map(|stream| stream.socket_handle().ok())
        .collect();
    let _watch = CancelWatch::start(cancel.clone(), sockets, Some(abort));
    let (chunk_input, chunk_reader) = ChunkReader::channel();
    let worker_count = connections.len().max(1);
    let (finished_input, finished) = tokio::sync::watch::channel(0usize);

    std::thread::scope(|scope| -> Result<Summary> {
        let mut workers = Vec::new();
        let mut readers: Vec<FrameReader> = connections
            .into_iter()
            .map(DataStream::into_frame_reader)
            .collect();
        if readers.is_empty() {
            readers.push(FrameReader::Reader(Box::new(chunk_reader)));
        } else {
            drop(chunk_reader);
        }
        for mut reader in readers {
            let receiver = &receiver;
            let finished_input = &finished_input;
            workers.push(scope.spawn(move || {
                let result = receiver.receive(&mut reader);
                finished_input.send_modify(|count| *count += 1);
                result
            }));
        }

        let pumped = client.runtime.block_on(pump_responses(
            client,
            &mut responses,
            &requests,
            &receiver,
            chunk_input,
            finished,
            worker_count,
            used > 0,
            progress,
            cancel,
        ));
        if pumped.is_err() {
            cancel.cancel();
        }
        let mut failure = pumped.err();
        for worker in workers {
            let received = worker.join().unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Internal,
                    "a data connection panicked",
                ))
            });
            if let (Err(err), None) = (received, &failure) {
                failure = Some(err);
            }
        }
        if let Some(err) = failure {
            return Err(err);
        }

        send(Outgoing::Finish(v2::Finish {
            data_connections: used,
        }))?;
        while let Some(response) = next(&mut responses)? {
            if matches!(response.message, Some(Incoming::Summary(_))) {
                break;
            }
        }
        let mut summary = receiver.finish();
        summary.elapsed = started.elapsed();
        progress.set_phase(Phase::Done);
        Ok(summary)
    })
}

/// Completes when `cancel` fires.
async fn cancelled(cancel: &CancelToken) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// Handles the daemon's messages until the manifest has ended and every
/// data reader has reached its end frame. It applies manifest batches,
/// sends a need-list for each, and feeds fallback data chunks to the
/// reader. With `data_connections`, a batch waits while the receiver has
/// many files pending.
#[allow(clippy::too_many_arguments)]
async fn pump_responses(
    client: &Client,
    responses: &mut tonic::Streaming<v2::PullResponse>,
    requests: &mpsc::Sender<v2::PullRequest>,
    receiver: &Receiver,
    chunk_input: crossbeam_channel::Sender<Vec<u8>>,
    mut finished: tokio::sync::watch::Receiver<usize>,
    worker_count: usize,
    data_connections: bool,
    progress: &Progress,
    cancel: &CancelToken,
) -> Result<()> {
    let closed = || Error::new(ErrorKind::Network, "the pull session closed");
    let mut manifest_ended = false;
    loop {
        tokio::select! {
            message = responses.message() => {
                let message = message.map_err(|status| client.error(&status))?;
                let Some(message) = message else {
                    return Err(Error::new(ErrorKind::Network, "blitd closed the pull session early"));
                };
                match message.message {
                    Some(Incoming::Manifest(batch)) => {
                        // Bytes on data connections keep flowing while the
                        // manifest waits; bytes in this stream would not.
                        if data_connections {
                            receiver.wait_for_room();
                        }
                        let indices = accept(receiver, batch)?;
                        let need = Outgoing::Need(v2::NeedList { indices });
                        requests
                            .send(v2::PullRequest { message: Some(need) })
                            .await
                            .map_err(|_| closed())?;
                    }
                    Some(Incoming::ManifestEnd(end)) => {
                        for failed in failures_from_proto(end.failures) {
                            receiver.add_failure(failed);
                        }
                        receiver.end_manifest();
                        progress.set_phase(Phase::Transferring);
                        manifest_ended = true;
                    }
                    Some(Incoming::Data(chunk)) => {
                        // The reader stops taking chunks only when it failed,
                        // and its error is reported when it is joined.
                        let _ = chunk_input.send(chunk.frames.to_vec());
                    }
                    Some(Incoming::Summary(_)) | Some(Incoming::Grant(_)) | None => {}
                }
            }
            _ = finished.wait_for(|count| *count >= worker_count), if manifest_ended => {
                return Ok(());
            }
            () = cancelled(cancel) => return Err(Error::cancelled()),
        }
    }
}

fn is_single_component(name: &[u8]) -> bool {
    blit_transfer::paths::components(name).is_ok_and(|parts| parts.len() == 1)
}

fn accept(receiver: &Receiver, batch: v2::ManifestBatch) -> Result<Vec<u64>> {
    let entries = batch
        .entries
        .into_iter()
        .map(entry_from_proto)
        .collect::<Result<Vec<_>>>()?;
    receiver.accept_batch(batch.first_index, entries)
}

/// Opens the local destination of a pull, creating a missing directory
/// destination unless this is a dry run.
fn open_destination(
    dst: &Path,
    single: Option<OsString>,
    dry_run: bool,
) -> Result<(Option<std::os::fd::OwnedFd>, Target)> {
    match single {
        None => {
            if !dst.exists() {
                if dry_run {
                    return Ok((None, Target::Dir));
                }
                std::fs::create_dir_all(dst)
                    .map_err(|err| Error::io("cannot create destination", dst, err))?;
            }
            let root = fsops::open_dir_path(dst)
                .map_err(|err| Error::io("cannot open destination", dst, err))?;
            Ok((Some(root), Target::Dir))
        }
        Some(name) => {
            let into_dir = dst.is_dir() || dst.as_os_str().as_bytes().ends_with(b"/");
            let (dir, file_name): (PathBuf, OsString) = if into_dir {
                (dst.to_path_buf(), name)
            } else {
                let file_name = dst.file_name().ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidArgument,
                        format!("{} does not name a file", dst.display()),
                    )
                })?;
                let parent = match dst.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                (parent, file_name.to_os_string())
            };
            let root = fsops::open_dir_path(&dir).map_err(|err| {
                if err.kind() == std::io::ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "destination directory {} not found; create it first",
                            dir.display()
                        ),
                    )
                } else {
                    Error::io("cannot open destination directory", &dir, err)
                }
            })?;
            Ok((Some(root), Target::File(file_name)))
        }
    }
}
