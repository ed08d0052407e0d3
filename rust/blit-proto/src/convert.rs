//! Conversions between protocol messages and core types, including the one
//! table from error kinds to gRPC status codes and back.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use blit_core::{Change, ChangeKind, Error, ErrorKind, Failure, Summary};
use blit_transfer::{Entry, EntryKind};
use tonic::{Code, Status};

use crate::v2;

/// Most failures carried in one summary or manifest end; the count is
/// always complete.
pub const MAX_REPORTED_FAILURES: usize = 1000;

/// Most dry-run changes carried in one summary.
pub const MAX_REPORTED_CHANGES: usize = 100_000;

/// Returns the gRPC code for an error kind.
pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Transfer => Code::DataLoss,
        ErrorKind::Network => Code::Unavailable,
        ErrorKind::Cancelled => Code::Cancelled,
        _ => Code::Internal,
    }
}

/// Returns the error kind for a gRPC code.
pub fn kind_for(code: Code) -> ErrorKind {
    match code {
        Code::NotFound => ErrorKind::NotFound,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => ErrorKind::Conflict,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::DataLoss => ErrorKind::Transfer,
        Code::Unavailable | Code::DeadlineExceeded => ErrorKind::Network,
        Code::Cancelled => ErrorKind::Cancelled,
        _ => ErrorKind::Internal,
    }
}

/// Converts an error into the status that an RPC returns.
pub fn status_from_error(err: &Error) -> Status {
    Status::new(code_for(err.kind()), err.message())
}

/// Converts a status from the daemon at `address` into an error whose
/// message names the address when the daemon's message does not.
pub fn error_from_status(status: &Status, address: &str) -> Error {
    // A connection that breaks mid-stream surfaces as UNKNOWN or INTERNAL
    // with a transport message rather than as UNAVAILABLE.
    let transport_failure = matches!(status.code(), Code::Unknown | Code::Internal)
        && [
            "h2 protocol error",
            "transport error",
            "connection",
            "broken pipe",
        ]
        .iter()
        .any(|hint| status.message().to_lowercase().contains(hint));
    if transport_failure {
        return Error::new(
            ErrorKind::Network,
            format!(
                "the connection to blitd at {address} was lost: {}; check that the daemon is \
                 still running",
                status.message()
            ),
        );
    }
    let kind = kind_for(status.code());
    let message = match (status.code(), status.message()) {
        (Code::Unavailable, detail) => {
            format!(
                "cannot reach blitd at {address}: {detail}; check that it runs and listens there"
            )
        }
        (Code::Unauthenticated, detail) => format!("blitd at {address}: {detail}"),
        (_, "") => format!("blitd at {address} returned {:?}", status.code()),
        (_, message) => message.to_string(),
    };
    Error::new(kind, message)
}

/// Converts a manifest entry to its message.
pub fn entry_to_proto(entry: &Entry) -> v2::Entry {
    v2::Entry {
        path: entry.path.clone().into(),
        kind: match entry.kind {
            EntryKind::File => v2::EntryKind::File,
            EntryKind::Dir => v2::EntryKind::Directory,
            EntryKind::Symlink => v2::EntryKind::Symlink,
        } as i32,
        size: entry.size,
        mode: entry.mode,
        mtime_seconds: entry.mtime_sec,
        mtime_nanos: entry.mtime_nsec,
        link_target: entry.link_target.clone().into(),
        blake3: entry.hash.map(|h| h.to_vec()).unwrap_or_default().into(),
    }
}

/// Converts an entry message from a peer, checking its fields.
///
/// # Errors
///
/// Returns [`ErrorKind::InvalidArgument`] for an unknown kind, nanoseconds
/// out of range, or a hash that is not 32 bytes.
pub fn entry_from_proto(message: v2::Entry) -> Result<Entry, Error> {
    let invalid = |why: String| Error::new(ErrorKind::InvalidArgument, why);
    let kind = match v2::EntryKind::try_from(message.kind) {
        Ok(v2::EntryKind::File) => EntryKind::File,
        Ok(v2::EntryKind::Directory) => EntryKind::Dir,
        Ok(v2::EntryKind::Symlink) => EntryKind::Symlink,
        _ => return Err(invalid(format!("entry has unknown kind {}", message.kind))),
    };
    if message.mtime_nanos >= 1_000_000_000 {
        return Err(invalid(format!(
            "entry has {} nanoseconds",
            message.mtime_nanos
        )));
    }
    let hash = match message.blake3.len() {
        0 => None,
        32 => Some(message.blake3[..].try_into().expect("length checked")),
        other => return Err(invalid(format!("entry hash has {other} bytes, not 32"))),
    };
    Ok(Entry {
        path: message.path.to_vec(),
        kind,
        size: if kind == EntryKind::File {
            message.size
        } else {
            0
        },
        mode: message.mode & 0o7777,
        mtime_sec: message.mtime_seconds,
        mtime_nsec: message.mtime_nanos,
        link_target: message.link_target.to_vec(),
        hash,
    })
}

