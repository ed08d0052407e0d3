"""Reading a blit v1 daemon config, an INI file with rsyncd.conf's syntax and rules.

The rules follow rsyncd.conf(5) and the parser of rsync 3.2 (params.c and
loadparm.c), which Python's configparser does not implement:

- Lines before the first ``[module]`` header, and lines in a ``[global]``
  section, are global. A module parameter set there is the default for
  the modules that start after it, so a module copies the defaults that
  are in force at its header.
- A string or path parameter that a module neither sets nor copies at
  its header takes the global value in force at the end of the file. So
  a global ``hosts allow`` after an ``&include``, or in a ``[global]``
  section reopened after a module, applies to the earlier modules too.
  Booleans and integers have no such fallback: a module keeps the value
  copied at its header, or rsyncd's default. This is rsync's
  FN_LOCAL_STRING and FN_LOCAL_BOOL in loadparm.c, checked against a
  running rsync 3.5.0 daemon.
- Lines whose first non-blank character is ``#`` or ``;`` are comments. A
  ``#`` later in a line is part of the value.
- A line whose last non-blank character is ``\\`` continues on the next
  line, whose text is appended as it is, leading blanks included.
- Parameter and module names are compared ignoring case, blanks and
  underscores (``Read Only``, ``read_only`` and ``readonly`` are one key).
  Internal blanks of a module name collapse to one space.
- A value loses its leading and trailing blanks and every carriage return.
- ``&include FILE`` and ``&merge FILE`` read another file, or every
  ``*.conf`` (include) or ``*.inc`` (merge) file of a directory in name
  order. A merged file acts as if its lines stood in place of the
  directive. An included file starts in the global section, its global
  values end with it, and the including file continues in the global
  section after the directive. A relative FILE is resolved against the
  directory of the file that names it. rsyncd resolves it against its
  working directory instead, which is rarely a useful base for a daemon.
- A header that names an existing module (ignoring case and blanks)
  continues that module.

``%VAR%`` references are kept as written here and expanded by
:func:`expand_variables` when a value is used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from blit.migrate.report import Location, Report

Scope = Literal["global", "module"]
ValueKind = Literal["string", "path", "bool", "int", "enum"]

# The blank characters of C's isspace(), apart from the newline.
_BLANKS = " \t\r\f\v"
# Text that a message may quote as a parameter name.
_PARAMETER_NAME = re.compile(r"[A-Za-z0-9 _-]+")
_NOT_SHOWN = ", because the file may hold passwords"


@dataclass(frozen=True)
class ParameterSpec:
    """A parameter that rsyncd accepts, from rsync 3.2's daemon-parm.txt."""

    name: str
    scope: Scope
    kind: ValueKind
    # Whether rsyncd's default is a value rather than NULL. Only a string
    # or path parameter whose default is NULL falls back to the global
    # value in force at the end of the file.
    has_default: bool = False

    @property
    def falls_back_to_final_global(self) -> bool:
        """Whether a module that leaves this parameter unset takes the last global value."""
        return self.scope == "module" and self.kind in ("string", "path") and not self.has_default


def normalize_key(name: str) -> str:
    """Return the form under which rsyncd compares parameter names."""
    return re.sub(r"[\s_]+", "", name).lower()


