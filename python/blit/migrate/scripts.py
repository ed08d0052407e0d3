"""Rewriting v1 ``blit`` command lines in shell scripts.

v1 ran ``blit SRC DST`` to copy and ``blit SRC DST --mir`` to mirror,
with v1 addresses (``HOST:MODULE/PATH``) for remote sides. v2 spells them
``blit copy SRC DST`` and ``blit mirror SRC DST`` with ``blit://``
addresses. :func:`rewrite_text` finds each simple command whose program
is ``blit``, also after ``sudo``, ``time``, ``env``, ``nohup``, ``nice``,
``exec``, ``command`` and variable assignments, and after ``;``, ``&&``,
``||``, ``|`` and the like. It edits only the words that change, so every
other byte of the script stays as it was. It leaves alone:

- commands of other programs, comments and here-document bodies, so an
  ``scp`` target or a URL elsewhere is never touched;
- ``blit`` commands that are already v2 (``blit copy ...``);
- ``blit`` commands it cannot rewrite safely (unknown options, a count of
  operands other than two, an address built at run time), which it
  reports instead.

``rsync`` commands are reported with their ``blit`` equivalent and not
rewritten.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from blit.migrate import addresses
from blit.migrate.report import Location, Report, Severity
from blit.migrate.shell import Token, split_commands, tokenize

# The first arguments of a v2 `blit` command line.
V2_COMMANDS = frozenset(
    [
        "copy",
        "mirror",
        "push",
        "pull",
        "list",
        "purge",
        "migrate-config",
        "migrate-url",
        "-h",
        "--help",
        "--version",
    ]
)
# The only v1 option that the rewriter converts.
V1_MIRROR_OPTION = "--mir"

# Words that may come before a command's program name.
_RESERVED = frozenset(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "}"])
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
# Characters that need no quoting in a shell word (shlex.quote's set).
_SAFE_WORD = re.compile(r"[\w@%+=:,./-]+", re.ASCII)

# sudo's options that take an argument, short and long (sudo 1.9).
_SUDO_SHORT_WITH_ARGUMENT = frozenset("CDghprtTUu")
_SUDO_LONG_WITH_ARGUMENT = frozenset(
    [
        "--close-from",
        "--chdir",
        "--group",
        "--host",
        "--prompt",
        "--role",
        "--type",
        "--command-timeout",
        "--other-user",
        "--user",
    ]
)
# sudo options after which it runs no command.
_SUDO_NO_COMMAND = frozenset("eKklVv")


@dataclass
class ScriptResult:
    """The rewrite of one script."""

    original: str
    rewritten: str
    reports: list[Report] = field(default_factory=list)
    # Number of blit commands rewritten.
    rewritten_commands: int = 0

    @property
    def changed(self) -> bool:
        """Whether the rewrite changed anything."""
        return self.original != self.rewritten

    def diff(self, from_name: str, to_name: str) -> str:
        """Return a unified diff from the original to the rewritten text."""
        lines = []
        for line in difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.rewritten.splitlines(keepends=True),
            fromfile=from_name,
            tofile=to_name,
        ):
            lines.append(line)
            if not line.endswith("\n"):
                lines.append("\n\\ No newline at end of file\n")
        return "".join(lines)


@dataclass(frozen=True)
class AddressOptions:
    """Settings for converting v1 addresses into v2 ones."""

    port: int = addresses.DEFAULT_PORT
    tls: bool = False
    renames: Mapping[str, str] = field(default_factory=dict)

    def convert(self, text: str) -> tuple[str | None, str]:
        """Convert a v1 address as :func:`blit.migrate.addresses.convert` does."""
        return addresses.convert(text, self.port, tls=self.tls, renames=self.renames)


def rewrite_text(text: str, display: str, options: AddressOptions | None = None) -> ScriptResult:
    """Rewrite the v1 ``blit`` commands in the script ``text``, named ``display`` in reports."""
    return _Rewriter(text, display, options or AddressOptions()).run()


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    replacement: str


class _Rewriter:
    def __init__(self, text: str, display: str, options: AddressOptions) -> None:
        self.text = text
        self.display = display
        self.options = options
        self.reports: list[Report] = []
        self.edits: list[_Edit] = []
        self.rewritten = 0
        self.line_starts = [0] + [match.end() for match in re.finditer("\n", text)]

    def location(self, token: Token) -> Location:
        return Location(self.display, bisect.bisect_right(self.line_starts, token.start))

    def report(self, severity: Severity, token: Token, message: str) -> None:
        self.reports.append(Report(severity, message, self.location(token)))

    def run(self) -> ScriptResult:
        tokens, error = tokenize(self.text)
        for command in split_commands(tokens):
            self.examine(command)
        if error is not None:
            line = bisect.bisect_right(self.line_starts, error.position)
            self.reports.append(
                Report(
                    "warning",
                    f"{error.construct} is not closed; the script from here on is left unchanged",
                    Location(self.display, line),
                )
            )
        rewritten = self.text
        # From the end backwards, so earlier offsets stay valid; at one
        # offset, a deletion goes before an insertion.
        for edit in sorted(self.edits, key=lambda e: (e.start, e.end), reverse=True):
            rewritten = rewritten[: edit.start] + edit.replacement + rewritten[edit.end :]
        return ScriptResult(self.text, rewritten, self.reports, self.rewritten)

    # --- finding the program of a simple command

    def examine(self, command: list[Token]) -> None:
        words = _words_without_redirects(command)
        index = self.skip_prefixes(words)
        if index is None or index >= len(words):
            return
        program = words[index].literal
        if program is None:
            return
        name = program.rsplit("/", 1)[-1]
        if name == "blit":
            self.rewrite_blit(words[index], words[index + 1 :])
        elif name == "rsync":
            self.report_rsync(words[index], words[index + 1 :])

    def skip_prefixes(self, words: list[Token]) -> int | None:
        """Return the index of the program's word, or None when there is no program."""
        index = 0
        while index < len(words):
            word = words[index].literal
            raw = words[index].raw
            if word in _RESERVED:
                index += 1
            elif _ASSIGNMENT.match(raw):
                index += 1
            elif word == "time":
                index += 1
                if index < len(words) and words[index].literal == "-p":
                    index += 1
            elif word in ("nohup", "exec"):
                index += 1
            elif word == "command":
                index += 1
                if index < len(words) and (words[index].literal or "").startswith("-"):
                    # command -v and -V look a program up instead of running it.
                    return None
            elif word == "nice":
                index = _skip_nice(words, index + 1)
            elif word == "sudo":
                skipped = self.skip_sudo(words, index + 1)
                if skipped is None:
                    return None
                index = skipped
            elif word == "env":
                skipped = self.skip_env(words, index + 1)
                if skipped is None:
                    return None
                index = skipped
            else:
                return index
        return index

    def skip_sudo(self, words: list[Token], index: int) -> int | None:
        while index < len(words):
            word = words[index].literal
            if word is None or not word.startswith("-") or word == "-":
                return index
            index += 1
            if word == "--":
                return index
            if word.startswith("--"):
                option = word.split("=", 1)[0]
                if option in _SUDO_LONG_WITH_ARGUMENT and "=" not in word:
                    index += 1
                elif option in (
                    "--edit",
                    "--list",
                    "--validate",
                    "--version",
                    "--help",
                    "--remove-timestamp",
                    "--reset-timestamp",
                ):
                    return None
                continue
            for position, letter in enumerate(word[1:], start=1):
                if letter in _SUDO_NO_COMMAND:
                    return None
                if letter in _SUDO_SHORT_WITH_ARGUMENT:
                    if position == len(word) - 1:
                        index += 1
                    break
        return index

    def skip_env(self, words: list[Token], index: int) -> int | None:
        while index < len(words):
            word = words[index].literal
            if word is None:
                return index
            if word in ("-i", "-", "--ignore-environment", "-0", "--null"):
                index += 1
            elif word in ("-u", "--unset", "-C", "--chdir"):
                index += 2
            elif word.startswith(("-u", "--unset=", "-C", "--chdir=")):
                index += 1
            elif word == "--":
                index += 1
            elif word.startswith("-"):
                if any(
                    w.literal == "blit" or (w.literal or "").endswith("/blit")
                    for w in words[index:]
                ):
                    self.report(
                        "warning",
                        words[index],
                        f"env option {word} is unknown to the rewriter; rewrite the "
                        "blit command after it by hand",
                    )
                return None
            elif _ASSIGNMENT.match(word):
                index += 1
            else:
                return index
        return index

    # --- blit

    def rewrite_blit(self, program: Token, args: list[Token]) -> None:
        if not args:
            return
        first = args[0].literal
        if first in V2_COMMANDS:
            return
        mirror_words: list[Token] = []
        operands: list[Token] = []
        options_ended = False
        for arg in args:
            value = arg.literal
            if not options_ended and value == "--":
                options_ended = True
                continue
            if not options_ended and value is not None and value.startswith("-") and value != "-":
                if value == V1_MIRROR_OPTION:
                    mirror_words.append(arg)
                    continue
                self.report(
                    "warning",
                    program,
                    f"v1 blit option {value} has no known v2 form; the command is "
                    "left unchanged, so rewrite it by hand (v2: blit copy|mirror "
                    "[OPTIONS] SRC DST)",
                )
                return
            operands.append(arg)
        if len(operands) != 2:
            count = f"{len(operands)} operand{'' if len(operands) == 1 else 's'}"
            self.report(
                "warning",
                program,
                f"blit command with {count}, not SRC and DST; it is left unchanged, so "
                "rewrite it by hand",
            )
            return

        replacements: list[_Edit] = []
        remote_sides = 0
        for operand in operands:
            outcome = self.convert_operand(program, operand)
            if outcome is None:
                return
            replacement, remote = outcome
            remote_sides += remote
            if replacement is not None:
                replacements.append(replacement)
        if remote_sides == 2:
            self.report(
                "warning",
                program,
                "both sides are remote, and v2 does not copy from one daemon to "
                "another yet; the command is left unchanged: pull to a local "
                "directory, then push from it",
            )
            return

        command = "mirror" if mirror_words else "copy"
        self.edits.append(_Edit(program.end, program.end, f" {command}"))
        self.edits.extend(replacements)
        for word in mirror_words:
            self.edits.append(self.removal(word))
        self.rewritten += 1

    def convert_operand(self, program: Token, operand: Token) -> tuple[_Edit | None, int] | None:
        """Return the edit for one operand and whether it is remote, or None to give up."""
        value = operand.literal
        if value is None:
            return self.convert_expanded_operand(program, operand)
        if value.startswith(("blit://", "blits://")):
            return None, 1
        converted, note = self.options.convert(value)
        if converted is None:
            if addresses.parse(value).address is not None:
                self.report("warning", program, f"{value!r}: {note}; the command is left unchanged")
                return None
            if addresses.looks_like_v1(value):
                self.report(
                    "warning",
                    program,
                    f"{value!r} is not a v1 address ({_reason(value)}), but v2 blit "
                    f"rejects it as one; if it is a local path, write ./{value}",
                )
            return None, 0
        if note:
            self.report("note", program, f"{value}: {note}")
        return _Edit(operand.start, operand.end, _requote(operand.raw, converted)), 1

    def convert_expanded_operand(
        self, program: Token, operand: Token
    ) -> tuple[_Edit | None, int] | None:
        """Convert an operand whose value depends on an expansion, such as ``h:m/$DIR``.

        Only a literal ``HOST:MODULE/`` at its start can be converted; the
        rest of the word is kept as written.
        """
        raw = operand.raw
        quote = '"' if raw.startswith('"') else ""
        body = raw[len(quote) :]
        literal_prefix = re.match(r"[^$`\\\"']*", body)
        prefix = literal_prefix.group(0) if literal_prefix else ""
        head = _address_head(prefix)
        if head is not None:
            converted, note = self.options.convert(head)
            if converted is not None:
                if note:
                    self.report("note", program, f"{head}: {note}")
                start = operand.start + len(quote)
                return _Edit(start, start + len(head), converted), 1
            if addresses.parse(head).address is not None:
                self.report("warning", program, f"{head!r}: {note}; the command is left unchanged")
                return None
        if ":" in raw.split("/", 1)[0]:
            self.report(
                "warning",
                program,
                f"{raw} looks like a v1 address that is built when the script runs, "
                "so it cannot be converted here; the command is left unchanged, so "
                "rewrite it by hand with a blit://HOST:PORT/MODULE/PATH address",
            )
            return None
        if not prefix.startswith(("/", ".", "~")):
            self.report(
                "note",
                program,
                f"{raw} is expanded when the script runs; make sure that it holds a "
                "local path or a v2 address (blit://HOST:PORT/MODULE/PATH)",
            )
        return None, 0

    def removal(self, word: Token) -> _Edit:
        """Return the edit that deletes ``word`` and the blanks before it.

        When the word starts a continuation line, the backslash-newline
        before it goes too, so no blank line is left behind.
        """
        start = word.start
        while True:
            while start > 0 and self.text[start - 1] in " \t":
                start -= 1
            if self.text.endswith("\\\n", 0, start):
                start -= 2
                continue
            return _Edit(start, word.end, "")

    # --- rsync

    def report_rsync(self, program: Token, args: list[Token]) -> None:
        equivalent, reason = _rsync_equivalent(args, self.options)
        if equivalent is None:
            self.report(
                "note",
                program,
                f"rsync command left unchanged; it has no direct blit equivalent: {reason}",
            )
            return
        message = f"rsync command left unchanged; the blit equivalent is: {equivalent}"
        if reason:
            message += f" ({reason})"
        self.report("note", program, message)


