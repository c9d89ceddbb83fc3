"""The TUI's screens, in the order a user meets them:

welcome -> data -> labels -> resources -> goals -> recommendation -> run -> results

Question screens are built from advisor.questions; slow work (profiling the data, ranking,
running the harness) happens in thread workers that post back with call_from_thread, so the
interface never blocks. `escape` goes back, `ctrl+n` goes on, `ctrl+s` saves the answers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, LoadingIndicator, Static

from advisor.answers import get, put
from advisor.questions import questions_for
from advisor.tui.widgets import CandidateRow, QuestionField

if TYPE_CHECKING:
    from advisor.tui.app import TunewiseApp

TITLES = {
    "data": "1/4 · Your data",
    "labels": "2/4 · Labels and examples",
    "resources": "3/4 · Compute and budget",
    "goals": "4/4 · Goals",
}


class StepScreen(Screen):
    """A screen in the sequence: back with escape, on with ctrl+n."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+n", "next", "Next", priority=True),
    ]
    step = ""

    @property
    def tw(self) -> "TunewiseApp":
        return self.app  # type: ignore[return-value]

    def action_back(self) -> None:
        self.tw.go_back(self.step)

    def action_next(self) -> None:
        self.tw.go_next(self.step)


class WelcomeScreen(StepScreen):
    step = "welcome"

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
    def start(self) -> None:
        self.action_next()


