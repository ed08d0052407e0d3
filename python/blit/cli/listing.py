"""The ``list`` command: list a daemon's modules or the entries of a remote directory."""

from __future__ import annotations

import argparse
import time

import blit
from blit._remote import names_daemon_only
from blit.cli import exit_status, remote_options
from blit.cli.output import print_out, printable
from blit.cli.parsing import ArgumentParser, HelpFormatter

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from blit import Entry, Module

DESCRIPTION = """\
List the modules of a blitd daemon, given blit://HOST[:PORT]/, or the
entries of a directory on it, given blit://HOST[:PORT]/MODULE[/PATH]. A URL
that names a file lists that one file.
"""

OUTPUT_HELP = """\
output:
  Entries print as a table with the columns KIND (file, dir or symlink),
  SIZE in bytes, MODIFIED (local time) and PATH, relative to URL. A symlink
  shows as "PATH -> TARGET". Modules print with the columns MODULE, ACCESS
  (read-write or read-only, for this token) and COMMENT. Nothing prints for an empty
  directory. --json prints one JSON object instead: keys command, url and
  entries (each with path, kind, size, mode, mtime_ns and link_target) or
  modules (each with name, comment and read_only).
"""

# Format of the MODIFIED column, in local time.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def add_command(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``list`` sub-parser to ``commands``."""
    command = commands.add_parser(
        "list",
        help="List a daemon's modules or a remote directory.",
        description=DESCRIPTION,
        epilog=OUTPUT_HELP
        + "\n"
        + remote_options.ADDRESS_HELP
        + "\n"
        + exit_status.HELP_NO_TRANSFER,
        formatter_class=HelpFormatter,
    )
    command.add_argument(
        "url",
        metavar="URL",
        help="blit://HOST[:PORT]/ for the modules, or blit://HOST[:PORT]/MODULE[/PATH].",
    )
    command.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help=(
            "Also list every entry below the subdirectories. Default: only the "
            "directory's own entries. Has no effect on a module list."
        ),
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="Print one JSON object on stdout instead of a table.",
    )
    remote_options.add_token_option(command)
    remote_options.add_tls_ca_option(command)
    command.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> int:
    """Run ``list``, print the table or JSON and return the exit status."""
    token = remote_options.read_token(args)
    client = blit.Client(args.url, token=token, tls_ca=args.tls_ca)
    if names_daemon_only(args.url):
        print_modules(args, client.list_modules())
    else:
        print_entries(args, client.list(args.url, recursive=args.recursive))
    return exit_status.OK


def print_entries(args: argparse.Namespace, entries: Sequence[Entry]) -> None:
    """Print remote entries as a table, or as JSON with ``--json``."""
    if args.json:
        items = [
            {
                "path": entry.path,
                "kind": entry.kind,
                "size": entry.size,
                "mode": entry.mode,
                "mtime_ns": entry.mtime_ns,
                "link_target": entry.link_target,
            }
            for entry in entries
        ]
        print_json({"command": "list", "url": args.url, "entries": items})
        return
    if not entries:
        return
    rows = [["KIND", "SIZE", "MODIFIED", "PATH"]]
    for entry in entries:
        path = printable(entry.path)
        if entry.link_target is not None:
            path = f"{path} -> {printable(entry.link_target)}"
        rows.append([entry.kind, str(entry.size), format_mtime(entry.mtime_ns), path])
    print_table(rows, right_aligned={1})


def print_modules(args: argparse.Namespace, modules: Sequence[Module]) -> None:
    """Print a daemon's modules as a table, or as JSON with ``--json``."""
    if args.json:
        items = [
            {"name": module.name, "comment": module.comment, "read_only": module.read_only}
            for module in modules
        ]
        print_json({"command": "list", "url": args.url, "modules": items})
        return
    if not modules:
        return
    rows = [["MODULE", "ACCESS", "COMMENT"]]
    for module in modules:
        access = "read-only" if module.read_only else "read-write"
        rows.append([printable(module.name), access, printable(module.comment)])
    print_table(rows, right_aligned=set())


def print_table(rows: list[list[str]], *, right_aligned: set[int]) -> None:
    """Print rows with columns padded to their widest cell and two spaces between them.

    The last column is never padded, so lines carry no trailing spaces.
    """
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = []
        for column, cell in enumerate(row):
            if column == len(row) - 1:
                cells.append(cell)
            elif column in right_aligned:
                cells.append(cell.rjust(widths[column]))
            else:
                cells.append(cell.ljust(widths[column]))
        print_out("  ".join(cells).rstrip())


def format_mtime(mtime_ns: int) -> str:
    """Format a modification time in nanoseconds as local time, to the second.

    A time outside the range that the platform's ``localtime`` handles
    prints as the raw nanosecond count.
    """
    try:
        return time.strftime(TIME_FORMAT, time.localtime(mtime_ns // 1_000_000_000))
    except (OverflowError, OSError, ValueError):
        return str(mtime_ns)


def print_json(document: dict[str, Any]) -> None:
    """Print ``document`` as one line of JSON."""
    # Imported here so that `blit --version` does not load json.
    import json

    print_out(json.dumps(document))