_SPECS = [
    # Global parameters: rsyncd ignores them in a module section.
    ParameterSpec("address", "global", "string"),
    ParameterSpec("daemon chroot", "global", "string"),
    ParameterSpec("daemon gid", "global", "string"),
    ParameterSpec("daemon uid", "global", "string"),
    ParameterSpec("listen backlog", "global", "int"),
    ParameterSpec("motd file", "global", "string"),
    ParameterSpec("pid file", "global", "string"),
    ParameterSpec("port", "global", "int"),
    ParameterSpec("proxy protocol", "global", "bool"),
    ParameterSpec("proxy protocol hosts", "global", "string"),
    ParameterSpec("socket options", "global", "string"),
    # Module parameters: set in the global section, they are defaults.
    ParameterSpec("auth digest", "module", "string"),
    ParameterSpec("auth users", "module", "string"),
    ParameterSpec("charset", "module", "string"),
    ParameterSpec("comment", "module", "string"),
    ParameterSpec("dont compress", "module", "string", has_default=True),
    ParameterSpec("early exec", "module", "string"),
    ParameterSpec("exclude", "module", "string"),
    ParameterSpec("exclude from", "module", "string"),
    ParameterSpec("fake super", "module", "bool"),
    ParameterSpec("filter", "module", "string"),
    ParameterSpec("forward lookup", "module", "bool"),
    ParameterSpec("gid", "module", "string"),
    ParameterSpec("hosts allow", "module", "string"),
    ParameterSpec("hosts deny", "module", "string"),
    ParameterSpec("ignore errors", "module", "bool"),
    ParameterSpec("ignore nonreadable", "module", "bool"),
    ParameterSpec("include", "module", "string"),
    ParameterSpec("include from", "module", "string"),
    ParameterSpec("incoming chmod", "module", "string"),
    ParameterSpec("insecure links", "module", "bool"),
    ParameterSpec("list", "module", "bool"),
    ParameterSpec("lock file", "module", "string", has_default=True),
    ParameterSpec("log file", "module", "string"),
    ParameterSpec("log format", "module", "string", has_default=True),
    ParameterSpec("max connections", "module", "int"),
    ParameterSpec("max verbosity", "module", "int"),
    ParameterSpec("munge symlinks", "module", "bool"),
    ParameterSpec("name", "module", "string"),
    ParameterSpec("name converter", "module", "string"),
    ParameterSpec("numeric ids", "module", "bool"),
    ParameterSpec("open noatime", "module", "bool"),
    ParameterSpec("outgoing chmod", "module", "string"),
    ParameterSpec("path", "module", "path"),
    ParameterSpec("post-xfer exec", "module", "string"),
    ParameterSpec("pre-xfer exec", "module", "string"),
    ParameterSpec("read only", "module", "bool"),
    ParameterSpec("refuse options", "module", "string"),
    ParameterSpec("reverse lookup", "module", "bool"),
    ParameterSpec("secrets file", "module", "string"),
    ParameterSpec("strict modes", "module", "bool"),
    ParameterSpec("syslog facility", "module", "enum"),
    ParameterSpec("syslog tag", "module", "string", has_default=True),
    ParameterSpec("temp dir", "module", "path"),
    ParameterSpec("timeout", "module", "int"),
    ParameterSpec("transfer logging", "module", "bool"),
    ParameterSpec("uid", "module", "string"),
    ParameterSpec("use chroot", "module", "bool"),
    ParameterSpec("use pam", "module", "bool"),
    ParameterSpec("write only", "module", "bool"),
]

PARAMETERS: dict[str, ParameterSpec] = {normalize_key(spec.name): spec for spec in _SPECS}
# Other spellings that rsyncd accepts.
PARAMETERS[normalize_key("bind address")] = PARAMETERS["address"]
PARAMETERS[normalize_key("rsync port")] = PARAMETERS["port"]


@dataclass(frozen=True)
class Parameter:
    """One ``name = value`` line of a v1 config."""

    # The name as written, with blanks collapsed.
    written_name: str
    spec: ParameterSpec
    # The value as written: trimmed, continuation lines joined, carriage
    # returns removed, %VAR% not expanded.
    value: str
    location: Location

    @property
    def name(self) -> str:
        """The rsyncd.conf(5) spelling of the parameter, such as ``read only``."""
        return self.spec.name


@dataclass
class Section:
    """A ``[module]`` of a v1 config."""

    name: str
    location: Location
    # The values in force for the module: the global defaults copied at its
    # first header, overridden by its own lines, and then the global values
    # at the end of the file for string parameters still unset. Keys are
    # spec names.
    settings: dict[str, Parameter] = field(default_factory=dict)
    # The index in V1Config.assignments of the first parameter line read
    # after the module's first header.
    first_assignment: int = 0
    # The spec names of the settings taken from the global values at the
    # end of the file.
    late_settings: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Assignment:
    """A parameter line and the section it applied to, in file order."""

    parameter: Parameter
    # The module it was set in, or None for the global section.
    section: Section | None


