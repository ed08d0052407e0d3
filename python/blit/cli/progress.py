"""The progress line that ``copy`` and ``mirror`` draw on stderr."""

from __future__ import annotations

import os
import time

from blit.cli.output import format_bytes, format_clock, printable

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from typing import IO

    from blit import Progress

# Minimum time between two redraws, in seconds.
REDRAW_INTERVAL = 0.1

# Length of the window over which the transfer rate is averaged, in seconds.
RATE_WINDOW = 5.0

# Line width used when the stream is not a terminal or reports no width, in characters.
DEFAULT_WIDTH = 80

# Minimum number of characters of the current path worth showing after the counters.
MIN_PATH_WIDTH = 8


class ProgressLine:
    """A one-line progress display on a stream, redrawn in place with ``\\r``.

    Call the instance with each :class:`blit.Progress` snapshot. It redraws
    at most every ``REDRAW_INTERVAL`` seconds, and always for the final
    ``done`` snapshot. :meth:`close` clears the line on a terminal and ends
    it with a newline elsewhere, so that a log file keeps the final state.
    """

    def __init__(self, stream: IO[str], *, is_terminal: bool) -> None:
        self.stream = stream
        self.is_terminal = is_terminal
        self.enabled = True
        self.last_draw = float("-inf")
        self.drawn_width = 0
        # (monotonic time, bytes_done) pairs from the last RATE_WINDOW seconds.
        self.samples: list[tuple[float, int]] = []

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        self.add_sample(now, progress.bytes_done)
        if progress.phase != "done" and now - self.last_draw < REDRAW_INTERVAL:
            return
        self.last_draw = now
        self.draw(self.render(progress, self.line_width()))

    def add_sample(self, now: float, bytes_done: int) -> None:
        self.samples.append((now, bytes_done))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.pop(0)

    def rate(self) -> float | None:
        """Return the recent transfer rate in bytes per second, or ``None`` before two samples."""
        if len(self.samples) < 2:
            return None
        (start, start_bytes), (end, end_bytes) = self.samples[0], self.samples[-1]
        if end <= start:
            return None
        return (end_bytes - start_bytes) / (end - start)

    def line_width(self) -> int:
        if not self.is_terminal:
            return DEFAULT_WIDTH
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            return DEFAULT_WIDTH
        # A new pseudo-terminal reports 0 columns until someone sets its size.
        return columns if columns > 0 else DEFAULT_WIDTH

    def render(self, progress: Progress, width: int) -> str:
        """Build the line for one snapshot, at most ``width - 1`` characters long.

        The last column stays empty because some terminals wrap a line that
        fills it.
        """
        limit = max(width - 1, 1)
        if progress.phase == "scanning":
            text = (
                f"scanning: {progress.entries_total:,} entries, "
                f"{format_bytes(progress.bytes_total)} to transfer so far"
            )
            return text[:limit]
        text = self.render_counters(progress)
        room = limit - len(text) - 2
        if progress.phase == "transferring" and progress.current_path and room >= MIN_PATH_WIDTH:
            path = printable(progress.current_path)
            if len(path) > room:
                path = "..." + path[len(path) - room + 3 :]
            text = f"{text}  {path}"
        return text[:limit]

    def render_counters(self, progress: Progress) -> str:
        parts = []
        if progress.bytes_total > 0:
            percent = min(100 * progress.bytes_done // progress.bytes_total, 100)
            parts.append(f"{percent:3d}%")
        parts.append(f"{progress.entries_done:,}/{progress.entries_total:,} entries")
        parts.append(f"{format_bytes(progress.bytes_done)}/{format_bytes(progress.bytes_total)}")
        rate = self.rate()
        if rate is not None:
            parts.append(f"{format_bytes(rate)}/s")
            remaining = progress.bytes_total - progress.bytes_done
            if progress.phase == "transferring" and remaining > 0 and rate > 0:
                parts.append(f"ETA {format_clock(remaining / rate)}")
        return "  ".join(parts)

    def draw(self, text: str) -> None:
        # Spaces overwrite what remains of a longer previous line. They work
        # in a log file too, where an escape sequence would not.
        padding = " " * max(self.drawn_width - len(text), 0)
        self.write("\r" + text + padding)
        self.drawn_width = len(text)

    def close(self) -> None:
        """End the line so that later output starts on a fresh line."""
        if not self.enabled or self.drawn_width == 0:
            return
        if self.is_terminal:
            self.write("\r" + " " * self.drawn_width + "\r")
        else:
            self.write("\n")
        self.drawn_width = 0

    def write(self, text: str) -> None:
        # An exception raised from the progress callback cancels the
        # transfer, so a failing stderr only turns the display off.
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError, UnicodeError):
            self.enabled = False
