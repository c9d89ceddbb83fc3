"""The run screen: the harness in a worker thread, its events arriving as messages.

When the candidates race (bench.race), a line under the title says the race's plan and then each
rung's validation scores, and a candidate the race stops ends its row on the rung it stopped at."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Static

from advisor.tui import views
from advisor.tui.screens.base import RunOutcome, StepScreen
from advisor.tui.widgets import CandidateRow
from bench.events import CandidateFinished, CandidateProgress, CandidateStarted


# The run's events as messages to the run screen, posted from the worker thread. Each carries
# one of bench.events' events (its fields are the event's, not a copy of them).

@dataclass
class CandidateStartedMessage(Message):
    event: CandidateStarted


@dataclass
class CandidateProgressMessage(Message):
    event: CandidateProgress


@dataclass
class CandidateFinishedMessage(Message):
    event: CandidateFinished


MESSAGE_FOR = {CandidateStarted: CandidateStartedMessage,
               CandidateProgress: CandidateProgressMessage,
               CandidateFinished: CandidateFinishedMessage}


@dataclass
class RaceMessage(Message):
    """A line about the race: its plan (bench.race.RaceStarted) or a rung's result
    (RungFinished)."""

    text: str


@dataclass
class RunEnded(Message):
    """The harness returned (`result`) or failed (`error`, its first line)."""

    result: Any = None
    error: str | None = None


def run_message(event: Any) -> Message | None:
    """The message for one of bench.events' events; None for those the screen does not show
    (a stage's end: no candidate row; RunFinished: the harness's return says the same)."""
    from bench.race import RaceStarted, RungFinished, race_plan_line, rung_line

    if isinstance(event, RaceStarted):
        return RaceMessage(race_plan_line(event))
    if isinstance(event, RungFinished):
        return RaceMessage(rung_line(event))
    message = MESSAGE_FOR.get(type(event))
    return message(event) if message is not None else None


class RunScreen(StepScreen[RunOutcome]):
    """Runs the ticked candidates through the harness in a worker thread; `c` cancels."""

    BINDINGS = [Binding("c", "cancel", "Cancel run"), Binding("escape", "back", "Back")]

    def __init__(self, strategies: list[str], start: Callable[..., Any], *,
                 animated: bool = True) -> None:
        super().__init__()
        self.strategies = strategies
        self.start = start  # start(on_event, cancel) -> the harness's result, in the worker
        self.animated = animated
        self.cancel_event = threading.Event()
        self.finished = False
        self.error: str | None = None
        self.race_lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static("Running", classes="screen-title", id="run-title")
        yield Static("", id="race", markup=False)
        with Vertical(id="progress"):
            for strategy in self.strategies:
                yield CandidateRow(strategy, animated=self.animated)
        yield DataTable(id="live", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#live", DataTable)
        self.query_one("#race", Static).display = False  # until the run races
        for label, key in [("strategy", "strategy"), ("status", "status"),
                           ("metric", "metric"), ("memory MB", "memory"), ("time s", "time")]:
            table.add_column(label, key=key)
        self.run_harness()

    def on_unmount(self) -> None:
        self.cancel_event.set()  # leaving the screen (or quitting) stops the run

    @work(thread=True, exclusive=True, group="bench")
    def run_harness(self) -> None:
        try:
            result = self.start(self.post_event, self.cancel_event)
        except Exception as exc:  # noqa: BLE001 - a user error (bad data, unknown model): shown
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.post_from_worker(RunEnded(error=message))
            return
        self.post_from_worker(RunEnded(result))

    def post_event(self, event: Any) -> None:
        """The harness's event handler (worker thread): forward it as a message."""
        message = run_message(event)
        if message is not None:
            self.post_from_worker(message)

    def post_from_worker(self, message: Message) -> None:
        """post_message is thread-safe and drops messages to a closed screen; after the app
        itself has gone (quit mid-run) its event loop is closed, and the message is dropped."""
        try:
            self.post_message(message)
        except RuntimeError:
            pass

    def row(self, strategy: str) -> CandidateRow | None:
        rows = [r for r in self.query(CandidateRow) if r.strategy == strategy]
        return rows[0] if rows else None

    @on(CandidateStartedMessage)
    def candidate_started(self, message: CandidateStartedMessage) -> None:
        if row := self.row(message.event.strategy):
            row.update_progress("starting")

    @on(CandidateProgressMessage)
    def candidate_progress(self, message: CandidateProgressMessage) -> None:
        event = message.event
        if row := self.row(event.strategy):
            row.update_progress(event.phase, event.step, event.total, event.message, event.loss)

    @on(RaceMessage)
    def race_line(self, message: RaceMessage) -> None:
        """The race's plan, then one line per rung (the latest last)."""
        shown = self.query_one("#race", Static)
        self.race_lines.append(message.text)
        shown.update("\n".join(self.race_lines))
        shown.display = True

    @on(CandidateFinishedMessage)
    def candidate_finished(self, message: CandidateFinishedMessage) -> None:
        record = message.event.record
        if row := self.row(record.get("strategy", "")):
            row.finish(stopped_status(record) or views.finished_status(record))
        self.query_one("#live", DataTable).add_row(*views.live_row(record))

    @on(RunEnded)
    def run_ended(self, message: RunEnded) -> None:
        self.finished = True
        if message.error is None:
            self.dismiss(RunOutcome(message.result))
            return
        self.error = message.error
        self.query_one("#run-title", Static).update(f"[red]Run failed:[/] {message.error}")

    def action_cancel(self) -> None:
        if not self.finished:
            self.cancel_event.set()
            self.query_one("#run-title", Static).update("Cancelling: stopping the current "
                                                        "candidate, keeping finished records ...")

    def action_back(self) -> None:
        if self.finished:
            self.dismiss(RunOutcome(error=self.error))
        else:
            self.notify("Cancel the run first (c)", severity="warning")


def stopped_status(record: dict[str, Any]) -> str | None:
    """"stopped at rung 1: validation accuracy 0.500" for a candidate the race stopped; None
    for any other record."""
    from bench.race import race_outcome

    if race_outcome(record) != "stopped":
        return None
    rungs = record["info"]["race"].get("rungs") or [{}]
    last, metric = rungs[-1], record["info"]["race"].get("metric", "score")
    score = last.get("validation")
    shown = f"{score:.3f}" if isinstance(score, (int, float)) else "?"
    return f"stopped at rung {len(rungs)}: validation {metric} {shown}"
