//! Push: walk a local tree, stream its manifest to the daemon, and send the
//! bytes that the daemon's need-lists ask for.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use blit_core::fsops;
use blit_core::{CancelToken, Error, ErrorKind, Failure, Filter, Phase, Progress, Result, Summary};
use blit_proto::convert::{entry_to_proto, summary_from_proto};
use blit_proto::v2;
use blit_proto::v2::push_request::Message as Outgoing;
use blit_proto::v2::push_response::Message as Incoming;
use blit_transfer::chunks::ChunkWriter;
use blit_transfer::frame::FrameWriter;
use blit_transfer::manifest::{self, BATCH_BYTES, BATCH_ENTRIES, WalkOptions};
use blit_transfer::sender::Sender;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::cancel_watch::{AbortableStream, CancelWatch};
use crate::data_stream::DataStream;
use crate::{Client, TransferOptions, source_chain};

/// Pushes the local `src` to `dest` inside `module`. A directory's contents
/// fill `dest`; a single file goes into `dest` when that is a directory or
/// ends in `/`, else `dest` is its new name.
///
/// # Errors
///
/// Returns an error when the push cannot start or the session breaks;
/// entries that fail are counted in the summary instead.
pub fn push(
    client: &Client,
    src: &Path,
    module: &str,
    dest: &[u8],
    options: &TransferOptions,
    progress: &Arc<Progress>,
    cancel: &CancelToken,
) -> Result<Summary> {
    let started = Instant::now();
    let filter = Filter::new(&options.exclude)?;
    let (root, single) = open_source(src)?;
    let (requests, request_stream) = mpsc::channel::<v2::PushRequest>(crate::MESSAGE_QUEUE);
    let send = |message: Outgoing| {
        requests
            .blocking_send(v2::PushRequest {
                message: Some(message),
            })
            .map_err(|_| Error::new(ErrorKind::Network, "the push session closed"))
    };
    send(Outgoing::Start(v2::PushStart {
        module: module.to_string(),
        path: dest.to_vec().into(),
        options: Some(options.to_proto()),
        source_name: single
            .as_ref()
            .map(|name| name.as_encoded_bytes().to_vec())
            .unwrap_or_default()
            .into(),
    }))?;

    let mut rpc = client.rpc();
    // Cancellation ends the request stream, which the daemon reads as an
    // abandoned session.
    let (abort, aborted) = tokio::sync::oneshot::channel::<()>();
    let request_stream = AbortableStream::new(ReceiverStream::new(request_stream), aborted);
    let request = client.request(request_stream);
    let mut responses = client
        .runtime
        .block_on(rpc.push(request))
        .map_err(|status| client.error(&status))?
        .into_inner();
    let next = |responses: &mut tonic::Streaming<v2::PushResponse>| {
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
                "blitd did not start the push session with a data grant",
            ));
        }
    };
    tracing::debug!(session = %grant.session_id, tokens = grant.tokens.len(), "push session started");
    let connections = open_data_connections(client, &grant, options);
    let sockets = connections
        .iter()
        .filter_map(|stream| stream.socket_handle().ok())
        .collect();
    let _watch = CancelWatch::start(cancel.clone(), sockets, Some(abort));

    let walk_root = rustix::io::dup(&root).map_err(|err| {
        Error::new(
            ErrorKind::ResourceExhausted,
            format!("cannot duplicate a descriptor: {err}"),
        )
    })?;
    let sender = Arc::new(Sender::new(
        root,
        single.clone(),
        Arc::clone(progress),
        cancel.clone(),
    ));
    let walk_failures = Arc::new(Mutex::new(Vec::new()));

    std::thread::scope(|scope| -> Result<Summary> {
        // The walk streams the manifest while need-lists come back below.
        let walker = scope.spawn(|| -> Result<()> {
            let result = send_manifest(
                &sender,
                &walk_root,
                single.as_deref(),
                &filter,
                options,
                progress,
                cancel,
                &send,
                &walk_failures,
            );
            // Even a failed walk has sent its last batch.
            sender.manifest_complete();
            progress.set_phase(Phase::Transferring);
            result
        });
        let data = scope.spawn(|| send_data(connections, &sender, cancel, &send));

        let mut summary = None;
        let mut failure = None;
        loop {
            let message = match next(&mut responses) {
                Ok(Some(response)) => response.message,
                Ok(None) => break,
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            };
            match message {
                Some(Incoming::Need(need)) => {
                    if let Err(err) = sender.need(&need.indices) {
                        failure = Some(err);
                        break;
                    }
                }
                Some(Incoming::Summary(done)) => {
                    summary = Some(done);
                    break;
                }
                Some(Incoming::Grant(_)) | None => {}
            }
        }
        if failure.is_some() && cancel.is_cancelled() {
            // The caller cancelled; the broken session is the consequence.
            failure = Some(Error::cancelled());
        }
        if failure.is_some() || summary.is_none() {
            // Unblock the walker and the data connections.
            cancel.cancel();
            sender.close();
        }
        let walked = walker
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Internal, "the walk panicked")));
        let sent = data.join().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Internal,
                "a data connection panicked",
            ))
        });
        if let Some(err) = failure {
            return Err(err);
        }
        walked?;
        sent?;
        let summary = summary.ok_or_else(|| {
            Error::new(
                ErrorKind::Network,
                "blitd closed the push session without a summary",
            )
        })?;
        let mut summary = summary_from_proto(summary, started.elapsed(), options.dry_run);
        let walk_failures =
            std::mem::take(&mut *walk_failures.lock().unwrap_or_else(|p| p.into_inner()));
        summary.failed += walk_failures.len() as u64;
        summary.failures.extend(walk_failures);
        summary.failures.sort_by(|a, b| a.path.cmp(&b.path));
        progress.set_phase(Phase::Done);
        Ok(summary)
    })
}

