"""Module-level functions for a blit daemon: push, pull, list, purge and status.

Each function connects a :class:`blit.Client` to the daemon that its address
names and makes one call on it. The Rust core parses the addresses, sets up
TLS for ``blits://`` and checks ``tls_ca``, and this module only decides
which call an address needs.
"""

from __future__ import annotations

import builtins
import os

from blit._blit import Client, DaemonStatus, Entry, Module, Progress, Summary
from blit.errors import InternalError, InvalidArgumentError

__all__ = ["push", "pull", "list", "purge", "status", "remote_address", "exclude_list"]

# typing is imported only by type checkers: at run time it costs more
# than the rest of the start-up of the blit command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Union

    PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

    # The path of a PEM file of CA certificates, for ``tls_ca=``.
    CaFileArg = Union[str, "os.PathLike[str]"]

    ProgressCallback = Callable[[Progress], object]

# The schemes of remote addresses, matched case-sensitively as the core does.
REMOTE_SCHEMES = ("blit://", "blits://")


def remote_address(value: PathArg) -> str | None:
    """Return ``value`` as a ``str`` if it is a ``blit://`` or ``blits://`` address, else ``None``.

    Raises:
        InvalidArgumentError: ``value`` is a remote address in ``bytes``
            that is not valid UTF-8.
        TypeError: ``value`` is not a string, bytes or path-like object.
    """
    path = os.fspath(value)
    if isinstance(path, str):
        return path if path.startswith(REMOTE_SCHEMES) else None
    if not path.startswith(tuple(scheme.encode() for scheme in REMOTE_SCHEMES)):
        return None
    try:
        return path.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"invalid address {path!r}: a remote address must be valid UTF-8"
        ) from None


def exclude_list(exclude: Iterable[str] | str) -> builtins.list[str]:
    """Return the exclude patterns as a list, taking one string as one pattern."""
    if isinstance(exclude, (str, bytes)):
        return [exclude]
    return builtins.list(exclude)


def remote_to_remote_error(src: str, dst: str) -> InvalidArgumentError:
    """Build the error for a transfer with two remote sides."""
    return InvalidArgumentError(
        f"remote to remote is not supported yet: {src} -> {dst}; "
        "pull to a local directory, then push from it"
    )


def push(
    src: PathArg,
    url: str,
    *,
    mirror: bool = False,
    dry_run: bool = False,
    exclude: Iterable[str] | str = (),
    checksum: bool = False,
    fsync: bool = False,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    tls_ca: CaFileArg | None = None,
    force_grpc_data: bool = False,
) -> Summary:
    """Copy a local file or directory to a daemon, or with ``mirror=True`` mirror it.

    A directory source's contents go into the directory that ``url`` names,
    which is created if missing. A single-file source goes into ``url`` when
    that is an existing directory or ends in ``/``. Otherwise ``url`` is the
    file's new name.

    Args:
        src: Local source path (``str``, ``bytes`` or path-like).
        url: Destination, ``blit://HOST[:PORT]/MODULE[/PATH]``, or
            ``blits://...`` for TLS.
        mirror: Delete entries under ``url`` that ``src`` lacks, except
            excluded ones.
        dry_run: Count the changes in the summary and make none.
        exclude: Patterns with rsync's rules, as for :func:`blit.copy`.
        checksum: Compare files of equal size by BLAKE3 hash instead of mtime.
        fsync: Have the daemon fsync each file and its directory before it
            reports success.
        progress: Called with a :class:`blit.Progress` about every 100 ms and
            once at the end, on the calling thread. An exception it raises
            cancels the transfer and propagates.
        token: Bearer token for the daemon. ``None`` reads ``BLIT_TOKEN``.
        tls_ca: PEM file of CA certificates to trust, in addition to the
            system's, for a ``blits://`` address. Pass the ``ca.pem`` of
            ``blitd tls self-signed`` here.
        force_grpc_data: Send file bytes inside the gRPC stream instead of
            over the daemon's data port.

    Returns:
        A :class:`blit.Summary`. Entries that failed are counted in
        ``failed`` and listed in ``failures`` instead of raising.

    Raises:
        NotFoundError: ``src``, the module, the parent of the destination or
            the ``tls_ca`` file does not exist.
        PermissionDeniedError: The module is read-only.
        InvalidArgumentError: A malformed address or pattern, a path that
            leaves the module, or a remote ``src``. Also a ``tls_ca`` file
            with no PEM certificate, ``tls_ca`` with a ``blit://``
            address, ``blit://`` for a daemon that requires TLS, or
            ``blits://`` for one that does not.
        NetworkError: The daemon cannot be reached, or its TLS certificate
            cannot be verified. The message names its address.
        KeyboardInterrupt: On Ctrl-C. No partial file is left under a final name.
    """
    source_url = remote_address(src)
    if source_url is not None:
        raise remote_to_remote_error(source_url, url)
    client = Client(url, token=token, tls_ca=tls_ca)
    return client.push(
        src,
        url,
        mirror=mirror,
        dry_run=dry_run,
        exclude=exclude_list(exclude),
        checksum=checksum,
        fsync=fsync,
        progress=progress,
        force_grpc_data=force_grpc_data,
    )


