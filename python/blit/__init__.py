"""blit: fast, safe file transfer.

Local copy and mirror, and push, pull, list and purge against a ``blitd``
daemon, driven by the same Rust engine as the ``blit`` command-line tool::

    import blit
    summary = blit.mirror("src/", "backup/", exclude=["*.tmp"])
    print(summary.transferred, summary.bytes)
    blit.push("src/", "blit://backup.example.org/photos/2024")

Remote addresses have the form ``blit://HOST[:PORT]/MODULE[/PATH]``; port
50051 is the default. ``blits://`` is the same over TLS: the daemon's
certificate must chain to the system's trusted CAs or to the PEM file that
``tls_ca=`` names. Functions that reach a daemon take ``token=``, and
otherwise read the ``BLIT_TOKEN`` environment variable.
"""

from __future__ import annotations

import os

from blit._blit import (
    DEFAULT_THREADS,
    MAX_THREADS,
    Change,
    Client,
    DaemonStatus,
    Entry,
    Failure,
    Module,
    Progress,
    Summary,
    __version__,
)
from blit._blit import copy as _copy
from blit._remote import list, pull, purge, push, status
from blit._remote import exclude_list as _exclude_list
from blit._remote import remote_address as _remote_address
from blit._remote import remote_to_remote_error as _remote_to_remote_error
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

# typing is imported only by type checkers: at run time it costs more
# than the rest of the start-up of the blit command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from blit._remote import CaFileArg, PathArg

__all__ = [
    "__version__",
    "DEFAULT_THREADS",
    "MAX_THREADS",
    "copy",
    "mirror",
    "push",
    "pull",
    "list",
    "purge",
    "status",
    "Client",
    "Summary",
    "Failure",
    "Change",
    "Progress",
    "Entry",
    "Module",
    "DaemonStatus",
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
    token: str | None = None,
    tls_ca: CaFileArg | None = None,
    force_grpc_data: bool = False,
) -> Summary:
    """Copy ``src`` to ``dst``; with ``mirror=True`` also delete what ``src`` lacks.

    A directory source's contents go into ``dst``, which is created if
    missing. A single-file source goes into ``dst`` when that is an existing
    directory or ends in ``/``; otherwise ``dst`` is its new name.

    Either side may be a remote address, ``blit://HOST[:PORT]/MODULE[/PATH]``
    or ``blits://...`` for TLS: a local ``src`` and a remote ``dst`` is a
    :func:`push`, a remote ``src`` and a local ``dst`` is a :func:`pull`.

    Args:
        src: Source path (``str``, ``bytes`` or path-like) or remote address.
        dst: Destination path or remote address.
        mirror: Delete destination entries that the source lacks, except
            excluded ones.
        dry_run: List the changes in ``Summary.changes`` and make none.
        exclude: Patterns with rsync's rules (one string is one pattern):
            no ``/`` matches a name at any depth, a leading ``/`` anchors at
            the root, a trailing ``/`` matches directories only, ``**``
            crosses directories.
        checksum: Compare files of equal size by BLAKE3 hash instead of mtime.
        fsync: Fsync each file and its directory before returning.
        progress: Called with a :class:`Progress` about every 100 ms and once
            at the end, on the calling thread. An exception it raises cancels
            the transfer and propagates.
        threads: Worker threads of a local transfer; 0 picks a default from
            the core count. A push or pull takes only 0.
        token: Bearer token for a remote side; ``None`` reads ``BLIT_TOKEN``.
            A local transfer ignores it.
        tls_ca: PEM file of CA certificates to trust, in addition to the
            system's, for a ``blits://`` side, such as the ``ca.pem`` of
            ``blitd tls self-signed``.
        force_grpc_data: For a push or pull, carry file bytes inside the gRPC
            stream instead of over the daemon's data port.

    Returns:
        A :class:`Summary`. Entries that failed are counted in ``failed`` and
        listed in ``failures``; they do not raise.

    Raises:
        BlitError: A subclass naming what failed, when the transfer cannot
            start (missing source, bad pattern, overlapping paths, daemon
            unreachable, TLS certificate not verified; see :func:`push`).
            :class:`InvalidArgumentError` when both sides are remote, for
            ``threads`` with a remote side, and for ``force_grpc_data`` or
            ``tls_ca`` with two local sides.
        KeyboardInterrupt: Ctrl-C; no partial file is left under a final name.
    """
    src_url = _remote_address(src)
    dst_url = _remote_address(dst)
    if src_url is not None and dst_url is not None:
        raise _remote_to_remote_error(src_url, dst_url)
    if src_url is None and dst_url is None:
        if force_grpc_data:
            raise InvalidArgumentError(
                "force_grpc_data applies only to a push or pull; "
                "give a blit:// address on one side or leave it False"
            )
        if tls_ca is not None:
            raise InvalidArgumentError(
                f"tls_ca {os.fspath(tls_ca)} applies only to a push or pull with a "
                "blits:// address; give one as src or dst, or leave tls_ca None"
            )
        return _copy(
            src,
            dst,
            mirror=mirror,
            dry_run=dry_run,
            exclude=_exclude_list(exclude),
            checksum=checksum,
            fsync=fsync,
            progress=progress,
            threads=threads,
        )
    if threads != 0:
        raise InvalidArgumentError(
            f"threads = {threads} applies only to a local transfer; "
            "leave it at 0 for a push or pull"
        )
    if dst_url is not None:
        return push(
            src,
            dst_url,
            mirror=mirror,
            dry_run=dry_run,
            exclude=exclude,
            checksum=checksum,
            fsync=fsync,
            progress=progress,
            token=token,
            tls_ca=tls_ca,
            force_grpc_data=force_grpc_data,
        )
    assert src_url is not None
    return pull(
        src_url,
        dst,
        mirror=mirror,
        dry_run=dry_run,
        exclude=exclude,
        checksum=checksum,
        fsync=fsync,
        progress=progress,
        token=token,
        tls_ca=tls_ca,
        force_grpc_data=force_grpc_data,
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
    token: str | None = None,
    tls_ca: CaFileArg | None = None,
    force_grpc_data: bool = False,
) -> Summary:
    """Make ``dst`` a copy of ``src``, deleting what ``src`` lacks.

    The same as :func:`copy` with ``mirror=True``; see it for the arguments.
    Either side may be a remote address.
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
        token=token,
        tls_ca=tls_ca,
        force_grpc_data=force_grpc_data,
    )
