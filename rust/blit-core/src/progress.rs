//! Progress counters and cancellation shared between a running transfer and
//! the code that reports on it.
//!
//! Workers update atomic counters; a caller polls [`Progress::snapshot`] at
//! its own pace (the Python module every 100 ms, a daemon per session), so
//! reporting never slows the transfer and no callback runs on a worker
//! thread.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The stage that a transfer is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Walking the source and comparing it with the destination.
    Scanning,
    /// Writing files, links and directories.
    Transferring,
    /// Finished, successfully or not.
    Done,
}

impl Phase {
    /// Returns the lowercase name used in Python and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Scanning => "scanning",
            Phase::Transferring => "transferring",
            Phase::Done => "done",
        }
    }
}

/// Live counters of one transfer. Totals grow while the scan runs and are
/// final once the phase is [`Phase::Transferring`].
#[derive(Debug, Default)]
pub struct Progress {
    phase: AtomicU8,
    entries_done: AtomicU64,
    entries_total: AtomicU64,
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
    current_path: Mutex<Option<PathBuf>>,
}

/// A consistent-enough copy of [`Progress`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// The stage of the transfer.
    pub phase: Phase,
    /// Source entries handled so far, whether copied, skipped or failed.
    pub entries_done: u64,
    /// Source entries found so far by the scan.
    pub entries_total: u64,
    /// File bytes written so far.
    pub bytes_done: u64,
    /// File bytes that the transfer has to write.
    pub bytes_total: u64,
    /// The path, relative to the transfer root, most recently started.
    pub current_path: Option<PathBuf>,
}

impl Progress {
    /// Creates counters at zero in the scanning phase.
    pub fn new() -> Arc<Progress> {
        Arc::new(Progress::default())
    }

    /// Returns the current values.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let phase = match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Scanning,
            1 => Phase::Transferring,
            _ => Phase::Done,
        };
        ProgressSnapshot {
            phase,
            entries_done: self.entries_done.load(Ordering::Relaxed),
            entries_total: self.entries_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            current_path: self.lock_current().clone(),
        }
    }

    /// Moves the transfer to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        let value = match phase {
            Phase::Scanning => 0,
            Phase::Transferring => 1,
            Phase::Done => 2,
        };
        self.phase.store(value, Ordering::Relaxed);
    }

    /// Adds entries found by the scan.
    pub fn add_entries_total(&self, count: u64) {
        self.entries_total.fetch_add(count, Ordering::Relaxed);
    }

    /// Adds entries handled.
    pub fn add_entries_done(&self, count: u64) {
        self.entries_done.fetch_add(count, Ordering::Relaxed);
    }

    /// Adds bytes that the transfer has to write.
    pub fn add_bytes_total(&self, bytes: u64) {
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds bytes written.
    pub fn add_bytes_done(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records the path most recently started.
    pub fn set_current(&self, path: &Path) {
        *self.lock_current() = Some(path.to_path_buf());
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<PathBuf>> {
        // A worker that panicked while holding the lock left only a path
        // behind, which is still safe to read.
        self.current_path
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A cancellation flag that clones share. Workers check it between files and
/// between chunks of a file, remove their temporary file and stop.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Creates a token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks every holder of this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Returns whether [`CancelToken::cancel`] has been called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
