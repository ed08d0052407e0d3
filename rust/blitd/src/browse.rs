//! The List and Purge RPCs.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use blit_core::fsops::{self, Kind};
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
    peer: Option<SocketAddr>,
    request: ListRequest,
    responses: ListResponses,
) -> Result<()> {
    // Checked before the lookup, so a token cannot probe other modules.
    identity.require(&request.module, Permission::Read)?;
    let module = state.module_for_peer(&request.module, peer)?.clone();
    let path = ClientPath::parse(&module, &request.path)?;
    let slot = state.acquire_slot(&module)?;
    let source = modules::open_source(&module, &path)?;
    // The module's patterns apply at the listed path's place in the module.
    let filter = Filter::empty().nested_in(module.exclude.read_filter().clone(), path.as_path());
    tokio::task::spawn_blocking(move || {
        let result = stream_entries(source, &filter, request.recursive, &responses);
        // The listing counts against max_connections until here. The slot is
        // freed before the stream ends, so that the client's next request
        // never finds it still taken.
        drop(slot);
        if let Err(err) = result {
            tracing::warn!(module = %module.name, path = %path.display(), error = %err, "list failed");
            let _ = responses.blocking_send(Err(status_from_error(&err)));
        }
    });
    Ok(())
}

fn stream_entries(
    source: Source,
    filter: &Filter,
    recursive: bool,
    responses: &ListResponses,
) -> Result<()> {
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
            let options = WalkOptions {
                filter,
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
///
/// A path that the module's `exclude` patterns hide is reported as not
/// found. Inside a purged directory, excluded entries and the directories
/// that lead to them are kept, and the purge still succeeds.
pub(crate) fn purge(
    state: &Arc<DaemonState>,
    identity: &Identity,
    peer: Option<SocketAddr>,
    request: &PurgeRequest,
) -> Result<u64> {
    identity.require(&request.module, Permission::Delete)?;
    let module = state.module_for_peer(&request.module, peer)?.clone();
    modules::check_writable(&module, "purge")?;
    if request.paths.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "purge needs at least one path",
        ));
    }
    let _slot = state.acquire_slot(&module)?;
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
        modules::check_readable(&module, &path)?;
        let parent = paths::open_dir(&root, parents)
            .map_err(|err| modules::map_open_error(&module, &path, err))?;
        let meta = match fsops::stat_at(&parent, last) {
            Ok(meta) => meta,
            Err(err) => return Err(modules::map_open_error(&module, &path, err)),
        };
        if meta.kind == Kind::Dir {
            modules::check_not_excluded_dir(&module, &path)?;
        }
        let removed = if module.exclude.is_empty() {
            // remove_tree_at never follows symlinks: a link is removed itself.
            fsops::remove_tree_at(&parent, last)
        } else {
            remove_tree_keeping(&parent, last, path.as_path(), module.exclude.read_filter())
                .map(|(removed, _kept)| removed)
        };
        deleted += removed.map_err(|err| {
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

/// Deletes `name` in `dir` as [`fsops::remove_tree_at`] does, but keeps the
/// entries that `filter` excludes at their module path (`path` is that of
/// `name`) and the directories that contain them. Returns the number of
/// entries removed and whether anything was kept.
fn remove_tree_keeping(
    dir: &OwnedFd,
    name: &OsStr,
    path: &Path,
    filter: &Filter,
) -> std::io::Result<(u64, bool)> {
    let meta = fsops::stat_at(dir, name)?;
    let is_dir = meta.kind == Kind::Dir;
    if filter.is_excluded(path, is_dir) {
        return Ok((0, true));
    }
    if !is_dir {
        fsops::unlink_at(dir, name)?;
        return Ok((1, false));
    }
    let child = fsops::open_dir_at(dir, name)?;
    let mut removed = 0;
    let mut kept = false;
    for entry in fsops::read_dir_names(&child)? {
        let (inner_removed, inner_kept) =
            remove_tree_keeping(&child, &entry, &path.join(&entry), filter)?;
        removed += inner_removed;
        kept |= inner_kept;
    }
    drop(child);
    if kept {
        return Ok((removed, true));
    }
    fsops::rmdir_at(dir, name)?;
    Ok((removed + 1, false))
}
