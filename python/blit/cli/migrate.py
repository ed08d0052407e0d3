"""The ``migrate-config`` and ``migrate-url`` commands: move from blit v1 to v2.

This module only parses arguments and prints; :mod:`blit.migrate` does the
work and is imported when a command runs, so that other commands do not
pay for loading it.
"""

from __future__ import annotations

import argparse
import os
import sys

from blit.cli import exit_status
from blit.cli.output import print_err, print_out, printable
from blit.cli.parsing import ArgumentParser, HelpFormatter

TYPE_CHECKING = False  # not typing's: importing typing slows the command's start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from blit.migrate.config import Conversion
    from blit.migrate.report import Report
    from blit.migrate.scripts import AddressOptions

# The prefix of every line that these commands print on stderr.
PROG = "blit"
MAX_PORT = 65535

CONFIG_DESCRIPTION = """\
Convert a blit v1 daemon config (OLD, an rsyncd.conf-style file read with
rsyncd's rules and defaults) into a blitd v2 config.toml.

Each v1 setting without a v2 meaning is reported on stderr with its file
and line, and kept as a comment in the output. v1 users (auth users with a
secrets file) cannot keep their passwords, because v2 authenticates with
tokens: the "blitd token create" commands that replace them are printed on
stderr and kept as comments at the top of the output. The secrets file is
never read.

The output is checked with blitd's own config parser before it is written,
so blitd --check-config accepts it. Module paths must exist, so run the
migration on the daemon's host.
"""

CONFIG_EPILOG = """\
decisions:
  port       v1's port, else 50051 (v2's default, not rsyncd's 873); --port
             overrides it, to run v2 beside v1
  address    v1's address, else 0.0.0.0 (every IPv4 interface), as rsyncd
             listens on every interface without one
  data_port  the listen port + 1
  read_only  yes unless v1 says "read only = no", as in rsyncd
  token_file /var/lib/blit/tokens.toml unless --token-file is given

exit status:
  0    the config was converted; warnings name what is not carried over
  1    the conversion failed (an invalid v1 config, a module name or path
       that v2 rejects, a warning under --strict, an output that blitd
       rejects); nothing is written and nothing is printed on stdout
"""

URL_DESCRIPTION = """\
Convert v1 addresses to v2 ones, or with --rewrite-scripts, rewrite v1 blit
command lines in shell scripts.

Addresses: HOST:MODULE/PATH (blit v1), HOST::MODULE/PATH (rsync daemon) and
rsync://HOST[:PORT]/MODULE/PATH become blit://HOST:PORT/MODULE/PATH, where
PORT is 50051, --port, or the port of --config's listen_addr; rsync's port
is never kept. Put an IPv6 HOST in brackets. Without ADDRESS arguments,
addresses are read from stdin, one a line. Each result is printed on its
own line; an input that is not a v1 address is printed unchanged and
reported on stderr.

Scripts: "blit SRC DST" becomes "blit copy SRC DST" and "blit SRC DST --mir"
becomes "blit mirror SRC DST", with v2 addresses; the rest of each line is
kept byte for byte. Each changed script is first copied to FILE.bak, and
the changes are printed as a unified diff. rsync command lines are reported
with their blit equivalent and not changed.
"""

URL_EPILOG = """\
exit status:
  0    every address was converted, or every script was rewritten, or
       needed no change
  1    an input was not a v1 address, a blit command was left unchanged
       for a reason printed on stderr, or a script could not be rewritten
"""


