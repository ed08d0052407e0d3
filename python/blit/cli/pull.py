"""The ``pull`` command: copy or mirror a file or directory from a daemon to a local path."""

from __future__ import annotations

import argparse

import blit
from blit.cli import exit_status, remote_options, transfer
from blit.cli.parsing import ArgumentParser, HelpFormatter

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from blit import Summary
    from blit.cli.transfer import ProgressCallback

DESCRIPTION = """\
Copy URL on a blitd daemon to the local DST. With --mirror, also delete
entries under DST that URL lacks, unless an --exclude pattern matches them.

A directory URL's contents go into DST, which is created if missing. A
single file goes into DST when that is an existing directory or ends in
"/". Otherwise DST is its new name. Each file is written to a temporary
name in its destination directory and renamed into place when complete.
Mode bits, modification times, symlinks (as links) and empty directories
are preserved.
"""


def add_command(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``pull`` sub-parser to ``commands``."""
    command = commands.add_parser(
        "pull",
        help="Copy a file or directory from a daemon to a local path.",
        description=DESCRIPTION,
        epilog=(
            transfer.EXCLUDE_HELP
            + "\n"
            + transfer.OUTPUT_HELP
            + "\n"
            + remote_options.ADDRESS_HELP
            + "\n"
            + exit_status.HELP
        ),
        formatter_class=HelpFormatter,
    )
    command.add_argument(
        "url",
        metavar="URL",
        help="Source on the daemon: blit://HOST[:PORT]/MODULE[/PATH] or blits://...",
    )
    command.add_argument("dst", metavar="DST", help="Local destination path.")
    command.add_argument(
        "--mirror",
        action="store_true",
        help=(
            "Also delete local entries under DST that URL lacks, except those that "
            "an --exclude pattern matches. Default: off."
        ),
    )
    transfer.add_transfer_options(command)
    remote_options.add_token_option(command)
    remote_options.add_tls_ca_option(command)
    remote_options.add_force_grpc_data_option(command)
    transfer.add_output_options(command)
    command.set_defaults(handler=run_pull)


def run_pull(args: argparse.Namespace) -> int:
    """Run ``pull``, print the result and return the exit status."""
    token = remote_options.read_token(args)

    def start(progress: ProgressCallback | None) -> Summary:
        return blit.pull(
            args.url,
            args.dst,
            mirror=args.mirror,
            dry_run=args.dry_run,
            exclude=args.exclude,
            checksum=args.checksum,
            fsync=args.fsync,
            progress=progress,
            token=token,
            tls_ca=args.tls_ca,
            force_grpc_data=args.force_grpc_data,
        )

    return transfer.run_and_report(args, start)
