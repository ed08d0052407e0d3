"""blit: fast, safe file transfer.

Local copy and mirror today, driven by the same Rust engine as the ``blit``
command-line tool::

    import blit
    summary = blit.mirror("src/", "backup/", exclude=["*.tmp"])
    print(summary.transferred, summary.bytes)
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Union

from blit._blit import (
    DEFAULT_THREADS,
    MAX_THREADS,
    Change,
    Failure,
    Progress,
    Summary,
    __version__,
)
from blit._blit import copy as _copy
from blit.errors import (
    AuthenticationError,
    BlitError,
    CancelledError,
    ConflictError,
    InternalError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    TransferError,
)

__all__ = [
    "__version__",
    "DEFAULT_THREADS",
    "MAX_THREADS",
    "copy",
    "mirror",
    "Summary",
    "Failure",
    "Change",
    "Progress",
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

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def copy(
    src: PathArg,
    dst: PathArg,
    *,
    mirror: bool = False,
    dry_run: bool = False,
    exclude: Iterable[str] | str = (),
    checksum: bool = False,
    fsync: bool = False,
    progress: Callable[[Progress], object] | None = None,
    threads: int = 0,
) -> Summary:
    """Copy ``src`` to ``dst``; with ``mirror=True`` also delete what ``src`` lacks.

    A directory source's contents go into ``dst``, which is created if
    missing. A single-file source goes into ``dst`` when that is an existing
    directory or ends in ``/``; otherwise ``dst`` is its new name.

    Args:
        src: Source path (``str``, ``bytes`` or path-like).
        dst: Destination path.
        mirror: Delete destination entries that the source lacks, except
            excluded ones.
        dry_run: List the changes in ``Summary.changes`` and make none.
        exclude: Patterns with rsync's rules (one string is one pattern): no ``/`` matches a name at any
            depth, a leading ``/`` anchors at the root, a trailing ``/``
            matches directories only, ``**`` crosses directories.
        checksum: Compare files of equal size by BLAKE3 hash instead of mtime.
        fsync: Fsync each file and its directory before returning.
        progress: Called with a :class:`Progress` about every 100 ms and once
            at the end, on the calling thread. An exception it raises cancels
            the transfer and propagates.
        threads: Worker threads; 0 picks a default from the core count.

    Returns:
        A :class:`Summary`. Entries that failed are counted in ``failed`` and
        listed in ``failures``; they do not raise.

    Raises:
        BlitError: A subclass naming what failed, when the transfer cannot
            start (missing source, bad pattern, overlapping paths).
        KeyboardInterrupt: Ctrl-C; no partial file is left under a final name.
    """
    return _copy(
        src,
        dst,
        mirror=mirror,
        dry_run=dry_run,
        exclude=[exclude] if isinstance(exclude, (str, bytes)) else list(exclude),
        checksum=checksum,
        fsync=fsync,
        progress=progress,
        threads=threads,
    )


def mirror(
    src: PathArg,
    dst: PathArg,
    *,
    dry_run: bool = False,
    exclude: Iterable[str] | str = (),
    checksum: bool = False,
    fsync: bool = False,
    progress: Callable[[Progress], object] | None = None,
    threads: int = 0,
) -> Summary:
    """Make ``dst`` a copy of ``src``, deleting what ``src`` lacks.

    The same as :func:`copy` with ``mirror=True``; see it for the arguments.
    """
    return copy(
        src,
        dst,
        mirror=True,
        dry_run=dry_run,
        exclude=exclude,
        checksum=checksum,
        fsync=fsync,
        progress=progress,
        threads=threads,
    )
