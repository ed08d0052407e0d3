//! The one error type that every blit surface maps from.
//!
//! Each [`ErrorKind`] maps one to one onto a gRPC status code, a C status
//! code and a Python exception class, so the kind is part of the public
//! contract. Messages name the path, module or address involved.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The category of a failure, stable across the Rust, Python and C surfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A named path, module or entry does not exist.
    NotFound,
    /// The operating system or the daemon denied the operation.
    PermissionDenied,
    /// No valid credentials were presented.
    Unauthenticated,
    /// An argument, address, pattern or option is malformed.
    InvalidArgument,
    /// The operation conflicts with what exists, such as a file where a
    /// directory is required.
    Conflict,
    /// A disk, quota, connection limit or size limit ran out.
    ResourceExhausted,
    /// Reading or writing file data failed part-way through a transfer.
    Transfer,
    /// A connection could not be made or was lost.
    Network,
    /// The caller cancelled the operation.
    Cancelled,
    /// A bug in blit: an invariant did not hold.
    Internal,
}

impl ErrorKind {
    /// Returns the lowercase name used in logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Conflict => "conflict",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Transfer => "transfer",
            ErrorKind::Network => "network",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    /// Classifies an operating-system error.
    pub fn from_io(err: &io::Error) -> ErrorKind {
        match err.kind() {
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::AlreadyExists
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::DirectoryNotEmpty => ErrorKind::Conflict,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => {
                ErrorKind::InvalidArgument
            }
            io::ErrorKind::StorageFull
            | io::ErrorKind::QuotaExceeded
            | io::ErrorKind::FileTooLarge
            | io::ErrorKind::OutOfMemory => ErrorKind::ResourceExhausted,
            io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::TimedOut
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable => ErrorKind::Network,
            io::ErrorKind::Interrupted => ErrorKind::Cancelled,
            _ => ErrorKind::Transfer,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its kind, a message that names what failed, and the path
/// involved when there is one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    source: Option<io::Error>,
}

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Creates an error from a kind and a complete message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            path: None,
            source: None,
        }
    }

    /// Creates an error for an operating-system failure of `action` on `path`,
    /// such as `Error::io("cannot open source file", path, err)`.
    pub fn io(action: &str, path: &Path, err: io::Error) -> Error {
        Error {
            kind: ErrorKind::from_io(&err),
            message: format!("{action} {}: {err}", path.display()),
            path: Some(path.to_path_buf()),
            source: Some(err),
        }
    }

    /// Creates a cancellation error.
    pub fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled, "transfer cancelled")
    }

    /// Attaches the path that the error concerns.
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Error {
        self.path = Some(path.into());
        self
    }

    /// Returns the kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Returns the message, which already names the path when there is one.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Returns the path that the error concerns, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Returns the operating-system error code behind this error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_taxonomy() {
        let cases = [
            (io::ErrorKind::NotFound, ErrorKind::NotFound),
            (io::ErrorKind::PermissionDenied, ErrorKind::PermissionDenied),
            (io::ErrorKind::AlreadyExists, ErrorKind::Conflict),
            (io::ErrorKind::StorageFull, ErrorKind::ResourceExhausted),
            (io::ErrorKind::ConnectionRefused, ErrorKind::Network),
            (io::ErrorKind::UnexpectedEof, ErrorKind::Transfer),
        ];
        for (io_kind, expected) in cases {
            let err = Error::io("cannot open", Path::new("/x"), io::Error::from(io_kind));
            assert_eq!(err.kind(), expected, "for {io_kind:?}");
        }
    }

    #[test]
    fn io_error_message_names_path() {
        let err = Error::io(
            "cannot open source file",
            Path::new("/data/a.txt"),
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert!(
            err.message()
                .starts_with("cannot open source file /data/a.txt: ")
        );
        assert_eq!(err.path(), Some(Path::new("/data/a.txt")));
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}
