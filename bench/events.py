"""What a run tells its caller while it goes: one event stream for every front door.

    run_benchmark(plan, on_event=print)   # CandidateStarted, CandidateProgress, ...

The executors emit these from the driver process (a Ray task's events are forwarded to it);
the terminal displays (bench.progress), the demo, `advise --run` and the TUI draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass
class CandidateStarted:
    strategy: str
    seed: int = 0
    index: int = 0  # position in this run (1-based) and how many candidates it has
    total: int = 0


@dataclass
class CandidateProgress:
    strategy: str
    phase: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""


@dataclass
class CandidateFinished:
    strategy: str
    record: dict[str, Any]


@dataclass
class StageFinished:
    """A once-per-run stage (bench.stages) finished; its record is not a candidate's."""

    stage: str
    record: dict[str, Any]


@dataclass
class RunFinished:
    run_dir: Path


Event = CandidateStarted | CandidateProgress | CandidateFinished | StageFinished | RunFinished
EventHandler = Callable[[Any], None]


def emit(on_event: EventHandler | None, event: Any) -> None:
    if on_event is not None:
        on_event(event)


def with_position(on_event: EventHandler | None, index: int, total: int) -> EventHandler:
    """Adds the candidate's position in the run to its CandidateStarted events."""
    def handler(event: Any) -> None:
        if isinstance(event, CandidateStarted):
            event.index, event.total = index, total
        emit(on_event, event)
    return handler
