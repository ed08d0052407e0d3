"""Writing lines to stdout and stderr, and formatting numbers for people.

Text goes to the streams as bytes in the filesystem encoding with
``surrogateescape``, so a file name that is not valid UTF-8 prints as its
original bytes instead of raising ``UnicodeEncodeError``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from typing import IO

BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")

# C0 controls, DEL and C1 controls, which a terminal may act on.
_CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}


def write_line(stream: IO[str], text: str) -> None:
    """Write ``text`` and a newline to ``stream`` as bytes.

    Lone surrogates from ``surrogateescape`` decoding become the original
    bytes again. Streams without a binary buffer, such as ``io.StringIO``,
    get the text as it is.
    """
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text + "\n")
        return
    encoding = sys.getfilesystemencoding()
    try:
        data = (text + "\n").encode(encoding, "surrogateescape")
    except UnicodeEncodeError:
        # A character that the filesystem encoding lacks, possible only
        # with a non-UTF-8 locale.
        data = (text + "\n").encode(encoding, "backslashreplace")
    stream.flush()
    buffer.write(data)


def print_out(text: str) -> None:
    """Write one line to stdout, discarding the output once the reader has gone."""
    try:
        write_line(sys.stdout, text)
    except BrokenPipeError:
        _discard_stdout()


def flush_stdout() -> None:
    """Flush stdout, discarding the output once the reader has gone."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()


def _discard_stdout() -> None:
    # After a reader such as `head` closes the pipe, point stdout at
    # /dev/null, so that later writes and the flush at interpreter exit do
    # not fail again. The exit status stays that of the command.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def print_err(text: str) -> None:
    """Write one line to stderr, after everything already written to stdout.

    Flushing stdout first keeps the two streams in order when both go to
    the same terminal or file.
    """
    flush_stdout()
    write_line(sys.stderr, text)
    sys.stderr.flush()


def printable(text: str) -> str:
    """Return ``text`` with control characters shown as ``\\xNN`` escapes.

    A file name may contain newlines or terminal escape sequences, which
    would break line-oriented output or act on the user's terminal.
    """
    return text.translate(_CONTROL_CHARACTERS)


def format_bytes(count: float) -> str:
    """Format a byte count with binary units: ``512 B``, ``12.3 MiB``."""
    if count < 1024:
        return f"{count:,.0f} B"
    value = float(count)
    for unit in BYTE_UNITS:
        value /= 1024
        if value < 1024 or unit == BYTE_UNITS[-1]:
            break
    return f"{value:,.1f} {unit}"


def format_seconds(seconds: float) -> str:
    """Format a duration for the summary line: ``0.52 s``, ``12.3 s``, ``2m05s``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    hours, remainder = divmod(int(seconds), 3600)
    minutes, remainder = divmod(remainder, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{remainder:02d}s"
    return f"{minutes}m{remainder:02d}s"


def format_clock(seconds: float) -> str:
    """Format a duration as ``M:SS`` or ``H:MM:SS``, rounded up to whole seconds."""
    whole = int(seconds) + (seconds % 1 > 0)
    hours, remainder = divmod(whole, 3600)
    minutes, remainder = divmod(remainder, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{remainder:02d}"
    return f"{minutes}:{remainder:02d}"
