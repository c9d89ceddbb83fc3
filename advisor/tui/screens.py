"""The TUI's screens. Each is a `Screen[T]`: it gets what it shows when it is built and returns
what the user decided with `dismiss(result)`; it never writes the app's state. The app
(advisor.tui.app) pushes them in turn and decides what comes next from their results.

Slow work (checking the data, ranking, running the harness) happens in a screen's thread worker,
which reports back with `Message`s posted to the screen, so the interface never blocks.
`escape` goes back, `ctrl+n` goes on; the app's `ctrl+s` saves the answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Generic, Mapping, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, LoadingIndicator, Select, Static

from advisor.questions import get, questions_for
from advisor.tui import views
from advisor.tui.widgets import CandidateRow, ColumnMapping, QuestionField

TITLES = {
    "data": "1/4 · Your data",
    "labels": "2/4 · Labels and examples",
    "resources": "3/4 · Compute and budget",
    "goals": "4/4 · Goals",
}


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


class WelcomeScreen(StepScreen[Nav]):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="welcome"):
            yield Static("[b]tunewise[/b] — decide how to adapt a language model, then prove it "
                         "on your data.", id="welcome-title")
            yield Static(
                "A few questions about your data, labels, compute and goals. The advisor ranks "
                "prompting, RAG, fine-tuning, PEFT and preference tuning with the evidence behind "
                "each reason and an estimate of memory, time and cost. Then tick the candidates "
                "to run: each is measured on the same split of your data.\n\n"
                "Keys: [b]tab[/b] next field · [b]ctrl+n[/b] next screen · [b]escape[/b] back · "
                "[b]ctrl+s[/b] save answers · [b]ctrl+q[/b] quit", classes="help")
            yield Button("Start", id="start", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#start", Button).focus()

    @on(Button.Pressed, "#start")
    def action_next(self) -> None:
        self.dismiss(Nav.NEXT)


class QuestionScreen(StepScreen[FormResult]):
    """A form for one section of the questions, validated inline."""

    def __init__(self, section: str, answers: Mapping[str, Any], *, snapshot: bool = False) -> None:
        super().__init__(name=section)
        self.section = section
        self.answers = answers  # read only: what the fields start from
        self.snapshot = snapshot

    def compose(self) -> ComposeResult:
        yield Static(TITLES[self.section], classes="screen-title")
        with VerticalScroll(classes="form"):
            yield from self.extra_top()
            for question in questions_for(self.section):
                yield QuestionField(question, get(self.answers, question.key))
                yield from self.after_field(question.key)
        with Horizontal(classes="nav"):
            yield Button("Back", id="back", compact=True)
            yield Button("Next", id="next", variant="primary", compact=True)
        yield Footer()

    def extra_top(self) -> ComposeResult:
        return iter(())

    def after_field(self, key: str) -> ComposeResult:
        return iter(())

    def on_mount(self) -> None:
        if self.snapshot:  # a blinking cursor would make screenshots differ run to run
            for text_input in self.query(Input):
                text_input.cursor_blink = False
        fields = self.fields()
        if fields:
            fields[0].widget.focus()

    def fields(self) -> list[QuestionField]:
        return list(self.query(QuestionField))

    def field(self, key: str) -> QuestionField:
        return self.query_one(f"#field-{key.replace('.', '-')}", QuestionField)

    def check_all(self) -> tuple[bool, dict[str, Any]]:
        """Validate every field: (all valid, {dotted key: value} of the valid ones)."""
        all_valid, values = True, {}
        for question_field in self.fields():
            valid, value = question_field.check()
            if valid:
                values[question_field.question.key] = value
            all_valid = all_valid and valid
        return all_valid, values

    def pending_answers(self) -> dict[str, Any]:
        """The valid values on screen now (ctrl+s saves them before the user leaves)."""
        return self.check_all()[1]

    def result(self, nav: Nav, values: dict[str, Any]) -> FormResult:
        return FormResult(nav, values)

    def action_next(self) -> None:
        valid, values = self.check_all()
        if valid and self.ready_to_leave():
            self.dismiss(self.result(Nav.NEXT, values))
        elif not valid:
            self.query(".invalid").first().widget.focus()

    def ready_to_leave(self) -> bool:
        return True

    def action_back(self) -> None:
        self.dismiss(self.result(Nav.BACK, self.check_all()[1]))

    @on(Button.Pressed, "#next")
    def pressed_next(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def pressed_back(self) -> None:
        self.action_back()

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        question_field = next((f for f in event.input.ancestors if isinstance(f, QuestionField)),
                              None)
        if question_field is not None and question_field.question.type != "path":
            question_field.check()  # inline validation as the user types


@dataclass
class DataChecked(Message):
    """The data screen's worker finished checking a file: its profile, or the error and, when
    the file could be read, the columns it saw."""

    path: str
    profile: dict[str, Any] | None
    error: str | None = None
    columns_seen: list[str] = field(default_factory=list)


class DataScreen(QuestionScreen):
    """The data file, checked in a worker as soon as the path is entered. When the check cannot
    tell which column is which, the user maps them here; data that cannot be read stops the
    user from going on."""

    def __init__(self, answers: Mapping[str, Any], *, profile: dict[str, Any] | None = None,
                 columns: dict[str, str] | None = None, snapshot: bool = False) -> None:
        super().__init__("data", answers, snapshot=snapshot)
        self.profile = profile  # of get(answers, "data.path"), when the app has one
        self.checked_path: str | None = get(answers, "data.path") if profile else None
        self.columns = dict(columns or {})
        self.error: str | None = None
        self.checking: str | None = None

    def after_field(self, key: str) -> ComposeResult:
        if key == "data.path":
            yield Static(views.profile_summary(self.profile) if self.profile else
                         "No data checked yet: type a path and press enter.", id="profile",
                         classes="profile")
            mapping = ColumnMapping()
            mapping.display = False
            yield mapping
            yield Button("Use these columns", id="apply-columns", compact=True,
                         classes="apply-columns")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#apply-columns").display = False
        path = get(self.answers, "data.path")
        if path and self.profile is None:
            self.check_data(path)

    def path_value(self) -> str | None:
        valid, value = self.field("data.path").check()
        return value if valid else None

    def task_value(self) -> str | None:
        return self.field("task").raw_value()

    @on(Input.Submitted, "#q-data-path")
    def path_submitted(self) -> None:
        path = self.path_value()
        if path:
            self.columns = {}
            self.check_data(path)

    def check_data(self, path: str) -> None:
        self.checking, self.error = path, None
        self.query_one("#profile", Static).update(f"Checking {Path(path).name} ...")
        self.check_worker(path, self.task_value(), dict(self.columns))

    @work(thread=True, exclusive=True, group="profile")
    def check_worker(self, path: str, task: str | None, columns: dict[str, str]) -> None:
        from bench.data import column_names, profile_data
        from bench.errors import TunewiseError

        try:
            profile = profile_data(path, task=task, columns=columns or None)
            self.post_message(DataChecked(path, profile))
            return
        except (TunewiseError, OSError, ValueError) as exc:
            error = str(exc)
        try:
            seen = column_names(path)
        except (TunewiseError, OSError, ValueError):
            seen = []
        self.post_message(DataChecked(path, None, error, seen))

    @on(DataChecked)
    async def show_check(self, message: DataChecked) -> None:
        if message.path != self.checking:
            return  # an older check of a path the user has since changed
        self.checking = None
        shown = self.query_one("#profile", Static)
        mapping = self.query_one(ColumnMapping)
        apply = self.query_one("#apply-columns")
        if message.profile is not None:
            self.profile, self.checked_path, self.error = message.profile, message.path, None
            shown.update(views.profile_summary(message.profile))
            mapping.display = apply.display = False
            task = message.profile.get("task")
            if task:
                self.field("task").set_value(task)
            return
        self.profile, self.checked_path, self.error = None, message.path, message.error
        error = views.without_cli_hints(message.error or "")
        if message.columns_seen and "column" in (message.error or ""):
            shown.update(f"[red]{error}[/]\nPick the task kind above and the columns below, then "
                         "press [b]Use these columns[/b].")
            await mapping.offer(self.task_value(), message.columns_seen, self.columns)
            mapping.display = apply.display = True
        else:
            shown.update(f"[red]{error}[/]")
            mapping.display = apply.display = False

    @on(Select.Changed, "#q-task")
    async def task_changed(self, event: Select.Changed) -> None:
        mapping = self.query_one(ColumnMapping)
        if (mapping.display and event.value is not Select.NULL
                and event.value != mapping.for_task):
            await mapping.offer(event.value, mapping.columns, mapping.mapping())

    @on(Button.Pressed, "#apply-columns")
    def apply_columns(self) -> None:
        mapping = self.query_one(ColumnMapping)
        missing = mapping.missing()
        if missing:
            self.notify(f"Choose a column for: {', '.join(missing)}", severity="warning")
            return
        chosen = mapping.mapping()
        if len(set(chosen.values())) < len(chosen):
            self.notify("Each role needs a column of its own", severity="warning")
            return
        path = self.path_value()
        if path:
            self.columns = chosen
            self.check_data(path)

    def ready_to_leave(self) -> bool:
        """Only data the check could read goes on to the advisor (no path at all is fine: the
        advice does not need data, a run does)."""
        path = self.path_value()
        if not path:
            return True
        if self.checking == path:
            self.notify("Still checking the data: a moment", severity="warning")
            return False
        if self.checked_path != path:
            self.check_data(path)
            self.notify("Checking the data first: press ctrl+n again when it is shown",
                        severity="warning")
            return False
        if self.profile is None:
            self.notify("This data cannot be used as it is: fix the file"
                        + (" or pick its columns" if self.query_one(ColumnMapping).display
                           else "") + " first", severity="error")
            return False
        return True

    def result(self, nav: Nav, values: dict[str, Any]) -> DataResult:
        usable = self.profile is not None and self.checked_path == values.get("data.path")
        return DataResult(nav, values, profile=self.profile if usable else None,
                          columns=self.columns if usable else {})


class ResourcesScreen(QuestionScreen):
    """Detected hardware shown; every value editable (the app fills in its defaults)."""

    def __init__(self, answers: Mapping[str, Any], *, hardware: dict[str, Any] | None,
                 snapshot: bool = False) -> None:
        super().__init__("resources", answers, snapshot=snapshot)
        self.hardware = hardware

    def extra_top(self) -> ComposeResult:
        yield Static(views.hardware_summary(self.hardware), id="hardware", classes="profile")


@dataclass
class Ranked(Message):
    """The ranking worker finished: a Recommendation, or the error that stopped it."""

    recommendation: Any
    error: str | None = None


class RecommendationScreen(StepScreen[Choice]):
    """The ranking: space ticks a candidate, enter/ctrl+r runs the ticked ones."""

    BINDINGS = [
        Binding("space", "toggle", "Tick"),
        Binding("ctrl+r", "run", "Run ticked", priority=True),
    ]

    def __init__(self, rank: Callable[[], Any], *, ticked: list[str] | None,
                 is_runnable: Callable[[str], bool], has_data: bool) -> None:
        super().__init__()
        self.rank = rank  # called in a worker thread: the advisor's Recommendation
        self.kept_ticks = ticked  # the user's ticks from an earlier visit; None: the advisor's
        self.is_runnable = is_runnable
        self.has_data = has_data
        self.recommendation = None
        self.ticked: list[str] = []

    @property
    def ranking(self):
        return self.recommendation.ranking if self.recommendation else None

    def compose(self) -> ComposeResult:
        yield Static("Recommendation", classes="screen-title")
        yield LoadingIndicator(id="ranking-loading")
        table = DataTable(id="ranking", cursor_type="row", zebra_stripes=True)
        table.display = False
        yield table
        yield VerticalScroll(Static("", id="reasons"), id="reasons-box")
        with Horizontal(classes="nav"):
            yield Button("Back", id="back", compact=True)
            yield Button("Run ticked", id="run", variant="primary", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#ranking", DataTable)
        for label, key in [("✓", "tick"), ("#", "rank"), ("strategy", "strategy"),
                           ("family", "family"), ("score", "score"), ("memory", "memory"),
                           ("time", "time"), ("cost", "cost"), ("fits", "fits")]:
            table.add_column(label, key=key)
        self.ranking_worker()

    @work(thread=True, exclusive=True, group="ranking")
    def ranking_worker(self) -> None:
        from bench.errors import TunewiseError

        try:
            self.post_message(Ranked(self.rank()))
        except (TunewiseError, OSError, ValueError) as exc:
            self.post_message(Ranked(None, str(exc)))

    @on(Ranked)
    def show_ranking(self, message: Ranked) -> None:
        self.query_one("#ranking-loading").display = False
        if message.error:
            self.query_one("#reasons", Static).update(f"[red]{message.error}[/]")
            return
        from advisor.estimate import fmt_bytes_gb, fmt_seconds

        self.recommendation = message.recommendation
        ranked = self.ranking.ranked
        names = {c.strategy for c in ranked}
        if self.kept_ticks is None:
            self.ticked = [s for s in self.ranking.recommended() if self.is_runnable(s)]
        else:
            self.ticked = [s for s in self.kept_ticks if s in names]
        table = self.query_one("#ranking", DataTable)
        table.clear()
        for i, c in enumerate(ranked, 1):
            est = c.estimate or {}
            table.add_row("✓" if c.strategy in self.ticked else " ", str(i), c.strategy,
                          c.family, f"{c.score:.0f}",
                          fmt_bytes_gb(est["peak_memory_gb"]) if est else "?",
                          fmt_seconds(est["time_s"]) if est else "?",
                          f"${est['cost_usd']:.3f}" if est else "?",
                          "yes" if c.fits else "no", key=c.strategy)
        table.display = True
        table.focus()
        self.show_reasons(ranked[0].strategy)

    def show_reasons(self, strategy: str) -> None:
        candidate = next(c for c in self.ranking.ranked if c.strategy == strategy)
        lines = [f"[b]{strategy}[/b] ({candidate.family}) — score {candidate.score:.0f}"
                 + ("" if self.is_runnable(strategy) else " · [dim]not installed yet[/]")]
        lines += [f"[red]does not fit:[/] {why}" for why in candidate.why_not]
        for reason in candidate.reasons:
            sign = "+" if reason.delta > 0 else ("−" if reason.delta < 0 else "·")
            lines.append(f"{sign} [b]{reason.rule}[/b]: {reason.text}\n   [dim]{reason.evidence}[/]")
        self.query_one("#reasons", Static).update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#ranking")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.ranking and event.row_key is not None and event.row_key.value:
            self.show_reasons(event.row_key.value)

    @on(DataTable.RowSelected, "#ranking")
    def action_toggle(self) -> None:
        table = self.query_one("#ranking", DataTable)
        if not table.display or table.row_count == 0:
            return
        strategy = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if strategy in self.ticked:
            self.ticked.remove(strategy)
        elif self.is_runnable(strategy):
            self.ticked.append(strategy)
        else:
            self.notify(f"{strategy} is not installed in this version", severity="warning")
        table.update_cell(strategy, "tick", "✓" if strategy in self.ticked else " ")

    @on(Button.Pressed, "#run")
    def action_run(self) -> None:
        if self.recommendation is None:
            return
        if not self.ticked:
            self.notify("Tick at least one candidate (space)", severity="warning")
            return
        if not self.has_data:
            self.notify("A run needs data: set the data file first (escape to go back)",
                        severity="error")
            return
        self.dismiss(Choice(Nav.NEXT, self.recommendation, list(self.ticked)))

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        # the ticks go back with the user, so they are still there on the way forward
        ticked = list(self.ticked) if self.recommendation else self.kept_ticks
        self.dismiss(Choice(Nav.BACK, self.recommendation, ticked or []))


# The run's events as messages to the run screen, posted from the worker thread. Each mirrors
# one of bench.runner's events (CandidateStarted, CandidateProgress, CandidateFinished).

@dataclass
class CandidateStartedMessage(Message):
    strategy: str


@dataclass
class CandidateProgressMessage(Message):
    strategy: str
    phase: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    text: str = ""


@dataclass
class CandidateFinishedMessage(Message):
    record: dict[str, Any]


@dataclass
class RunEnded(Message):
    """The harness returned (`result`) or failed (`error`, its first line)."""

    result: Any = None
    error: str | None = None


def run_message(event: Any) -> Message | None:
    """The message for one of bench.runner's events; None for those the screen does not show
    (RunFinished: the harness's return says the same)."""
    from bench.runner import CandidateFinished, CandidateProgress, CandidateStarted

    if isinstance(event, CandidateStarted):
        return CandidateStartedMessage(event.strategy)
    if isinstance(event, CandidateProgress):
        return CandidateProgressMessage(event.strategy, event.phase, event.step, event.total,
                                        event.loss, event.message)
    if isinstance(event, CandidateFinished):
        return CandidateFinishedMessage(event.record)
    return None


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

    def compose(self) -> ComposeResult:
        yield Static("Running", classes="screen-title", id="run-title")
        with Vertical(id="progress"):
            for strategy in self.strategies:
                yield CandidateRow(strategy, animated=self.animated)
        yield DataTable(id="live", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#live", DataTable)
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
            self.post_message(RunEnded(error=message))
            return
        self.post_message(RunEnded(result))

    def post_event(self, event: Any) -> None:
        """The harness's event handler (worker thread): forward it as a message."""
        message = run_message(event)
        if message is not None:
            self.post_message(message)  # thread-safe; dropped once the screen has closed

    def row(self, strategy: str) -> CandidateRow | None:
        rows = [r for r in self.query(CandidateRow) if r.strategy == strategy]
        return rows[0] if rows else None

    @on(CandidateStartedMessage)
    def candidate_started(self, message: CandidateStartedMessage) -> None:
        if row := self.row(message.strategy):
            row.update_progress("starting")

    @on(CandidateProgressMessage)
    def candidate_progress(self, message: CandidateProgressMessage) -> None:
        if row := self.row(message.strategy):
            row.update_progress(message.phase, message.step, message.total, message.text,
                                message.loss)

    @on(CandidateFinishedMessage)
    def candidate_finished(self, message: CandidateFinishedMessage) -> None:
        record = message.record
        if row := self.row(record.get("strategy", "")):
            row.finish(views.finished_status(record))
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


class ResultsScreen(StepScreen[Nav]):
    """Measured results, best first, beside the advisor's prior ranking; `o` opens the report."""

    BINDINGS = [Binding("o", "open_report", "Open report"), Binding("n", "restart", "New"),
                Binding("escape", "back", "Back")]

    def __init__(self, rows: list[tuple[str, ...]], metric: str | None, *,
                 report_path: str | None, run_dir: Any, interrupted: bool) -> None:
        super().__init__()
        self.rows, self.metric = rows, metric
        self.report_path, self.run_dir, self.interrupted = report_path, run_dir, interrupted

    def compose(self) -> ComposeResult:
        yield Static("Results", classes="screen-title")
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="report-path", classes="help")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        for label, key in [("#", "rank"), ("strategy", "strategy"), ("status", "status"),
                           (self.metric or "metric", "metric"), ("advisor#", "prior"),
                           ("mem MB", "memory"), ("time s", "time"), ("est s", "est"),
                           ("cost $", "cost")]:
            table.add_column(label, key=key)
        for row in self.rows:
            table.add_row(*row, key=row[1])
        text = (f"Report: {self.report_path}  (o opens it)" if self.report_path else
                f"Run folder: {self.run_dir}" if self.run_dir else "")
        if self.interrupted:
            text = "Run cancelled: finished candidates kept; `tunewise bench --resume` runs the " \
                   "rest. " + text
        self.query_one("#report-path", Static).update(text)
        table.focus()

    def action_open_report(self) -> None:
        if self.report_path:
            import webbrowser

            webbrowser.open(Path(self.report_path).resolve().as_uri())
        else:
            self.notify("No report was written for this run", severity="warning")

    def action_back(self) -> None:
        self.dismiss(Nav.BACK)

    def action_restart(self) -> None:
        self.dismiss(Nav.RESTART)

