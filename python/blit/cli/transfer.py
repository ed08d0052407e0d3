"""The ``copy`` and ``mirror`` commands.

``push`` and ``pull`` share this module's transfer and output options and
its result printing.
"""

from __future__ import annotations

import argparse
import sys

import blit
from blit._blit import DEFAULT_THREADS
from blit._remote import remote_address
from blit.cli import exit_status, remote_options
from blit.cli.output import format_bytes, format_seconds, print_err, print_out, printable
from blit.cli.parsing import ArgumentParser, HelpFormatter
from blit.cli.progress import ProgressLine

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from collections.abc import Callable

    from blit import Summary

    ProgressCallback = Callable[[blit.Progress], object]

COPY_DESCRIPTION = """\
Copy SRC to DST without deleting anything in DST.

A directory SRC's contents go into DST, which is created if missing, so
"blit copy A B" puts a copy of every entry of A into B and keeps whatever
else B contains.
"""

MIRROR_DESCRIPTION = """\
Make DST a copy of SRC, deleting what SRC lacks.

A directory SRC's contents go into DST, which is created if missing, so
"blit mirror A B" makes B an exact copy of A. Entries of B that A lacks are
deleted unless an --exclude pattern matches them.
"""

REMOTE_SIDES = """
Either SRC or DST may be a blit:// or blits:// address, which makes the
command a push (local SRC to a daemon) or a pull (a daemon to local DST).
Remote to remote is not supported yet.
"""

TRANSFER_RULES = """
A trailing "/" on either path changes nothing. A single-file SRC goes into
DST when DST is an existing directory or ends in "/"; otherwise DST is its
new name.

Files count as up to date when size and modification time match (with
--checksum, size and BLAKE3 hash). Each file is written to a temporary name
in its destination directory and renamed into place when complete. Mode bits,
modification times, symlinks (as links) and empty directories are preserved.
"""

EXCLUDE_HELP = """\
exclude patterns (rsync's rules):
  *.tmp     a pattern without "/" matches a name at any depth
  /build    a leading "/" anchors the pattern at the transfer root
  logs/     a trailing "/" matches directories only
  a/b       a "/" inside matches the trailing components of a path,
            at any depth
  *, ?      match any characters or one character within a path component
  **        matches across "/" as well
  An excluded directory is not descended into. mirror never deletes an
  excluded entry in DST.
"""

OUTPUT_HELP = """\
output:
  By default blit prints one summary line on stdout when done. A dry run
  first prints each change as an "ACTION PATH" line, where ACTION is copy,
  symlink, mkdir, metadata or delete. --json prints one JSON object instead
  (keys: command, transferred, skipped, deleted, failed, bytes, seconds,
  dry_run, failures, changes). Control characters in paths print as \\xNN
  in text output; --json keeps paths exact.
"""


def add_commands(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``copy`` and ``mirror`` sub-parsers to ``commands``."""
    _add_command(
        commands,
        "copy",
        summary="Copy SRC to DST without deleting anything in DST.",
        description=COPY_DESCRIPTION,
    )
    _add_command(
        commands,
        "mirror",
        summary="Make DST a copy of SRC, deleting what SRC lacks.",
        description=MIRROR_DESCRIPTION,
    )


def thread_count(text: str) -> int:
    """Parse the value of ``--threads``: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid thread count {text!r}: give a whole number, or 0 for the default"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid thread count {value}: give 1 or more, or 0 for the default"
        )
    return value


