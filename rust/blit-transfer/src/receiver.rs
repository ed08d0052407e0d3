//! The receiving end: applies manifest batches to a destination directory
//! as they arrive and writes the file frames of data connections.
//!
//! Directories and symlinks are created while the manifest arrives, so by
//! the time a file's bytes come, its directory exists. Files are written to
//! a temporary name and renamed into place. Because the manifest is grouped
//! by directory, a mirror deletes a directory's extraneous entries as soon
//! as its group ends, and stale temporary files are removed when a group
//! starts, before any file of that directory can be in flight.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use blit_core::fsops::{self, Kind, Meta, TempFile};
use blit_core::{
    CancelToken, Change, ChangeKind, Error, ErrorKind, Failure, Filter, Progress, Result, Summary,
};

use crate::frame::{Content, Frame, FrameReader};
use crate::manifest::{Entry, EntryKind};
use crate::paths::{self, DirCache};

/// Options of the receiving end.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Delete destination entries that the manifest lacks.
    pub mirror: bool,
    /// Compare files of equal size by the manifest's BLAKE3 hash.
    pub checksum: bool,
    /// Fsync files and directories before reporting success.
    pub fsync: bool,
    /// Change nothing; count and list what would change.
    pub dry_run: bool,
    /// Destination entries to leave alone (never deleted by a mirror).
    pub filter: Filter,
}

/// Requested files whose bytes have not started to arrive, at which
/// [`Receiver::wait_for_room`] holds back the next manifest batch.
///
/// The receiver keeps an entry for each (100 to 200 bytes in a heap
/// profile), and a walk on a fast source outruns writes to a slow
/// destination. Without a bound, a transfer of many small files would keep
/// the whole manifest in memory. 16,384 small files are more than the data
/// connections' socket buffers contain, so the bound does not starve them.
pub const MAX_PENDING_FILES: usize = 16384;

/// Pending files at which a held-back manifest batch goes ahead, below
/// [`MAX_PENDING_FILES`] so that the wait ends once per batch rather than
/// once per file.
const RESUME_PENDING_FILES: usize = MAX_PENDING_FILES / 4 * 3;

/// How often a held-back manifest batch checks for cancellation.
const PAUSE_POLL: Duration = Duration::from_millis(100);

/// The destination of the manifest's root.
#[derive(Debug, Clone)]
pub enum Target {
    /// The root directory itself; entries are relative to it.
    Dir,
    /// A file of this name inside the root directory. The manifest contains
    /// one entry with an empty path.
    File(OsString),
}

/// The receiving end of one transfer. Methods take `&self` so that the
/// control stream and several data connections can drive it at once.
pub struct Receiver {
    /// `None` in a dry run whose destination does not exist yet.
    root: Option<OwnedFd>,
    target: Target,
    options: ReceiverOptions,
    progress: Arc<Progress>,
    cancel: CancelToken,
    started: Instant,
    transferred: AtomicU64,
    skipped: AtomicU64,
    deleted: AtomicU64,
    bytes: AtomicU64,
    failures: Mutex<Vec<Failure>>,
    changes: Mutex<Vec<Change>>,
    pending: Mutex<Pending>,
    /// Signalled when a pending file is taken or a data reader ends, for
    /// [`Receiver::wait_for_room`].
    room: Condvar,
    manifest: Mutex<ManifestState>,
}

/// The files awaiting their bytes, and the data readers that bring them.
#[derive(Default)]
struct Pending {
    files: HashMap<u64, PendingFile>,
    /// Data readers running [`Receiver::receive`].
    readers: usize,
    /// Whether a data reader stopped with an error, so some requested
    /// files will never arrive.
    reader_failed: bool,
    /// Whether a caller waits in [`Receiver::wait_for_room`].
    waiting: bool,
}

/// A file whose bytes are expected on a data connection.
struct PendingFile {
    path: Vec<u8>,
    meta: Meta,
    replace_dir: bool,
}

#[derive(Default)]
struct ManifestState {
    next_index: u64,
    group: Option<Group>,
    /// Declared directories whose group has not started; a directory whose
    /// source is empty never gets one.
    ungrouped: HashSet<Vec<u8>>,
    /// Every directory of the manifest with its source metadata and
    /// whether its metadata must be set at the end.
    directories: Vec<(Vec<u8>, Meta, bool)>,
    /// Directories whose entries changed, so their mtime must be reset.
    changed: HashSet<Vec<u8>>,
    ended: bool,
}

