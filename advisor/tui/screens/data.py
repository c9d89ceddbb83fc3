"""The data screen: the file, checked in a worker; column pickers when the check cannot tell
which column is which."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Button, Input, Select, Static

from advisor.questions import get
from advisor.tui import views
from advisor.tui.screens.base import DataResult, Nav
from advisor.tui.screens.forms import QuestionScreen
from advisor.tui.widgets import ColumnMapping


@dataclass
class DataChecked(Message):
    """The data screen's worker finished checking a file: its profile, or the error and, when
    the file could be read, the columns it saw."""

    path: str
    profile: dict[str, Any] | None
    error: str | None = None
    columns_seen: list[str] = field(default_factory=list)
    check: int = 0  # which check of the screen's this answers (DataScreen.checks)


class DataScreen(QuestionScreen):
    """The data file, checked in a worker as soon as the path is entered. When the check cannot
    tell which column is which, the user maps them here; data that cannot be read stops the
    user from going on."""

    def __init__(self, answers: Mapping[str, Any], *, profile: dict[str, Any] | None = None,
                 columns: dict[str, str] | None = None, snapshot: bool = False) -> None:
        super().__init__("data", answers, snapshot=snapshot)
        self.profile = profile  # of get(answers, "data.path"), when the app has one
        self.checked_path: str | None = get(answers, "data.path") if profile else None
        self.columns = dict(columns or {})  # role -> column, picked by the user
        self.checking: str | None = None  # the path being checked now
        # Checks started so far: only the latest one's answer counts. A worker cannot be
        # stopped mid-check, so an older check of the same path (say, before the columns
        # were picked) may answer after a newer one started.
        self.checks = 0

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
            if path != self.checked_path:
                self.columns = {}  # a mapping is for the file it was picked for
            self.check_data(path)

    def check_data(self, path: str) -> None:
        self.checking = path
        self.checks += 1
        self.query_one("#profile", Static).update(f"Checking {Path(path).name} ...")
        self.check_worker(path, self.task_value(), dict(self.columns), self.checks)

    @work(thread=True, exclusive=True, group="profile")
    def check_worker(self, path: str, task: str | None, columns: dict[str, str],
                     check: int) -> None:
        from bench.data import column_names, profile_data
        from bench.errors import TunewiseError

        try:
            profile = profile_data(path, task=task, columns=columns or None)
            self.post_message(DataChecked(path, profile, check=check))
            return
        except (TunewiseError, OSError, ValueError) as exc:
            error = str(exc)
        try:
            seen = column_names(path)
        except (TunewiseError, OSError, ValueError):
            seen = []
        self.post_message(DataChecked(path, None, error, seen, check=check))

    @on(DataChecked)
    async def show_check(self, message: DataChecked) -> None:
        if message.path != self.checking or message.check != self.checks:
            return  # an older check: of a path the user has since changed, or before a change
        self.checking = None
        shown = self.query_one("#profile", Static)
        mapping = self.query_one(ColumnMapping)
        apply = self.query_one("#apply-columns")
        if message.profile is not None:
            self.profile, self.checked_path = message.profile, message.path
            shown.update(views.profile_summary(message.profile))
            mapping.display = apply.display = False
            task = message.profile.get("task")
            if task:
                self.field("task").set_value(task)
            return
        self.profile, self.checked_path = None, message.path
        error = views.without_cli_hints(message.error or "")
        # the file could be read, but not which column is which: the user picks them
        if message.columns_seen and "column" in (message.error or ""):
            shown.update(f"[red]{error}[/]\nChoose the columns below (and the task kind under "
                         "them), then press [b]Use these columns[/b].")
            await mapping.offer(self.task_value(), message.columns_seen, self.columns)
            mapping.display = apply.display = True
        else:
            shown.update(f"[red]{error}[/]")
            mapping.display = apply.display = False

    @on(Select.Changed, "#q-task")
    async def task_changed(self, event: Select.Changed) -> None:
        """A task chosen by hand: its column pickers, or the data checked again as that task."""
        if event.value is Select.NULL:
            return
        mapping = self.query_one(ColumnMapping)
        if mapping.display:
            if event.value != mapping.for_task:
                await mapping.offer(event.value, mapping.columns, mapping.mapping())
        elif self.profile is not None and event.value != self.profile.get("task"):
            self.check_data(self.checked_path)

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