def _words_without_redirects(command: list[Token]) -> list[Token]:
    """Drop redirections, their targets and their file descriptor numbers."""
    words: list[Token] = []
    skip_next = False
    for index, token in enumerate(command):
        if skip_next:
            skip_next = False
            continue
        if token.kind == "redirect":
            skip_next = True
            continue
        following = command[index + 1] if index + 1 < len(command) else None
        if (
            following is not None
            and following.kind == "redirect"
            and following.start == token.end
            and token.raw.isdigit()
        ):
            continue
        words.append(token)
    return words


def _skip_nice(words: list[Token], index: int) -> int:
    while index < len(words):
        word = words[index].literal or ""
        if word in ("-n", "--adjustment"):
            index += 2
        elif re.fullmatch(r"-[0-9]+|-n[0-9-]+|--adjustment=.*", word):
            index += 1
        else:
            return index
    return index


def _reason(value: str) -> str:
    return addresses.parse(value).reason or "not an address"


def _address_head(prefix: str) -> str | None:
    """Return the ``HOST:MODULE`` part of ``prefix`` when a ``/`` follows the module.

    ``prefix`` is the literal start of a word whose rest is expanded when
    the script runs, such as ``host:module/`` of ``host:module/$DIR``.
    """
    result = addresses.parse(prefix)
    address = result.address
    if address is None or not address.module:
        return None
    if address.form == "rsync-url":
        module_start = prefix.find("/", len("rsync://")) + 1
    else:
        # Skip a bracketed IPv6 host, whose colons are not separators.
        bracket = prefix.find("[")
        host_end = prefix.find("]") + 1 if 0 <= bracket < prefix.find(":") else 0
        separator = "::" if address.form == "rsync-daemon" else ":"
        module_start = prefix.find(separator, host_end) + len(separator)
    module_end = prefix.find("/", module_start)
    if module_end < 0:
        return None
    return prefix[:module_end]