/// The directory whose entries are arriving.
struct Group {
    parent: Vec<u8>,
    /// `None` when the directory does not exist (in a dry run) or could not
    /// be opened. Shared so that each entry can borrow it while the state
    /// that contains the group is borrowed too.
    dir: Option<Arc<OwnedFd>>,
    /// Destination names present when the group started, sorted.
    existing: Vec<OsString>,
    /// Names that the manifest lists in this directory.
    listed: HashSet<OsString>,
}

/// The setuid and setgid bits, which received files never keep.
const SETID_BITS: u32 = 0o6000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

impl Receiver {
    /// Creates the receiving end for the open destination directory `root`,
    /// which may be `None` only in a dry run into a missing destination.
    pub fn new(
        root: Option<OwnedFd>,
        target: Target,
        options: ReceiverOptions,
        progress: Arc<Progress>,
        cancel: CancelToken,
    ) -> Receiver {
        let mut manifest = ManifestState::default();
        if matches!(target, Target::Dir) {
            manifest.ungrouped.insert(Vec::new());
        }
        Receiver {
            root,
            target,
            options,
            progress,
            cancel,
            started: Instant::now(),
            transferred: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            changes: Mutex::new(Vec::new()),
            pending: Mutex::new(Pending::default()),
            room: Condvar::new(),
            manifest: Mutex::new(manifest),
        }
    }

    fn fail(&self, path: &[u8], message: impl Into<String>) {
        let message = message.into();
        tracing::debug!(path = %String::from_utf8_lossy(path), %message, "entry failed");
        self.progress.add_entries_done(1);
        lock(&self.failures).push(Failure {
            path: to_path(path),
            message,
        });
    }

    /// Records a sender-side failure that has no manifest entry, such as a
    /// special file that the walk skipped.
    pub fn add_failure(&self, failure: Failure) {
        lock(&self.failures).push(failure);
    }

    fn record(&self, kind: ChangeKind, path: &[u8]) {
        if self.options.dry_run {
            lock(&self.changes).push(Change {
                kind,
                path: to_path(path),
            });
        }
    }

    fn count_transferred(&self, bytes: u64) {
        self.transferred.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.progress.add_entries_done(1);
    }