@dataclass
class V1Config:
    """The parsed v1 config, with everything needed to convert and to report it."""

    # Global parameters in force at the end of the file.
    globals: dict[str, Parameter]
    # Module parameters set in the global section, in force at the end of
    # the file.
    defaults: dict[str, Parameter]
    modules: list[Section]
    # Every known parameter line that rsyncd applies, in the order read.
    assignments: list[Assignment]
    # Every file read, the main file first, as the user would name it.
    files: list[str]
    reports: list[Report]


class _ParseState:
    def __init__(self) -> None:
        self.globals: dict[str, Parameter] = {}
        self.defaults: dict[str, Parameter] = {}
        self.current: Section | None = None
        self.modules: list[Section] = []
        self.assignments: list[Assignment] = []
        self.files: list[str] = []
        self.reports: list[Report] = []
        # Real paths and shown names of the files being read, outermost first.
        self.stack: list[tuple[str, str]] = []
        # The real path of each file read, by its shown name.
        self.real_paths: dict[str, str] = {}
        # Each file read through a directive: (its shown name, the
        # directive and its argument, the directive's location).
        self.included: list[tuple[str, str, Location]] = []

    def report(
        self, severity: Literal["error", "warning", "note"], message: str, location: Location | None
    ) -> None:
        section = self.current.name if self.current is not None else None
        self.reports.append(Report(severity, message, location, section))


def parse_file(path: str, environ: Mapping[str, str] | None = None) -> V1Config:
    """Read the v1 config at ``path`` and every file that it includes.

    Problems that make rsyncd reject the file are returned as ``error``
    reports: a header without ``]``, an empty name, or an include that
    cannot be read or that includes itself. Reading goes on after them, so
    that all of them are found at once. An include of a file that a
    ``secrets file`` names is an error too, and the findings about that
    file's lines are dropped. ``environ`` expands ``%VAR%`` in secrets file
    names; None reads os.environ.

    Raises:
        OSError: ``path`` itself cannot be read.
    """
    state = _ParseState()
    with open(path, "rb") as handle:
        data = handle.read()
    _parse_text(state, data, path, os.path.realpath(path))
    _reject_included_secrets(state, os.environ if environ is None else environ)
    _apply_final_defaults(state)
    return V1Config(
        globals=state.globals,
        defaults=state.defaults,
        modules=state.modules,
        assignments=state.assignments,
        files=state.files,
        reports=state.reports,
    )


def _reject_included_secrets(state: _ParseState, environ: Mapping[str, str]) -> None:
    """Report each ``&include`` or ``&merge`` that reads a secrets file, as an error.

    A secrets file's lines are USER:PASSWORD, so no finding about them
    may reach the output; the findings located in such a file are dropped.
    A relative secrets file name is compared both as rsyncd resolves it,
    against the working directory, and against the directory of the file
    that names it.
    """
    secrets: dict[str, Parameter] = {}
    for assignment in state.assignments:
        parameter = assignment.parameter
        if parameter.name != "secrets file":
            continue
        name = expand_variables(parameter.value, environ).value
        if not name:
            continue
        naming_file = state.real_paths.get(parameter.location.file, "")
        for candidate in (name, os.path.join(os.path.dirname(naming_file), name)):
            secrets.setdefault(os.path.realpath(candidate), parameter)
    rejected: set[str] = set()
    for display, directive, location in state.included:
        naming = secrets.get(state.real_paths.get(display, ""))
        if naming is None:
            continue
        rejected.add(display)
        state.reports.append(
            Report(
                "error",
                f"{directive}: {display} is the secrets file named at {naming.location}, "
                "and rsyncd would read its passwords as config lines; remove the directive",
                location,
                None,
            )
        )
    if rejected:
        state.reports = [
            report
            for report in state.reports
            if report.location is None or report.location.file not in rejected
        ]


def _apply_final_defaults(state: _ParseState) -> None:
    """Give each module the final global value of every string parameter that it left unset."""
    for module in state.modules:
        for name, parameter in state.defaults.items():
            if name not in module.settings and parameter.spec.falls_back_to_final_global:
                module.settings[name] = parameter
                module.late_settings.add(name)


