//! `blit_summary`, the result of a transfer, and its getters.

use std::ffi::c_char;

use blit_core::{ChangeKind, Summary};

use crate::ffi::{
    CallError, CallResult, Out, c_text, free_handle, guard, guard_free, handle, into_handle,
    nul_terminated,
};
use crate::result::blit_result;

/// One entry that could not be transferred or deleted. Owned by its
/// summary and valid until `blit_summary_free`.
#[repr(C)]
pub struct blit_failure {
    /// Path relative to the source root, or for a failed deletion to the
    /// destination root, followed by a NUL.
    pub path: *const u8,
    /// Length of `path` in bytes, without the NUL.
    pub path_len: usize,
    /// Error message without the path, as NUL-terminated UTF-8.
    pub message: *const c_char,
}

/// The kind of change that a dry run would make to one destination entry.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum blit_change_kind {
    /// Write a regular file's content.
    Copy = 0,
    /// Create or replace a symbolic link.
    Symlink = 1,
    /// Create a directory.
    Mkdir = 2,
    /// Update only the mode bits or the modification time.
    Metadata = 3,
    /// Delete an entry that the source lacks (mirror only).
    Delete = 4,
}

/// One change that a dry run would make. Owned by its summary and valid
/// until `blit_summary_free`.
#[repr(C)]
pub struct blit_change {
    /// The kind of change.
    pub kind: blit_change_kind,
    /// Path relative to the destination root, followed by a NUL.
    pub path: *const u8,
    /// Length of `path` in bytes, without the NUL.
    pub path_len: usize,
}

/// Counts and details of a finished transfer, returned by `blit_copy`,
/// `blit_push`, `blit_pull` and the client's push and pull, and freed with
/// `blit_summary_free`.
///
/// A summary does not change, so several threads may read it at once.
pub struct blit_summary {
    /// The counts; its failure and change lists are moved into the fields
    /// below.
    summary: Summary,
    failures: Vec<blit_failure>,
    changes: Vec<blit_change>,
    /// The bytes that `failures` and `changes` point into. Each buffer is a
    /// separate heap allocation, so moving the vector moves no bytes.
    _strings: Vec<Box<[u8]>>,
}

impl blit_summary {
    pub(crate) fn new(mut summary: Summary) -> blit_summary {
        let mut strings = Vec::new();
        let mut keep = |buffer: Box<[u8]>| {
            let pointer = buffer.as_ptr();
            strings.push(buffer);
            pointer
        };
        let failures = std::mem::take(&mut summary.failures)
            .into_iter()
            .map(|failure| {
                let path = failure.path.as_os_str().as_encoded_bytes();
                blit_failure {
                    path_len: path.len(),
                    path: keep(nul_terminated(path)),
                    message: keep(c_text(&failure.message)).cast(),
                }
            })
            .collect();
        let changes = std::mem::take(&mut summary.changes)
            .into_iter()
            .map(|change| {
                let path = change.path.as_os_str().as_encoded_bytes();
                blit_change {
                    kind: match change.kind {
                        ChangeKind::Copy => blit_change_kind::Copy,
                        ChangeKind::Symlink => blit_change_kind::Symlink,
                        ChangeKind::Mkdir => blit_change_kind::Mkdir,
                        ChangeKind::Metadata => blit_change_kind::Metadata,
                        ChangeKind::Delete => blit_change_kind::Delete,
                    },
                    path_len: path.len(),
                    path: keep(nul_terminated(path)),
                }
            })
            .collect();
        blit_summary {
            summary,
            failures,
            changes,
            _strings: strings,
        }
    }

    /// Describes the failed entries for `blit_last_error` when a transfer
    /// returns `BLIT_RESULT_PARTIAL`; `None` when nothing failed.
    pub(crate) fn partial_message(summary: &Summary) -> Option<String> {
        if summary.failed == 0 && summary.failures.is_empty() {
            return None;
        }
        let count = summary.failed.max(summary.failures.len() as u64);
        let first = summary.failures.first();
        Some(match (count, first) {
            (1, Some(failure)) => format!(
                "1 entry failed: {}: {}",
                failure.path.display(),
                failure.message
            ),
            (_, Some(failure)) => format!(
                "{count} entries failed; blit_summary_failure lists each. The first: {}: {}",
                failure.path.display(),
                failure.message
            ),
            (_, None) => format!("{count} entries failed"),
        })
    }
}

/// Frees a summary and the failures and changes it owns. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_free(summary: *mut blit_summary) {
    guard_free(|| free_handle(summary));
}