def add_commands(commands: argparse._SubParsersAction[ArgumentParser]) -> None:
    """Add the ``migrate-config`` and ``migrate-url`` sub-parsers to ``commands``."""
    config = commands.add_parser(
        "migrate-config",
        help="Convert a blit v1 daemon config into a blitd v2 config.toml.",
        description=CONFIG_DESCRIPTION,
        epilog=CONFIG_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_migrate_config_arguments(config)
    config.set_defaults(handler=run_migrate_config)

    url = commands.add_parser(
        "migrate-url",
        help="Convert v1 addresses, or v1 blit commands in shell scripts, to v2.",
        description=URL_DESCRIPTION,
        epilog=URL_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_migrate_url_arguments(url)
    url.set_defaults(handler=run_migrate_url)


def add_migrate_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``migrate-config`` to ``parser``."""
    parser.add_argument("old", metavar="OLD", help="The v1 config file, such as /etc/blit.conf.")
    parser.add_argument(
        "-o",
        "--output",
        metavar="NEW",
        help=(
            "Write the v2 config to NEW, through a temporary file in its directory, so an "
            "error leaves no NEW behind. '-' or no -o prints it on stdout."
        ),
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Replace NEW if it exists. Default: stop with an error instead.",
    )
    parser.add_argument(
        "--port",
        type=_listen_port,
        metavar="N",
        help=(
            "Listen on port N (1 to 65534) instead of v1's port, for example to run v2 "
            "beside v1. The data plane uses N + 1. Default: v1's port, else 50051."
        ),
    )
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help=(
            "Path of the token store to write as token_file, made absolute. "
            "Default: /var/lib/blit/tokens.toml, the path of the systemd unit."
        ),
    )
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        type=_rename,
        metavar="OLD=NEW",
        help=(
            "Serve the v1 module OLD as NEW. Needed for a v1 name that v2 rejects (v2 allows "
            "letters, digits, '.', '_' and '-'); the error suggests a NEW. Repeat for more "
            "modules."
        ),
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=(
            "Treat every warning (a v1 setting that is not carried over) as an error: exit "
            "with 1 and write nothing."
        ),
    )


def add_migrate_url_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``migrate-url`` to ``parser``."""
    parser.add_argument(
        "inputs",
        metavar="ADDRESS",
        nargs="*",
        help="v1 addresses to convert; default: one a line from stdin. With "
        "--rewrite-scripts: the script files to rewrite.",
    )
    port = parser.add_mutually_exclusive_group()
    port.add_argument(
        "--port",
        type=_port,
        metavar="N",
        help="Put port N (1 to 65535) in the v2 addresses. Default: 50051.",
    )
    port.add_argument(
        "--config",
        metavar="NEW",
        help=(
            "Take the port from the listen_addr of the v2 config NEW, and write blits:// "
            "addresses when NEW has a [daemon.tls] table."
        ),
    )
    parser.add_argument(
        "--rename",
        action="append",
        default=[],
        type=_rename,
        metavar="OLD=NEW",
        help="Write module NEW where a v1 address names module OLD, as migrate-config "
        "--rename does. Repeat for more modules.",
    )
    parser.add_argument(
        "--rewrite-scripts",
        action="store_true",
        help=(
            "Treat the arguments as shell scripts and rewrite their v1 blit commands in "
            "place, keeping a backup of each changed script and printing a unified diff."
        ),
    )
    parser.add_argument(
        "--backup-suffix",
        default=".bak",
        metavar="SUFFIX",
        help=(
            "With --rewrite-scripts: the backup of FILE is FILE + SUFFIX. An existing "
            "backup is never replaced; that script is skipped instead. Default: .bak."
        ),
    )
    parser.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="With --rewrite-scripts: print the diff, change no file and write no backup.",
    )


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}; give a number from 1 to 65535"
        ) from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}; give a number from 1 to 65535")
    return port


def _listen_port(text: str) -> int:
    port = _port(text)
    if port == MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"invalid port {text!r}; the data plane uses N + 1, so give a number from 1 to "
            f"{MAX_PORT - 1}"
        )
    return port


def _rename(text: str) -> tuple[str, str]:
    old, equals, new = text.rpartition("=")
    if not equals or not old or not new:
        raise argparse.ArgumentTypeError(f"invalid rename {text!r}; write OLD=NEW")
    return old, new


def _rename_map(pairs: Sequence[tuple[str, str]], key: Callable[[str], str]) -> dict[str, str]:
    """Return the --rename pairs as a dict.

    Raises:
        ValueError: Two pairs rename the same module, that is, their OLD
            names have the same ``key``; the message names both.
    """
    renames: dict[str, str] = {}
    seen: dict[str, str] = {}
    for old, new in pairs:
        earlier = seen.get(key(old))
        if earlier is not None:
            raise ValueError(
                f"--rename {earlier}={renames[earlier]} and --rename {old}={new} both rename "
                "the same module; give one --rename for it"
            )
        seen[key(old)] = old
        renames[old] = new
    return renames