def exclude_pattern(text: str) -> str:
    """Check the value of ``--exclude``, which must be UTF-8 text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"invalid exclude pattern {text!r}: patterns must be valid UTF-8, "
            "so match such names with * or ? instead"
        ) from None
    return text


def _add_command(
    commands: argparse._SubParsersAction[ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
) -> None:
    command = commands.add_parser(
        name,
        help=summary,
        description=description + REMOTE_SIDES + TRANSFER_RULES,
        epilog=(
            EXCLUDE_HELP
            + "\n"
            + OUTPUT_HELP
            + "\n"
            + remote_options.ADDRESS_HELP
            + "\n"
            + exit_status.HELP
        ),
        formatter_class=HelpFormatter,
    )
    command.add_argument(
        "src",
        metavar="SRC",
        help="Source file or directory, local or a blit:// or blits:// address.",
    )
    command.add_argument(
        "dst", metavar="DST", help="Destination path, local or a blit:// or blits:// address."
    )
    add_transfer_options(command)
    _add_threads_option(command)
    remote_options.add_token_option(command)
    remote_options.add_tls_ca_option(command)
    remote_options.add_force_grpc_data_option(command)
    add_output_options(command)
    command.set_defaults(handler=run_transfer)


def add_transfer_options(command: ArgumentParser) -> None:
    """Add ``--dry-run``, ``--exclude``, ``--checksum`` and ``--fsync`` to ``command``."""
    command.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help=(
            "List the changes that the command would make, one ACTION PATH line each, "
            "and change nothing."
        ),
    )
    command.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATTERN",
        type=exclude_pattern,
        help=(
            "Leave out entries that match PATTERN (rsync's rules, see below). "
            "Repeat the option to give more patterns. Default: none."
        ),
    )
    command.add_argument(
        "-c",
        "--checksum",
        action="store_true",
        help=(
            "Compare files of equal size by BLAKE3 content hash instead of by "
            "modification time. This reads both files in full. Default: off."
        ),
    )
    command.add_argument(
        "--fsync",
        action="store_true",
        help=(
            "Flush each written file and its directory to disk (fsync) before "
            "reporting success. Default: off, as with cp and rsync."
        ),
    )


def _add_threads_option(command: ArgumentParser) -> None:
    command.add_argument(
        "--threads",
        type=thread_count,
        default=0,
        metavar="N",
        help=(
            "Number of worker threads of a local transfer. Default: 0, which picks a "
            f"number from the CPU core count ({DEFAULT_THREADS} on this machine). A push "
            "or pull accepts only 0."
        ),
    )


def add_output_options(command: ArgumentParser) -> None:
    """Add ``--json``, ``-q``, ``--progress`` and ``--no-progress`` to ``command``."""
    output = command.add_mutually_exclusive_group()
    output.add_argument(
        "--json",
        action="store_true",
        help=(
            "Print the summary as one JSON object on stdout instead of text, and no progress line."
        ),
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help=(
            "Print nothing on stdout: no summary line, no dry-run list and no "
            "progress line. Failures and errors still go to stderr."
        ),
    )
    command.add_argument(
        "--progress",
        dest="progress",
        action="store_const",
        const=True,
        default=None,
        help=(
            "Show a progress line on stderr even when stderr is not a terminal. "
            "Default: shown only when stderr is a terminal."
        ),
    )
    command.add_argument(
        "--no-progress",
        dest="progress",
        action="store_const",
        const=False,
        help="Never show the progress line. -q and --json also turn it off.",
    )


def run_transfer(args: argparse.Namespace) -> int:
    """Run ``copy`` or ``mirror``, print the result and return the exit status."""
    both_local = remote_address(args.src) is None and remote_address(args.dst) is None
    if args.tls_ca is not None and both_local:
        raise blit.InvalidArgumentError(
            f"--tls-ca {args.tls_ca} applies only to a blits:// address, but SRC and DST "
            "are both local paths; drop --tls-ca"
        )
    token = remote_options.read_token(args)

    def start(progress: ProgressCallback | None) -> Summary:
        return blit.copy(
            args.src,
            args.dst,
            mirror=args.command == "mirror",
            dry_run=args.dry_run,
            exclude=args.exclude,
            checksum=args.checksum,
            fsync=args.fsync,
            progress=progress,
            threads=args.threads,
            token=token,
            tls_ca=args.tls_ca,
            force_grpc_data=args.force_grpc_data,
        )

    return run_and_report(args, start)


def run_and_report(
    args: argparse.Namespace, start: Callable[[ProgressCallback | None], Summary]
) -> int:
    """Run a transfer, print its result and return the exit status.

    ``start`` runs the transfer, given the progress line that ``args``
    selects or ``None``.
    """
    progress_line = _progress_line_for(args)
    try:
        summary = start(progress_line)
    finally:
        if progress_line is not None:
            progress_line.close()
    print_summary(args, summary)
    return exit_status.OK if summary.ok else exit_status.FAILED_ENTRIES


def _progress_line_for(args: argparse.Namespace) -> ProgressLine | None:
    if args.quiet or args.json or args.progress is False:
        return None
    is_terminal = sys.stderr.isatty()
    if args.progress or is_terminal:
        return ProgressLine(sys.stderr, is_terminal=is_terminal)
    return None


def print_summary(args: argparse.Namespace, summary: Summary) -> None:
    """Print what a transfer did: the dry-run changes, the failures and the summary."""
    if args.json:
        # Imported here so that text output and `blit --version` do not load json.
        import json

        result = {"command": args.command, **summary.to_dict()}
        print_out(json.dumps(result))
    elif not args.quiet:
        for change in summary.changes:
            print_out(f"{change.action} {printable(change.path)}")
    for failure in summary.failures:
        print_err(f"blit: failed: {printable(failure.path)}: {printable(failure.message)}")
    if not args.json and not args.quiet:
        print_out(format_summary(args.command, summary))


def format_summary(command: str, summary: Summary) -> str:
    """Format the one-line summary of a transfer or a dry run."""
    if summary.dry_run:
        return (
            f"{command} (dry run): {summary.transferred:,} to transfer, "
            f"{summary.skipped:,} up to date, {summary.deleted:,} to delete, "
            f"{summary.failed:,} failed; nothing changed"
        )
    line = (
        f"{command}: {summary.transferred:,} transferred, {summary.skipped:,} skipped, "
        f"{summary.deleted:,} deleted, {summary.failed:,} failed; "
        f"{format_bytes(summary.bytes)} in {format_seconds(summary.seconds)}"
    )
    if summary.seconds > 0:
        line += f" ({format_bytes(summary.bytes / summary.seconds)}/s)"
    return line