def _parse_text(state: _ParseState, data: bytes, display: str, real: str) -> None:
    # Bytes that are not UTF-8 survive as lone surrogates, so that they are
    # reported where they are used instead of failing the whole file.
    text = data.decode("utf-8", "surrogateescape")
    # rsyncd stops reading at a NUL byte, as at the end of the file.
    text = text.split("\0", 1)[0]
    state.files.append(display)
    state.real_paths[display] = real
    state.stack.append((real, display))
    try:
        for line_number, logical in _logical_lines(text):
            _parse_line(state, logical, Location(display, line_number), real)
    finally:
        state.stack.pop()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Split ``text`` into (first line number, line) pairs, joining continuations.

    Blank and comment lines are left out. A comment line never continues.
    """
    physical = text.split("\n")
    result = []
    index = 0
    while index < len(physical):
        number = index + 1
        line = physical[index]
        index += 1
        stripped = line.lstrip(_BLANKS)
        # rsyncd skips a backslash at the start of a line and the blanks
        # after it.
        while stripped.startswith("\\"):
            stripped = stripped[1:].lstrip(_BLANKS)
        if not stripped or stripped[0] in "#;":
            continue
        logical = stripped
        while logical.rstrip(_BLANKS).endswith("\\") and index < len(physical):
            logical = logical.rstrip(_BLANKS)[:-1] + physical[index]
            index += 1
        result.append((number, logical))
    return result


def _collapse_blanks(text: str) -> str:
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip(" ")


def _parse_line(state: _ParseState, line: str, location: Location, real: str) -> None:
    if line.startswith("["):
        _parse_header(state, line, location)
        return
    if line.startswith("&"):
        # A directive's name ends at the first blank or '=', and an '='
        # after the blanks is optional: "&include FILE", "&merge = FILE".
        name = _directive_name(line)
        rest = line[len(name) :].lstrip(" \t")
        if rest.startswith("="):
            rest = rest[1:]
        _parse_directive(state, name, rest.replace("\r", "").strip(_BLANKS), location, real)
        return
    # Messages about a line that is not a parameter give its file and line
    # but not its text, because the file may be a secrets file, whose lines
    # are USER:PASSWORD.
    name_part, equals, value_part = line.partition("=")
    if not equals:
        state.report(
            "warning",
            "the line has no '=', so rsyncd ignores it and it is not carried over "
            f"(its text is not shown{_NOT_SHOWN})",
            location,
        )
        return
    name = _collapse_blanks(name_part)
    if not name:
        state.report(
            "error",
            "the line has no parameter name before '='; add the name or remove the line",
            location,
        )
        return
    value = value_part.replace("\r", "").strip(_BLANKS)
    spec = PARAMETERS.get(normalize_key(name))
    if spec is None:
        shown = name if _PARAMETER_NAME.fullmatch(name) else "the text before '='"
        state.report(
            "warning",
            f"unknown parameter {shown}, which rsyncd ignores; not carried over "
            f"(its value is not shown{_NOT_SHOWN})",
            location,
        )
        return
    parameter = Parameter(name, spec, value, location)
    if state.current is None:
        if spec.scope == "global":
            state.globals[spec.name] = parameter
        else:
            state.defaults[spec.name] = parameter
        state.assignments.append(Assignment(parameter, None))
        return
    if spec.scope == "global":
        state.report(
            "warning",
            f"{name} = {value}: {spec.name} is a global parameter, and rsyncd ignores it "
            f"in module [{state.current.name}]; not carried over",
            location,
        )
        return
    state.current.settings[spec.name] = parameter
    state.assignments.append(Assignment(parameter, state.current))


def _directive_name(line: str) -> str:
    end = 1
    while end < len(line) and line[end] not in " \t=":
        end += 1
    return line[:end]


def _parse_header(state: _ParseState, line: str, location: Location) -> None:
    close = line.find("]")
    if close < 0:
        state.report(
            "error",
            f"the module header has no closing ']', so rsyncd rejects the file "
            f"(its text is not shown{_NOT_SHOWN})",
            location,
        )
        return
    # rsyncd ignores whatever follows the ']' on the line.
    name = _collapse_blanks(line[1:close])
    if not name:
        state.report("error", "empty module name '[]'; rsyncd rejects the file", location)
        return
    if normalize_key(name) == "global":
        state.current = None
        return
    if "/" in name:
        state.report(
            "error",
            f"module name [{name}] contains '/', which rsyncd rejects; rename the module",
            location,
        )
        return
    key = normalize_key(name)
    for module in state.modules:
        if normalize_key(module.name) == key:
            state.current = module
            return
    module = Section(name, location, dict(state.defaults), len(state.assignments))
    state.modules.append(module)
    state.current = module


def _parse_directive(
    state: _ParseState, name: str, value: str, location: Location, real: str
) -> None:
    directive = name.lower()
    if directive not in ("&include", "&merge"):
        state.report(
            "error",
            f"{name} {value}: unknown directive, which rsyncd rejects; use &include or &merge",
            location,
        )
        return
    # rsyncd expands no %VAR% in a directive's file name.
    target = value
    if not target:
        state.report("error", f"{directive} needs a file or directory name", location)
        return
    parent_display = os.path.dirname(location.file)
    if os.path.isabs(target):
        path = target
        display = target
    else:
        path = os.path.join(os.path.dirname(real), target)
        display = os.path.normpath(os.path.join(parent_display, target))
    suffix = ".conf" if directive == "&include" else ".inc"
    if os.path.isdir(path):
        try:
            names = sorted(entry for entry in os.listdir(path) if entry.endswith(suffix))
            if not names:
                # rsyncd leaves the parse state as it is for an empty directory.
                return
        except OSError as error:
            state.report(
                "error",
                f"{directive} {value}: cannot read the directory {display}: "
                f"{error.strerror or error}",
                location,
            )
            return
        files = [(os.path.join(path, entry), os.path.join(display, entry)) for entry in names]
    else:
        files = [(path, display)]

    if directive == "&merge":
        for file_path, file_display in files:
            _read_included(state, directive, value, file_path, file_display, location)
        return

    # &include: the file's global values and defaults end with it, and the
    # including file continues in the global section.
    if state.current is not None:
        state.report(
            "note",
            f"{directive} {value} inside module [{state.current.name}]: rsyncd reads the "
            "lines after it as global ones, not as part of the module",
            location,
        )
    saved_globals = dict(state.globals)
    saved_defaults = dict(state.defaults)
    for file_path, file_display in files:
        state.globals = dict(saved_globals)
        state.defaults = dict(saved_defaults)
        state.current = None
        _read_included(state, directive, value, file_path, file_display, location)
    state.globals = saved_globals
    state.defaults = saved_defaults
    state.current = None


def _read_included(
    state: _ParseState, directive: str, value: str, path: str, display: str, location: Location
) -> None:
    real = os.path.realpath(path)
    if any(real == open_real for open_real, _ in state.stack):
        chain = " -> ".join([*(open_display for _, open_display in state.stack), display])
        state.report(
            "error",
            f"{directive} {value}: include cycle {chain}; remove the directive that leads "
            "back to a file already being read",
            location,
        )
        return
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        state.report(
            "error",
            f"{directive} {value}: cannot read {display}: {error.strerror or error}",
            location,
        )
        return
    state.included.append((display, f"{directive} {value}", location))
    _parse_text(state, data, display, real)


@dataclass(frozen=True)
class Expansion:
    """The result of expanding ``%VAR%`` references in a value."""

    value: str
    # Names of referenced variables that are not set, left as %NAME%.
    unset: tuple[str, ...] = ()
    # Names of rsyncd's connection variables (RSYNC_USER_NAME and the
    # like), which have a value only while a client is connected.
    per_connection: tuple[str, ...] = ()


_VARIABLE = re.compile(r"%([A-Za-z0-9_]+)%|%%")


def expand_variables(value: str, environ: Mapping[str, str]) -> Expansion:
    """Expand ``%VAR%`` from ``environ`` and ``%%`` to ``%``, as rsyncd does.

    A reference to a variable that is not set stays as written, as does a
    ``%`` that does not start a reference. ``RSYNC_*`` variables are never
    expanded: rsyncd sets them for each connection, so they have no value
    when a config is converted.
    """
    unset: list[str] = []
    per_connection: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name.startswith("RSYNC_"):
            per_connection.append(name)
            return match.group(0)
        if name not in environ:
            unset.append(name)
            return match.group(0)
        return environ[name]

    expanded = _VARIABLE.sub(replace, value)
    return Expansion(expanded, tuple(unset), tuple(per_connection))
