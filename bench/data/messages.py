"""What the data layer tells the user: `DataError` (a problem to fix), the report of
warnings and notes kept in the profile, and the phrasing of counts and positions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.errors import TunewiseError

MAX_EXAMPLES = 5  # line numbers quoted in a warning


class DataError(TunewiseError):
    """A data problem the user can fix; the message names the file, line/row and column."""


@dataclass
class Report:
    """Warnings (shown, kept in the profile) and notes (how the data was read)."""

    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def plural(n: int, word: str) -> str:
    """'1 row', '3 rows'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def list_positions(positions: list[int], unit: str) -> str:
    shown = ", ".join(str(p) for p in positions[:MAX_EXAMPLES])
    more = f", ... {len(positions) - MAX_EXAMPLES} more" if len(positions) > MAX_EXAMPLES else ""
    return f"{unit}s {shown}{more}" if len(positions) > 1 else f"{unit} {shown}"


def first_line_of(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
