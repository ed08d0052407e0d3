"""A shell tokenizer that keeps the position of every word.

:mod:`shlex` splits a command line into words but does not say where each
word was, and the script rewriter has to replace single words while it
keeps every other byte of the file. This tokenizer follows the POSIX shell
rules that decide where words start and end: quotes, backslash escapes,
``$(...)``, ``${...}`` and backquotes, comments, operators, redirections
and here-documents. It does not expand anything; a word whose value
depends on an expansion has ``literal`` None.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["word", "operator", "redirect", "newline", "comment"]

# Operators that end a simple command, longest first.
_OPERATORS = (";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")")
# Redirection operators, longest first.
_REDIRECTS = ("&>>", "<<<", "<<-", "&>", "<<", "<>", "<&", ">>", ">&", ">|", "<", ">")
_WORD_END = frozenset(" \t\n;&|()<>")


@dataclass(frozen=True)
class Token:
    """A token of a shell script, at ``text[start:end]``."""

    kind: TokenKind
    start: int
    end: int
    raw: str
    # A word's value when it contains no expansion, as the shell would pass
    # it to the command; None otherwise, and for other tokens.
    literal: str | None = None


class UnbalancedError(ValueError):
    """A quote, ``$(``, ``${`` or backquote is not closed before the end of the text."""

    def __init__(self, position: int, construct: str) -> None:
        super().__init__(f"unclosed {construct}")
        # Offset of the opening quote or substitution in the text.
        self.position = position
        # What is not closed, such as "single quote" or "$(".
        self.construct = construct


def tokenize(text: str) -> tuple[list[Token], UnbalancedError | None]:
    """Split ``text`` into tokens.

    Returns the tokens and, when the text ends inside a quote or a
    substitution, the error for it; the tokens then stop before it.
    """
    scanner = _Scanner(text)
    try:
        scanner.scan()
    except UnbalancedError as error:
        return scanner.tokens, error
    return scanner.tokens, None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.tokens: list[Token] = []
        # Here-document delimiters read since the last newline, with
        # whether leading tabs are stripped (<<-).
        self.heredocs: list[tuple[str, bool]] = []

    def add(self, kind: TokenKind, start: int, end: int, literal: str | None = None) -> None:
        self.tokens.append(Token(kind, start, end, self.text[start:end], literal))

    def scan(self) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t":
                self.pos += 1
            elif text.startswith("\\\n", self.pos):
                self.pos += 2
            elif char == "\n" or self.at_carriage_return_line_end():
                # The "\r" of a CRLF line end belongs to the line end, not to
                # the last word, so that a rewrite of that word keeps it.
                end = self.pos + (2 if text.startswith("\r\n", self.pos) else 1)
                self.add("newline", self.pos, end)
                self.pos = end
                self.skip_heredoc_bodies()
            elif char == "#":
                end = text.find("\n", self.pos)
                end = len(text) if end < 0 else end
                self.add("comment", self.pos, end)
                self.pos = end
            else:
                self.scan_operator_or_word()

    def at_carriage_return_line_end(self) -> bool:
        """Return whether ``pos`` is at the "\r" of a CRLF line end or at a "\r" that ends the text."""
        return self.text.startswith("\r\n", self.pos) or self.text[self.pos :] == "\r"

    def scan_operator_or_word(self) -> None:
        text = self.text
        for redirect in _REDIRECTS:
            if text.startswith(redirect, self.pos):
                start = self.pos
                self.pos += len(redirect)
                self.add("redirect", start, self.pos)
                if redirect in ("<<", "<<-"):
                    self.read_heredoc_delimiter(strip_tabs=redirect == "<<-")
                return
        for operator in _OPERATORS:
            if text.startswith(operator, self.pos):
                self.add("operator", self.pos, self.pos + len(operator))
                self.pos += len(operator)
                return
        start = self.pos
        literal = self.scan_word()
        self.add("word", start, self.pos, literal)

    def read_heredoc_delimiter(self, *, strip_tabs: bool) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1
        start = self.pos
        self.scan_word()
        raw = self.text[start : self.pos]
        self.add("word", start, self.pos, None)
        delimiter = re.sub(r"[\"'\\]", "", raw)
        self.heredocs.append((delimiter, strip_tabs))

    def skip_heredoc_bodies(self) -> None:
        for delimiter, strip_tabs in self.heredocs:
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                self.pos = min(end + 1, len(self.text))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self.heredocs = []

    def scan_word(self) -> str | None:
        """Move past one word and return its value, or None if it has expansions."""
        text = self.text
        start = self.pos
        literal = True
        while (
            self.pos < len(text)
            and text[self.pos] not in _WORD_END
            and not self.at_carriage_return_line_end()
        ):
            char = text[self.pos]
            if char == "\\":
                if text.startswith("\\\n", self.pos):
                    literal = False
                self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise UnbalancedError(self.pos, "single quote")
                self.pos = end + 1
            elif char == '"':
                if self.skip_double_quotes():
                    literal = False
            elif char == "`":
                literal = False
                self.skip_backquotes()
            elif char == "$":
                literal = False
                self.skip_dollar()
            else:
                self.pos += 1
        self.pos = min(self.pos, len(text))
        if not literal:
            return None
        try:
            values = shlex.split(text[start : self.pos], comments=False, posix=True)
        except ValueError:
            return None
        if len(values) == 1:
            return values[0]
        return None

    def skip_double_quotes(self) -> bool:
        """Move past a double-quoted string; return whether it contains an expansion."""
        text = self.text
        opening = self.pos
        self.pos += 1
        expands = False
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                self.pos += 2
            elif char == '"':
                self.pos += 1
                return expands
            elif char == "$":
                expands = True
                self.skip_dollar()
            elif char == "`":
                expands = True
                self.skip_backquotes()
            else:
                self.pos += 1
        raise UnbalancedError(opening, "double quote")

    def skip_backquotes(self) -> None:
        text = self.text
        opening = self.pos
        self.pos += 1
        while self.pos < len(text):
            if text[self.pos] == "\\":
                self.pos += 2
            elif text[self.pos] == "`":
                self.pos += 1
                return
            else:
                self.pos += 1
        raise UnbalancedError(opening, "backquote")

    def skip_dollar(self) -> None:
        """Move past ``$`` and what it expands: ``$(...)``, ``${...}``, ``$'...'`` or a name."""
        text = self.text
        opening = self.pos
        following = text[self.pos + 1 : self.pos + 2]
        if following == "(":
            self.pos += 1
            self.skip_nested("(", ")", opening, "$(")
        elif following == "{":
            self.pos += 1
            self.skip_nested("{", "}", opening, "${")
        elif following == "'":
            self.pos += 2
            while self.pos < len(text):
                if text[self.pos] == "\\":
                    self.pos += 2
                elif text[self.pos] == "'":
                    self.pos += 1
                    return
                else:
                    self.pos += 1
            raise UnbalancedError(opening, "$' quote")
        else:
            self.pos += 1

    def skip_nested(self, open_char: str, close_char: str, opening: int, construct: str) -> None:
        """Move past a bracketed substitution, from its opening bracket at ``pos``."""
        text = self.text
        depth = 0
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                self.pos += 2
            elif char == "'":
                end = text.find("'", self.pos + 1)
                if end < 0:
                    raise UnbalancedError(self.pos, "single quote")
                self.pos = end + 1
            elif char == '"':
                self.skip_double_quotes()
            elif char == "`":
                self.skip_backquotes()
            elif char == "$" and text[self.pos + 1 : self.pos + 2] in ("(", "{"):
                self.skip_dollar()
            else:
                if char == open_char:
                    depth += 1
                elif char == close_char:
                    depth -= 1
                self.pos += 1
                if depth == 0:
                    return
        raise UnbalancedError(opening, construct)


def split_commands(tokens: list[Token]) -> list[list[Token]]:
    """Group tokens into simple commands: the words and redirections between operators.

    Comments, newlines and operators end a command and are left out.
    """
    commands: list[list[Token]] = []
    current: list[Token] = []
    for token in tokens:
        if token.kind in ("word", "redirect"):
            current.append(token)
            continue
        if current:
            commands.append(current)
        current = []
    if current:
        commands.append(current)
    return commands
