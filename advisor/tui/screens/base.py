"""What every screen shares: the results screens return (`dismiss`) and the step bindings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from textual.binding import Binding
from textual.screen import Screen


class Nav(Enum):
    """Where the user asked to go from a screen."""

    BACK = "back"
    NEXT = "next"
    RESTART = "restart"


@dataclass(frozen=True)
class FormResult:
    """A question screen's answers (dotted keys; the valid values only) and where to go."""

    nav: Nav
    answers: dict[str, Any]


@dataclass(frozen=True)
class DataResult(FormResult):
    """The data screen also returns the profile of the file it checked, and the columns the
    user mapped to roles when the check could not tell them."""

    profile: dict[str, Any] | None = None
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    """The recommendation screen's result: the ranking and the candidates the user ticked."""

    nav: Nav
    recommendation: Any = None  # advisor.recommend.Recommendation
    ticked: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunOutcome:
    """The run screen's result: the harness's result, or the error that stopped it."""

    result: Any = None
    error: str | None = None


ResultT = TypeVar("ResultT")


class StepScreen(Screen[ResultT], Generic[ResultT]):
    """A screen in the sequence: back with escape, on with ctrl+n; `dismiss` returns a ResultT."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "next", "Next", priority=True),
    ]

    def action_back(self) -> None:
        pass

    def action_next(self) -> None:
        pass