    fn count_skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.progress.add_entries_done(1);
    }

    /// Applies one manifest batch: creates directories and symlinks, fixes
    /// metadata, and returns the indices of the files whose bytes are
    /// needed. Entry-level problems are recorded as failures.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] for a protocol violation: a
    /// batch out of order, after the manifest ended, or with a path that
    /// could leave the destination. The transfer must then stop.
    pub fn accept_batch(&self, first_index: u64, entries: Vec<Entry>) -> Result<Vec<u64>> {
        let mut state = lock(&self.manifest);
        let protocol = |message: String| Error::new(ErrorKind::InvalidArgument, message);
        if state.ended {
            return Err(protocol(
                "manifest batch received after the manifest ended".into(),
            ));
        }
        if first_index != state.next_index {
            return Err(protocol(format!(
                "manifest batch starts at index {first_index}, expected {}",
                state.next_index
            )));
        }
        for (offset, entry) in entries.iter().enumerate() {
            self.check_entry(first_index + offset as u64, entry)?;
        }
        state.next_index += entries.len() as u64;

        let mut needed = Vec::new();
        for (offset, entry) in entries.into_iter().enumerate() {
            let index = first_index + offset as u64;
            if !entry.path.is_empty()
                && self
                    .options
                    .filter
                    .is_excluded(&to_path(&entry.path), entry.kind == EntryKind::Dir)
            {
                continue;
            }
            self.progress.add_entries_total(1);
            if self.apply_entry(&mut state, index, &entry) {
                needed.push(index);
            }
        }
        Ok(needed)
    }

    fn protocol(message: &str) -> Error {
        Error::new(ErrorKind::InvalidArgument, message.to_string())
    }

    /// Rejects an entry that violates the protocol.
    fn check_entry(&self, index: u64, entry: &Entry) -> Result<()> {
        paths::components(&entry.path)?;
        match (&self.target, entry.path.is_empty()) {
            (Target::Dir, true) => {
                return Err(Self::protocol(
                    "a directory transfer has an entry with an empty path",
                ));
            }
            (Target::File(_), false) | (Target::File(_), true) if index > 0 => {
                return Err(Self::protocol(
                    "a single-file transfer has more than one entry",
                ));
            }
            (Target::File(_), false) => {
                return Err(Self::protocol(
                    "a single-file transfer's entry must have an empty path",
                ));
            }
            _ => {}
        }
        if entry.kind == EntryKind::Dir && matches!(self.target, Target::File(_)) {
            return Err(Self::protocol(
                "a single-file transfer cannot carry a directory",
            ));
        }
        Ok(())
    }

    /// Applies one entry, first switching groups when its parent differs
    /// from the current group's. Returns whether its bytes are needed.
    fn apply_entry(&self, state: &mut ManifestState, index: u64, entry: &Entry) -> bool {
        let (parent, name) = match &self.target {
            Target::Dir => paths::split_parent(&entry.path),
            Target::File(name) => (&[][..], name.as_os_str()),
        };
        let same_group = state.group.as_ref().is_some_and(|g| g.parent == parent);
        if !same_group {
            self.finish_group(state);
            let group = self.start_group(state, parent);
            state.group = Some(group);
        }
        let group = state.group.as_mut().expect("a group was just started");
        group.listed.insert(name.to_os_string());
        let listed_at_start = group
            .existing
            .binary_search_by(|existing| existing.as_os_str().cmp(name))
            .is_ok();
        let Some(dir) = group.dir.as_ref() else {
            if self.options.dry_run {
                // The parent does not exist yet, so everything in it is new.
                return self.plan_new(state, entry);
            }
            self.fail(&entry.path, "destination directory is not available");
            return false;
        };
        let dir = Arc::clone(dir);

        // A file or symlink whose name the group's listing lacks is new, so a
        // fresh destination needs no `stat`. If the name exists after all
        // (created since, or in another case on a case-insensitive file
        // system), the rename replaces it. Directories are always checked,
        // because `mkdir` fails on an existing one and they are few.
        let check = listed_at_start || entry.kind == EntryKind::Dir;
        let dest = match check.then(|| fsops::stat_at(&dir, name)) {
            None => None,
            Some(Ok(meta)) => Some(meta),
            Some(Err(err)) if err.kind() == std::io::ErrorKind::NotFound => None,
            Some(Err(err)) => {
                self.fail(&entry.path, format!("cannot read destination entry: {err}"));
                return false;
            }
        };
        let mut meta = entry.meta();
        // A peer must not be able to plant setuid or setgid programs, which
        // would run as this process's owner, so those bits are dropped.
        meta.mode &= !SETID_BITS;
        let parent = parent.to_vec();
        match entry.kind {
            EntryKind::Dir => {
                self.apply_dir(state, &dir, name, entry, dest);
                false
            }
            EntryKind::Symlink => {
                if self.apply_symlink(&dir, name, entry, dest) {
                    state.changed.insert(parent);
                }
                false
            }
            EntryKind::File => self.plan_file(state, &dir, name, index, entry, meta, dest, parent),
        }
    }

    /// Counts and lists, in a dry run, an entry whose directory does not
    /// exist yet.
    fn plan_new(&self, state: &mut ManifestState, entry: &Entry) -> bool {
        match entry.kind {
            EntryKind::Dir => {
                state.ungrouped.insert(entry.path.clone());
                self.record(ChangeKind::Mkdir, &entry.path);
                self.count_transferred(0);
                false
            }
            EntryKind::Symlink => {
                self.record(ChangeKind::Symlink, &entry.path);
                self.count_transferred(0);
                false
            }
            EntryKind::File => {
                self.record(ChangeKind::Copy, &entry.path);
                self.count_transferred(0);
                false
            }
        }
    }

    fn apply_dir(
        &self,
        state: &mut ManifestState,
        parent: &OwnedFd,
        name: &OsStr,
        entry: &Entry,
        dest: Option<Meta>,
    ) {
        let meta = entry.meta();
        state.ungrouped.insert(entry.path.clone());
        let (parent_path, _) = paths::split_parent(&entry.path);
        match dest {
            Some(dest) if dest.kind == Kind::Dir => {
                let differs = dest.mode != meta.mode || !meta.same_mtime(&dest);
                if differs {
                    self.record(ChangeKind::Metadata, &entry.path);
                    self.count_transferred(0);
                } else {
                    self.count_skipped();
                }
                state.directories.push((entry.path.clone(), meta, differs));
            }
            dest => {
                self.record(ChangeKind::Mkdir, &entry.path);
                if self.options.dry_run {
                    self.count_transferred(0);
                    return;
                }
                // A file or symlink in the way is replaced; a symlink is
                // removed itself, never followed.
                let result = match dest {
                    Some(_) => {
                        fsops::unlink_at(parent, name).and_then(|()| fsops::mkdir_at(parent, name))
                    }
                    None => fsops::mkdir_at(parent, name),
                };
                match result {
                    Ok(()) => {
                        self.count_transferred(0);
                        state.changed.insert(parent_path.to_vec());
                        state.directories.push((entry.path.clone(), meta, true));
                    }
                    Err(err) => self.fail(&entry.path, format!("cannot create directory: {err}")),
                }
            }
        }
    }

    /// Returns whether the directory's entries changed.
    fn apply_symlink(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        entry: &Entry,
        dest: Option<Meta>,
    ) -> bool {
        let target = OsStr::from_bytes(&entry.link_target);
        let meta = entry.meta();
        let dest_is_dir = dest.is_some_and(|d| d.kind == Kind::Dir);
        if let Some(dest) = dest.filter(|d| d.kind == Kind::Symlink) {
            if fsops::read_link_at(dir, name).is_ok_and(|existing| existing == target) {
                if meta.same_mtime(&dest) {
                    self.count_skipped();
                    return false;
                }
                self.record(ChangeKind::Metadata, &entry.path);
                if !self.options.dry_run {
                    if let Err(err) = fsops::set_meta_at(dir, name, &meta) {
                        self.fail(&entry.path, format!("cannot set metadata: {err}"));
                        return false;
                    }
                }
                self.count_transferred(0);
                return false;
            }
        }
        if dest_is_dir && !self.options.mirror {
            self.fail(
                &entry.path,
                "destination is a directory; a copy does not replace it, a mirror does",
            );
            return false;
        }
        self.record(ChangeKind::Symlink, &entry.path);
        if self.options.dry_run {
            self.count_transferred(0);
            return false;
        }
        let result = (|| {
            if dest_is_dir {
                fsops::remove_tree_at(dir, name)?;
            }
            fsops::replace_symlink_at(dir, name, target, &meta)
        })();
        match result {
            Ok(()) => {
                self.count_transferred(0);
                true
            }
            Err(err) => {
                self.fail(&entry.path, format!("cannot create symlink: {err}"));
                false
            }
        }
    }

    /// Decides whether a file's bytes are needed; returns true if so.
    #[allow(clippy::too_many_arguments)]
    fn plan_file(
        &self,
        state: &mut ManifestState,
        dir: &OwnedFd,
        name: &OsStr,
        index: u64,
        entry: &Entry,
        meta: Meta,
        dest: Option<Meta>,
        parent: Vec<u8>,
    ) -> bool {
        let dest_is_dir = dest.is_some_and(|d| d.kind == Kind::Dir);
        if dest_is_dir && !self.options.mirror {
            self.fail(
                &entry.path,
                "destination is a directory; a copy does not replace it, a mirror does",
            );
            return false;
        }
        if let Some(dest) = dest.filter(|d| d.kind == Kind::File) {
            let current = if dest.size != meta.size {
                false
            } else if self.options.checksum {
                match (entry.hash, fsops::hash_file(dir, name)) {
                    (Some(expected), Ok(actual)) => expected == *actual.as_bytes(),
                    _ => false,
                }
            } else {
                meta.same_mtime(&dest)
            };
            if current {
                if dest.mode == meta.mode && meta.same_mtime(&dest) {
                    self.count_skipped();
                    return false;
                }
                self.record(ChangeKind::Metadata, &entry.path);
                if !self.options.dry_run {
                    if let Err(err) = fsops::set_meta_at(dir, name, &meta) {
                        self.fail(&entry.path, format!("cannot set metadata: {err}"));
                        return false;
                    }
                }
                self.count_transferred(0);
                return false;
            }
        }

        self.record(ChangeKind::Copy, &entry.path);
        if self.options.dry_run {
            self.count_transferred(0);
            return false;
        }
        self.progress.add_bytes_total(meta.size);
        state.changed.insert(parent);
        lock(&self.pending).files.insert(
            index,
            PendingFile {
                path: entry.path.clone(),
                meta,
                replace_dir: dest_is_dir,
            },
        );
        true
    }

    /// Opens a group's directory, removes stale temporary files in it and
    /// lists what it holds for the mirror deletion at the group's end.
    fn start_group(&self, state: &mut ManifestState, parent: &[u8]) -> Group {
        state.ungrouped.remove(parent);
        let mut group = Group {
            parent: parent.to_vec(),
            dir: None,
            existing: Vec::new(),
            listed: HashSet::new(),
        };
        let parts = match paths::components(parent) {
            Ok(parts) => parts,
            Err(_) => return group,
        };
        let opened = match &self.root {
            Some(root) => paths::open_dir(root, &parts),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let dir = match opened {
            Ok(dir) => dir,
            Err(err) => {
                if !self.options.dry_run || err.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(dir = %String::from_utf8_lossy(parent), error = %err, "cannot open destination directory");
                }
                return group;
            }
        };
        group.existing = self.clean_stale_temps(state, &dir, parent);
        group.existing.sort_unstable();
        group.dir = Some(Arc::new(dir));
        group
    }

    /// Removes temporary files of an interrupted run from `dir` and returns
    /// the other names in it.
    fn clean_stale_temps(
        &self,
        state: &mut ManifestState,
        dir: &OwnedFd,
        path: &[u8],
    ) -> Vec<OsString> {
        let names = match fsops::read_dir_names(dir) {
            Ok(names) => names,
            Err(err) => {
                self.fail(path, format!("cannot list destination directory: {err}"));
                return Vec::new();
            }
        };
        let mut others = Vec::with_capacity(names.len());
        for name in names {
            if !fsops::is_temp_name(&name) {
                others.push(name);
                continue;
            }
            if self.options.dry_run {
                continue;
            }
            match fsops::unlink_at(dir, &name) {
                Ok(()) => {
                    state.changed.insert(path.to_vec());
                    tracing::debug!(dir = %String::from_utf8_lossy(path), "removed temporary file of an interrupted run");
                }
                Err(err) => tracing::warn!(
                    dir = %String::from_utf8_lossy(path),
                    error = %err,
                    "cannot remove temporary file of an interrupted run"
                ),
            }
        }
        others
    }

    /// Ends the current group: in a mirror, deletes the destination entries
    /// that the group did not list.
    fn finish_group(&self, state: &mut ManifestState) {
        let Some(group) = state.group.take() else {
            return;
        };
        let Some(dir) = group.dir else {
            return;
        };
        if !self.options.mirror {
            return;
        }
        let mut extraneous: Vec<&OsString> = group
            .existing
            .iter()
            .filter(|name| !group.listed.contains(*name))
            .collect();
        extraneous.sort();
        for name in extraneous {
            let path = join(&group.parent, name);
            if self.delete_tree(&dir, name, &path) {
                state.changed.insert(group.parent.clone());
            }
        }
    }

    /// Deletes an extraneous entry unless it is excluded; a directory holding
    /// an excluded entry is kept. Returns whether the entry was removed.
    fn delete_tree(&self, dir: &OwnedFd, name: &OsStr, path: &[u8]) -> bool {
        let Ok(meta) = fsops::stat_at(dir, name) else {
            return false;
        };
        let is_dir = meta.kind == Kind::Dir;
        if self.options.filter.is_excluded(&to_path(path), is_dir) {
            return false;
        }
        if is_dir {
            let mut keep = false;
            match fsops::open_dir_at(dir, name)
                .and_then(|child| fsops::read_dir_names(&child).map(|names| (child, names)))
            {
                Ok((child, mut names)) => {
                    names.sort();
                    for inner in names {
                        let inner_path = join(path, &inner);
                        if !self.delete_tree(&child, &inner, &inner_path) {
                            keep = true;
                        }
                    }
                }
                Err(err) => {
                    self.fail(path, format!("cannot list directory to delete: {err}"));
                    keep = true;
                }
            }
            if keep {
                return false;
            }
        }
        self.record(ChangeKind::Delete, path);
        if self.options.dry_run {
            self.deleted.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let result = if is_dir {
            fsops::rmdir_at(dir, name)
        } else {
            fsops::unlink_at(dir, name)
        };
        match result {
            Ok(()) => {
                self.deleted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(err) => {
                self.fail(path, format!("cannot delete: {err}"));
                false
            }
        }
    }

    /// Marks the manifest complete: ends the last group and, in a mirror,
    /// empties directories whose source is empty.
    pub fn end_manifest(&self) {
        let mut state = lock(&self.manifest);
        if state.ended {
            return;
        }
        self.finish_group(&mut state);
        let mut ungrouped: Vec<Vec<u8>> = state.ungrouped.drain().collect();
        ungrouped.sort();
        for path in ungrouped {
            // A directory with no listed entries is a group of its own.
            let group = self.start_group(&mut state, &path);
            state.group = Some(group);
            self.finish_group(&mut state);
        }
        state.ended = true;
    }

    /// Reads frames from one data connection until its end frame, writing
    /// each file under a temporary name and renaming it into place.
    ///
    /// # Errors
    ///
    /// Returns an error when the stream breaks, violates the framing, names
    /// a file that was not requested, or a write fails part-way (a full
    /// disk, for instance), since the stream cannot be resynchronized.
    /// Files finished before the error stay in place.
    pub fn receive(&self, reader: &mut FrameReader) -> Result<()> {
        lock(&self.pending).readers += 1;
        let result = self.receive_frames(reader);
        let mut pending = lock(&self.pending);
        pending.readers -= 1;
        pending.reader_failed |= result.is_err();
        self.room.notify_all();
        result
    }

    /// Holds back the next manifest batch while [`MAX_PENDING_FILES`]
    /// requested files have not started to arrive, until data readers take
    /// a quarter of them, the transfer is cancelled, or no reader is left to
    /// take them.
    ///
    /// Call it before [`Receiver::accept_batch`] only when the bytes travel
    /// on data connections. When they come inside the control stream,
    /// holding back that stream would also hold back the bytes.
    pub fn wait_for_room(&self) {
        let mut pending = lock(&self.pending);
        if pending.files.len() < MAX_PENDING_FILES {
            return;
        }
        tracing::debug!(
            pending = pending.files.len(),
            "holding back the manifest until data catches up"
        );
        while pending.files.len() > RESUME_PENDING_FILES
            && pending.readers > 0
            && !pending.reader_failed
            && !self.cancel.is_cancelled()
        {
            pending.waiting = true;
            pending = self
                .room
                .wait_timeout(pending, PAUSE_POLL)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
        pending.waiting = false;
    }

    fn receive_frames(&self, reader: &mut FrameReader) -> Result<()> {
        let mut dirs = DirCache::default();
        loop {
            if self.cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let frame = reader.next_frame().map_err(|err| {
                Error::new(
                    blit_core::ErrorKind::from_io(&err),
                    format!("data connection failed: {err}"),
                )
            })?;
            match frame {
                Frame::End => return Ok(()),
                Frame::Failed { index, message } => {
                    let file = self.take_pending(index)?;
                    self.fail(&file.path, format!("sender cannot read file: {message}"));
                }
                Frame::File { index, size } => {
                    let file = self.take_pending(index)?;
                    if size != file.meta.size {
                        return Err(Error::new(
                            ErrorKind::InvalidArgument,
                            format!(
                                "data frame for {} has {size} bytes, the manifest said {}",
                                String::from_utf8_lossy(&file.path),
                                file.meta.size
                            ),
                        ));
                    }
                    self.write_file(reader, &mut dirs, &file)?;
                }
            }
        }
    }

    fn take_pending(&self, index: u64) -> Result<PendingFile> {
        let mut pending = lock(&self.pending);
        let file = pending.files.remove(&index);
        if pending.waiting && pending.files.len() <= RESUME_PENDING_FILES {
            self.room.notify_all();
        }
        file.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("data frame for manifest index {index}, which was not requested"),
            )
        })
    }

    fn write_file(
        &self,
        reader: &mut FrameReader,
        dirs: &mut DirCache,
        file: &PendingFile,
    ) -> Result<()> {
        let broken = |err: std::io::Error| {
            Error::new(
                ErrorKind::from_io(&err),
                format!("data connection failed: {err}"),
            )
        };
        let skip = |reader: &mut FrameReader, message: String| -> Result<()> {
            // The bytes are still on the stream; skip them.
            reader
                .read_content(file.meta.size, None, &mut |_| {})
                .map_err(broken)?;
            self.fail(&file.path, message);
            Ok(())
        };
        let (dir, name) = match self.open_parent(dirs, &file.path) {
            Ok(found) => found,
            Err(message) => return skip(reader, message),
        };
        let temp = match TempFile::create(dir) {
            Ok(temp) => temp,
            Err(err) => return skip(reader, format!("cannot create temporary file: {err}")),
        };

        let progress = &self.progress;
        let content = reader
            .read_content(file.meta.size, Some(temp.fd()), &mut |n| {
                progress.add_bytes_done(n)
            })
            .map_err(broken)?;
        match content {
            Content::Complete => {}
            // Dropping the temporary file deletes it, so nothing partial
            // remains.
            Content::SenderFailed(message) => {
                self.fail(&file.path, format!("sender cannot read file: {message}"));
                return Ok(());
            }
            Content::WriteFailed(err) => {
                self.fail(&file.path, format!("cannot write file: {err}"));
                return Ok(());
            }
        }

        let finish = || -> std::io::Result<()> {
            if file.replace_dir {
                fsops::remove_tree_at(dir, &name)?;
            }
            temp.commit(&name, &file.meta, self.options.fsync)
        };
        match finish() {
            Ok(()) => self.count_transferred(file.meta.size),
            Err(err) => self.fail(&file.path, format!("cannot finish file: {err}")),
        }
        Ok(())
    }

    fn open_parent<'a>(
        &self,
        dirs: &'a mut DirCache,
        path: &[u8],
    ) -> std::result::Result<(&'a OwnedFd, OsString), String> {
        let (parent, name) = match &self.target {
            Target::Dir => paths::split_parent(path),
            Target::File(name) => (&[][..], name.as_os_str()),
        };
        let root = self.root.as_ref().ok_or("the destination does not exist")?;
        let dir = dirs.open(root, parent).map_err(|err| match err.kind() {
            std::io::ErrorKind::InvalidInput => err.to_string(),
            _ => format!("cannot open destination directory: {err}"),
        })?;
        Ok((dir, name.to_os_string()))
    }

    /// Finishes the transfer: files still awaiting bytes fail, directory
    /// metadata is set deepest first, and with fsync the changed
    /// directories are synced. Returns the summary.
    pub fn finish(&self) -> Summary {
        self.end_manifest();
        let missing: Vec<PendingFile> = lock(&self.pending)
            .files
            .drain()
            .map(|(_, file)| file)
            .collect();
        for file in missing {
            self.fail(&file.path, "no data was received for this file");
        }

        let mut state = lock(&self.manifest);
        let changed = std::mem::take(&mut state.changed);
        let mut directories = std::mem::take(&mut state.directories);
        drop(state);
        directories.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        if let (false, Some(root)) = (self.options.dry_run, &self.root) {
            for (path, meta, differs) in &directories {
                if !differs && !changed.contains(path) {
                    continue;
                }
                let result = paths::components(path)
                    .map_err(|err| std::io::Error::other(err.to_string()))
                    .and_then(|parts| paths::open_dir(root, &parts))
                    .and_then(|dir| {
                        fsops::set_dir_meta(&dir, meta)?;
                        if self.options.fsync {
                            fsops::fsync_dir(&dir)?;
                        }
                        Ok(())
                    });
                if let Err(err) = result {
                    self.fail(path, format!("cannot set directory metadata: {err}"));
                }
            }
            if self.options.fsync && changed.contains(&Vec::new()) {
                if let Err(err) = fsops::fsync_dir(root) {
                    self.fail(b"", format!("cannot fsync directory: {err}"));
                }
            }
        }

        let mut failures = std::mem::take(&mut *lock(&self.failures));
        failures.sort_by(|a, b| a.path.cmp(&b.path));
        let mut changes = std::mem::take(&mut *lock(&self.changes));
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Summary {
            transferred: self.transferred.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            deleted: self.deleted.load(Ordering::Relaxed),
            failed: failures.len() as u64,
            bytes: self.bytes.load(Ordering::Relaxed),
            elapsed: self.started.elapsed(),
            dry_run: self.options.dry_run,
            failures,
            changes,
        }
    }
}

fn join(parent: &[u8], name: &OsStr) -> Vec<u8> {
    let mut path = parent.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(name.as_bytes());
    path
}

/// Returns the peer path of a relative file-system path.
pub fn peer_path(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}
