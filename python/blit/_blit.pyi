"""Type stubs for ``blit._blit``, the Rust extension behind the :mod:`blit` package.

Paths in results are ``str`` decoded from the file system's bytes with
``surrogateescape``, so ``os.fsencode(path)`` returns the original bytes of
a name that is not valid UTF-8.
"""

import os
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypedDict, final

from typing_extensions import Self, TypeAlias

__all__ = [
    "__version__",
    "DEFAULT_THREADS",
    "MAX_THREADS",
    "copy",
    "Summary",
    "Failure",
    "Change",
    "Progress",
    "Client",
    "Entry",
    "Module",
    "DaemonStatus",
    "blitd_main",
    "check_config",
]

__version__: Final[str]
"""The version of blit, such as ``"2.0.0"``."""

DEFAULT_THREADS: Final[int]
"""The worker thread count that ``threads=0`` selects on this machine."""

MAX_THREADS: Final[int]
"""The largest accepted ``threads`` value."""

_PathArg: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]

_ChangeAction: TypeAlias = Literal["copy", "symlink", "mkdir", "metadata", "delete"]

_EntryKind: TypeAlias = Literal["file", "dir", "symlink"]

class _FailureDict(TypedDict):
    path: str
    message: str

class _ChangeDict(TypedDict):
    action: _ChangeAction
    path: str

class _SummaryDict(TypedDict):
    transferred: int
    skipped: int
    deleted: int
    failed: int
    bytes: int
    seconds: float
    dry_run: bool
    failures: list[_FailureDict]
    changes: list[_ChangeDict]

@final
class Failure:
    """One entry that could not be transferred or deleted."""

    @property
    def path(self) -> str:
        """Path of the entry, relative to the source root.

        For a failed deletion, the path is relative to the destination root.
        """

    @property
    def message(self) -> str:
        """What failed and why."""

@final
class Change:
    """One change that a dry run would make."""

    @property
    def action(self) -> _ChangeAction:
        """The kind of change.

        One of ``"copy"``, ``"symlink"``, ``"mkdir"``, ``"metadata"`` or ``"delete"``.
        """

    @property
    def path(self) -> str:
        """Path of the entry, relative to the destination root."""

@final
class Summary:
    """Counts and details of a finished transfer or dry run."""

    @property
    def transferred(self) -> int:
        """Number of entries written or created, including metadata-only updates.

        In a dry run, the number that a real run would write or create.
        """

    @property
    def skipped(self) -> int:
        """Number of entries that were already up to date."""

    @property
    def deleted(self) -> int:
        """Number of destination entries that a mirror deleted, or in a dry run would delete."""

    @property
    def failed(self) -> int:
        """Number of entries that failed; each is listed in :attr:`failures`."""

    @property
    def bytes(self) -> int:
        """Number of file bytes written; 0 for a dry run."""

    @property
    def seconds(self) -> float:
        """Wall-clock duration of the transfer, in seconds."""

    @property
    def dry_run(self) -> bool:
        """Whether this was a dry run, which changed nothing."""

    @property
    def failures(self) -> list[Failure]:
        """Every failed entry, sorted by path."""

    @property
    def changes(self) -> list[Change]:
        """For a dry run, every change it would make, sorted by path; empty otherwise."""

    @property
    def ok(self) -> bool:
        """Whether no entry failed."""

    def to_dict(self) -> _SummaryDict:
        """Convert the summary to a dict with the stable keys of the CLI's ``--json`` output.

        Returns:
            A dict with the keys ``transferred``, ``skipped``, ``deleted``,
            ``failed``, ``bytes``, ``seconds``, ``dry_run``, ``failures``
            (a list of ``{"path", "message"}`` dicts) and ``changes`` (a list
            of ``{"action", "path"}`` dicts).
        """

