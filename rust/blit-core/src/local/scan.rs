//! The scan phase: walk source and destination side by side and decide what
//! changes.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rayon::prelude::*;

use super::plan::{Deletion, DirPlan, DirState, Item, ItemAction};
use super::{Context, join_rel};
use crate::error::Result;
use crate::fsops::{self, Kind, Meta};
use crate::summary::ChangeKind;

/// Scans the whole tree under the two open root directories.
pub(super) fn scan_root(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    dst_dir: Option<&OwnedFd>,
    src_meta: Meta,
    dst_meta: Option<Meta>,
) -> Result<DirPlan> {
    let state = match dst_dir {
        Some(_) => DirState::Existing,
        None => DirState::Missing,
    };
    let mut root = scan_dir(
        context,
        src_dir,
        dst_dir,
        OsString::new(),
        PathBuf::new(),
        src_meta,
        state,
    );
    root.set_meta = dst_meta.is_none_or(|dest| metadata_differs(&src_meta, &dest));
    context.check_cancelled()?;
    Ok(root)
}

fn metadata_differs(src: &Meta, dest: &Meta) -> bool {
    src.mode != dest.mode || !src.same_mtime(dest)
}

/// Scans one directory and, in parallel, its subdirectories.
fn scan_dir(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    dst_dir: Option<&OwnedFd>,
    name: OsString,
    rel: PathBuf,
    meta: Meta,
    state: DirState,
) -> DirPlan {
    let mut plan = DirPlan {
        name,
        rel,
        meta,
        state,
        set_meta: true,
        items: Vec::new(),
        deletions: Vec::new(),
        stale_temps: Vec::new(),
        children: Vec::new(),
    };
    if context.cancel.is_cancelled() {
        return plan;
    }

    let mut names = match fsops::read_dir_names(src_dir) {
        Ok(names) => names,
        Err(err) => {
            context.fail(&plan.rel, format!("cannot list source directory: {err}"));
            return plan;
        }
    };
    // Both listings are sorted, so each source name finds its destination
    // entry by binary search. In a no-op run a hash set of the destination
    // names cost more than the search.
    names.sort_unstable();
    let mut dest_names = match dst_dir.map(fsops::read_dir_names) {
        None => Vec::new(),
        Some(Ok(names)) => names,
        Some(Err(err)) => {
            context.fail(
                &plan.rel,
                format!("cannot list destination directory: {err}"),
            );
            return plan;
        }
    };
    dest_names.sort_unstable();
    let mut dest_listed = vec![false; dest_names.len()];
    let may_exclude = !context.filter.excludes_nothing();

    let mut subdirs = Vec::new();
    for name in &names {
        // Temporary files of a run that is writing into the source are not
        // part of it.
        if fsops::is_temp_name(name) {
            continue;
        }
        let rel = RelPath {
            parent: &plan.rel,
            name,
        };
        let src_meta = match fsops::stat_at(src_dir, name) {
            Ok(meta) => meta,
            Err(err) => {
                context.progress.add_entries_total(1);
                context.fail(&rel.get(), format!("cannot read source entry: {err}"));
                continue;
            }
        };
        if may_exclude
            && context
                .filter
                .is_excluded(&rel.get(), src_meta.kind == Kind::Dir)
        {
            continue;
        }
        context.progress.add_entries_total(1);

        let found = dest_names.binary_search(name).ok();
        if let Some(position) = found {
            dest_listed[position] = true;
        }
        let dest = match (dst_dir, found) {
            (Some(dst_dir), Some(_)) => match fsops::stat_at(dst_dir, name) {
                Ok(meta) => Some(meta),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => {
                    context.fail(&rel.get(), format!("cannot read destination entry: {err}"));
                    continue;
                }
            },
            _ => None,
        };
        if src_meta.kind == Kind::Dir {
            subdirs.push((name.clone(), rel.get(), src_meta, dest));
            continue;
        }
        if let Some(item) =
            compare_entry(context, src_dir, dst_dir, name, name, rel, src_meta, dest)
        {
            plan.items.push(item);
        }
    }

    if let Some(dst_dir) = dst_dir {
        let extraneous = dest_names
            .into_iter()
            .zip(dest_listed)
            .filter_map(|(name, listed)| (!listed).then_some(name));
        plan_extraneous(context, dst_dir, &mut plan, extraneous);
    }

    plan.children = subdirs
        .into_par_iter()
        .filter_map(|(name, child_rel, src_meta, dest)| {
            scan_subdir(context, src_dir, dst_dir, name, child_rel, src_meta, dest)
        })
        .collect();
    plan
}