/// Opens the source: a directory, or a file's parent and the file's name.
pub(crate) fn open_source(src: &Path) -> Result<(OwnedFd, Option<OsString>)> {
    let meta = std::fs::metadata(src).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::NotFound,
            format!("source {} not found; check the path", src.display()),
        )
        .with_path(src),
        _ => Error::io("cannot read source", src, err),
    })?;
    if meta.is_dir() {
        let root =
            fsops::open_dir_path(src).map_err(|err| Error::io("cannot open source", src, err))?;
        return Ok((root, None));
    }
    let name = src.file_name().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("{} does not name a file", src.display()),
        )
    })?;
    let parent = match src.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let root = fsops::open_dir_path(parent)
        .map_err(|err| Error::io("cannot open source directory", parent, err))?;
    Ok((root, Some(name.to_os_string())))
}

#[allow(clippy::too_many_arguments)]
fn send_manifest(
    sender: &Sender,
    root: &OwnedFd,
    single: Option<&std::ffi::OsStr>,
    filter: &Filter,
    options: &TransferOptions,
    progress: &Progress,
    cancel: &CancelToken,
    send: &dyn Fn(Outgoing) -> Result<()>,
    walk_failures: &Mutex<Vec<Failure>>,
) -> Result<()> {
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
        send(Outgoing::Manifest(v2::ManifestBatch {
            first_index,
            entries: entries.iter().map(entry_to_proto).collect(),
        }))
    };

    if let Some(name) = single {
        let entry = manifest::single_entry(root, name, options.checksum)?;
        progress.add_entries_total(1);
        batch.push(entry);
    } else {
        let walk_options = WalkOptions {
            filter,
            checksum: options.checksum,
        };
        manifest::walk(
            root,
            &walk_options,
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
            &mut |failed| {
                walk_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(failed)
            },
        )?;
    }
    flush(&mut batch)?;
    send(Outgoing::ManifestEnd(v2::ManifestEnd {
        entries: next_index,
        failures: Vec::new(),
    }))
}

