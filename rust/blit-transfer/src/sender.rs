//! The sending end: remembers the files of the manifest batches it sent,
//! queues those that the receiver's need-lists ask for, and writes them as
//! frames to one or more data connections.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use blit_core::fsops::{self, Kind, Meta};
use blit_core::{CancelToken, Error, ErrorKind, Progress, Result};

use crate::frame::FrameWriter;
use crate::manifest::{Entry, EntryKind};
use crate::paths::{self, DirCache};

/// The sending end of one transfer. Methods take `&self` so that the
/// control stream and the data connections can drive it at once.
pub struct Sender {
    root: OwnedFd,
    /// For a single-file transfer, the file's name in `root`.
    single: Option<OsString>,
    progress: Arc<Progress>,
    cancel: CancelToken,
    state: Mutex<SenderState>,
    queue: crossbeam_channel::Receiver<u64>,
    queue_input: Mutex<Option<crossbeam_channel::Sender<u64>>>,
    files_sent: AtomicU64,
}

#[derive(Default)]
struct SenderState {
    /// Files of sent batches that are not yet covered by a need-list or
    /// sent, by index, with their path
    /// and manifest size.
    files: HashMap<u64, (Vec<u8>, u64)>,
    /// Index ranges of the batches awaiting a need-list, oldest first.
    unanswered: VecDeque<(u64, u64)>,
    /// Whether the last batch has been sent.
    manifest_complete: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sender {
    /// Creates the sending end for the open source directory `root`, or for
    /// the file `single` inside it.
    pub fn new(
        root: OwnedFd,
        single: Option<OsString>,
        progress: Arc<Progress>,
        cancel: CancelToken,
    ) -> Sender {
        let (input, queue) = crossbeam_channel::unbounded();
        Sender {
            root,
            single,
            progress,
            cancel,
            state: Mutex::new(SenderState::default()),
            queue,
            queue_input: Mutex::new(Some(input)),
            files_sent: AtomicU64::new(0),
        }
    }

    /// Records a manifest batch that was sent, starting at `first_index`.
    pub fn batch_sent(&self, first_index: u64, entries: &[Entry]) {
        let mut state = lock(&self.state);
        for (offset, entry) in entries.iter().enumerate() {
            if entry.kind == EntryKind::File {
                state.files.insert(
                    first_index + offset as u64,
                    (entry.path.clone(), entry.size),
                );
            }
        }
        state
            .unanswered
            .push_back((first_index, entries.len() as u64));
    }

    /// Applies the receiver's need-list for the oldest unanswered batch:
    /// queues the listed files and drops the batch's other files.
    ///
    /// # Errors
    ///
    /// Returns [`ErrorKind::InvalidArgument`] for a need-list with no batch
    /// awaiting one, or naming an index outside its batch or not a file.
    pub fn need(&self, indices: &[u64]) -> Result<()> {
        // The queue's input is locked first, here and in
        // `manifest_complete`, so the queue is never closed between taking
        // the last need-list and queueing its files.
        let mut input = lock(&self.queue_input);
        let mut state = lock(&self.state);
        let (first, count) = state.unanswered.pop_front().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "need-list received with no batch awaiting one",
            )
        })?;
        let mut wanted = Vec::with_capacity(indices.len());
        for &index in indices {
            if index < first || index >= first + count || !state.files.contains_key(&index) {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    format!("need-list names index {index}, which is not a file of its batch"),
                ));
            }
            wanted.push(index);
        }
        wanted.sort_unstable();
        wanted.dedup();
        for index in first..first + count {
            if wanted.binary_search(&index).is_err() {
                state.files.remove(&index);
            }
        }
        // Entries the receiver does not need are done: up to date, or not
        // files at all.
        self.progress
            .add_entries_done(count.saturating_sub(wanted.len() as u64));
        for index in &wanted {
            if let Some((_, size)) = state.files.get(index) {
                self.progress.add_bytes_total(*size);
            }
        }
        let last = state.manifest_complete && state.unanswered.is_empty();
        drop(state);

        if let Some(queue) = input.as_ref() {
            for index in wanted {
                // The receiving half lives as long as `self`.
                let _ = queue.send(index);
            }
        }
        if last {
            input.take();
        }
        Ok(())
    }

    /// Declares that every manifest batch has been sent. The queue closes
    /// once the need-lists of all of them have arrived, so data connections
    /// then end after the last file.
    pub fn manifest_complete(&self) {
        let mut input = lock(&self.queue_input);
        let mut state = lock(&self.state);
        state.manifest_complete = true;
        if state.unanswered.is_empty() {
            input.take();
        }
    }

    /// Returns the number of files whose content was sent.
    pub fn files_sent(&self) -> u64 {
        self.files_sent.load(Ordering::Relaxed)
    }

    /// Declares that no more need-lists come, so data connections end once
    /// the queue drains.
    pub fn close(&self) {
        lock(&self.queue_input).take();
    }

    /// Sends queued files on one connection until the queue is closed and
    /// empty, then writes the end frame. Several connections may run this
    /// at once; each file goes to exactly one of them.
    ///
    /// # Errors
    ///
    /// Returns an error when writing to the connection fails or the
    /// transfer is cancelled. Files that cannot be read are sent as failed
    /// frames instead.
    pub fn run_connection(&self, writer: &mut FrameWriter<'_>) -> Result<()> {
        let broken = |err: std::io::Error| {
            Error::new(
                ErrorKind::from_io(&err),
                format!("data connection failed: {err}"),
            )
        };
        let mut dirs = DirCache::default();
        loop {
            let index = match self.queue.try_recv() {
                Ok(index) => index,
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    // Nothing to send until more need-lists arrive: the
                    // receiver must have every byte before this waits.
                    writer.flush().map_err(broken)?;
                    match self.queue.recv() {
                        Ok(index) => index,
                        Err(crossbeam_channel::RecvError) => break,
                    }
                }
            };
            if self.cancel.is_cancelled() {
                return Err(Error::cancelled());
            }
            let Some((path, size)) = lock(&self.state).files.remove(&index) else {
                continue;
            };
            match self.open_file(&mut dirs, &path) {
                Ok((file, meta)) if meta.kind == Kind::File => {
                    let progress = &self.progress;
                    writer
                        .write_file(index, size, &file, &mut |n| progress.add_bytes_done(n))
                        .map_err(broken)?;
                    self.files_sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => writer
                    .write_failed(index, "no longer a regular file")
                    .map_err(broken)?,
                Err(err) => writer
                    .write_failed(index, &format!("cannot open: {err}"))
                    .map_err(broken)?,
            }
            self.progress.add_entries_done(1);
        }
        writer.write_end().map_err(broken)
    }

    fn open_file(&self, dirs: &mut DirCache, path: &[u8]) -> std::io::Result<(OwnedFd, Meta)> {
        let file = match &self.single {
            Some(name) => fsops::open_file_at(&self.root, name)?,
            None => {
                let (parent, name) = paths::split_parent(path);
                fsops::open_file_at(dirs.open(&self.root, parent)?, name)?
            }
        };
        let meta = Meta::from_stat(&rustix::fs::fstat(&file)?);
        Ok((file, meta))
    }
}
