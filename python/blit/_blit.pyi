"""Type stubs for ``blit._blit``, the Rust extension behind the :mod:`blit` package.

Paths in results are ``str`` decoded from the file system's bytes with
``surrogateescape``, so ``os.fsencode(path)`` returns the original bytes of
a name that is not valid UTF-8.
"""

import os
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypedDict, final

from typing_extensions import TypeAlias

__all__ = ["__version__", "DEFAULT_THREADS", "MAX_THREADS", "copy", "Summary", "Failure", "Change", "Progress"]

__version__: Final[str]
"""The version of blit, such as ``"2.0.0"``."""

DEFAULT_THREADS: Final[int]
"""The worker thread count that ``threads=0`` selects on this machine."""

MAX_THREADS: Final[int]
"""The largest accepted ``threads`` value."""

_PathArg: TypeAlias = str | bytes | os.PathLike[str] | os.PathLike[bytes]

_ChangeAction: TypeAlias = Literal["copy", "symlink", "mkdir", "metadata", "delete"]

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