/// Sends file data over the data plane, or inside the gRPC stream when the
/// data port is unreachable or not wanted, then sends the finish message.
fn send_data(
    connections: Vec<DataStream>,
    sender: &Sender,
    cancel: &CancelToken,
    send: &dyn Fn(Outgoing) -> Result<()>,
) -> Result<()> {
    let used = connections.len() as u32;
    if connections.is_empty() {
        let mut chunks = ChunkWriter::new(|chunk: Vec<u8>| {
            if cancel.is_cancelled() {
                return Err(std::io::Error::from(std::io::ErrorKind::Interrupted));
            }
            send(Outgoing::Data(v2::DataChunk {
                frames: chunk.into(),
            }))
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::BrokenPipe, err.to_string()))
        });
        sender.run_connection(&mut FrameWriter::Writer(&mut chunks))?;
        std::io::Write::flush(&mut chunks)
            .map_err(|err| Error::new(ErrorKind::Network, format!("push session failed: {err}")))?;
    } else {
        std::thread::scope(|scope| -> Result<()> {
            let workers: Vec<_> = connections
                .into_iter()
                .map(|stream| {
                    scope.spawn(move || stream.send_frames(|writer| sender.run_connection(writer)))
                })
                .collect();
            for worker in workers {
                worker.join().unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Internal,
                        "a data connection panicked",
                    ))
                })?;
            }
            Ok(())
        })?;
    }
    send(Outgoing::Finish(v2::Finish {
        data_connections: used,
    }))
}

/// Opens the data connections, or returns none when the transfer is to
/// carry its bytes inside the gRPC stream: on request, or with a warning
/// when the data port cannot be reached.
fn open_data_connections(
    client: &Client,
    grant: &v2::DataGrant,
    options: &TransferOptions,
) -> Vec<DataStream> {
    if options.force_grpc_data || grant.data_port == 0 {
        return Vec::new();
    }
    match connect_data(client, grant) {
        Ok(streams) => streams,
        Err(reason) => {
            tracing::warn!(
                "cannot reach the data port {} of blitd at {}: {reason}; sending data over the \
                 control connection instead, which is slower",
                grant.data_port,
                client.address.host
            );
            Vec::new()
        }
    }
}

/// Opens one data connection per token and presents each token, over TLS
/// when the client's address is `blits://`.
pub(crate) fn connect_data(
    client: &Client,
    grant: &v2::DataGrant,
) -> std::result::Result<Vec<DataStream>, String> {
    let port = u16::try_from(grant.data_port)
        .map_err(|_| format!("invalid data port {}", grant.data_port))?;
    let addresses: Vec<SocketAddr> = (client.address.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|err| err.to_string())?
        .collect();
    let tls = client.tls.as_deref();
    let mut tokens = grant.tokens.iter();
    let first = tokens
        .next()
        .ok_or_else(|| "the daemon granted no data connections".to_string())?;

    // The first connection picks the address (IPv6 or IPv4) that works.
    let mut last_error = format!("{} has no address", client.address.host);
    let mut opened = None;
    for address in addresses {
        match DataStream::open(address, first, tls) {
            Ok(stream) => {
                opened = Some((address, stream));
                break;
            }
            Err(err) => last_error = source_chain(&err),
        }
    }
    let (address, stream) = opened.ok_or(last_error)?;

    // Later connections are a bonus: the transfer runs on those that open.
    let mut streams = vec![stream];
    for token in tokens {
        match DataStream::open(address, token, tls) {
            Ok(stream) => streams.push(stream),
            Err(err) => {
                tracing::debug!(%address, error = %source_chain(&err), "extra data connection failed; using fewer");
                break;
            }
        }
    }
    tracing::debug!(
        %address,
        connections = streams.len(),
        tls = tls.is_some(),
        "data connections opened"
    );
    Ok(streams)
}
