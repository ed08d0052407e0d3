"""Findings of a migration: errors, warnings and notes tied to a file and line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Location:
    """A line of an input file, named as the user named the file."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Report:
    """One finding of a migration.

    ``error`` stops the migration. ``warning`` marks something of v1 that
    the output does not carry over; ``--strict`` turns warnings into errors.
    ``note`` explains a decision or a step that the user has to take.
    """

    severity: Severity
    message: str
    location: Location | None = None
    # The v1 module that the finding concerns, or None for the global
    # section; the output places the finding's comment there.
    section: str | None = None

    def text(self) -> str:
        """Return the message prefixed with its location, as ``FILE:LINE: MESSAGE``."""
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"

    def format(self, prog: str = "blit") -> str:
        """Return the line printed on stderr, such as ``blit: warning: a.conf:3: ...``."""
        return f"{prog}: {self.severity}: {self.text()}"
