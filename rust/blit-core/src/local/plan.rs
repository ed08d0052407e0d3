//! The changes that the scan decided on, one node per source directory.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::fsops::Meta;

/// The state of a [`DirPlan`]'s destination directory before the apply phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DirState {
    /// It exists as a real directory.
    Existing,
    /// It is missing and is created.
    Missing,
    /// A file or symlink is in its place and is removed first.
    ReplaceEntry,
}

/// The changes inside one directory of the transfer.
#[derive(Debug)]
pub(super) struct DirPlan {
    /// Name of this directory in its parent; empty for the root.
    pub name: OsString,
    /// Path relative to the transfer root; empty for the root.
    pub rel: PathBuf,
    /// Source metadata, applied to the destination directory at the end.
    pub meta: Meta,
    pub state: DirState,
    /// Whether the destination directory's mode or mtime must be set after
    /// its contents are written.
    pub set_meta: bool,
    /// Files and symlinks to write or update.
    pub items: Vec<Item>,
    /// Destination entries to delete (mirror only).
    pub deletions: Vec<Deletion>,
    /// Temporary files of an interrupted earlier run, always removed.
    pub stale_temps: Vec<OsString>,
    pub children: Vec<DirPlan>,
}

impl DirPlan {
    /// Creates a root plan whose directory exists and whose metadata is left
    /// alone, for a single-file transfer.
    pub(super) fn container(meta: Meta) -> DirPlan {
        DirPlan {
            name: OsString::new(),
            rel: PathBuf::new(),
            meta,
            state: DirState::Existing,
            set_meta: false,
            items: Vec::new(),
            deletions: Vec::new(),
            stale_temps: Vec::new(),
            children: Vec::new(),
        }
    }
}

impl DirPlan {
    /// Returns whether applying this plan adds, replaces or removes entries
    /// directly inside the directory, which changes the directory's mtime.
    pub(super) fn changes_own_entries(&self) -> bool {
        !self.items.is_empty()
            || !self.deletions.is_empty()
            || !self.stale_temps.is_empty()
            || self
                .children
                .iter()
                .any(|child| child.state != DirState::Existing)
    }
}

/// One file or symlink to write.
#[derive(Debug)]
pub(super) struct Item {
    /// Name in the destination directory (and in the source, except for a
    /// renamed single-file transfer).
    pub name: OsString,
    pub meta: Meta,
    pub action: ItemAction,
}

#[derive(Debug)]
pub(super) enum ItemAction {
    /// Write the file's content under a temporary name and rename it.
    CopyFile {
        /// A directory is in the way and is removed first (mirror only).
        replace_dir: bool,
    },
    /// Create the symlink, replacing what is there.
    Symlink { target: OsString, replace_dir: bool },
    /// Only the mode or the mtime differ.
    Metadata,
}

/// One destination entry that the source lacks.
#[derive(Debug)]
pub(super) struct Deletion {
    pub name: OsString,
    pub is_dir: bool,
    /// For a directory, its contents, deleted first.
    pub children: Vec<Deletion>,
    /// The directory contains an excluded entry, so it stays.
    pub keep: bool,
}