@final
class Progress:
    """A snapshot of a running transfer, passed to the ``progress`` callback.

    Totals grow while the scan runs and are final once :attr:`phase` is
    ``"transferring"``.
    """

    @property
    def phase(self) -> Literal["scanning", "transferring", "done"]:
        """The stage of the transfer: ``"scanning"``, ``"transferring"`` or ``"done"``."""

    @property
    def entries_done(self) -> int:
        """Number of source entries handled so far, whether copied, skipped or failed."""

    @property
    def entries_total(self) -> int:
        """Number of source entries found so far by the scan."""

    @property
    def bytes_done(self) -> int:
        """Number of file bytes written so far."""

    @property
    def bytes_total(self) -> int:
        """Number of file bytes that the transfer has to write."""

    @property
    def current_path(self) -> str | None:
        """The path most recently started, relative to the transfer root, or ``None``."""

def copy(
    src: _PathArg,
    dst: _PathArg,
    *,
    mirror: bool = False,
    dry_run: bool = False,
    exclude: Sequence[str] = ...,
    checksum: bool = False,
    fsync: bool = False,
    progress: Callable[[Progress], object] | None = None,
    threads: int | None = None,
) -> Summary:
    """Copy, or with ``mirror=True`` mirror, ``src`` to ``dst``.

    :func:`blit.copy` and :func:`blit.mirror` wrap this function and
    document the transfer rules.

    Args:
        src: Local source path. A ``blit://`` address or a v1-style
            ``HOST:MODULE/PATH`` raises :class:`blit.InvalidArgumentError`.
        dst: Local destination path.
        mirror: Also delete destination entries that the source lacks,
            except excluded ones.
        dry_run: List the changes in :attr:`Summary.changes` and make none.
        exclude: Exclude patterns with rsync's rules. Default: none.
        checksum: Compare files of equal size by BLAKE3 hash instead of by
            modification time.
        fsync: Fsync each file and its directory before returning.
        progress: Called with a :class:`Progress` about every 100 ms and
            once at the end, on the calling thread. An exception that it
            raises cancels the transfer and propagates.
        threads: Number of worker threads, up to :data:`MAX_THREADS`; 0 or
            ``None`` selects :data:`DEFAULT_THREADS`.

    Returns:
        The :class:`Summary`. Entries that failed are counted and listed in
        it and do not raise.

    Raises:
        blit.BlitError: A subclass naming what failed, when the transfer
            cannot start; :class:`blit.InvalidArgumentError` for a bad
            pattern or a ``threads`` value out of range.
        KeyboardInterrupt: On Ctrl-C, after the transfer stopped and removed
            its temporary files.
    """

@final
class Entry:
    """One entry of a remote listing, from :meth:`Client.list`."""

    @property
    def path(self) -> str:
        """Path relative to the listed path, such as ``"sub/b.txt"``."""

    @property
    def kind(self) -> _EntryKind:
        """The entry type: ``"file"``, ``"dir"`` or ``"symlink"``."""

    @property
    def size(self) -> int:
        """Size in bytes; 0 for directories and symlinks."""

    @property
    def mode(self) -> int:
        """Permission bits, such as ``0o644``."""

    @property
    def mtime_ns(self) -> int:
        """Modification time in nanoseconds since the Unix epoch."""

    @property
    def link_target(self) -> str | None:
        """Target of a symlink, exactly as stored; ``None`` for other kinds."""

@final
class Module:
    """A module that a daemon exports: a named directory."""

    @property
    def name(self) -> str:
        """Module name, the first path component of an address."""

    @property
    def comment(self) -> str:
        """Free-form description from the daemon's config; empty when none."""

    @property
    def read_only(self) -> bool:
        """Whether the module rejects push and purge from this caller.

        True when the module is read-only or the token lacks the write
        permission there.
        """

@final
class DaemonStatus:
    """The status of a running daemon, from :meth:`Client.status`."""

    @property
    def version(self) -> str:
        """The daemon's blit version, such as ``"2.0.0"``."""

    @property
    def uptime_seconds(self) -> int:
        """Seconds since the daemon started."""

    @property
    def active_sessions(self) -> int:
        """Number of transfers running on the daemon now."""

    @property
    def modules(self) -> list[Module]:
        """The modules that the daemon exports to this client."""

