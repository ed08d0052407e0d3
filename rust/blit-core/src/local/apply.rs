//! The apply phase: carry out a plan, one directory per task and the files
//! of each directory in parallel.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::plan::{Deletion, DirPlan, DirState, Item, ItemAction};
use super::{Context, join_rel};
use crate::fsops::{self, Kind, Meta, TempFile};

/// Applies the plan of a directory transfer to the open destination root.
pub(super) fn apply_root(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    dst_dir: &OwnedFd,
    root: &DirPlan,
) {
    apply_contents(context, src_dir, dst_dir, root);
    if (root.set_meta || root.changes_own_entries()) && !context.cancel.is_cancelled() {
        if let Err(err) = fsops::set_dir_meta(dst_dir, &root.meta) {
            context.fail(
                Path::new("."),
                format!("cannot set directory metadata: {err}"),
            );
        }
    }
}

/// Applies the single item of a one-file transfer, whose source name may
/// differ from its destination name.
pub(super) fn apply_items_from(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    src_name: &OsStr,
    dst_dir: &OwnedFd,
    root: &DirPlan,
) {
    remove_stale_temps(dst_dir, root);
    for item in &root.items {
        apply_item(context, src_dir, src_name, dst_dir, item, Path::new(""));
    }
    if context.options.fsync && !root.items.is_empty() {
        fsync_dir(context, dst_dir, Path::new("."));
    }
}

fn remove_stale_temps(dst_dir: &OwnedFd, plan: &DirPlan) {
    for name in &plan.stale_temps {
        match fsops::unlink_at(dst_dir, name) {
            Ok(()) => tracing::debug!(
                path = %join_rel(&plan.rel, name).display(),
                "removed temporary file of an interrupted run"
            ),
            Err(err) => tracing::warn!(
                path = %join_rel(&plan.rel, name).display(),
                error = %err,
                "cannot remove temporary file of an interrupted run"
            ),
        }
    }
}

fn apply_contents(context: &Context<'_>, src_dir: &OwnedFd, dst_dir: &OwnedFd, plan: &DirPlan) {
    remove_stale_temps(dst_dir, plan);
    for deletion in &plan.deletions {
        apply_deletion(context, dst_dir, deletion, &plan.rel);
    }

    rayon::join(
        || {
            plan.items.par_iter().for_each(|item| {
                apply_item(context, src_dir, &item.name, dst_dir, item, &plan.rel);
            })
        },
        || {
            plan.children
                .par_iter()
                .for_each(|child| apply_subdir(context, src_dir, dst_dir, child))
        },
    );

    if context.options.fsync && !context.cancel.is_cancelled() {
        fsync_dir(context, dst_dir, &plan.rel);
    }
}

fn fsync_dir(context: &Context<'_>, dir: &OwnedFd, rel: &Path) {
    if let Err(err) = fsops::fsync_dir(dir) {
        context.fail(rel, format!("cannot fsync directory: {err}"));
    }
}

/// Creates or opens one destination subdirectory, fills it, then sets its
/// metadata, which writing into it would otherwise change again.
fn apply_subdir(context: &Context<'_>, src_parent: &OwnedFd, dst_parent: &OwnedFd, plan: &DirPlan) {
    if context.cancel.is_cancelled() {
        return;
    }
    let src_dir = match fsops::open_dir_at(src_parent, &plan.name) {
        Ok(fd) => fd,
        Err(err) => {
            context.fail(&plan.rel, format!("cannot open source directory: {err}"));
            return;
        }
    };

    let created = match plan.state {
        DirState::Existing => Ok(false),
        DirState::Missing => fsops::mkdir_at(dst_parent, &plan.name).map(|()| true),
        DirState::ReplaceEntry => fsops::unlink_at(dst_parent, &plan.name)
            .and_then(|()| fsops::mkdir_at(dst_parent, &plan.name))
            .map(|()| true),
    };
    let created = match created {
        Ok(created) => created,
        Err(err) => {
            context.fail(&plan.rel, format!("cannot create directory: {err}"));
            return;
        }
    };
    // O_NOFOLLOW: if something swapped the directory for a symlink since the
    // scan, this fails instead of writing through it.
    let dst_dir = match fsops::open_dir_at(dst_parent, &plan.name) {
        Ok(fd) => fd,
        Err(err) => {
            context.fail(
                &plan.rel,
                format!("cannot open destination directory: {err}"),
            );
            return;
        }
    };
    if created {
        context.count_transferred(0);
    }

    apply_contents(context, &src_dir, &dst_dir, plan);

    // Creating, renaming or deleting entries inside the directory changed
    // its mtime, so it is set again even when it matched at scan time.
    let restore = plan.set_meta || plan.changes_own_entries();
    if restore && !context.cancel.is_cancelled() {
        match fsops::set_dir_meta(&dst_dir, &plan.meta) {
            Ok(()) if plan.set_meta && !created => context.count_transferred(0),
            Ok(()) => {}
            Err(err) => context.fail(&plan.rel, format!("cannot set directory metadata: {err}")),
        }
    }
}

