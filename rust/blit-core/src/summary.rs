//! The result of a transfer: counts, bytes, time, failures and, for a dry
//! run, the changes it would make.

use std::path::PathBuf;
use std::time::Duration;

/// One entry that could not be transferred or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Path relative to the transfer root (the source root for copies, the
    /// destination root for deletions).
    pub path: PathBuf,
    /// The reason the entry failed, without the path.
    pub message: String,
}

/// The kind of change that a transfer makes, or in a dry run would make, to
/// one destination entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Write a regular file's content.
    Copy,
    /// Create or replace a symbolic link.
    Symlink,
    /// Create a directory.
    Mkdir,
    /// Update only the mode bits or the modification time.
    Metadata,
    /// Delete an entry that the source lacks (mirror only).
    Delete,
}

impl ChangeKind {
    /// Returns the lowercase name used in dry-run listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Copy => "copy",
            ChangeKind::Symlink => "symlink",
            ChangeKind::Mkdir => "mkdir",
            ChangeKind::Metadata => "metadata",
            ChangeKind::Delete => "delete",
        }
    }
}

/// One planned change, listed by a dry run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The kind of change.
    pub kind: ChangeKind,
    /// Path relative to the destination root.
    pub path: PathBuf,
}

/// Counts and details of a finished transfer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Entries written or created, including metadata-only updates.
    pub transferred: u64,
    /// Source entries that were already up to date.
    pub skipped: u64,
    /// Destination entries deleted because the source lacks them.
    pub deleted: u64,
    /// Entries that failed; each has a [`Failure`] in `failures`.
    pub failed: u64,
    /// File content bytes written.
    pub bytes: u64,
    /// Wall-clock time of the whole transfer.
    pub elapsed: Duration,
    /// Whether this was a dry run that changed nothing.
    pub dry_run: bool,
    /// Every failed entry, sorted by path.
    pub failures: Vec<Failure>,
    /// For a dry run, every change it would make, sorted by path; empty
    /// otherwise.
    pub changes: Vec<Change>,
}
