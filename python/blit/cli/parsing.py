"""The argument parser and help formatter that every ``blit`` command uses."""

from __future__ import annotations

import argparse
import functools
import os
import sys

from blit.cli import exit_status
from blit.cli.output import print_err

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser that reports usage errors in one line and exits with status 1.

    argparse's own ``error`` prints the usage and exits with 2, which blit
    reserves for failed entries.
    """

    def error(self, message: str) -> NoReturn:
        print_err(f"blit: error: {message}; run '{self.prog} --help' for usage")
        self.exit(exit_status.ERROR)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs and widens the option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=_help_width())


@functools.cache
def _help_width() -> int:
    """Return the width that argparse would choose, measured once per process.

    argparse builds a formatter for every option it adds, and each one
    calls ``shutil.get_terminal_size``. Importing shutil and querying the
    terminal for each option made up a fifth of the command's start-up. This
    follows the same rules: ``COLUMNS`` if set and positive, else the
    terminal of stdout, else 80 columns, less 2 for the margin.
    """
    columns = 0
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        pass
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2