/// Reads one field of a summary into `out`.
fn get<T>(
    function: &str,
    summary: *const blit_summary,
    out: *mut T,
    field: impl FnOnce(&blit_summary) -> T,
) -> blit_result {
    guard(function, || {
        let summary = handle(summary, "summary")?;
        let out = Out::new(out, "out")?;
        out.write(field(summary));
        Ok(())
    })
}

/// Stores the number of entries written or created, including
/// metadata-only updates.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_transferred(
    summary: *const blit_summary,
    out: *mut u64,
) -> blit_result {
    get("blit_summary_transferred", summary, out, |s| {
        s.summary.transferred
    })
}

/// Stores the number of source entries that were already up to date.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_skipped(summary: *const blit_summary, out: *mut u64) -> blit_result {
    get("blit_summary_skipped", summary, out, |s| s.summary.skipped)
}

/// Stores the number of destination entries deleted because the source
/// lacks them (mirror only).
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_deleted(summary: *const blit_summary, out: *mut u64) -> blit_result {
    get("blit_summary_deleted", summary, out, |s| s.summary.deleted)
}

/// Stores the number of entries that failed.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_failed(summary: *const blit_summary, out: *mut u64) -> blit_result {
    get("blit_summary_failed", summary, out, |s| s.summary.failed)
}

/// Stores the number of file content bytes written.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_bytes(summary: *const blit_summary, out: *mut u64) -> blit_result {
    get("blit_summary_bytes", summary, out, |s| s.summary.bytes)
}

/// Stores the wall-clock time of the whole transfer in seconds.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_seconds(summary: *const blit_summary, out: *mut f64) -> blit_result {
    get("blit_summary_seconds", summary, out, |s| {
        s.summary.elapsed.as_secs_f64()
    })
}

/// Stores whether the transfer was a dry run that changed nothing.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_dry_run(
    summary: *const blit_summary,
    out: *mut bool,
) -> blit_result {
    get("blit_summary_dry_run", summary, out, |s| s.summary.dry_run)
}

/// Stores the number of failures that `blit_summary_failure` lists, one per
/// failed entry, sorted by path.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_failure_count(
    summary: *const blit_summary,
    out: *mut usize,
) -> blit_result {
    get("blit_summary_failure_count", summary, out, |s| {
        s.failures.len()
    })
}

/// Stores a pointer to failure number `index`, counted from 0. The failure
/// belongs to the summary; do not free it.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` when `index` is not below the
/// count from `blit_summary_failure_count`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_failure(
    summary: *const blit_summary,
    index: usize,
    out: *mut *const blit_failure,
) -> blit_result {
    guard("blit_summary_failure", || {
        let summary = handle(summary, "summary")?;
        let out = Out::new(out, "out")?;
        out.write(item(&summary.failures, index, "failures")?);
        Ok(())
    })
}

/// Stores the number of changes that a dry run would make; 0 for a
/// transfer that was not a dry run.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_change_count(
    summary: *const blit_summary,
    out: *mut usize,
) -> blit_result {
    get("blit_summary_change_count", summary, out, |s| {
        s.changes.len()
    })
}

/// Stores a pointer to change number `index` of a dry run, counted from 0,
/// sorted by path. The change belongs to the summary; do not free it.
///
/// Returns `BLIT_RESULT_INVALID_ARGUMENT` when `index` is not below the
/// count from `blit_summary_change_count`.
#[unsafe(no_mangle)]
pub extern "C" fn blit_summary_change(
    summary: *const blit_summary,
    index: usize,
    out: *mut *const blit_change,
) -> blit_result {
    guard("blit_summary_change", || {
        let summary = handle(summary, "summary")?;
        let out = Out::new(out, "out")?;
        out.write(item(&summary.changes, index, "changes")?);
        Ok(())
    })
}

/// Returns a pointer to `items[index]`, or an error naming the count.
pub(crate) fn item<T>(items: &[T], index: usize, what: &str) -> Result<*const T, CallError> {
    items.get(index).map(std::ptr::from_ref).ok_or_else(|| {
        CallError::argument(format!(
            "index {index} is out of range; there are {} {what}",
            items.len()
        ))
    })
}

/// Stores a finished transfer's summary in `out`, and returns
/// `BLIT_RESULT_PARTIAL` when some entries failed.
pub(crate) fn finish(
    result: Result<Summary, CallError>,
    out: Out<*mut blit_summary>,
) -> CallResult {
    let summary = result?;
    let partial = blit_summary::partial_message(&summary);
    out.write(into_handle(blit_summary::new(summary)));
    match partial {
        Some(message) => Err(CallError::partial(message)),
        None => Ok(()),
    }
}