/// Opens one subdirectory on both sides and scans it.
fn scan_subdir(
    context: &Context<'_>,
    src_parent: &OwnedFd,
    dst_parent: Option<&OwnedFd>,
    name: OsString,
    rel: PathBuf,
    src_meta: Meta,
    dest: Option<Meta>,
) -> Option<DirPlan> {
    if rel.components().count() > super::MAX_DEPTH {
        context.fail(
            &rel,
            format!(
                "directory nesting deeper than {} levels is not supported",
                super::MAX_DEPTH
            ),
        );
        return None;
    }
    let src_dir = match fsops::open_dir_at(src_parent, &name) {
        Ok(fd) => fd,
        Err(err) => {
            context.fail(&rel, format!("cannot open source directory: {err}"));
            return None;
        }
    };
    let (state, dst_dir) = match (dest, dst_parent) {
        (Some(dest), Some(dst_parent)) if dest.kind == Kind::Dir => {
            match fsops::open_dir_at(dst_parent, &name) {
                Ok(fd) => (DirState::Existing, Some(fd)),
                Err(err) => {
                    context.fail(&rel, format!("cannot open destination directory: {err}"));
                    return None;
                }
            }
        }
        // A file or a symlink (perhaps to a directory elsewhere) is replaced
        // by a real directory; a symlink is never followed.
        (Some(_), _) => (DirState::ReplaceEntry, None),
        (None, _) => (DirState::Missing, None),
    };

    let mut plan = scan_dir(
        context,
        &src_dir,
        dst_dir.as_ref(),
        name,
        rel,
        src_meta,
        state,
    );
    plan.set_meta = match (state, dest) {
        (DirState::Existing, Some(dest)) => metadata_differs(&src_meta, &dest),
        _ => true,
    };
    match state {
        DirState::Existing if plan.set_meta => {
            context.record_change(ChangeKind::Metadata, &plan.rel)
        }
        DirState::Existing => context.count_skipped(),
        DirState::Missing | DirState::ReplaceEntry => {
            context.record_change(ChangeKind::Mkdir, &plan.rel)
        }
    }
    Some(plan)
}

/// The path of an entry relative to the transfer root, built only when a
/// message or a change record needs it. In a no-op run almost no entry
/// needs it, and joining every path took a tenth of the scan's user time.
#[derive(Clone, Copy)]
pub(super) struct RelPath<'a> {
    pub parent: &'a Path,
    pub name: &'a OsStr,
}

impl RelPath<'_> {
    pub(super) fn get(self) -> PathBuf {
        join_rel(self.parent, self.name)
    }
}

/// Decides what to do with one non-directory source entry, `name` in the
/// source and `dst_name` in the destination. Returns `None` when the
/// destination is up to date or the entry failed.
#[allow(clippy::too_many_arguments)]
pub(super) fn compare_entry(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    dst_dir: Option<&OwnedFd>,
    name: &OsStr,
    dst_name: &OsStr,
    rel: RelPath<'_>,
    src: Meta,
    dest: Option<Meta>,
) -> Option<Item> {
    let mirror = context.options.mirror;
    let dest_is_dir = dest.is_some_and(|d| d.kind == Kind::Dir);
    if dest_is_dir && !mirror {
        context.fail(
            &rel.get(),
            "destination is a directory; a copy does not replace it, a mirror does",
        );
        return None;
    }

    let action = match src.kind {
        Kind::Special(what) => {
            context.fail(
                &rel.get(),
                format!("unsupported file type ({what}); blit copies regular files, directories and symlinks"),
            );
            return None;
        }
        Kind::Dir => unreachable!("directories are scanned by scan_subdir"),
        Kind::File => match dest {
            Some(dest) if dest.kind == Kind::File => {
                match file_is_current(context, src_dir, dst_dir, name, dst_name, &src, &dest) {
                    Ok(true) if src.mode != dest.mode || !src.same_mtime(&dest) => {
                        ItemAction::Metadata
                    }
                    Ok(true) => {
                        context.count_skipped();
                        return None;
                    }
                    Ok(false) => ItemAction::CopyFile { replace_dir: false },
                    Err(message) => {
                        context.fail(&rel.get(), message);
                        return None;
                    }
                }
            }
            _ => ItemAction::CopyFile {
                replace_dir: dest_is_dir,
            },
        },
        Kind::Symlink => {
            let target = match fsops::read_link_at(src_dir, name) {
                Ok(target) => target,
                Err(err) => {
                    context.fail(&rel.get(), format!("cannot read source symlink: {err}"));
                    return None;
                }
            };
            let dest_target = match (dest, dst_dir) {
                (Some(dest), Some(dst_dir)) if dest.kind == Kind::Symlink => {
                    fsops::read_link_at(dst_dir, dst_name).ok()
                }
                _ => None,
            };
            match (dest_target, dest) {
                (Some(existing), Some(dest)) if existing == target => {
                    if src.same_mtime(&dest) {
                        context.count_skipped();
                        return None;
                    }
                    ItemAction::Metadata
                }
                _ => ItemAction::Symlink {
                    target,
                    replace_dir: dest_is_dir,
                },
            }
        }
    };

    let change = match &action {
        ItemAction::CopyFile { .. } => {
            context.progress.add_bytes_total(src.size);
            ChangeKind::Copy
        }
        ItemAction::Symlink { .. } => ChangeKind::Symlink,
        ItemAction::Metadata => ChangeKind::Metadata,
    };
    context.record_change(change, &rel.get());
    Some(Item {
        name: dst_name.to_os_string(),
        meta: src,
        action,
    })
}

