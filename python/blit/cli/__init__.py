"""The ``blit`` command: parse the arguments, call the :mod:`blit` module, print the result.

Each command lives in its own module, which adds its sub-parser and sets
``handler``: a function that takes the parsed arguments and returns the
exit status. ``transfer`` defines ``copy`` and ``mirror``; ``push``,
``pull``, ``listing`` (the ``list`` command) and ``purge`` define one
command each, and ``migrate`` defines ``migrate-config`` and ``migrate-url``.
"""

from __future__ import annotations

import os

import blit
from blit.cli import exit_status
from blit.cli.output import flush_stdout, print_err, printable
from blit.cli.parsing import ArgumentParser, HelpFormatter

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> ArgumentParser:
    """Build the parser for the ``blit`` command and all of its sub-commands."""
    from blit.cli import listing, migrate, pull, purge, push, transfer

    parser = ArgumentParser(
        prog="blit",
        description=(
            "Copy and mirror files and directory trees, fast and safely, between local "
            "paths and blitd daemons."
        ),
        epilog='Run "blit COMMAND --help" for the options of a command.\n\n' + exit_status.HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"blit {blit.__version__}",
        help="Print the version of blit and exit.",
    )
    commands = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        title="commands",
        required=True,
    )
    transfer.add_commands(commands)
    push.add_command(commands)
    pull.add_command(commands)
    listing.add_command(commands)
    purge.add_command(commands)
    migrate.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``blit`` command and return its exit status.

    ``--help``, ``--version`` and usage errors raise :class:`SystemExit`
    from argument parsing, with status 0 or 1.
    """
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        status = _run_handler(handler, args)
        flush_stdout()
        return status
    except KeyboardInterrupt:
        print_err("blit: interrupted")
        return exit_status.INTERRUPTED


def _run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except blit.BlitError as error:
        print_err(f"blit: error: {printable(error.message)}")
        return exit_status.ERROR
    except OSError as error:
        # An OSError that is not a BlitError comes from the interpreter or
        # the extension itself, such as failing to start the transfer thread.
        print_err(f"blit: error: {printable(str(error))}")
        return exit_status.ERROR
    except UnicodeEncodeError as error:
        # Command-line bytes that are not UTF-8 arrive as surrogate escapes,
        # which the extension's text arguments (addresses, patterns) reject.
        print_err(
            f"blit: error: invalid argument {printable(repr(os.fsencode(error.object)))}: "
            "not valid UTF-8; remote addresses and exclude patterns must be UTF-8 text"
        )
        return exit_status.ERROR
