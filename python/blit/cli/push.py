"""The ``push`` command: copy or mirror a local file or directory to a daemon."""

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
Copy the local SRC to URL on a blitd daemon. With --mirror, also delete
entries under URL that SRC lacks, unless an --exclude pattern matches them.

A directory SRC's contents go into the directory URL names, which is created
if missing. A single-file SRC goes into URL when that is an existing
directory or ends in "/". Otherwise URL is the file's new name. The daemon
writes each file to a temporary name and renames it into place when
complete, and keeps mode bits, modification times, symlinks (as links) and
empty directories.
"""


def add_command(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``push`` sub-parser to ``commands``."""
    command = commands.add_parser(
        "push",
        help="Copy a local file or directory to a daemon.",
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
    command.add_argument("src", metavar="SRC", help="Local source file or directory.")
    command.add_argument(
        "url",
        metavar="URL",
        help="Destination on the daemon: blit://HOST[:PORT]/MODULE[/PATH] or blits://...",
    )
    command.add_argument(
        "--mirror",
        action="store_true",
        help=(
            "Also delete entries under URL that SRC lacks, except those that an "
            "--exclude pattern matches. Default: off."
        ),
    )
    transfer.add_transfer_options(command)
    remote_options.add_token_option(command)
    remote_options.add_tls_ca_option(command)
    remote_options.add_force_grpc_data_option(command)
    transfer.add_output_options(command)
    command.set_defaults(handler=run_push)


def run_push(args: argparse.Namespace) -> int:
    """Run ``push``, print the result and return the exit status."""
    token = remote_options.read_token(args)

    def start(progress: ProgressCallback | None) -> Summary:
        return blit.push(
            args.src,
            args.url,
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
