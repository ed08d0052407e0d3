"""Conversion of a blit v1 daemon config into a blitd v2 ``config.toml``.

:func:`convert_file` reads the v1 file (:mod:`blit.migrate.rsyncd`) and
returns a :class:`Conversion`: the TOML text, the findings and the tokens
to create. :mod:`blit.migrate.v2config` validates the text with blitd's
own parser and writes it. docs/migration_v1_to_v2.md
describes the rules; in short:

- ``port`` and ``address`` become ``[daemon] listen_addr``. Without
  ``address`` the daemon listens on every IPv4 interface, as rsyncd listens
  on every interface. Without ``port`` it uses v2's port 50051, not
  rsyncd's 873, so that v2 can run beside v1; ``port`` sets another.
- ``path``, ``comment``, ``read only`` (default yes, as in rsyncd),
  ``list``, ``max connections``, ``hosts allow``, ``hosts deny`` and
  ``exclude`` become the module keys of the same meaning.
- ``auth users`` become the ``blitd token create`` commands to run,
  because v2 authenticates with tokens and passwords cannot become tokens.
  The secrets file is never read.
- Every other key is reported with its file and line, and kept as a
  comment in the output.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from blit.migrate import rsyncd, toml_text, values
from blit.migrate.report import Location, Report, Severity
from blit.migrate.rsyncd import Parameter, Section, V1Config

# v2's control-plane port, used when the v1 config sets no port.
DEFAULT_PORT = 50051
MAX_PORT = 65535
# rsyncd's port when its config sets none.
V1_DEFAULT_PORT = 873
# The token store of packaging/blitd.service and docs/daemon.md.
DEFAULT_TOKEN_FILE = "/var/lib/blit/tokens.toml"
# The config file that blitd reads without --config.
DEFAULT_CONFIG_PATH = "/etc/blit/config.toml"

# The v1 module parameters that become v2 keys or tokens.
CARRIED_OVER = frozenset(
    [
        "path",
        "comment",
        "read only",
        "write only",
        "list",
        "max connections",
        "hosts allow",
        "hosts deny",
        "exclude",
        "auth users",
        "secrets file",
    ]
)

# The carried-over parameters that decide who may do what with a module.
ACCESS_PARAMETERS = frozenset(
    [
        "read only",
        "write only",
        "list",
        "max connections",
        "hosts allow",
        "hosts deny",
        "auth users",
        "secrets file",
    ]
)

PERMISSIONS_READ = ("read",)
PERMISSIONS_READ_WRITE = ("read", "write", "delete")
PERMISSIONS_WRITE = ("write", "delete")

# The reason that each v1 parameter without a v2 meaning is not carried over.
UNSUPPORTED: dict[str, str] = {
    "auth digest": "v2 authenticates with tokens only",
    "charset": "blit transfers file names as raw bytes and converts no character set",
    "daemon chroot": "blitd does not chroot; it resolves every path inside the module and "
    "never follows a symlink",
    "daemon gid": "start blitd as the group it should run as (Group= in its systemd unit)",
    "daemon uid": "start blitd as the user it should run as (User= in its systemd unit)",
    "dont compress": "blit does not compress",
    "early exec": "blitd runs no commands around a transfer",
    "exclude from": "v2 takes exclude patterns only inline; copy the file's patterns into "
    "this module's exclude",
    "fake super": "blitd does not store owners or extended attributes",
    "filter": "v2 takes exclude patterns only; write the exclude rules into exclude",
    "forward lookup": "v2 matches hosts_allow and hosts_deny against IP addresses only",
    "gid": "blitd accesses every module as the user and group it runs as",
    "ignore errors": "v2 has no such setting",
    "ignore nonreadable": "v2 has no such setting; an unreadable file fails as one entry",
    "include": "v2 has exclude patterns only, no include rules that override them",
    "include from": "v2 has exclude patterns only, no include rules that override them",
    "incoming chmod": "blitd keeps the mode bits that the client sends, without setuid and setgid",
    "insecure links": "blitd never follows symlinks inside a module",
    "listen backlog": "blitd sets its own listen backlog",
    "lock file": "blitd counts connections without a lock file",
    "log file": "blitd logs to stderr, which systemd sends to the journal",
    "log format": "blitd logs each transfer in its own format",
    "max verbosity": "blitd's log detail is set with --log-level",
    "motd file": "blit shows no message of the day",
    "munge symlinks": "blitd stores symlinks as data and never follows them",
    "name": "the [module] header names the module",
    "name converter": "blitd does not transfer owners",
    "numeric ids": "blitd does not transfer owners",
    "open noatime": "v2 has no such setting",
    "outgoing chmod": "blitd sends mode bits as they are stored",
    "pid file": "run blitd under systemd or another supervisor, which tracks its process",
    "post-xfer exec": "blitd runs no commands around a transfer",
    "pre-xfer exec": "blitd runs no commands around a transfer",
    "proxy protocol": "blitd does not accept the PROXY protocol",
    "proxy protocol hosts": "blitd does not accept the PROXY protocol",
    "refuse options": "v2 clients send no rsync options; limit what a client may do with "
    "the permissions of its token (read, write, delete)",
    "reverse lookup": "v2 matches hosts_allow and hosts_deny against IP addresses only",
    "socket options": "blitd sets its own socket options",
    "strict modes": "blitd reads no secrets file",
    "syslog facility": "blitd logs to stderr, which systemd sends to the journal",
    "syslog tag": "blitd logs to stderr, which systemd sends to the journal",
    "temp dir": "blitd writes each file to a temporary name in its destination directory",
    "timeout": "v2 has no per-module I/O timeout",
    "transfer logging": "blitd logs each push and pull at info level",
    "uid": "blitd accesses every module as the user it runs as (User= in its systemd unit)",
    "use chroot": "blitd does not chroot; it resolves every path inside the module and never "
    "follows a symlink",
    "use pam": "v2 authenticates with tokens only",
}


# Boolean settings whose value here is what blitd does anyway, each with
# the reason. Such a line is a note, not a warning, so --strict accepts it.
SAME_IN_V2: dict[tuple[str, bool], str] = {
    ("use chroot", False): "blitd does not chroot either; it resolves every path inside "
    "the module and never follows a symlink",
    ("use pam", False): "blitd does not use PAM either",
    ("reverse lookup", False): "blitd does not look up client host names either; it "
    "matches hosts_allow and hosts_deny against IP addresses",
    ("forward lookup", False): "blitd does not look up the host names of hosts allow and "
    "hosts deny either; it takes IP addresses and CIDR ranges only",
}


@dataclass(frozen=True)
class Options:
    """Choices of a conversion that the v1 config does not make."""

    # Control-plane port, overriding the v1 port (--port).
    port: int | None = None
    # The token store path written as token_file (--token-file).
    token_file: str = DEFAULT_TOKEN_FILE
    # The config path named in the `blitd token create` commands: the
    # output file, or blitd's default when the output goes to stdout.
    config_path: str = DEFAULT_CONFIG_PATH
    # v1 module name -> v2 module name (--rename).
    renames: Mapping[str, str] = field(default_factory=dict)
    # Environment for %VAR% references; None reads os.environ.
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TokenPlan:
    """A token that replaces v1 password logins, or access without a password."""

    name: str
    modules: tuple[str, ...]
    permissions: tuple[str, ...]
    # The v1 user it replaces; None for modules without auth users.
    v1_user: str | None

    def command(self, config_path: str) -> str:
        """Return the ``blitd token create`` command line that creates the token."""
        return shlex.join(
            [
                "blitd",
                "token",
                "create",
                "--config",
                config_path,
                "--name",
                self.name,
                "--modules",
                ",".join(self.modules),
                "--permissions",
                ",".join(self.permissions),
            ]
        )


@dataclass
class Conversion:
    """The result of a conversion."""

    # The v2 config text; empty when errors stopped the conversion.
    text: str
    # Errors, warnings and notes in input order.
    reports: list[Report]
    tokens: list[TokenPlan]
    # Names of the v2 modules written, in order.
    modules: list[str]
    # Names of the v1 modules that were left out.
    left_out: list[str]
    # Output line number -> the v1 line that it was converted from.
    source_lines: dict[int, Location]
    # v2 module name -> the v1 header it was converted from.
    module_sources: dict[str, Location]

    @property
    def errors(self) -> list[Report]:
        """The findings that stop the conversion."""
        return [report for report in self.reports if report.severity == "error"]

    @property
    def warnings(self) -> list[Report]:
        """What the output does not carry over."""
        return [report for report in self.reports if report.severity == "warning"]


def convert_file(path: str, options: Options | None = None) -> Conversion:
    """Read the v1 config at ``path`` and convert it.

    Raises:
        OSError: ``path`` cannot be read.
    """
    options = options or Options()
    v1 = rsyncd.parse_file(path, options.environ)
    return convert(v1, options)


def convert(v1: V1Config, options: Options | None = None) -> Conversion:
    """Convert a parsed v1 config into v2 TOML text, with its findings and tokens."""
    return _Converter(v1, options or Options()).run()


@dataclass
class _Module:
    """A v1 module on its way to v2."""

    section: Section
    name: str
    keys: list[tuple[str, str, Location | None]] = field(default_factory=list)
    left_out_reason: str = ""
    comments: list[str] = field(default_factory=list)


class _Converter:
    def __init__(self, v1: V1Config, options: Options) -> None:
        self.v1 = v1
        self.options = options
        self.environ = os.environ if options.environ is None else options.environ
        self.reports: list[Report] = list(v1.reports)
        # The v1 section in which each parameter line was written, or None
        # for the global section: findings about a value are placed there.
        self.origin: dict[Parameter, str | None] = {
            assignment.parameter: (assignment.section.name if assignment.section else None)
            for assignment in v1.assignments
        }
        self.modules: list[_Module] = []
        self.tokens: list[TokenPlan] = []
        # v1 user -> [(v2 module, permissions)], in the order users appear.
        self.grants: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self.anonymous: list[tuple[str, tuple[str, ...]]] = []

    def report(
        self, severity: Severity, message: str, location: Location | None, section: str | None
    ) -> None:
        entry = Report(severity, message, location, section)
        if entry not in self.reports:
            self.reports.append(entry)

    def about(self, parameter: Parameter, severity: Severity, message: str) -> None:
        """Report a finding about ``parameter`` where it was written."""
        self.report(severity, message, parameter.location, self.origin.get(parameter))

    def expand(self, parameter: Parameter) -> str:
        expansion = rsyncd.expand_variables(parameter.value, self.environ)
        for name in expansion.unset:
            self.about(
                parameter,
                "warning",
                f"{parameter.name} = {_redacted_value(parameter)}: the environment variable {name} is "
                f"not set, so %{name}% stays as written, as rsyncd would keep it; set it "
                "and rerun to expand it",
            )
        return expansion.value

    def run(self) -> Conversion:
        self.check_renames()
        listen_addr, data_port, daemon_comments = self.convert_daemon()
        used_names: set[str] = set()
        for section in self.v1.modules:
            module = self.convert_module(section, used_names)
            self.modules.append(module)
            if not module.left_out_reason:
                used_names.add(module.name)
        self.report_late_globals()
        self.report_unsupported()
        self.plan_tokens()
        reports = self.sorted_reports()
        if any(report.severity == "error" for report in reports):
            return Conversion("", reports, [], [], [], {}, {})
        writer = _Writer()
        self.render(writer, listen_addr, data_port, daemon_comments, reports)
        written = [module for module in self.modules if not module.left_out_reason]
        return Conversion(
            text=writer.text(),
            reports=reports,
            tokens=self.tokens,
            modules=[module.name for module in written],
            left_out=[m.section.name for m in self.modules if m.left_out_reason],
            source_lines=writer.sources,
            module_sources={module.name: module.section.location for module in written},
        )

    # --- [daemon]

    def convert_daemon(self) -> tuple[str, int, list[str]]:
        comments: list[str] = []
        port_parameter = self.v1.globals.get("port")
        port = DEFAULT_PORT
        if port_parameter is not None:
            text = self.expand(port_parameter)
            number = values.parse_int(text)
            if number is None or not 0 < number < 65536:
                self.about(
                    port_parameter,
                    "error",
                    f"port = {port_parameter.value}: not a port number from 1 to 65535",
                )
            else:
                port = number
        if self.options.port is not None:
            replaced = port if port_parameter is not None else V1_DEFAULT_PORT
            comments.append(f"The port comes from --port; v1 used {replaced}.")
            self.report(
                "note",
                f"listening on port {self.options.port} from --port; v1 used {replaced}",
                None,
                None,
            )
            port = self.options.port
        elif port_parameter is None:
            comments.append(
                f"v1 sets no port, so rsyncd listens on {V1_DEFAULT_PORT}. This uses v2's "
                f"default, {DEFAULT_PORT}, so that v2 can run beside v1, and v2 clients "
                f"connect to {DEFAULT_PORT} when an address names no port."
            )
            self.report(
                "note",
                f"v1 sets no port (rsyncd's default is {V1_DEFAULT_PORT}); "
                f"v2 listens on its default port {DEFAULT_PORT}",
                None,
                None,
            )

        address_parameter = self.v1.globals.get("address")
        host = "0.0.0.0"
        if address_parameter is None:
            comments.append(
                "v1 sets no address, so rsyncd listens on every interface. This listens on "
                'every IPv4 interface; use "[::]" for IPv6 as well, or set one address to '
                "narrow it. Without [daemon.tls], tokens and data cross the network in clear "
                "text."
            )
            self.report(
                "note",
                "v1 sets no address: listening on every IPv4 interface "
                f"(0.0.0.0:{port}), as rsyncd listens on every interface",
                None,
                None,
            )
        else:
            text = self.expand(address_parameter)
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:
                self.about(
                    address_parameter,
                    "error",
                    f"address = {address_parameter.value}: not an IP address; v2 listens on "
                    "an IP address only, so write the address that the name resolves to",
                )
            else:
                host = f"[{ip}]" if ip.version == 6 else str(ip)
        data_port = port + 1
        if data_port > MAX_PORT:
            problem = (
                f"v2's data plane listens on the port + 1, which is above {MAX_PORT}; pass "
                f"--port with a port from 1 to {MAX_PORT - 1}"
            )
            if self.options.port is not None or port_parameter is None:
                self.report("error", f"port {port}: {problem}", None, None)
            else:
                self.about(port_parameter, "error", f"port = {port_parameter.value}: {problem}")
        return f"{host}:{port}", data_port, comments

    def check_renames(self) -> None:
        known = {module_key(section.name) for section in self.v1.modules}
        seen: dict[str, str] = {}
        for old, new in self.options.renames.items():
            earlier = seen.setdefault(module_key(old), old)
            if earlier != old:
                self.report(
                    "error",
                    f"--rename {earlier}={self.options.renames[earlier]} and --rename "
                    f"{old}={new} both rename the module [{old}]; give one --rename for it",
                    None,
                    None,
                )
            elif module_key(old) not in known:
                self.report(
                    "error",
                    f"--rename {old}={new}: the v1 config has no module [{old}]",
                    None,
                    None,
                )
            elif not values.is_valid_module_name(new):
                self.report(
                    "error",
                    f"--rename {old}={new}: {new!r} is not a valid v2 "
                    "module name; use letters, digits, '.', '_' and '-', not starting "
                    "with '.'",
                    None,
                    None,
                )

    # --- [[modules]]

    def convert_module(self, section: Section, used_names: set[str]) -> _Module:
        module = _Module(section, self.module_name(section, used_names))
        settings = section.settings
        path = self.module_path(module)
        if module.left_out_reason:
            return module
        module.keys.append(("name", toml_text.basic_string(module.name), section.location))
        module.keys.append(("path", self.quoted(settings["path"], path), settings["path"].location))
        comment = settings.get("comment")
        if comment is not None:
            text = self.expand(comment)
            if text:
                module.keys.append(("comment", self.quoted(comment, text), comment.location))
        read_only = self.boolean(settings, "read only", True)
        read_only_location = settings["read only"].location if "read only" in settings else None
        module.keys.append(("read_only", "true" if read_only else "false", read_only_location))
        if not self.boolean(settings, "list", True):
            module.keys.append(("list", "false", settings["list"].location))
        self.convert_max_connections(module)
        self.convert_hosts(module)
        self.convert_exclude(module)
        if module.left_out_reason:
            return module
        write_only = self.boolean(settings, "write only", False)
        self.convert_access(module, read_only, write_only)
        return module

    def module_name(self, section: Section, used_names: set[str]) -> str:
        renamed = None
        for old, new in self.options.renames.items():
            if module_key(old) == module_key(section.name):
                renamed = new
        name = renamed or section.name
        if renamed is not None:
            self.report(
                "note",
                f"module [{section.name}] is served as {renamed}; clients "
                "must use that name in their addresses (blit migrate-url --rename "
                f"{shlex.quote(section.name + '=' + renamed)})",
                section.location,
                section.name,
            )
        elif not values.is_valid_module_name(name):
            suggestion = values.suggest_module_name(name, used_names)
            self.report(
                "error",
                f"module [{section.name}]: {name!r} is not a valid v2 module name (letters, "
                "digits, '.', '_' and '-', not starting with '.'); rerun with --rename "
                f"{shlex.quote(section.name + '=' + suggestion)} to serve it as {suggestion}",
                section.location,
                section.name,
            )
        if name in used_names:
            self.report(
                "error",
                f"module [{section.name}]: the v2 name {name} is used twice; "
                "pick another with --rename",
                section.location,
                section.name,
            )
        return name

    def module_path(self, module: _Module) -> str:
        section = module.section
        parameter = section.settings.get("path")
        if parameter is None:
            self.leave_out(module, "it has no path, so rsyncd cannot serve it either")
            return ""
        expansion = rsyncd.expand_variables(parameter.value, self.environ)
        if expansion.per_connection:
            names = ", ".join(f"%{name}%" for name in expansion.per_connection)
            self.leave_out(
                module,
                f"its path {parameter.value} uses {names}, which rsyncd "
                "sets for each connection; a v2 module serves one fixed directory",
                parameter,
            )
            return ""
        path = self.expand(parameter)
        # rsyncd drops trailing slashes from a path, so "/dir /" keeps the
        # space that ends the directory's name.
        while len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        if not os.path.isabs(path):
            self.about(
                parameter,
                "error",
                f"path = {parameter.value}: v2 needs an absolute path; write the "
                "absolute path of the directory in the v1 config and rerun",
            )
        elif not os.path.isdir(path):
            self.about(
                parameter,
                "error",
                f"module [{section.name}]: path {path} is not a directory on this "
                "machine; run the migration on the daemon's host, or create the "
                "directory",
            )
        return path

    def leave_out(self, module: _Module, reason: str, parameter: Parameter | None = None) -> None:
        module.left_out_reason = reason
        location = parameter.location if parameter is not None else module.section.location
        self.report(
            "warning",
            f"module [{module.section.name}] is left out: {reason}",
            location,
            module.section.name,
        )

    def quoted(self, parameter: Parameter, text: str) -> str:
        try:
            return toml_text.basic_string(text)
        except toml_text.NotRepresentableError as error:
            self.about(parameter, "error", f"{parameter.name}: {error}")
            return '""'

    def boolean(self, settings: dict[str, Parameter], name: str, default: bool) -> bool:
        parameter = settings.get(name)
        if parameter is None:
            return default
        result = values.parse_bool(self.expand(parameter))
        if result is None:
            self.about(
                parameter, "error", f"{name} = {parameter.value}: not a boolean; use yes or no"
            )
            return default
        return result

    def convert_max_connections(self, module: _Module) -> None:
        parameter = module.section.settings.get("max connections")
        if parameter is None:
            return
        number = values.parse_int(self.expand(parameter))
        if number is None:
            self.about(
                parameter, "error", f"max connections = {parameter.value}: not a whole number"
            )
        elif number < 0:
            self.leave_out(
                module,
                f"max connections = {parameter.value}: rsyncd refuses every "
                "connection to a module with a negative limit",
                parameter,
            )
        elif number > 0:
            module.keys.append(("max_connections", str(number), parameter.location))

    def convert_hosts(self, module: _Module) -> None:
        """Convert hosts allow and hosts deny, whose pairing rules v2 shares with rsyncd.

        A host that matches hosts allow is admitted. Otherwise a host that
        matches hosts deny is rejected. A host that matches neither is
        rejected only when hosts allow is set without hosts deny.
        """
        converted: dict[str, list[str]] = {}
        written: dict[str, bool] = {}
        for name in ("hosts allow", "hosts deny"):
            parameter = module.section.settings.get(name)
            entries = (
                []
                if parameter is None
                else [
                    values.convert_host(entry)
                    for entry in values.split_host_list(self.expand(parameter))
                ]
            )
            written[name] = bool(entries)
            converted[name] = [e.converted for e in entries if e.converted is not None]
            effect = (
                "are no longer admitted by it" if name == "hosts allow" else "are no longer denied"
            )
            for entry in entries:
                if entry.converted is None and parameter is not None:
                    self.about(
                        parameter,
                        "warning",
                        f"{name} entry {entry.text!r} is not carried over: "
                        f"{entry.reason}; the hosts it matched {effect}",
                    )
        allow = module.section.settings.get("hosts allow")
        deny = module.section.settings.get("hosts deny")
        if written["hosts allow"] and not written["hosts deny"] and not converted["hosts allow"]:
            # Without an allow entry left, the module would admit every host.
            self.leave_out(
                module,
                "none of its hosts allow entries has a v2 meaning, and "
                "without them it would admit every host",
                allow,
            )
            return
        if (
            written["hosts deny"]
            and not converted["hosts deny"]
            and converted["hosts allow"]
            and deny is not None
        ):
            self.about(
                deny,
                "warning",
                "without a hosts deny entry left, v2 rejects the hosts that match "
                "neither list, which v1 admitted",
            )
        if allow is not None and converted["hosts allow"]:
            module.keys.append(
                ("hosts_allow", toml_text.string_array(converted["hosts allow"]), allow.location)
            )
        if deny is not None and converted["hosts deny"]:
            module.keys.append(
                ("hosts_deny", toml_text.string_array(converted["hosts deny"]), deny.location)
            )

    def convert_exclude(self, module: _Module) -> None:
        parameter = module.section.settings.get("exclude")
        if parameter is None:
            return
        result = values.convert_excludes(self.expand(parameter))
        for rule, reason in result.dropped:
            self.about(parameter, "warning", f"exclude rule {rule!r} is not carried over: {reason}")
        for old, new in result.rewritten:
            self.about(
                parameter,
                "note",
                f"exclude pattern {old!r} becomes {new!r}: v2 matches a pattern that ends "
                "in '/' against directories only, and never descends into an excluded "
                "directory",
            )
        if result.patterns:
            try:
                array = toml_text.string_array(result.patterns)
            except toml_text.NotRepresentableError as error:
                self.about(parameter, "error", f"exclude: {error}")
                return
            module.keys.append(("exclude", array, parameter.location))

    # --- access: auth users -> tokens

    def convert_access(self, module: _Module, read_only: bool, write_only: bool) -> None:
        section = module.section
        allowed = _permissions(read_only, write_only)
        write_only_parameter = section.settings.get("write only")
        if write_only and write_only_parameter is not None:
            self.about(
                write_only_parameter,
                "note",
                "write only = yes: the tokens for this module get no read permission, "
                "so they cannot list or pull",
            )
        users_parameter = section.settings.get("auth users")
        rules = values.parse_auth_users(self.expand(users_parameter)) if users_parameter else []
        if not rules:
            unused_secrets = section.settings.get("secrets file")
            if unused_secrets is not None:
                self.about(
                    unused_secrets,
                    "note",
                    f"secrets file = {unused_secrets.value}: rsyncd reads it only for "
                    f"a module with auth users, which [{section.name}] has not; "
                    "nothing to carry over",
                )
            if allowed:
                self.anonymous.append((module.name, allowed))
            module.comments.append(
                "v1 served this module without a password. v2 requires a token on every "
                "request; the commands at the top create one."
            )
            return
        assert users_parameter is not None
        module.comments.append(
            "v1 required a password for this module (auth users). Only the tokens for its v1 "
            "users, listed at the top, reach it; create no token for '*' unless every holder "
            "may use it."
        )
        secrets = section.settings.get("secrets file")
        if secrets is None or not self.expand(secrets):
            self.about(
                users_parameter,
                "note",
                f"module [{section.name}] has auth users but no secrets file, so v1 "
                "admitted no one; no token covers it, so v2 admits no one either",
            )
            return
        self.about(
            secrets,
            "note",
            f"secrets file = {secrets.value}: passwords are not carried over and the "
            "file is not read; create the tokens listed at the top and hand each "
            "to its user",
        )
        self.grant_users(module, users_parameter, rules, read_only, write_only, allowed)

    def grant_users(
        self,
        module: _Module,
        parameter: Parameter,
        rules: list[values.AuthRule],
        read_only: bool,
        write_only: bool,
        allowed: tuple[str, ...],
    ) -> None:
        seen: set[str] = set()
        earlier_broad: list[str] = []
        for rule in rules:
            if rule.kind == "group":
                self.about(
                    parameter,
                    "warning",
                    f"auth users rule {rule.redacted_text!r} is not carried over: v2 has no "
                    "groups; create a token for each member instead",
                )
                earlier_broad.append(rule.redacted_text)
                continue
            if rule.kind == "pattern":
                self.about(
                    parameter,
                    "warning",
                    f"auth users rule {rule.redacted_text!r} is not carried over: a wildcard "
                    "cannot name a token; create a token for each user it matched",
                )
                earlier_broad.append(rule.redacted_text)
                continue
            if rule.name in seen:
                self.about(
                    parameter,
                    "note",
                    f"auth users rule {rule.redacted_text!r} is ignored, as rsyncd uses the "
                    f"first rule that matches {rule.name}",
                )
                continue
            seen.add(rule.name)
            if earlier_broad and rule.option != "deny":
                self.about(
                    parameter,
                    "warning",
                    f"auth users: {', '.join(repr(text) for text in earlier_broad)} may have "
                    f"matched {rule.name} before {rule.redacted_text!r} did; check the "
                    "permissions of its token",
                )
            permissions = self.rule_permissions(
                module, parameter, rule, read_only, write_only, allowed
            )
            if permissions:
                self.grants.setdefault(rule.name, []).append((module.name, permissions))

    def rule_permissions(
        self,
        module: _Module,
        parameter: Parameter,
        rule: values.AuthRule,
        read_only: bool,
        write_only: bool,
        allowed: tuple[str, ...],
    ) -> tuple[str, ...]:
        if rule.option == "deny":
            self.about(
                parameter,
                "note",
                f"auth users rule {rule.redacted_text!r}: {rule.name} gets no token for "
                f"[{module.section.name}], so v2 denies that user too",
            )
            return ()
        permissions: tuple[str, ...]
        if rule.option == "ro":
            permissions = () if write_only else PERMISSIONS_READ
        elif rule.option in ("rw", ""):
            permissions = allowed
            if rule.option == "rw" and read_only:
                self.about(
                    parameter,
                    "warning",
                    f"auth users rule {rule.redacted_text!r} let {rule.name} write to the "
                    "read-only module in v1; v2 has no per-user write access to a "
                    "read-only module, so the token can only read",
                )
        else:
            self.about(
                parameter,
                "warning",
                f"auth users rule for {rule.name} has an unknown option after ':', which "
                "is not shown because it may be a password; no token is made for it "
                "(use :ro, :rw or :deny, and remove any password from the v1 config)",
            )
            return ()
        if not permissions:
            self.about(
                parameter,
                "note",
                f"auth users rule {rule.redacted_text!r}: {rule.name} could neither read nor "
                f"write [{module.section.name}] in v1, so no token is made for it",
            )
        return permissions

    def plan_tokens(self) -> None:
        used_names: set[str] = set()
        for user, grants in self.grants.items():
            name = user
            if not values.is_valid_token_name(user):
                name = values.suggest_token_name(user, used_names)
                self.report(
                    "note",
                    f"v1 user {user!r} is not a valid token name; its token is named {name}",
                    None,
                    None,
                )
            for permissions, modules in _group_by_permissions(grants):
                token_name = name
                if len({perms for _, perms in grants}) > 1:
                    token_name = f"{name}-{_PERMISSION_SUFFIX[permissions]}"
                token_name = values.unique_name(token_name, used_names, values.MAX_TOKEN_NAME)
                used_names.add(token_name)
                self.tokens.append(TokenPlan(token_name, modules, permissions, user))
        groups = _group_by_permissions(self.anonymous)
        for permissions, modules in groups:
            base = (
                "anonymous" if len(groups) == 1 else f"anonymous-{_PERMISSION_SUFFIX[permissions]}"
            )
            token_name = values.unique_name(base, used_names, values.MAX_TOKEN_NAME)
            used_names.add(token_name)
            self.tokens.append(TokenPlan(token_name, modules, permissions, None))

    # --- global values set after a module

    def report_late_globals(self) -> None:
        """Note each global value that comes after a module's header.

        rsyncd gives such a value of a string parameter to every module
        that leaves the parameter unset (:mod:`blit.migrate.rsyncd` has the
        rule), and the output does the same. A module that copied another
        value at its header, or whose parameter is a boolean or an integer,
        keeps its own value in rsyncd and in the output, which is noted for
        the parameters that control access.
        """
        position = {
            assignment.parameter: index for index, assignment in enumerate(self.v1.assignments)
        }
        for section in self.v1.modules:
            for name, late in self.v1.defaults.items():
                if position[late] < section.first_assignment or name not in CARRIED_OVER:
                    continue
                setting = f"{late.written_name} = {_redacted_value(late)}"
                module = f"[{section.name}] ({section.location})"
                if name in section.late_settings:
                    self.report(
                        "note",
                        f"{setting} comes after module {module}, and rsyncd applies it to "
                        f"that module too, because the module does not set {name}",
                        late.location,
                        section.name,
                    )
                    continue
                if name not in ACCESS_PARAMETERS:
                    continue
                module_value = section.settings.get(name)
                if module_value is not None and (
                    self.origin.get(module_value) is not None or module_value.value == late.value
                ):
                    # The module sets it itself, or the values agree.
                    continue
                module_value_text = (
                    f"{name} = {_redacted_value(module_value)} from {module_value.location}"
                    if module_value is not None
                    else f"rsyncd's default {name}"
                )
                self.report(
                    "note",
                    f"{setting} comes after module {module} and does not apply to it: "
                    f"rsyncd gives a module the global {name} in force at its header, so "
                    f"the module keeps {module_value_text}",
                    late.location,
                    section.name,
                )

    # --- keys without a v2 meaning

    def report_unsupported(self) -> None:
        for assignment in self.v1.assignments:
            parameter = assignment.parameter
            reason = UNSUPPORTED.get(parameter.name)
            if reason is None:
                continue
            if parameter.spec.kind == "bool":
                value = values.parse_bool(
                    rsyncd.expand_variables(parameter.value, self.environ).value
                )
                same = SAME_IN_V2.get((parameter.name, value)) if value is not None else None
                if same is not None:
                    self.about(
                        parameter,
                        "note",
                        f"{parameter.written_name} = {parameter.value}: nothing to carry over: "
                        f"{same}",
                    )
                    continue
            self.about(
                parameter,
                "warning",
                f"{parameter.written_name} = {parameter.value}: not carried over: {reason}",
            )

    def sorted_reports(self) -> list[Report]:
        order = {name: index for index, name in reversed(list(enumerate(self.v1.files)))}

        def key(report: Report) -> tuple[int, int, int]:
            if report.location is None:
                return (0, 0, 0)
            return (1, order.get(report.location.file, len(order)), report.location.line)

        return sorted(self.reports, key=key)

    # --- output

    def render(
        self,
        writer: _Writer,
        listen_addr: str,
        data_port: int,
        daemon_comments: list[str],
        reports: list[Report],
    ) -> None:
        files = list(dict.fromkeys(self.v1.files))
        writer.comment(
            f"blitd v2 config, converted by blit migrate-config from {files[0]}"
            + (f" (with {', '.join(files[1:])})" if files[1:] else "")
            + "."
        )
        writer.long_comment(
            "Check it with: blitd --check-config --config " + shlex.quote(self.options.config_path)
        )
        self.render_tokens(writer)

        writer.blank()
        writer.line("[daemon]")
        for comment in daemon_comments:
            writer.comment(comment)
        writer.line(
            f"listen_addr = {toml_text.basic_string(listen_addr)}",
            self.global_location("port") or self.global_location("address"),
        )
        writer.comment(
            "The data plane's TCP port, on the same address; clients must reach it as well."
        )
        writer.line(f"data_port = {data_port}")
        writer.line('auth = "token"')
        if self.options.token_file == DEFAULT_TOKEN_FILE:
            writer.comment(
                "The token store. This is the path that packaging/blitd.service "
                "expects; --token-file sets another."
            )
        else:
            writer.comment("The token store, from --token-file.")
        writer.line(f"token_file = {toml_text.basic_string(self.options.token_file)}")
        global_reports = [r for r in reports if r.section is None and r.location is not None]
        if global_reports:
            writer.comment("")
            writer.comment("v1 global settings that are not carried over, or need a look:")
            for report in global_reports:
                writer.long_comment(f"{report.severity}: {report.text()}")

        for module in self.modules:
            section_reports = [r for r in reports if r.section == module.section.name]
            writer.blank()
            header = f"v1 module [{module.section.name}], {module.section.location}"
            if module.left_out_reason:
                writer.long_comment(f"{header}, is left out: {module.left_out_reason}")
                for report in section_reports:
                    if " is left out: " not in report.message:
                        writer.long_comment(f"{report.severity}: {report.text()}")
                continue
            writer.long_comment(header)
            writer.line("[[modules]]")
            for key, value, location in module.keys:
                writer.line(f"{key} = {value}", location)
            for comment in module.comments:
                writer.comment(comment)
            for report in section_reports:
                writer.long_comment(f"{report.severity}: {report.text()}")

    def render_tokens(self, writer: _Writer) -> None:
        users = [token for token in self.tokens if token.v1_user is not None]
        anonymous = [token for token in self.tokens if token.v1_user is None]
        if users:
            writer.comment("")
            writer.comment(
                "Tokens for the v1 users. v1 checked passwords from a secrets file, and a "
                "password cannot become a token. Run each command; blitd prints the token "
                "once on stdout, so redirect it into a file of mode 0600 and hand that file "
                "to the user, who passes it with --token-file."
            )
            for token in users:
                writer.line(
                    "#   " + toml_text.comment_safe(token.command(self.options.config_path))
                )
        if anonymous:
            writer.comment("")
            writer.comment(
                "v1 served these modules without a password, and v2 requires a token on every "
                "request. A token for the clients of these modules:"
            )
            for token in anonymous:
                writer.line(
                    "#   " + toml_text.comment_safe(token.command(self.options.config_path))
                )

    def global_location(self, name: str) -> Location | None:
        parameter = self.v1.globals.get(name)
        return parameter.location if parameter is not None else None


class _Writer:
    """Lines of TOML text, remembering the v1 line that each key came from."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sources: dict[int, Location] = {}

    def line(self, text: str, source: Location | None = None) -> None:
        self.lines.append(text)
        if source is not None:
            self.sources[len(self.lines)] = source

    def comment(self, text: str) -> None:
        """Add ``text`` as comment lines wrapped at 79 columns."""
        if not text:
            self.lines.append("#")
            return
        self.lines.extend(toml_text.comment_lines(text))

    def long_comment(self, text: str) -> None:
        """Add ``text`` as one comment line, however long.

        Findings name paths and values, and a line that does not depend on
        their length is easier to search and to compare.
        """
        self.lines.append("# " + toml_text.comment_safe(text))

    def blank(self) -> None:
        self.lines.append("")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