def _print_reports(reports: Iterable[Report]) -> None:
    for report in reports:
        print_err(printable(report.format(PROG)))


# --- migrate-config


def run_migrate_config(args: argparse.Namespace) -> int:
    """Run ``migrate-config`` and return the exit status."""
    from blit.migrate import config as migrate_config
    from blit.migrate import v2config
    from blit.migrate.report import Report

    output: str | None = args.output
    if output == "-":
        output = None
    try:
        renames = _rename_map(args.rename, migrate_config.module_key)
    except ValueError as error:
        print_err(f"{PROG}: error: {error}")
        return exit_status.ERROR
    if output is not None:
        if (
            os.path.exists(output)
            and os.path.exists(args.old)
            and os.path.samefile(output, args.old)
        ):
            print_err(
                f"{PROG}: error: -o {output} names the v1 config itself; write the v2 "
                "config to another file"
            )
            return exit_status.ERROR
        if os.path.exists(output) and not args.force:
            print_err(
                f"{PROG}: error: {output} exists already; pass --force to replace it, "
                "or choose another file with -o"
            )
            return exit_status.ERROR
    options = migrate_config.Options(
        port=args.port,
        token_file=(
            os.path.abspath(args.token_file)
            if args.token_file
            else migrate_config.DEFAULT_TOKEN_FILE
        ),
        config_path=(
            os.path.abspath(output) if output is not None else migrate_config.DEFAULT_CONFIG_PATH
        ),
        renames=renames,
    )
    try:
        conversion = migrate_config.convert_file(args.old, options)
    except OSError as error:
        print_err(f"{PROG}: error: cannot read the v1 config {args.old}: {error.strerror or error}")
        return exit_status.ERROR

    reports = conversion.reports
    if args.strict:
        reports = [
            Report(
                "error",
                f"{report.message} (an error under --strict)",
                report.location,
                report.section,
            )
            if report.severity == "warning"
            else report
            for report in reports
        ]
    _print_reports(reports)
    errors = [report for report in reports if report.severity == "error"]
    if not errors:
        problem = v2config.validate(conversion, output or "<stdout>")
        if problem is not None:
            _print_reports([problem])
            errors.append(problem)
    if errors:
        print_err(
            f"{PROG}: error: {len(errors)} error(s); "
            + ("nothing was written" if output else "no config was printed")
        )
        return exit_status.ERROR

    if conversion.tokens:
        print_err(
            f"{PROG}: note: create the tokens that replace v1's password logins and "
            "access without a password; blitd prints each token once on stdout:"
        )
        for token in conversion.tokens:
            print_err("  " + printable(token.command(options.config_path)))
    if output is not None:
        try:
            v2config.write_atomically(output, conversion.text)
        except OSError as error:
            print_err(f"{PROG}: error: cannot write {output}: {error.strerror or error}")
            return exit_status.ERROR
    else:
        print_out(conversion.text[:-1])
    print_err(_summary(conversion, output))
    return exit_status.OK


def _summary(conversion: Conversion, output: str | None) -> str:
    modules = len(conversion.modules)
    parts = [f"{modules} module{'' if modules == 1 else 's'}"]
    if conversion.left_out:
        parts.append(f"{len(conversion.left_out)} left out")
    warnings = len(conversion.warnings)
    parts.append(f"{warnings} warning{'' if warnings == 1 else 's'}")
    parts.append(
        f"{len(conversion.tokens)} token{'' if len(conversion.tokens) == 1 else 's'} to create"
    )
    where = f"wrote {output}" if output is not None else "config on stdout"
    return f"{PROG}: {where}: " + ", ".join(parts)


def migrate_config_main(argv: Sequence[str] | None = None, prog: str = "migrate_config.py") -> int:
    """Run ``migrate-config`` as a program of its own, for scripts/migrate_config.py."""
    parser = ArgumentParser(
        prog=prog,
        description=CONFIG_DESCRIPTION + '\nThis is the same as "blit migrate-config".',
        epilog=CONFIG_EPILOG,
        formatter_class=HelpFormatter,
    )
    add_migrate_config_arguments(parser)
    args = parser.parse_args(argv)
    return run_migrate_config(args)