class QuestionScreen(StepScreen):
    """A form for one section of the questions, validated inline."""

    def __init__(self, step: str) -> None:
        super().__init__(name=step)
        self.step = step

    def compose(self) -> ComposeResult:
        yield Static(TITLES[self.step], classes="screen-title")
        with VerticalScroll(classes="form"):
            yield from self.extra_top()
            for question in questions_for(self.step):
                yield QuestionField(question, get(self.tw.answers, question.key))
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
        if self.tw.snapshot:  # a blinking cursor would make screenshots differ run to run
            for text_input in self.query(Input):
                text_input.cursor_blink = False
        fields = self.fields()
        if fields:
            fields[0].widget.focus()

    def fields(self) -> list[QuestionField]:
        return list(self.query(QuestionField))

    def collect(self) -> bool:
        """Validate every field; store the valid ones; True when all are valid."""
        all_valid = True
        for field in self.fields():
            valid, value = field.check()
            if valid:
                put(self.tw.answers, field.question.key, value)
            all_valid = all_valid and valid
        return all_valid

    def action_next(self) -> None:
        if self.collect():
            self.tw.go_next(self.step)
        else:
            self.query(".invalid").first().widget.focus()

    def action_back(self) -> None:
        self.collect()
        self.tw.go_back(self.step)

    @on(Button.Pressed, "#next")
    def pressed_next(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def pressed_back(self) -> None:
        self.action_back()

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        field = next((f for f in event.input.ancestors if isinstance(f, QuestionField)), None)
        if field is not None and field.question.type != "path":
            field.check()  # inline validation as the user types


class DataScreen(QuestionScreen):
    """The data file, profiled in a worker as soon as the path exists."""

    def __init__(self) -> None:
        super().__init__("data")

    def after_field(self, key: str) -> ComposeResult:
        if key != "data.path":
            return
        yield Static(self.tw.profile_summary() or "No data profiled yet: type a path and press "
                     "enter.", id="profile", classes="profile")

    def on_mount(self) -> None:
        super().on_mount()
        path = get(self.tw.answers, "data.path")
        if path and self.tw.profile is None:
            self.load_profile(path)

    @on(Input.Submitted, "#q-data-path")
    def path_submitted(self, event: Input.Submitted) -> None:
        field = self.query_one("#field-data-path", QuestionField)
        valid, value = field.check()
        if valid and value:
            self.load_profile(value)

    def load_profile(self, path: str) -> None:
        self.query_one("#profile", Static).update(f"Profiling {Path(path).name} ...")
        self.tw.profile_data(path, on_done=self.show_profile)

    def show_profile(self, error: str | None) -> None:
        if not self.is_attached:
            return
        profile = self.query_one("#profile", Static)
        if error:
            profile.update(f"[red]{error}[/]")
            return
        profile.update(self.tw.profile_summary())
        task = self.tw.profile.get("task") if self.tw.profile else None
        if task:
            self.query_one("#field-task", QuestionField).set_value(task)


class ResourcesScreen(QuestionScreen):
    """Detected hardware shown; every value editable."""

    def __init__(self) -> None:
        super().__init__("resources")

    def extra_top(self) -> ComposeResult:
        yield Static(self.tw.hardware_summary(), id="hardware", classes="profile")


class RecommendationScreen(StepScreen):
    """The ranking: space ticks a candidate, enter/ctrl+r runs the ticked ones."""

    step = "recommendation"
    BINDINGS = [
        Binding("space", "toggle", "Tick"),
        Binding("ctrl+r", "run", "Run ticked", priority=True),
    ]

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
        self.tw.compute_ranking(on_done=self.show_ranking)

    def show_ranking(self, error: str | None) -> None:
        if not self.is_attached:
            return
        self.query_one("#ranking-loading").display = False
        if error:
            self.query_one("#reasons", Static).update(f"[red]{error}[/]")
            return
        from advisor.estimate import fmt_bytes_gb, fmt_seconds

        table = self.query_one("#ranking", DataTable)
        table.clear()
        for i, c in enumerate(self.tw.ranking.ranked, 1):
            est = c.estimate or {}
            table.add_row("✓" if c.strategy in self.tw.selected else " ", str(i), c.strategy,
                          c.family, f"{c.score:.0f}",
                          fmt_bytes_gb(est["peak_memory_gb"]) if est else "?",
                          fmt_seconds(est["time_s"]) if est else "?",
                          f"${est['cost_usd']:.3f}" if est else "?",
                          "yes" if c.fits else "no", key=c.strategy)
        table.display = True
        table.focus()
        self.show_reasons(self.tw.ranking.ranked[0].strategy)

    def show_reasons(self, strategy: str) -> None:
        candidate = next(c for c in self.tw.ranking.ranked if c.strategy == strategy)
        lines = [f"[b]{strategy}[/b] ({candidate.family}) — score {candidate.score:.0f}"
                 + ("" if self.tw.is_runnable(strategy) else " · [dim]not installed yet[/]")]
        lines += [f"[red]does not fit:[/] {why}" for why in candidate.why_not]
        for reason in candidate.reasons:
            sign = "+" if reason.delta > 0 else ("−" if reason.delta < 0 else "·")
            lines.append(f"{sign} [b]{reason.rule}[/b]: {reason.text}\n   [dim]{reason.evidence}[/]")
        self.query_one("#reasons", Static).update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#ranking")
    def highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            self.show_reasons(event.row_key.value)

    def action_toggle(self) -> None:
        table = self.query_one("#ranking", DataTable)
        if not table.display or table.row_count == 0:
            return
        strategy = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if strategy in self.tw.selected:
            self.tw.selected.remove(strategy)
        elif self.tw.is_runnable(strategy):
            self.tw.selected.append(strategy)
        else:
            self.notify(f"{strategy} is not installed in this version", severity="warning")
        table.update_cell(strategy, "tick", "✓" if strategy in self.tw.selected else " ")

    @on(DataTable.RowSelected, "#ranking")
    def row_selected(self) -> None:
        self.action_toggle()

    def action_run(self) -> None:
        if self.tw.ranking is None:
            return
        if not self.tw.selected:
            self.notify("Tick at least one candidate (space)", severity="warning")
            return
        if not get(self.tw.answers, "data.path"):
            self.notify("A run needs data: set the data file first (escape to go back)",
                        severity="error")
            return
        self.tw.go_next(self.step)

    @on(Button.Pressed, "#run")
    def pressed_run(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#back")
    def pressed_back(self) -> None:
        self.action_back()


class RunScreen(StepScreen):
    """Runs the ticked candidates through the harness in a worker thread; `c` cancels."""

    step = "run"
    BINDINGS = [Binding("c", "cancel", "Cancel run"), Binding("escape", "back", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.cancel_event = threading.Event()
        self.finished = False

    def compose(self) -> ComposeResult:
        yield Static("Running", classes="screen-title", id="run-title")
        with Vertical(id="progress"):
            for strategy in self.tw.run_order():
                yield CandidateRow(strategy, animated=not self.tw.snapshot)
        table = DataTable(id="live", zebra_stripes=True)
        yield table
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
            result = self.tw.start_run(lambda event: self.post_back(self.handle_bench_event, event),
                                       self.cancel_event)
        except Exception as exc:  # a user error (bad data, unknown model): show it, no crash
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.post_back(self.failed, message)
            return
        self.post_back(self.done, result)

    def post_back(self, callback, *args) -> None:
        """Run `callback` on the UI thread, unless the app has already gone (quit mid-run)."""
        try:
            self.app.call_from_thread(callback, *args)
        except RuntimeError:
            pass

    def row(self, strategy: str) -> CandidateRow | None:
        rows = [r for r in self.query(CandidateRow) if r.strategy == strategy]
        return rows[0] if rows else None

    def handle_bench_event(self, event: Any) -> None:
        if not self.is_attached:
            return
        kind = type(event).__name__
        strategy = getattr(event, "strategy", None)
        row = self.row(strategy) if strategy else None
        if kind == "CandidateStarted" and row:
            row.update_progress("starting")
        elif kind == "CandidateProgress" and row:
            row.update_progress(event.phase, event.step, event.total, event.message, event.loss)
        elif kind == "CandidateFinished":
            from advisor.tui.app import record_metric

            record = event.record
            name, value = record_metric(record)
            status = record.get("status", "?")
            if row:
                row.finish(f"{status} {name}={value:.3f}" if value is not None else
                           f"{status}: {(record.get('error') or '')[:60]}")
            memory = (record.get("peak_memory_mb") or {}).get("cpu_rss")
            seconds = (record.get("time_s") or {}).get("total")
            self.query_one("#live", DataTable).add_row(
                record.get("strategy", "?"), status,
                f"{value:.3f}" if value is not None else "—",
                f"{memory:.0f}" if isinstance(memory, (int, float)) else "—",
                f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "—")

    def done(self, result: Any) -> None:
        if not self.is_attached:
            return
        self.finished = True
        self.tw.run_result = result
        self.tw.go_next(self.step)

    def failed(self, message: str) -> None:
        self.finished = True
        self.query_one("#run-title", Static).update(f"[red]Run failed:[/] {message}")

    def action_cancel(self) -> None:
        if not self.finished:
            self.cancel_event.set()
            self.query_one("#run-title", Static).update("Cancelling: stopping the current "
                                                        "candidate, keeping finished records ...")

    def action_back(self) -> None:
        if self.finished:
            self.tw.go_back(self.step)
        else:
            self.notify("Cancel the run first (c)", severity="warning")


class ResultsScreen(StepScreen):
    """Measured results, best first, beside the advisor's prior ranking; `o` opens the report."""

    step = "results"
    BINDINGS = [Binding("o", "open_report", "Open report"), Binding("n", "restart", "New"),
                Binding("escape", "back", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Results", classes="screen-title")
        yield DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield Static("", id="report-path", classes="help")
        yield Footer()

    def on_mount(self) -> None:
        from advisor.tui.app import measured_rows

        rows, metric = measured_rows(self.tw.run_result, self.tw.ranking)
        table = self.query_one("#results", DataTable)
        for label, key in [("#", "rank"), ("strategy", "strategy"), ("status", "status"),
                           (metric or "metric", "metric"), ("advisor#", "prior"),
                           ("mem MB", "memory"), ("time s", "time"), ("est s", "est"),
                           ("cost $", "cost")]:
            table.add_column(label, key=key)
        for row in rows:
            table.add_row(*row, key=row[1])
        report = self.tw.report_path
        run_dir = getattr(self.tw.run_result, "run_dir", None)
        interrupted = getattr(self.tw.run_result, "interrupted", False)
        text = (f"Report: {report}  (o opens it)" if report else
                f"Run folder: {run_dir}" if run_dir else "")
        if interrupted:
            text = "Run cancelled: finished candidates kept; `tunewise bench --resume` runs the " \
                   "rest. " + text
        self.query_one("#report-path", Static).update(text)
        table.focus()

    def action_open_report(self) -> None:
        if self.tw.report_path:
            import webbrowser

            webbrowser.open(Path(self.tw.report_path).resolve().as_uri())
        else:
            self.notify("No report was written for this run", severity="warning")

    def action_restart(self) -> None:
        self.tw.restart()