def _requote(raw: str, value: str) -> str:
    """Write ``value`` as a shell word, quoted the way ``raw`` was where possible."""
    plain = not any(char in raw for char in "'\"\\")
    if plain and _SAFE_WORD.fullmatch(value):
        return value
    if len(raw) >= 2 and raw[0] == raw[-1] == "'" and raw.count("'") == 2 and "'" not in value:
        return f"'{value}'"
    if re.fullmatch(r'"(?:[^"\\]|\\.)*"', raw, re.DOTALL):
        escaped = re.sub(r'([\\"$`])', r"\\\1", value)
        return f'"{escaped}"'
    return shlex.quote(value)


# --- rsync equivalents

# rsync options that take a separate argument (rsync 3.2).
_RSYNC_WITH_ARGUMENT = frozenset(
    [
        "--exclude",
        "--include",
        "--filter",
        "--exclude-from",
        "--include-from",
        "--files-from",
        "--rsh",
        "--rsync-path",
        "--password-file",
        "--port",
        "--log-file",
        "--backup-dir",
        "--suffix",
        "--compare-dest",
        "--link-dest",
        "--copy-dest",
        "--partial-dir",
        "--temp-dir",
        "--timeout",
        "--contimeout",
        "--chmod",
        "--chown",
        "--bwlimit",
        "--max-size",
        "--min-size",
        "--modify-window",
        "--out-format",
        "--log-file-format",
        "--info",
        "--debug",
        "--iconv",
        "--protocol",
        "--sockopts",
        "--address",
        "--compress-level",
        "--skip-compress",
        "--usermap",
        "--groupmap",
        "--remote-option",
        "--block-size",
        "--max-delete",
        "--checksum-choice",
        "--compress-choice",
        "--stop-after",
        "--stop-at",
        "--outbuf",
        "--max-alloc",
    ]
)
_RSYNC_SHORT_WITH_ARGUMENT = frozenset("efTBM")
# Short options that blit does anyway or that only change rsync's output.
_RSYNC_IGNORED_SHORT = frozenset("arlptvhzi")
_RSYNC_IGNORED_LONG = frozenset(
    [
        "--archive",
        "--recursive",
        "--links",
        "--perms",
        "--times",
        "--verbose",
        "--human-readable",
        "--compress",
        "--itemize-changes",
        "--stats",
    ]
)