@final
class Client:
    """A connection to one blitd, reused by every call on it.

    Methods take a target as ``MODULE[/PATH]``, relative to this daemon, or
    as a full ``blit://`` or ``blits://`` address of the same daemon. Every
    method releases the GIL while it waits, so several threads may share one
    client.
    """

    def __new__(
        cls,
        url: str,
        *,
        token: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
    ) -> Self:
        """Connect to the daemon at ``url``.

        A ``blits://`` address connects with TLS on the control and the data
        connections. The daemon's certificate must be valid for the host of
        ``url`` and chain to the system's trusted CAs or to ``tls_ca``, and
        no option skips that check.

        Args:
            url: ``blit://HOST[:PORT]/`` or ``blits://HOST[:PORT]/``, port
                50051 by default. A module and path after the host are
                ignored here.
            token: Bearer token for the daemon. ``None`` reads the
                ``BLIT_TOKEN`` environment variable.
            tls_ca: PEM file of CA certificates to trust, in addition to the
                system's, such as the ``ca.pem`` of ``blitd tls
                self-signed``. Only for a ``blits://`` address.

        Raises:
            blit.InvalidArgumentError: ``url`` is not a ``blit://`` or
                ``blits://`` address, ``tls_ca`` is given with ``blit://``
                or holds no PEM certificate, or a ``blits://`` daemon does
                not serve TLS. For ``blit://`` to a daemon that requires
                TLS, the first request raises it and names the
                ``blits://`` address to use.
            blit.NotFoundError: The ``tls_ca`` file does not exist.
            blit.NetworkError: The daemon cannot be reached, or its
                certificate cannot be verified. The message names the host
                and port, and says to pass ``tls_ca`` when the certificate's
                issuer is unknown.
        """

    @property
    def url(self) -> str:
        """The daemon's address, as ``blit://HOST:PORT/`` or ``blits://HOST:PORT/``."""

    def status(self) -> DaemonStatus:
        """Fetch the daemon's version, uptime, running sessions and modules.

        Raises:
            blit.NetworkError: The connection failed.
        """

    def list_modules(self) -> list[Module]:
        """Fetch the modules that the daemon exports.

        Raises:
            blit.NetworkError: The connection failed.
        """

    def list(self, path: str, *, recursive: bool = False) -> list[Entry]:
        """List a directory, or describe one file, inside a module.

        Args:
            path: ``MODULE[/PATH]`` or an address of this daemon.
            recursive: Also list every entry below the subdirectories.

        Returns:
            The entries, with paths relative to ``path``.

        Raises:
            blit.NotFoundError: The module or the path does not exist.
            blit.InvalidArgumentError: ``path`` names no module, names
                another daemon, or leaves the module (``..``).
        """

    def purge(self, paths: Sequence[str]) -> int:
        """Delete files and whole directory trees inside one module.

        Args:
            paths: ``MODULE/PATH`` strings or addresses of this daemon, all
                in the same module.

        Returns:
            The number of entries deleted, counting each entry inside a
            deleted directory.

        Raises:
            blit.InvalidArgumentError: ``paths`` is empty, spans several
                modules, or names a module's root.
            blit.NotFoundError: The module or a path does not exist.
            blit.PermissionDeniedError: The module is read-only.
        """

    def push(
        self,
        src: _PathArg,
        dest: str,
        *,
        mirror: bool = False,
        dry_run: bool = False,
        exclude: Sequence[str] = ...,
        checksum: bool = False,
        fsync: bool = False,
        progress: Callable[[Progress], object] | None = None,
        force_grpc_data: bool = False,
    ) -> Summary:
        """Copy, or with ``mirror=True`` mirror, a local ``src`` into the daemon.

        Args:
            src: Local source file or directory.
            dest: ``MODULE[/PATH]`` or an address of this daemon.
                A directory source fills ``dest``, which is created if
                missing. A single file goes into ``dest`` when that is an
                existing directory or ends in ``/``; otherwise ``dest`` is
                its new name.
            mirror: Also delete entries of ``dest`` that ``src`` lacks,
                except excluded ones.
            dry_run: Count the changes and make none.
            exclude: Exclude patterns with rsync's rules. Default: none.
            checksum: Compare files of equal size by BLAKE3 hash instead of
                by modification time.
            fsync: Have the daemon fsync each file and its directory before
                reporting success.
            progress: Called as for :func:`copy`.
            force_grpc_data: Send file bytes inside the gRPC stream instead
                of over the data port.

        Returns:
            The :class:`Summary`; failed entries are listed in it and do not
            raise.

        Raises:
            blit.NotFoundError: ``src``, the module or the parent of
                ``dest`` does not exist.
            blit.PermissionDeniedError: The module is read-only.
            blit.InvalidArgumentError: A bad pattern, or ``dest`` leaves the
                module.
            blit.NetworkError: The connection failed.
            KeyboardInterrupt: On Ctrl-C, after the transfer stopped.
        """

    def pull(
        self,
        source: str,
        dst: _PathArg,
        *,
        mirror: bool = False,
        dry_run: bool = False,
        exclude: Sequence[str] = ...,
        checksum: bool = False,
        fsync: bool = False,
        progress: Callable[[Progress], object] | None = None,
        force_grpc_data: bool = False,
    ) -> Summary:
        """Copy, or with ``mirror=True`` mirror, ``source`` on the daemon to a local ``dst``.

        Args:
            source: ``MODULE[/PATH]`` or an address of this daemon.
            dst: Local destination path, with the same rules as
                :func:`copy`. With ``mirror=True``, local entries that
                ``source`` lacks are deleted.
            mirror: Also delete entries of ``dst`` that ``source`` lacks,
                except excluded ones.
            dry_run: List the changes in :attr:`Summary.changes` and make
                none.
            exclude: Exclude patterns with rsync's rules. Default: none.
            checksum: Compare files of equal size by BLAKE3 hash instead of
                by modification time.
            fsync: Fsync each file and its directory before returning.
            progress: Called as for :func:`copy`.
            force_grpc_data: Receive file bytes inside the gRPC stream
                instead of over the data port.

        Returns:
            The :class:`Summary`; failed entries are listed in it and do not
            raise.

        Raises:
            blit.NotFoundError: The module or ``source`` does not exist.
            blit.InvalidArgumentError: A bad pattern, or ``source`` leaves
                the module.
            blit.NetworkError: The connection failed.
            KeyboardInterrupt: On Ctrl-C, after the transfer stopped and
                removed its temporary files.
        """

def blitd_main(argv: Sequence[str]) -> int:
    """Run the blitd daemon with a command line and return its exit status.

    The ``blitd`` console script calls this. ``argv[0]`` is the program
    name, as in :data:`sys.argv`. The daemon serves until SIGTERM or SIGINT,
    with the GIL released.

    Returns:
        0 after a graceful shutdown, ``--help``, ``--version`` or a valid
        ``--check-config``; 1 when the config is invalid or the daemon cannot
        start; 2 for invalid arguments.
    """

def check_config(text: str, origin: str) -> None:
    """Validate the text of a blitd config file with the daemon's own parser.

    The check is the one that ``blitd --check-config`` makes, without
    reading a file or loading TLS certificates. It does check that each
    module's ``path`` is an existing directory on this machine.

    Args:
        text: The TOML text of the config.
        origin: A name for the text, such as its file path, that starts
            each error message.

    Raises:
        blit.InvalidArgumentError: The config is invalid. The message starts
            with ``origin``, followed by the line (``origin:LINE: ...``)
            for errors tied to one line, and names the key or value and
            the fix.
    """
