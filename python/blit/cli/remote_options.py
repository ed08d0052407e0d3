"""Options of the commands that reach a daemon: --token-file, --tls-ca and --force-grpc-data."""

from __future__ import annotations

import argparse

from blit.errors import InvalidArgumentError

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from blit.cli.parsing import ArgumentParser

ADDRESS_HELP = """\
addresses:
  blit://HOST[:PORT]/MODULE[/PATH] names PATH inside MODULE on the blitd
  at HOST, port 50051 unless PORT is given. Put an IPv6 HOST in brackets,
  as blit://[::1]/MODULE. blit://HOST[:PORT]/ names the daemon itself.
  A v1 address such as HOST:MODULE/PATH is rejected with its v2 form.
  blits://HOST[:PORT]/MODULE[/PATH] is the same over TLS, for a blitd with
  [daemon.tls] in its config.

authentication:
  The token comes from the first line of --token-file, or else from the
  BLIT_TOKEN environment variable. blit never prints it.

TLS:
  For a blits:// address, the daemon's certificate must be valid for HOST
  and signed by a CA that the system trusts or that --tls-ca names, such as
  the ca.pem that "blitd tls self-signed" writes. No option skips this check.
"""


def add_token_option(command: ArgumentParser) -> None:
    """Add ``--token-file`` to ``command``."""
    command.add_argument(
        "--token-file",
        metavar="PATH",
        help=(
            "Read the daemon's access token from the first line of PATH. "
            "Default: the BLIT_TOKEN environment variable, else no token."
        ),
    )


def add_tls_ca_option(command: ArgumentParser) -> None:
    """Add ``--tls-ca`` to ``command``."""
    command.add_argument(
        "--tls-ca",
        metavar="FILE",
        help=(
            "Trust the CA certificates in FILE (PEM), in addition to the system's, "
            "for blits:// addresses. Default: only the system's."
        ),
    )


def add_force_grpc_data_option(command: ArgumentParser) -> None:
    """Add ``--force-grpc-data`` to ``command``."""
    command.add_argument(
        "--force-grpc-data",
        action="store_true",
        help=(
            "Send file bytes inside the gRPC control connection instead of over the "
            "daemon's data port, for networks that let only the control port through. "
            "Default: use the data port, and fall back to gRPC when it cannot be reached."
        ),
    )


def read_token(args: argparse.Namespace) -> str | None:
    """Return the token from ``--token-file``, or ``None`` when the option is absent.

    Raises:
        InvalidArgumentError: The file cannot be read, is not UTF-8 text, or
            its first line is empty. The message names the file and never
            contains its content.
    """
    path: str | None = args.token_file
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            first_line = handle.readline()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidArgumentError(
            f"cannot read token file {path}: {reason}; check the --token-file path",
            path=path,
        ) from None
    except UnicodeDecodeError:
        raise InvalidArgumentError(
            f"token file {path} is not UTF-8 text; put the token on its first line",
            path=path,
        ) from None
    token = first_line.strip()
    if not token:
        raise InvalidArgumentError(
            f"token file {path} has an empty first line; put the token on its first line",
            path=path,
        )
    return token