/// Returns whether the destination file has the source's content: by size
/// and mtime, or with `checksum` by size and BLAKE3 hash.
fn file_is_current(
    context: &Context<'_>,
    src_dir: &OwnedFd,
    dst_dir: Option<&OwnedFd>,
    name: &OsStr,
    dst_name: &OsStr,
    src: &Meta,
    dest: &Meta,
) -> Result<bool, String> {
    if src.size != dest.size {
        return Ok(false);
    }
    if !context.options.checksum {
        return Ok(src.same_mtime(dest));
    }
    let Some(dst_dir) = dst_dir else {
        return Ok(false);
    };
    let src_hash =
        fsops::hash_file(src_dir, name).map_err(|err| format!("cannot hash source file: {err}"))?;
    let dest_hash = fsops::hash_file(dst_dir, dst_name)
        .map_err(|err| format!("cannot hash destination file: {err}"))?;
    Ok(src_hash == dest_hash)
}

/// Plans the removal of destination entries that the source lacks: stale
/// temporary files always, everything else not excluded in a mirror.
fn plan_extraneous(
    context: &Context<'_>,
    dst_dir: &OwnedFd,
    plan: &mut DirPlan,
    names: impl Iterator<Item = OsString>,
) {
    for name in names {
        if fsops::is_temp_name(&name) {
            plan.stale_temps.push(name);
            continue;
        }
        if !context.options.mirror {
            continue;
        }
        let rel = join_rel(&plan.rel, &name);
        match fsops::stat_at(dst_dir, &name) {
            Ok(meta) => {
                if let Some(deletion) = plan_deletion(context, dst_dir, name, &rel, meta) {
                    plan.deletions.push(deletion);
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => context.fail(&rel, format!("cannot read destination entry: {err}")),
        }
    }
}

/// Plans the deletion of one extraneous entry, walking a directory so that
/// excluded entries inside it are kept (and so is the directory).
fn plan_deletion(
    context: &Context<'_>,
    parent: &OwnedFd,
    name: OsString,
    rel: &Path,
    meta: Meta,
) -> Option<Deletion> {
    let is_dir = meta.kind == Kind::Dir;
    if context.filter.is_excluded(rel, is_dir) {
        return None;
    }
    let mut deletion = Deletion {
        name,
        is_dir,
        children: Vec::new(),
        keep: false,
    };
    if is_dir {
        let listing = fsops::open_dir_at(parent, &deletion.name)
            .and_then(|dir| fsops::read_dir_names(&dir).map(|names| (dir, names)));
        match listing {
            Ok((dir, mut names)) => {
                names.sort();
                for child in names {
                    let child_rel = rel.join(&child);
                    let Ok(child_meta) = fsops::stat_at(&dir, &child) else {
                        continue;
                    };
                    match plan_deletion(context, &dir, child, &child_rel, child_meta) {
                        Some(child) => {
                            deletion.keep |= child.keep;
                            deletion.children.push(child);
                        }
                        None => deletion.keep = true,
                    }
                }
            }
            Err(err) => {
                context.fail(rel, format!("cannot list directory to delete: {err}"));
                deletion.keep = true;
            }
        }
    }
    if !deletion.keep {
        context.record_change(crate::summary::ChangeKind::Delete, rel);
    }
    Some(deletion)
}

impl Context<'_> {
    /// Counts one source entry that is already up to date.
    fn count_skipped(&self) {
        self.counts.skipped.fetch_add(1, Ordering::Relaxed);
        self.progress.add_entries_done(1);
    }
}
