"""The results screen: measured results beside the advisor's prior ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from advisor.tui.screens.base import Nav, StepScreen


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
