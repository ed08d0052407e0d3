//! Manifest entries and the walk that produces them.
//!
//! The walk emits entries in directory-grouped order: all direct entries of
//! a directory, sorted by name, follow one another, and each subdirectory's
//! group comes after its parent's group. A directory's listing is therefore
//! complete when the next group starts, so a receiver can delete extraneous
//! entries there without keeping the whole manifest in memory.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use blit_core::fsops::{self, Kind, Meta};
use blit_core::{CancelToken, Error, Failure, Filter, Progress, Result};

use crate::paths;

/// The type of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the transfer root, `/`-separated; empty for a
    /// single-file transfer's one entry.
    pub path: Vec<u8>,
    /// Entry type.
    pub kind: EntryKind,
    /// File size in bytes; 0 for directories and symlinks.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_sec: i64,
    /// Nanoseconds part of the modification time.
    pub mtime_nsec: u32,
    /// Symlink target; empty otherwise.
    pub link_target: Vec<u8>,
    /// BLAKE3 hash of a file's content, sent when comparing by checksum.
    pub hash: Option<[u8; 32]>,
}

impl Entry {
    /// Returns the metadata that the receiver compares and preserves.
    pub fn meta(&self) -> Meta {
        Meta {
            kind: match self.kind {
                EntryKind::File => Kind::File,
                EntryKind::Dir => Kind::Dir,
                EntryKind::Symlink => Kind::Symlink,
            },
            size: self.size,
            mode: self.mode & 0o7777,
            mtime_sec: self.mtime_sec,
            mtime_nsec: self.mtime_nsec,
        }
    }

    /// Returns the parent part of the path (empty at the root) and the name.
    pub fn split(&self) -> (&[u8], &[u8]) {
        match self.path.iter().rposition(|&b| b == b'/') {
            Some(slash) => (&self.path[..slash], &self.path[slash + 1..]),
            None => (&[], &self.path),
        }
    }
}

/// Entries per manifest batch.
pub const BATCH_ENTRIES: usize = 1000;

/// Approximate encoded size at which a manifest batch is sent early. It is
/// well under gRPC's default 4 MiB message limit, because symlink targets
/// and paths can be long.
pub const BATCH_BYTES: usize = 1 << 20;

impl Entry {
    /// Returns the approximate encoded size of this entry in a batch.
    pub fn batch_weight(&self) -> usize {
        self.path.len() + self.link_target.len() + 64
    }
}

/// Options of a manifest walk.
pub struct WalkOptions<'a> {
    /// Entries to leave out; excluded directories are not descended into.
    pub filter: &'a Filter,
    /// Fill [`Entry::hash`] for files.
    pub checksum: bool,
}

