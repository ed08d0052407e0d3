"""The argument parser and help formatter that every ``blit`` command uses."""

from __future__ import annotations

import argparse
from typing import NoReturn

from blit.cli import exit_status
from blit.cli.output import print_err


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
        super().__init__(prog, max_help_position=30)
