//! `blit_result`, the status that every fallible C function returns, and
//! the one table from core error kinds to it.

use std::ffi::c_char;

use blit_core::ErrorKind;

/// The status of a call. The numbers are stable: a new status gets a new
/// number, and a retired number is never reused.
///
/// The error statuses map one to one onto the exceptions of the Python
/// module and the gRPC status codes of the daemon. `BLIT_RESULT_PARTIAL`
/// has no counterpart there.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum blit_result {
    /// The call succeeded.
    Ok = 0,
    /// An argument, address, pattern or option is malformed, or a required
    /// pointer is NULL. Python: `InvalidArgumentError`.
    InvalidArgument = 1,
    /// A named path, module or entry does not exist. Python:
    /// `NotFoundError`.
    NotFound = 2,
    /// The operating system or the daemon denied the operation, for example
    /// a write to a read-only module. Python: `PermissionDeniedError`.
    PermissionDenied = 3,
    /// The daemon rejected the token, or none was given. Python:
    /// `AuthenticationError`.
    Unauthenticated = 4,
    /// The operation conflicts with what exists, such as a file where a
    /// directory is required. Python: `ConflictError`.
    Conflict = 5,
    /// A disk, quota, connection limit or size limit ran out. Python:
    /// `ResourceExhaustedError`.
    ResourceExhausted = 6,
    /// Reading or writing file data failed part-way through a transfer.
    /// Python: `TransferError`.
    Transfer = 7,
    /// The daemon cannot be reached, or the connection was lost. Python:
    /// `NetworkError`.
    Network = 8,
    /// The transfer was cancelled through a `blit_cancel` or by the progress
    /// callback. No partial file is left under a final name. Python:
    /// `CancelledError`.
    Cancelled = 9,
    /// A bug in blit, including a Rust panic caught at the C boundary.
    /// Python: `InternalError`.
    Internal = 10,
    /// The transfer ran to the end, but some entries failed. The summary is
    /// written as on success and lists each failure. The Python module
    /// returns the summary without raising; the command-line tool exits
    /// with status 2.
    Partial = 11,
}

impl blit_result {
    /// Returns the status for a core error kind.
    pub(crate) fn from_kind(kind: ErrorKind) -> blit_result {
        match kind {
            ErrorKind::NotFound => blit_result::NotFound,
            ErrorKind::PermissionDenied => blit_result::PermissionDenied,
            ErrorKind::Unauthenticated => blit_result::Unauthenticated,
            ErrorKind::InvalidArgument => blit_result::InvalidArgument,
            ErrorKind::Conflict => blit_result::Conflict,
            ErrorKind::ResourceExhausted => blit_result::ResourceExhausted,
            ErrorKind::Transfer => blit_result::Transfer,
            ErrorKind::Network => blit_result::Network,
            ErrorKind::Cancelled => blit_result::Cancelled,
            // `ErrorKind` is non-exhaustive; a kind added later is reported
            // as internal until it gets its own number here.
            _ => blit_result::Internal,
        }
    }

    /// Returns the name of the status as a NUL-terminated C string.
    fn name(self) -> &'static [u8] {
        match self {
            blit_result::Ok => b"BLIT_RESULT_OK\0",
            blit_result::InvalidArgument => b"BLIT_RESULT_INVALID_ARGUMENT\0",
            blit_result::NotFound => b"BLIT_RESULT_NOT_FOUND\0",
            blit_result::PermissionDenied => b"BLIT_RESULT_PERMISSION_DENIED\0",
            blit_result::Unauthenticated => b"BLIT_RESULT_UNAUTHENTICATED\0",
            blit_result::Conflict => b"BLIT_RESULT_CONFLICT\0",
            blit_result::ResourceExhausted => b"BLIT_RESULT_RESOURCE_EXHAUSTED\0",
            blit_result::Transfer => b"BLIT_RESULT_TRANSFER\0",
            blit_result::Network => b"BLIT_RESULT_NETWORK\0",
            blit_result::Cancelled => b"BLIT_RESULT_CANCELLED\0",
            blit_result::Internal => b"BLIT_RESULT_INTERNAL\0",
            blit_result::Partial => b"BLIT_RESULT_PARTIAL\0",
        }
    }

    /// Returns the status with the number `value`, if there is one.
    fn from_number(value: u32) -> Option<blit_result> {
        const ALL: [blit_result; 12] = [
            blit_result::Ok,
            blit_result::InvalidArgument,
            blit_result::NotFound,
            blit_result::PermissionDenied,
            blit_result::Unauthenticated,
            blit_result::Conflict,
            blit_result::ResourceExhausted,
            blit_result::Transfer,
            blit_result::Network,
            blit_result::Cancelled,
            blit_result::Internal,
            blit_result::Partial,
        ];
        ALL.into_iter().find(|result| *result as u32 == value)
    }
}

/// Returns the name of a status, such as `"BLIT_RESULT_NOT_FOUND"`, or
/// `"BLIT_RESULT_UNKNOWN"` for a number that is not a status.
///
/// The string is static: do not free it. Safe to call from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn blit_result_name(result: u32) -> *const c_char {
    let name =
        blit_result::from_number(result).map_or(&b"BLIT_RESULT_UNKNOWN\0"[..], blit_result::name);
    name.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn kinds_map_to_results() {
        let cases = [
            (ErrorKind::NotFound, blit_result::NotFound),
            (ErrorKind::PermissionDenied, blit_result::PermissionDenied),
            (ErrorKind::Unauthenticated, blit_result::Unauthenticated),
            (ErrorKind::InvalidArgument, blit_result::InvalidArgument),
            (ErrorKind::Conflict, blit_result::Conflict),
            (ErrorKind::ResourceExhausted, blit_result::ResourceExhausted),
            (ErrorKind::Transfer, blit_result::Transfer),
            (ErrorKind::Network, blit_result::Network),
            (ErrorKind::Cancelled, blit_result::Cancelled),
            (ErrorKind::Internal, blit_result::Internal),
        ];
        for (kind, expected) in cases {
            assert_eq!(blit_result::from_kind(kind), expected, "for {kind:?}");
        }
    }

    #[test]
    fn numbers_are_stable() {
        assert_eq!(blit_result::Ok as u32, 0);
        assert_eq!(blit_result::InvalidArgument as u32, 1);
        assert_eq!(blit_result::Network as u32, 8);
        assert_eq!(blit_result::Internal as u32, 10);
        assert_eq!(blit_result::Partial as u32, 11);
    }

    #[test]
    fn names_match_header_constants() {
        let name = |value| unsafe { CStr::from_ptr(blit_result_name(value)) };
        assert_eq!(name(0).to_str(), Ok("BLIT_RESULT_OK"));
        assert_eq!(name(2).to_str(), Ok("BLIT_RESULT_NOT_FOUND"));
        assert_eq!(name(11).to_str(), Ok("BLIT_RESULT_PARTIAL"));
        assert_eq!(name(12).to_str(), Ok("BLIT_RESULT_UNKNOWN"));
        for value in 0..12 {
            let result = blit_result::from_number(value).expect("every number below 12 is used");
            assert_eq!(result as u32, value);
        }
    }
}