def pull(
    url: str,
    dst: PathArg,
    *,
    mirror: bool = False,
    dry_run: bool = False,
    exclude: Iterable[str] | str = (),
    checksum: bool = False,
    fsync: bool = False,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    tls_ca: CaFileArg | None = None,
    force_grpc_data: bool = False,
) -> Summary:
    """Copy a file or directory from a daemon to a local path, or with ``mirror=True`` mirror it.

    ``dst`` follows the same rules as the destination of :func:`blit.copy`.

    Args:
        url: Source, ``blit://HOST[:PORT]/MODULE[/PATH]``, or
            ``blits://...`` for TLS.
        dst: Local destination path.
        mirror: Delete local entries under ``dst`` that the source lacks,
            except excluded ones.
        dry_run: List the changes in ``Summary.changes`` and make none.
        exclude: Patterns with rsync's rules, as for :func:`blit.copy`.
        checksum: Compare files of equal size by BLAKE3 hash instead of mtime.
        fsync: Fsync each file and its directory before returning.
        progress: Called as for :func:`push`.
        token: Bearer token for the daemon. ``None`` reads ``BLIT_TOKEN``.
        tls_ca: CA file for a ``blits://`` address, as for :func:`push`.
        force_grpc_data: Receive file bytes inside the gRPC stream instead
            of over the daemon's data port.

    Returns:
        A :class:`blit.Summary`, as for :func:`push`.

    Raises:
        NotFoundError: The module, the source path or the ``tls_ca`` file
            does not exist.
        InvalidArgumentError: A malformed address or pattern, a path that
            leaves the module, a remote ``dst``, or a TLS setting that does
            not fit the daemon, as for :func:`push`.
        NetworkError: The daemon cannot be reached, or its TLS certificate
            cannot be verified. The message names its address.
        KeyboardInterrupt: On Ctrl-C. No partial file is left under a final name.
    """
    destination_url = remote_address(dst)
    if destination_url is not None:
        raise remote_to_remote_error(url, destination_url)
    client = Client(url, token=token, tls_ca=tls_ca)
    return client.pull(
        url,
        dst,
        mirror=mirror,
        dry_run=dry_run,
        exclude=exclude_list(exclude),
        checksum=checksum,
        fsync=fsync,
        progress=progress,
        force_grpc_data=force_grpc_data,
    )


def names_daemon_only(url: str) -> bool:
    """Return whether ``url`` names a daemon with no module or path after the host."""
    _scheme, _separator, rest = url.partition("://")
    _authority, _slash, path = rest.partition("/")
    return path.strip("/") == ""