/// Converts failures to messages, keeping at most
/// [`MAX_REPORTED_FAILURES`].
pub fn failures_to_proto(failures: &[Failure]) -> Vec<v2::EntryFailure> {
    failures
        .iter()
        .take(MAX_REPORTED_FAILURES)
        .map(|failure| v2::EntryFailure {
            path: failure.path.as_os_str().as_bytes().to_vec().into(),
            message: failure.message.clone(),
        })
        .collect()
}

/// Converts failure messages from a peer.
pub fn failures_from_proto(failures: Vec<v2::EntryFailure>) -> Vec<Failure> {
    failures
        .into_iter()
        .map(|failure| Failure {
            path: PathBuf::from(OsStr::from_bytes(&failure.path)),
            message: failure.message,
        })
        .collect()
}

/// Converts a summary to its message.
pub fn summary_to_proto(summary: &Summary) -> v2::TransferSummary {
    v2::TransferSummary {
        transferred: summary.transferred,
        skipped: summary.skipped,
        deleted: summary.deleted,
        failed: summary.failed,
        bytes: summary.bytes,
        failures: failures_to_proto(&summary.failures),
        changes: summary
            .changes
            .iter()
            .take(MAX_REPORTED_CHANGES)
            .map(|change| v2::PlannedChange {
                action: change.kind.as_str().to_string(),
                path: change.path.as_os_str().as_bytes().to_vec().into(),
            })
            .collect(),
    }
}

/// Converts a summary message; `elapsed` is measured by the caller.
pub fn summary_from_proto(
    message: v2::TransferSummary,
    elapsed: Duration,
    dry_run: bool,
) -> Summary {
    Summary {
        transferred: message.transferred,
        skipped: message.skipped,
        deleted: message.deleted,
        failed: message.failed,
        bytes: message.bytes,
        elapsed,
        dry_run,
        failures: failures_from_proto(message.failures),
        changes: message
            .changes
            .into_iter()
            .filter_map(|change| {
                let kind = match change.action.as_str() {
                    "copy" => ChangeKind::Copy,
                    "symlink" => ChangeKind::Symlink,
                    "mkdir" => ChangeKind::Mkdir,
                    "metadata" => ChangeKind::Metadata,
                    "delete" => ChangeKind::Delete,
                    _ => return None,
                };
                Some(Change {
                    kind,
                    path: PathBuf::from(OsStr::from_bytes(&change.path)),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_code() {
        let kinds = [
            ErrorKind::NotFound,
            ErrorKind::PermissionDenied,
            ErrorKind::Unauthenticated,
            ErrorKind::InvalidArgument,
            ErrorKind::Conflict,
            ErrorKind::ResourceExhausted,
            ErrorKind::Transfer,
            ErrorKind::Network,
            ErrorKind::Cancelled,
            ErrorKind::Internal,
        ];
        for kind in kinds {
            assert_eq!(kind_for(code_for(kind)), kind, "{kind:?}");
        }
    }

    #[test]
    fn entry_round_trips() {
        let entry = Entry {
            path: b"a/\xffb".to_vec(),
            kind: EntryKind::File,
            size: 10,
            mode: 0o4755,
            mtime_sec: -5,
            mtime_nsec: 999_999_999,
            link_target: Vec::new(),
            hash: Some([3; 32]),
        };
        assert_eq!(entry_from_proto(entry_to_proto(&entry)).unwrap(), entry);
    }

    #[test]
    fn malformed_entries_rejected() {
        let mut message = entry_to_proto(&Entry {
            path: b"x".to_vec(),
            kind: EntryKind::File,
            size: 0,
            mode: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            link_target: Vec::new(),
            hash: None,
        });
        message.kind = 0;
        assert!(entry_from_proto(message.clone()).is_err());
        message.kind = 1;
        message.mtime_nanos = 1_000_000_000;
        assert!(entry_from_proto(message.clone()).is_err());
        message.mtime_nanos = 0;
        message.blake3 = vec![1; 5].into();
        assert!(entry_from_proto(message).is_err());
    }
}