/// Walks the tree under `root` in directory-grouped order and passes each
/// entry to `emit`. Entries that cannot be read, and special files, go to
/// `on_failure` and the walk continues.
///
/// # Errors
///
/// Returns the first error of `emit`, or a cancellation error.
pub fn walk(
    root: &OwnedFd,
    options: &WalkOptions<'_>,
    progress: &Progress,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(Entry) -> Result<()>,
    on_failure: &mut dyn FnMut(Failure),
) -> Result<()> {
    // Directories still to list, as peer paths. Holding paths rather than
    // open descriptors keeps a wide tree within the open-file limit.
    let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
    while let Some(dir_path) = pending.pop() {
        if cancel.is_cancelled() {
            return Err(Error::cancelled());
        }
        let parts = paths::components(&dir_path)?;
        let listing = paths::open_dir(root, &parts)
            .and_then(|dir| fsops::read_dir_names(&dir).map(|names| (dir, names)));
        let (dir, mut names) = match listing {
            Ok(listing) => listing,
            Err(err) => {
                on_failure(failure(&dir_path, format!("cannot list directory: {err}")));
                continue;
            }
        };
        names.sort();

        let mut subdirs = Vec::new();
        for name in names {
            if fsops::is_temp_name(&name) {
                continue;
            }
            let path = child_path(&dir_path, &name);
            match read_entry(&dir, &name, path, options) {
                Ok(None) => {}
                Ok(Some(entry)) => {
                    progress_add(progress, &entry);
                    if entry.kind == EntryKind::Dir {
                        subdirs.push(entry.path.clone());
                    }
                    emit(entry)?;
                }
                Err(failed) => on_failure(failed),
            }
        }
        // Reversed, so the pop order visits subdirectories by name.
        pending.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Builds the one-entry manifest of a single-file source `name` in `dir`.
///
/// # Errors
///
/// Returns the reason, naming the file, if it cannot be read or is not a
/// file or symlink.
pub fn single_entry(dir: &OwnedFd, name: &OsStr, checksum: bool) -> Result<Entry> {
    let filter = Filter::empty();
    let options = WalkOptions {
        filter: &filter,
        checksum,
    };
    match read_entry(dir, name, Vec::new(), &options) {
        Ok(Some(entry)) if entry.kind != EntryKind::Dir => Ok(entry),
        Ok(_) => Err(Error::new(
            blit_core::ErrorKind::InvalidArgument,
            format!("{} is not a file", name.to_string_lossy()),
        )),
        Err(failed) => Err(Error::new(
            blit_core::ErrorKind::NotFound,
            format!("{}: {}", name.to_string_lossy(), failed.message),
        )),
    }
}

/// Counts a walked entry. Bytes are counted where it becomes known which
/// files must be sent: in the sender's need-lists or the receiver's plan.
fn progress_add(progress: &Progress, _entry: &Entry) {
    progress.add_entries_total(1);
}

fn child_path(dir: &[u8], name: &OsStr) -> Vec<u8> {
    let mut path = dir.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name.as_bytes());
    path
}

fn failure(path: &[u8], message: String) -> Failure {
    Failure {
        path: std::path::PathBuf::from(OsStr::from_bytes(path)),
        message,
    }
}

/// Reads one entry; `Ok(None)` means it is excluded.
fn read_entry(
    dir: &OwnedFd,
    name: &OsStr,
    path: Vec<u8>,
    options: &WalkOptions<'_>,
) -> std::result::Result<Option<Entry>, Failure> {
    let meta = fsops::stat_at(dir, name)
        .map_err(|err| failure(&path, format!("cannot read entry: {err}")))?;
    let rel = std::path::Path::new(OsStr::from_bytes(&path));
    if !path.is_empty() && options.filter.is_excluded(rel, meta.kind == Kind::Dir) {
        return Ok(None);
    }
    let mut entry = Entry {
        path,
        kind: EntryKind::File,
        size: 0,
        mode: meta.mode,
        mtime_sec: meta.mtime_sec,
        mtime_nsec: meta.mtime_nsec,
        link_target: Vec::new(),
        hash: None,
    };
    match meta.kind {
        Kind::File => {
            entry.size = meta.size;
            if options.checksum {
                let hash = fsops::hash_file(dir, name)
                    .map_err(|err| failure(&entry.path, format!("cannot hash file: {err}")))?;
                entry.hash = Some(*hash.as_bytes());
            }
        }
        Kind::Dir => entry.kind = EntryKind::Dir,
        Kind::Symlink => {
            entry.kind = EntryKind::Symlink;
            let target = fsops::read_link_at(dir, name)
                .map_err(|err| failure(&entry.path, format!("cannot read symlink: {err}")))?;
            entry.link_target = target.as_bytes().to_vec();
        }
        Kind::Special(what) => {
            return Err(failure(
                &entry.path,
                format!(
                    "unsupported file type ({what}); blit copies regular files, directories and \
                     symlinks"
                ),
            ));
        }
    }
    Ok(Some(entry))
}

/// Returns `name` as an owned OS string, for callers that build entries.
pub fn os_name(name: &[u8]) -> OsString {
    OsStr::from_bytes(name).to_os_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn walk_paths(root: &std::path::Path, patterns: &[&str]) -> (Vec<String>, Vec<Failure>) {
        let fd = fsops::open_dir_path(root).unwrap();
        let filter = Filter::new(patterns).unwrap();
        let options = WalkOptions {
            filter: &filter,
            checksum: false,
        };
        let mut seen = Vec::new();
        let mut failures = Vec::new();
        walk(
            &fd,
            &options,
            &Progress::new(),
            &CancelToken::new(),
            &mut |entry| {
                seen.push(String::from_utf8(entry.path).unwrap());
                Ok(())
            },
            &mut |failed| failures.push(failed),
        )
        .unwrap();
        (seen, failures)
    }

    #[test]
    fn entries_grouped_by_directory() {
        let root = tempfile::tempdir().unwrap();
        for path in ["b/x", "b/y/z", "a/q", "c"] {
            let full = root.path().join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(full, "data").unwrap();
        }

        let (seen, failures) = walk_paths(root.path(), &[]);

        assert!(failures.is_empty());
        assert_eq!(seen, ["a", "b", "c", "a/q", "b/x", "b/y", "b/y/z"]);
    }

    #[test]
    fn excluded_entries_left_out() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("skip/inner")).unwrap();
        fs::write(root.path().join("keep.txt"), "k").unwrap();
        fs::write(root.path().join("drop.log"), "d").unwrap();

        let (seen, _) = walk_paths(root.path(), &["*.log", "skip/"]);

        assert_eq!(seen, ["keep.txt"]);
    }
}
