"""The ``purge`` command: delete files and directory trees on a daemon."""

from __future__ import annotations

import argparse

import blit
from blit.cli import exit_status, remote_options
from blit.cli.output import print_out
from blit.cli.parsing import ArgumentParser, HelpFormatter

DESCRIPTION = """\
Delete each URL, a file, a symlink or a whole directory tree, on a blitd
daemon. All URLs must name paths inside the same module. A module's root
is never deleted: a URL such as blit://HOST/MODULE or blit://HOST/MODULE/
is rejected. The daemon deletes the URLs in order and stops at the first
one that fails, with exit status 1, and the URLs before it stay deleted.
"""

OUTPUT_HELP = """\
output:
  One line on stdout: "purge: N deleted", counting each entry inside a
  deleted directory. --json prints one JSON object instead, with the keys
  command and deleted.
"""


def add_command(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``purge`` sub-parser to ``commands``."""
    command = commands.add_parser(
        "purge",
        help="Delete files and directory trees on a daemon.",
        description=DESCRIPTION,
        epilog=OUTPUT_HELP
        + "\n"
        + remote_options.ADDRESS_HELP
        + "\n"
        + exit_status.HELP_NO_TRANSFER,
        formatter_class=HelpFormatter,
    )
    command.add_argument(
        "urls",
        metavar="URL",
        nargs="+",
        help="Path to delete: blit://HOST[:PORT]/MODULE/PATH. Give one or more.",
    )
    command.add_argument(
        "--json",
        action="store_true",
        help="Print the result as one JSON object on stdout instead of text.",
    )
    remote_options.add_token_option(command)
    remote_options.add_tls_ca_option(command)
    command.set_defaults(handler=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    """Run ``purge``, print the number of deleted entries and return the exit status."""
    token = remote_options.read_token(args)
    deleted = blit.purge(*args.urls, token=token, tls_ca=args.tls_ca)
    if args.json:
        # Imported here so that `blit --version` does not load json.
        import json

        print_out(json.dumps({"command": "purge", "deleted": deleted}))
    else:
        print_out(f"purge: {deleted:,} deleted")
    return exit_status.OK