# --- migrate-url


def run_migrate_url(args: argparse.Namespace) -> int:
    """Run ``migrate-url`` and return the exit status."""
    from blit.migrate.scripts import AddressOptions

    if not args.rewrite_scripts and (args.dry_run or args.backup_suffix != ".bak"):
        print_err(f"{PROG}: error: --dry-run and --backup-suffix apply only with --rewrite-scripts")
        return exit_status.ERROR
    port = args.port
    tls = False
    if args.config is not None:
        from blit.migrate.v2config import read_daemon_address

        try:
            port, tls = read_daemon_address(args.config)
        except (OSError, ValueError) as error:
            print_err(f"{PROG}: error: cannot read the port from {args.config}: {error}")
            return exit_status.ERROR
    from blit.migrate import values

    try:
        renames = _rename_map(args.rename, str)
    except ValueError as error:
        print_err(f"{PROG}: error: {error}")
        return exit_status.ERROR
    for old, new in renames.items():
        if not values.is_valid_module_name(new):
            print_err(
                f"{PROG}: error: --rename {old}={new}: {new!r} is not a valid v2 module name; "
                "use letters, digits, '.', '_' and '-', not starting with '.'"
            )
            return exit_status.ERROR
    options = AddressOptions(port=port or 50051, tls=tls, renames=renames)
    if args.rewrite_scripts:
        if not args.inputs:
            print_err(f"{PROG}: error: --rewrite-scripts needs at least one script file")
            return exit_status.ERROR
        return _rewrite_scripts(args.inputs, options, args.backup_suffix, args.dry_run)
    if args.inputs:
        return _convert_addresses(args.inputs, options, from_stdin=False)
    lines = [line.rstrip("\r\n") for line in sys.stdin]
    return _convert_addresses(lines, options, from_stdin=True)


def _convert_addresses(inputs: Sequence[str], options: AddressOptions, *, from_stdin: bool) -> int:
    from blit.migrate.addresses import ALREADY_V2, parse
    from blit.migrate.report import Location, Report

    status = exit_status.OK
    for number, text in enumerate(inputs, start=1):
        location = Location("<stdin>", number) if from_stdin else None
        stripped = text.strip()
        if not stripped:
            print_out(text)
            continue
        converted, message = options.convert(stripped)
        if converted is None:
            already_v2 = message == ALREADY_V2
            if not already_v2:
                status = exit_status.ERROR
            if parse(stripped).address is not None:
                problem = f"{stripped!r}: {message}; printed unchanged"
            else:
                problem = f"{stripped!r} is not a v1 address ({message}); printed unchanged"
            _print_reports([Report("note" if already_v2 else "warning", problem, location)])
            print_out(text)
            continue
        if message:
            _print_reports([Report("note", f"{stripped}: {message}", location)])
        print_out(converted)
    return status


def _rewrite_scripts(
    paths: Sequence[str], options: AddressOptions, backup_suffix: str, dry_run: bool
) -> int:
    from blit.migrate.scripts import BackupExistsError, rewrite_file

    status = exit_status.OK
    for path in paths:
        try:
            result = rewrite_file(path, options, backup_suffix=backup_suffix, dry_run=dry_run)
        except BackupExistsError as error:
            print_err(f"{PROG}: error: {path}: not rewritten: {error}")
            status = exit_status.ERROR
            continue
        except OSError as error:
            print_err(f"{PROG}: error: {path}: not rewritten: {error.strerror or error}")
            status = exit_status.ERROR
            continue
        _print_reports(result.reports)
        if any(report.severity != "note" for report in result.reports):
            status = exit_status.ERROR
        if not result.changed:
            print_err(f"{PROG}: {path}: no v1 blit command to rewrite")
            continue
        from_name = path if dry_run else path + backup_suffix
        diff = result.diff(from_name, path)
        print_out(diff[:-1] if diff.endswith("\n") else diff)
        count = result.rewritten_commands
        done = "would rewrite" if dry_run else "rewrote"
        backup = "" if dry_run else f"; the original is in {path + backup_suffix}"
        print_err(
            f"{PROG}: {path}: {done} {count} blit command{'' if count == 1 else 's'}" + backup
        )
    return status