def list(
    url: str,
    *,
    recursive: bool = False,
    token: str | None = None,
    tls_ca: CaFileArg | None = None,
) -> builtins.list[Entry] | builtins.list[Module]:
    """List the modules of a daemon, or the entries of a directory in a module.

    Args:
        url: ``blit://HOST[:PORT]/`` to list the daemon's modules, or
            ``blit://HOST[:PORT]/MODULE[/PATH]`` to list a directory (or
            describe one file). ``blits://`` connects with TLS.
        recursive: Also list every entry below the subdirectories. Ignored
            when listing modules.
        token: Bearer token for the daemon. ``None`` reads ``BLIT_TOKEN``.
        tls_ca: CA file for a ``blits://`` address, as for :func:`push`.

    Returns:
        A list of :class:`blit.Module` for a daemon address, else a list of
        :class:`blit.Entry` with paths relative to ``url``.

    Raises:
        NotFoundError: The module, the path or the ``tls_ca`` file does not
            exist.
        InvalidArgumentError: A malformed address, a path that leaves the
            module, or a TLS setting that does not fit the daemon, as for
            :func:`push`.
        NetworkError: The daemon cannot be reached, or its TLS certificate
            cannot be verified.
    """
    client = Client(url, token=token, tls_ca=tls_ca)
    if names_daemon_only(url):
        return client.list_modules()
    return client.list(url, recursive=recursive)


def purge(*urls: str, token: str | None = None, tls_ca: CaFileArg | None = None) -> int:
    """Delete files and whole directory trees on a daemon.

    Every address must name a path inside the same module. A module's root
    is never deleted.

    Args:
        *urls: ``blit://HOST[:PORT]/MODULE/PATH`` addresses, or
            ``blits://...`` for TLS.
        token: Bearer token for the daemon. ``None`` reads ``BLIT_TOKEN``.
        tls_ca: CA file for a ``blits://`` address, as for :func:`push`.

    Returns:
        The number of entries deleted, counting each entry inside a deleted
        directory.

    Raises:
        InvalidArgumentError: No address, an address that is not
            ``blit://`` or ``blits://``, addresses that mix the two
            schemes or name several daemons or modules, a module's root, or
            a TLS setting that does not fit the daemon, as for :func:`push`.
        NotFoundError: The module, a path or the ``tls_ca`` file does not
            exist.
        PermissionDeniedError: The module is read-only.
        NetworkError: The daemon cannot be reached, or its TLS certificate
            cannot be verified.
    """
    if not urls:
        raise InvalidArgumentError(
            "purge needs at least one address, such as blit://HOST/MODULE/PATH"
        )
    for url in urls:
        if remote_address(url) is None:
            # The core rejects every address that is not blit:// or blits://
            # before connecting, with the v2 form of a v1 address.
            Client(url, token=token, tls_ca=tls_ca)
            raise InternalError(f"{url!r} was accepted as a daemon address")
    check_one_scheme(urls)
    client = Client(urls[0], token=token, tls_ca=tls_ca)
    return client.purge(urls)


def check_one_scheme(urls: tuple[str, ...]) -> None:
    """Raise unless every address uses the scheme of the first one.

    One client serves all of the addresses, so a ``blits://`` address after
    a ``blit://`` one would otherwise be sent without TLS.

    Raises:
        InvalidArgumentError: Both ``blit://`` and ``blits://`` occur.
    """
    first_tls = urls[0].startswith("blits://")
    for url in urls[1:]:
        if url.startswith("blits://") != first_tls:
            raise InvalidArgumentError(
                f"the addresses {urls[0]} and {url} mix blit:// and blits://; "
                "use blits:// for all of them if the daemon serves TLS, else blit://"
            )


def status(url: str, *, token: str | None = None, tls_ca: CaFileArg | None = None) -> DaemonStatus:
    """Fetch a daemon's version, uptime, running sessions and modules.

    Args:
        url: ``blit://HOST[:PORT]/``, or ``blits://HOST[:PORT]/`` for TLS.
            A module and path after the host are ignored.
        token: Bearer token for the daemon. ``None`` reads ``BLIT_TOKEN``.
        tls_ca: CA file for a ``blits://`` address, as for :func:`push`.

    Raises:
        NotFoundError: The ``tls_ca`` file does not exist.
        InvalidArgumentError: A malformed address, or a TLS setting that
            does not fit the daemon, as for :func:`push`.
        NetworkError: The daemon cannot be reached, or its TLS certificate
            cannot be verified.
    """
    return Client(url, token=token, tls_ca=tls_ca).status()
