"""Writing TOML values and comments as text.

The v2 config is written as text rather than through a TOML library,
because the output interleaves comments with the keys and the standard
library has no TOML writer (``tomllib`` in Python 3.11 only reads).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

# TOML's short escapes; every other control character becomes \\uXXXX.
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}

# Width of wrapped comment lines, the usual 79 columns.
COMMENT_WIDTH = 79


class NotRepresentableError(ValueError):
    """A string contains bytes that are not UTF-8, which TOML cannot store."""


def basic_string(value: str) -> str:
    """Quote ``value`` as a TOML basic string (``"..."``).

    Raises:
        NotRepresentableError: ``value`` contains a lone surrogate, which
            is how an input byte that is not valid UTF-8 was decoded.
    """
    parts = ['"']
    for char in value:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            parts.append(_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise NotRepresentableError(
                f"{value!r} is not valid UTF-8; a TOML file can hold only UTF-8 text"
            )
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def string_array(values: Iterable[str]) -> str:
    """Write ``values`` as a one-line TOML array of basic strings."""
    return "[" + ", ".join(basic_string(value) for value in values) + "]"


def comment_safe(text: str) -> str:
    """Return ``text`` with what a TOML comment cannot hold shown as ``\\xNN``.

    TOML forbids control characters other than tab in comments, and a lone
    surrogate (an input byte that is not UTF-8) cannot be written at all.
    """
    parts = []
    for char in text:
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F:
            parts.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            parts.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(char)
    return "".join(parts)


def comment_lines(text: str, *, indent: str = "") -> list[str]:
    """Wrap ``text`` into ``# `` comment lines of at most 79 columns where possible.

    Continuation lines get two more spaces, and words longer than a line,
    such as paths, are never split.
    """
    safe = comment_safe(text)
    lines = textwrap.wrap(
        safe,
        width=COMMENT_WIDTH - 2 - len(indent),
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [f"# {indent}{line}" for line in lines] or ["#"]
