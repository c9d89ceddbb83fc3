"""What the user sees while a benchmark runs: the runner's events, drawn.

    with make_display() as display:            # rich live view on a TTY, plain lines otherwise
        run_benchmark(plan, on_event=display)

The live view shows, per running candidate, its phase, a progress bar with step/total,
elapsed time and ETA, the last loss, and below it a table of the finished candidates. The plain
view prints one line per phase change, finished candidate, and at most one progress line every
few seconds, so logs stay readable in CI.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                           TextColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from bench.events import (CandidateFinished, CandidateProgress, CandidateStarted, RunFinished,
                          StageFinished)
from bench.schema import HIGHER_IS_BETTER

PLAIN_PROGRESS_INTERVAL_S = 5.0


def _primary(record: dict[str, Any]) -> float | None:
    return record.get("metrics", {}).get(record.get("primary_metric", ""))


def sort_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished ones best first by their primary metric, then the rest in run order."""
    scored = [r for r in records if r.get("status") == "ok" and _primary(r) is not None]
    others = [r for r in records if r not in scored]
    higher = HIGHER_IS_BETTER.get(scored[0]["primary_metric"], True) if scored else True
    scored.sort(key=lambda r: _primary(r), reverse=higher)
    return scored + others


def outcome_text(record: dict[str, Any]) -> str:
    """One line: `ok accuracy 0.742 [0.69–0.79]` or `failed: <first line of the error>`."""
    status = record.get("status")
    if status != "ok":
        first = (record.get("error") or "").strip().splitlines()
        return f"{status}: {first[0] if first else ''}"
    name = record.get("primary_metric", "")
    value = _primary(record)
    interval = record.get("metrics_ci", {}).get(name)
    ci = f" [{interval[0]:.3f}–{interval[1]:.3f}]" if interval else ""
    return f"ok {name} {value:.3f}{ci}" if value is not None else "ok"


def finished_table(records: list[dict[str, Any]]) -> Table:
    """A compact table of finished candidates (the full one is reports.tables')."""
    table = Table(title="finished", title_justify="left", expand=False, pad_edge=False)
    for header, justify in (("candidate", "left"), ("result", "left"), ("peak MB", "right"),
                            ("time s", "right"), ("$ / 1k req", "right")):
        table.add_column(header, justify=justify)
    for record in sort_records(records):
        style = "" if record.get("status") in ("ok", "skipped") else "red"
        table.add_row(
            Text(str(record.get("strategy"))), Text(outcome_text(record), style=style),
            f"{record.get('peak_memory_mb', {}).get('cpu_rss', 0):.0f}",
            f"{record.get('time_s', {}).get('total', 0):.1f}",
            f"{record.get('cost_usd', {}).get('per_1k_requests', 0):.4f}",
        )
    return table


class PlainDisplay:
    """Plain lines, for pipes, CI logs and files."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.last_progress: dict[str, float] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> "PlainDisplay":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def __call__(self, event: Any) -> None:
        with self.lock:
            line = self._line(event)
            if line:
                self.console.print(Text(line))

    def _line(self, event: Any) -> str | None:
        if isinstance(event, CandidateStarted):
            where = f" ({event.index}/{event.total})" if event.total else ""
            return f"[{event.strategy}] started{where}, seed {event.seed}"
        if isinstance(event, CandidateProgress):
            if not event.total:  # a phase announcement
                return f"[{event.strategy}] {event.phase}"
            now = time.monotonic()
            final = event.step >= event.total
            if not final and now - self.last_progress.get(event.strategy, 0) < \
                    PLAIN_PROGRESS_INTERVAL_S:
                return None
            self.last_progress[event.strategy] = now
            loss = f" loss {event.loss:.4f}" if event.loss is not None else ""
            return f"[{event.strategy}] {event.phase} {event.step}/{event.total}{loss}"
        if isinstance(event, CandidateFinished):
            seconds = event.record.get("time_s", {}).get("total", 0)
            return f"[{event.strategy}] {outcome_text(event.record)} ({seconds:.1f} s)"
        if isinstance(event, StageFinished):
            seconds = event.record.get("time_s", {}).get("total", 0)
            status = event.record.get("status")
            shown = "built, shared by the candidates" if status == "ok" else \
                f"{status}: {event.record.get('error')}"
            return f"[{event.stage}] {shown} ({seconds:.1f} s)"
        if isinstance(event, RunFinished):
            return None
        return None


class CandidateElapsedColumn(ProgressColumn):
    """Time since the candidate started (the bar itself restarts with every phase)."""

    def render(self, task) -> Text:
        seconds = int(time.monotonic() - task.fields.get("started", time.monotonic()))
        return Text(f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
                    style="progress.elapsed")


class LiveDisplay:
    """A rich live view: bars for running candidates, a table of finished ones."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("[bold]{task.fields[strategy]}"), TextColumn("{task.fields[phase]}"),
            BarColumn(), MofNCompleteColumn(), CandidateElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), TextColumn("{task.fields[loss]}"),
            console=self.console, auto_refresh=False,
        )
        self.tasks: dict[str, Any] = {}
        self.records: list[dict[str, Any]] = []
        self.live = Live(self._renderable(), console=self.console, refresh_per_second=4,
                         transient=False)
        self.lock = threading.Lock()

    def _renderable(self):
        parts: list[Any] = [self.progress]
        if self.records:
            parts.append(finished_table(self.records))
        return Group(*parts)

    def __enter__(self) -> "LiveDisplay":
        self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.live.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        with self.lock:
            self._handle(event)
            self.live.update(self._renderable(), refresh=True)

    def _handle(self, event: Any) -> None:
        if isinstance(event, CandidateStarted):
            if event.strategy not in self.tasks:
                self.tasks[event.strategy] = self.progress.add_task(
                    "", total=None, strategy=event.strategy, phase="starting", loss="",
                    started=time.monotonic())
            return
        task = self.tasks.get(getattr(event, "strategy", None))
        if isinstance(event, CandidateProgress) and task is not None:
            loss = f"loss {event.loss:.4f}" if event.loss is not None else ""
            if event.total:
                self.progress.update(task, total=event.total, completed=event.step,
                                     phase=event.phase, loss=loss)
            else:  # a new phase: the bar restarts for it
                # (reset replaces every field, so they all go in again)
                started = self._started(task)
                self.progress.reset(task, total=None, strategy=event.strategy,
                                    phase=event.phase, loss="", started=started)
        elif isinstance(event, CandidateFinished):
            if task is not None:
                self.progress.remove_task(task)
                del self.tasks[event.strategy]
            self.records.append(event.record)
        elif isinstance(event, StageFinished):  # not a candidate: no row in the results table
            task = self.tasks.pop(event.stage, None)
            if task is not None:
                self.progress.remove_task(task)

    def _started(self, task_id) -> float:
        for task in self.progress.tasks:
            if task.id == task_id:
                return task.fields.get("started", time.monotonic())
        return time.monotonic()


def make_display(console: Console | None = None, live: bool | None = None):
    """A LiveDisplay on an interactive terminal, else a PlainDisplay."""
    console = console or Console()
    interactive = console.is_terminal and sys.stdout.isatty() if live is None else live
    return LiveDisplay(console) if interactive else PlainDisplay(console)
