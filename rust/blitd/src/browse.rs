//! The List and Purge RPCs.

use std::sync::Arc;

use blit_core::fsops;
use blit_core::{CancelToken, Error, ErrorKind, Filter, Progress, Result};
use blit_proto::convert::{entry_to_proto, status_from_error};
use blit_proto::v2::{ListRequest, ListResponse, PurgeRequest};
use blit_transfer::manifest::{self, WalkOptions};
use blit_transfer::paths;
use tokio::sync::mpsc;
use tonic::Status;

use crate::auth::Identity;
use crate::modules::{self, ClientPath, Source};
use crate::state::DaemonState;
use crate::tokens::Permission;

/// Entries per List response message.
const LIST_BATCH: usize = 1000;

type ListResponses = mpsc::Sender<std::result::Result<ListResponse, Status>>;

/// Validates a List request and streams its entries into `responses` from a
/// blocking task.
pub(crate) fn list(
    state: &DaemonState,
    identity: &Identity,
    request: ListRequest,
    responses: ListResponses,
) -> Result<()> {
    // Checked before the lookup, so a token cannot probe other modules.
    identity.require(&request.module, Permission::Read)?;
    let module = state.module(&request.module)?.clone();
    let path = ClientPath::parse(&module, &request.path)?;
    let source = modules::open_source(&module, &path)?;
    tokio::task::spawn_blocking(move || {
        let result = stream_entries(source, request.recursive, &responses);
        if let Err(err) = result {
            tracing::warn!(module = %module.name, path = %path.display(), error = %err, "list failed");
            let _ = responses.blocking_send(Err(status_from_error(&err)));
        }
    });
    Ok(())
}

fn stream_entries(source: Source, recursive: bool, responses: &ListResponses) -> Result<()> {
    let closed = || Error::new(ErrorKind::Network, "the client closed the list stream");
    let mut batch = Vec::with_capacity(LIST_BATCH);
    let flush = |batch: &mut Vec<blit_proto::v2::Entry>| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(batch);
        responses
            .blocking_send(Ok(ListResponse { entries }))
            .map_err(|_| closed())
    };
    match source {
        Source::Single { dir, name } => {
            let mut entry = manifest::single_entry(&dir, &name, false)?;
            entry.path = name.as_encoded_bytes().to_vec();
            batch.push(entry_to_proto(&entry));
        }
        Source::Dir(dir) => {
            let filter = Filter::empty();
            let options = WalkOptions {
                filter: &filter,
                checksum: false,
            };
            let mut emit = |entry: blit_transfer::Entry| -> Result<()> {
                // A flat listing stops after the first group, the directory's
                // own entries.
                if !recursive && entry.path.contains(&b'/') {
                    return Err(Error::new(ErrorKind::Cancelled, "listing complete"));
                }
                batch.push(entry_to_proto(&entry));
                if batch.len() >= LIST_BATCH {
                    flush(&mut batch)?;
                }
                Ok(())
            };
            let walked = manifest::walk(
                &dir,
                &options,
                &Progress::new(),
                &CancelToken::new(),
                &mut emit,
                &mut |failed| {
                    tracing::debug!(path = %failed.path.display(), message = %failed.message, "entry left out of a listing");
                },
            );
            match walked {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::Cancelled && !recursive => {}
                Err(err) => return Err(err),
            }
        }
    }
    flush(&mut batch)
}

/// Deletes the paths of a Purge request and returns the number of entries
/// removed.
pub(crate) fn purge(
    state: &Arc<DaemonState>,
    identity: &Identity,
    request: &PurgeRequest,
) -> Result<u64> {
    identity.require(&request.module, Permission::Delete)?;
    let module = state.module(&request.module)?.clone();
    modules::check_writable(&module, "purge")?;
    if request.paths.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "purge needs at least one path",
        ));
    }
    let root = modules::open_root(&module)?;
    let mut deleted = 0;
    for raw in &request.paths {
        let path = ClientPath::parse(&module, raw)?;
        let parts = path.components();
        let Some((last, parents)) = parts.split_last() else {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "purge never deletes the root of module {}; name paths inside it",
                    module.name
                ),
            ));
        };
        let parent = paths::open_dir(&root, parents)
            .map_err(|err| modules::map_open_error(&module, &path, err))?;
        if let Err(err) = fsops::stat_at(&parent, last) {
            return Err(modules::map_open_error(&module, &path, err));
        }
        // remove_tree_at never follows symlinks: a link is removed itself.
        deleted += fsops::remove_tree_at(&parent, last).map_err(|err| {
            Error::new(
                ErrorKind::from_io(&err),
                format!(
                    "cannot purge {} in module {}: {err}",
                    path.display(),
                    module.name
                ),
            )
        })?;
        tracing::info!(module = %module.name, path = %path.display(), "purged");
    }
    Ok(deleted)
}