def _rsync_equivalent(args: list[Token], options: AddressOptions) -> tuple[str | None, str]:
    """Return the blit command equivalent to an rsync command, and a caveat or the reason."""
    blit_options: list[str] = []
    unmatched: list[str] = []
    operands: list[str] = []
    mirror = False
    index = 0
    while index < len(args):
        value = args[index].literal
        index += 1
        if value is None:
            return None, f"{args[index - 1].raw} is built when the script runs"
        if value.startswith("--") and len(value) > 2:
            option, equals, argument = value.partition("=")
            if option in _RSYNC_WITH_ARGUMENT and not equals:
                if index >= len(args) or args[index].literal is None:
                    return None, f"the argument of {option} is built when the script runs"
                argument = args[index].literal or ""
                index += 1
            if option.startswith("--del"):
                mirror = True
            elif option == "--exclude":
                blit_options += ["--exclude", argument]
            elif option == "--dry-run":
                blit_options.append("--dry-run")
            elif option == "--checksum":
                blit_options.append("--checksum")
            elif option == "--progress":
                blit_options.append("--progress")
            elif option == "--quiet":
                blit_options.append("-q")
            elif option not in _RSYNC_IGNORED_LONG:
                unmatched.append(option)
            continue
        if value.startswith("-") and len(value) > 1:
            for position, letter in enumerate(value[1:], start=1):
                if letter in _RSYNC_SHORT_WITH_ARGUMENT:
                    if position == len(value) - 1:
                        index += 1
                    unmatched.append(f"-{letter}")
                    break
                mapped = {"n": "--dry-run", "c": "--checksum", "P": "--progress", "q": "-q"}.get(
                    letter
                )
                if mapped is not None:
                    blit_options.append(mapped)
                elif letter not in _RSYNC_IGNORED_SHORT:
                    unmatched.append(f"-{letter}")
            continue
        operands.append(value)

    if len(operands) != 2:
        return None, (
            f"it has {len(operands)} operands; blit takes one SRC and one DST, so "
            "run one blit command per source"
        )
    converted: list[str] = []
    remote = 0
    for operand in operands:
        result = addresses.parse(operand)
        if result.address is not None and result.address.form != "blit-v1":
            problem = addresses.module_name_problem(result.address.module, options.renames)
            if problem:
                return None, problem
            converted.append(
                result.address.to_v2(options.port, tls=options.tls, renames=options.renames)
            )
            remote += 1
        elif result.address is not None or addresses.looks_like_v1(operand):
            return None, (
                f"{operand} is an rsync-over-SSH path; run blitd on that host and "
                "use a blit://HOST/MODULE/PATH address"
            )
        else:
            converted.append(operand)
    if remote == 2:
        return None, "both sides are remote, and blit does not copy between two daemons yet"

    caveats = []
    base = _rsync_source_name(operands[0])
    if base:
        converted[1] = converted[1].rstrip("/") + "/" + base
        caveats.append(
            f"rsync puts a SRC without a trailing '/' into DST/{base}, while blit "
            "copies SRC's contents into DST; for a single-file SRC, use DST/ "
            "instead"
        )
    if unmatched:
        caveats.append("no blit equivalent for " + ", ".join(dict.fromkeys(unmatched)))
    command = ["blit", "mirror" if mirror else "copy", *blit_options, *converted]
    return shlex.join(command), "; ".join(caveats)