_PERMISSION_SUFFIX = {
    PERMISSIONS_READ: "ro",
    PERMISSIONS_READ_WRITE: "rw",
    PERMISSIONS_WRITE: "wo",
}


def _permissions(read_only: bool, write_only: bool) -> tuple[str, ...]:
    if read_only:
        return () if write_only else PERMISSIONS_READ
    return PERMISSIONS_WRITE if write_only else PERMISSIONS_READ_WRITE


def _group_by_permissions(
    grants: list[tuple[str, tuple[str, ...]]],
) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Group (module, permissions) pairs into (permissions, modules), in first-seen order."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for module, permissions in grants:
        groups.setdefault(permissions, []).append(module)
    return [(permissions, tuple(modules)) for permissions, modules in groups.items()]


def _redacted_value(parameter: Parameter) -> str:
    """Return the value of ``parameter`` as messages quote it.

    An auth users value loses the unknown options of its rules, which are
    often passwords written as USER:PASSWORD.
    """
    if parameter.name != "auth users":
        return parameter.value
    return ", ".join(rule.redacted_text for rule in values.parse_auth_users(parameter.value))


def module_key(name: str) -> str:
    """Return the form under which rsyncd compares module names: no case, no blanks."""
    return re.sub(r"\s+", "", name).lower()
