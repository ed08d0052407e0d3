"""Exceptions raised by blit.

Every error derives from :class:`BlitError` and, where one fits, from the
matching built-in exception, so ``except FileNotFoundError`` and
``except blit.NotFoundError`` both work. The Rust core raises these classes
by name, one class per error kind.
"""

from __future__ import annotations

__all__ = [
    "BlitError",
    "NotFoundError",
    "PermissionDeniedError",
    "AuthenticationError",
    "InvalidArgumentError",
    "ConflictError",
    "ResourceExhaustedError",
    "TransferError",
    "NetworkError",
    "CancelledError",
    "InternalError",
]


class BlitError(Exception):
    """Base class of every blit error.

    Attributes:
        message: What failed, naming the path, module or address involved.
        path: The path the error concerns, or ``None``.
        kind: A stable lowercase name of the error kind, such as ``"not_found"``.
    """

    kind = "internal"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return self.message


class NotFoundError(BlitError, FileNotFoundError):
    """A named path, module or entry does not exist."""

    kind = "not_found"


class PermissionDeniedError(BlitError, PermissionError):
    """The operating system or the daemon denied the operation."""

    kind = "permission_denied"


class AuthenticationError(BlitError):
    """No valid token was presented to the daemon."""

    kind = "unauthenticated"


class InvalidArgumentError(BlitError, ValueError):
    """An argument, address, pattern or option is malformed."""

    kind = "invalid_argument"


class ConflictError(BlitError):
    """The operation conflicts with what exists, such as a file where a
    directory is required."""

    kind = "conflict"


class ResourceExhaustedError(BlitError):
    """A disk, quota, connection limit or size limit ran out."""

    kind = "resource_exhausted"


class TransferError(BlitError, OSError):
    """Reading or writing file data failed part-way through a transfer."""

    kind = "transfer"


class NetworkError(BlitError, ConnectionError):
    """A connection could not be made or was lost."""

    kind = "network"


class CancelledError(BlitError):
    """The transfer was cancelled, other than by Ctrl-C, which raises
    :class:`KeyboardInterrupt`."""

    kind = "cancelled"


class InternalError(BlitError):
    """A bug in blit: an invariant did not hold."""

    kind = "internal"