fn apply_item(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    src_name: &OsStr,
    dst_dir: &OwnedFd,
    item: &Item,
    rel: &Path,
) {
    if context.cancel.is_cancelled() {
        return;
    }
    let path = join_rel(rel, &item.name);
    context.progress.set_current(&path);

    let result = match &item.action {
        ItemAction::CopyFile { replace_dir } => copy_file(
            context,
            src_dir,
            src_name,
            dst_dir,
            &item.name,
            *replace_dir,
        ),
        ItemAction::Symlink {
            target,
            replace_dir,
        } => write_symlink(dst_dir, &item.name, target, &item.meta, *replace_dir).map(|()| 0),
        ItemAction::Metadata => fsops::set_meta_at(dst_dir, &item.name, &item.meta)
            .map(|()| 0)
            .map_err(|err| format!("cannot set metadata: {err}")),
    };
    match result {
        Ok(bytes) => context.count_transferred(bytes),
        // A cancelled copy has removed its temporary file; it is not a
        // failure of the entry.
        Err(_) if context.cancel.is_cancelled() => {}
        Err(message) => context.fail(&path, message),
    }
}

/// Writes one file under a temporary name and renames it into place.
/// Returns the bytes written.
fn copy_file(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    src_name: &OsStr,
    dst_dir: &OwnedFd,
    dst_name: &OsStr,
    replace_dir: bool,
) -> Result<u64, String> {
    let src = fsops::open_file_at(src_dir, src_name)
        .map_err(|err| format!("cannot open source file: {err}"))?;
    let stat = rustix::fs::fstat(&src).map_err(|err| format!("cannot read source file: {err}"))?;
    // The scan's metadata may be stale; the mode and mtime of what is
    // actually copied are the ones preserved.
    let meta = Meta::from_stat(&stat);
    if meta.kind != Kind::File {
        return Err("source is no longer a regular file".to_string());
    }

    let temp = TempFile::create(dst_dir)
        .map_err(|err| format!("cannot create temporary file in destination: {err}"))?;
    let bytes = fsops::copy_data(&src, temp.fd(), context.progress, context.cancel)
        .map_err(|err| format!("cannot copy file data: {err}"))?;
    if replace_dir {
        fsops::remove_tree_at(dst_dir, dst_name)
            .map_err(|err| format!("cannot remove the directory in the way: {err}"))?;
    }
    temp.commit(dst_name, &meta, context.options.fsync)
        .map_err(|err| format!("cannot finish file: {err}"))?;
    Ok(bytes)
}

fn write_symlink(
    dst_dir: &OwnedFd,
    name: &OsStr,
    target: &OsStr,
    meta: &Meta,
    replace_dir: bool,
) -> Result<(), String> {
    if replace_dir {
        fsops::remove_tree_at(dst_dir, name)
            .map_err(|err| format!("cannot remove the directory in the way: {err}"))?;
    }
    fsops::replace_symlink_at(dst_dir, name, target, meta)
        .map_err(|err| format!("cannot create symlink: {err}"))
}

/// Deletes one extraneous entry, depth first, without following symlinks.
fn apply_deletion(context: &Context<'_>, parent: &OwnedFd, deletion: &Deletion, rel: &Path) {
    if context.cancel.is_cancelled() {
        return;
    }
    let path = join_rel(rel, &deletion.name);
    if deletion.is_dir {
        let dir = match fsops::open_dir_at(parent, &deletion.name) {
            Ok(fd) => fd,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                context.fail(&path, format!("cannot open directory to delete: {err}"));
                return;
            }
        };
        for child in &deletion.children {
            apply_deletion(context, &dir, child, &path);
        }
        if deletion.keep {
            return;
        }
    }
    let result = if deletion.is_dir {
        fsops::rmdir_at(parent, &deletion.name)
    } else {
        fsops::unlink_at(parent, &deletion.name)
    };
    match result {
        Ok(()) => {
            context.counts.deleted.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => context.fail(&path, format!("cannot delete: {err}")),
    }
}