def _rsync_source_name(source: str) -> str:
    """Return the name that rsync creates in DST for ``source``, or "" for its contents.

    rsync copies a source without a trailing ``/`` as a directory of its
    own name, and one with a trailing ``/`` (or ``/.``) as its contents.
    """
    result = addresses.parse(source)
    path = result.address.path.lstrip("/") if result.address is not None else source
    if not path or path.endswith(("/", "/.")) or path in (".", ".."):
        return ""
    return path.rsplit("/", 1)[-1]


# --- files


class BackupExistsError(FileExistsError):
    """The backup of a script exists already, so the script is not rewritten."""


def rewrite_file(
    path: str,
    options: AddressOptions | None = None,
    *,
    backup_suffix: str = ".bak",
    dry_run: bool = False,
) -> ScriptResult:
    """Rewrite the script at ``path`` in place, after copying it to ``path + backup_suffix``.

    Nothing is written when the script needs no change or with ``dry_run``.
    The script keeps its mode and, where permitted, its owner; the new text
    replaces it atomically.

    Raises:
        BackupExistsError: The backup file exists already.
        OSError: The script cannot be read, or the backup or the script
            cannot be written.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    text = data.decode("utf-8", "surrogateescape")
    result = rewrite_text(text, path, options)
    if not result.changed or dry_run:
        return result
    backup = path + backup_suffix
    try:
        with open(backup, "xb") as handle:
            handle.write(data)
    except FileExistsError:
        raise BackupExistsError(
            f"{backup} exists already; move it away or pick another name with "
            "--backup-suffix, then rerun"
        ) from None
    shutil.copymode(path, backup)
    _replace_contents(path, result.rewritten.encode("utf-8", "surrogateescape"))
    return result


def _replace_contents(path: str, data: bytes) -> None:
    target = os.path.realpath(path)
    info = os.stat(target)
    handle, temporary = tempfile.mkstemp(
        dir=os.path.dirname(target), prefix=".blit-migrate-", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
            output.flush()
            os.fsync(output.fileno())
        os.chmod(temporary, info.st_mode & 0o7777)
        try:
            os.chown(temporary, info.st_uid, info.st_gid)
        except PermissionError:
            # Only root may give a file away; the rewritten script then
            # belongs to the user who ran the migration.
            pass
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
