"""Mirror one directory tree into another and report progress on stderr.

Usage: python mirror_tree.py SRC DST [--exclude PATTERN]... [--dry-run]

Exits with 0 when every entry was mirrored, 1 when the mirror could not
start, and 2 when some entries failed.
"""

from __future__ import annotations

import argparse
import io
import sys

import blit


def show_progress(progress: blit.Progress) -> None:
    """Print a running count of entries and bytes, overwriting the previous one."""
    mib_done = progress.bytes_done / 2**20
    mib_total = progress.bytes_total / 2**20
    print(
        f"\r{progress.phase}: {progress.entries_done}/{progress.entries_total} entries, "
        f"{mib_done:.1f}/{mib_total:.1f} MiB",
        end="",
        file=sys.stderr,
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Mirror SRC into DST with blit.")
    parser.add_argument("src", help="Source directory.")
    parser.add_argument("dst", help="Destination directory, created if missing.")
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="PATTERN", help="Leave out PATTERN."
    )
    parser.add_argument("--dry-run", action="store_true", help="List changes, make none.")
    args = parser.parse_args()

    # Names that are not valid UTF-8 reach Python as str with lone
    # surrogates. Printing them with surrogateescape writes the original bytes.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")

    try:
        summary = blit.mirror(
            args.src,
            args.dst,
            exclude=args.exclude,
            dry_run=args.dry_run,
            progress=show_progress,
        )
    except blit.BlitError as error:
        print(f"\nmirror_tree: {error.message}", file=sys.stderr)
        return 1
    print(file=sys.stderr)

    for change in summary.changes:
        print(f"would {change.action} {change.path}")
    for failure in summary.failures:
        print(f"failed: {failure.path}: {failure.message}", file=sys.stderr)
    print(
        f"{summary.transferred} transferred, {summary.skipped} skipped, "
        f"{summary.deleted} deleted, {summary.failed} failed, "
        f"{summary.bytes} bytes in {summary.seconds:.2f} s"
    )
    return 0 if summary.ok else 2


if __name__ == "__main__":
    sys.exit(main())
