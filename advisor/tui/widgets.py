"""Small widgets of the TUI: a question field built from advisor.questions, a path input that
completes with tab, the column pickers of the data screen, and a progress row per running
candidate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Label, ProgressBar, Select, Static, Switch

from advisor.questions import AnswersError, Question, coerce
from bench.data import TASK_ROLES


class PathSuggester(Suggester):
    """Completes file and folder names as the user types (tab or → accepts)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        folder, _, stem = value.rpartition(os.sep)
        base = Path(folder or ".").expanduser()
        try:
            names = sorted(p.name + (os.sep if p.is_dir() else "") for p in base.iterdir()
                           if p.name.startswith(stem) and not p.name.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        prefix = os.path.commonprefix(names) if len(names) > 1 else names[0]
        if len(prefix) <= len(stem):
            return None
        return (folder + os.sep if folder else "") + prefix


class PathInput(Input):
    """A text input for paths: tab (like →) takes the completion shown; with none shown, tab
    moves on to the next field as everywhere else."""

    BINDINGS = [Binding("tab", "complete", "Complete path", show=False)]

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(value, suggester=PathSuggester(), **kwargs)

    def action_complete(self) -> None:
        before = self.value
        if self.cursor_at_end:
            self.action_cursor_right()  # takes the suggestion when one is shown
        if self.value == before:
            self.screen.focus_next()


class YesNoSwitch(Horizontal):
    """A switch with its state in words beside it ("yes"/"no"), not only in colour."""

    DEFAULT_CLASSES = "yes-no"

    def __init__(self, value: bool, *, id: str) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=f"{id}-box")
        self.switch = Switch(value, id=id)

    def compose(self) -> ComposeResult:
        yield self.switch
        yield Label(self.word(self.switch.value), classes="switch-state")

    @staticmethod
    def word(value: bool) -> str:
        return "yes" if value else "no"

    @on(Switch.Changed)
    def show_state(self, event: Switch.Changed) -> None:
        self.query_one(".switch-state", Label).update(self.word(event.value))


class QuestionField(Vertical):
    """One question: its text, an input of the right kind, help text and an inline error."""

    DEFAULT_CLASSES = "question-field"

    def __init__(self, question: Question, value: Any = None) -> None:
        super().__init__(id=f"field-{question.id}")
        self.question = question
        self.initial = value

    def compose(self) -> ComposeResult:
        q = self.question
        yield Label(q.text, classes="question-text")
        yield self._make_input(q, self.initial)
        yield Static(q.help, classes="help")
        yield Static("", classes="error", id=f"error-{q.id}")

    def _make_input(self, q: Question, value: Any):
        wid = f"q-{q.id}"
        if q.type == "choice":
            start = value if value in q.choices else Select.NULL
            return Select([(c.replace("_", " "), c) for c in q.choices], prompt=f"({q.default or 'choose'})"
                          if q.default else "choose", value=start, id=wid, compact=True)
        if q.type == "bool":
            return YesNoSwitch(bool(value if value is not None else q.default), id=wid)
        text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
        if q.type == "path":
            return PathInput(text, placeholder="path/to/data", id=wid, compact=True)
        placeholder = {"int": "a whole number", "float": "a number",
                       "text": str(q.default or "")}.get(q.type, "")
        return Input(text, placeholder=placeholder, id=wid, compact=True)

    @property
    def widget(self):
        return self.query_one(f"#q-{self.question.id}")

    def raw_value(self) -> Any:
        widget = self.widget
        if isinstance(widget, Select):
            return None if widget.value is Select.NULL else widget.value
        return widget.value

    def set_value(self, value: Any) -> None:
        widget = self.widget
        if isinstance(widget, Select):
            widget.value = value if value in self.question.choices else Select.NULL
        elif isinstance(widget, Switch):
            widget.value = bool(value)
        else:
            widget.value = "" if value is None else (
                f"{value:g}" if isinstance(value, float) else str(value))

    def check(self) -> tuple[bool, Any]:
        """(valid, coerced value); shows or clears the inline error."""
        error = self.query_one(f"#error-{self.question.id}", Static)
        try:
            value = coerce(self.question, self.raw_value(), self.question.text)
            if self.question.type == "path" and value and not Path(value).expanduser().exists():
                raise AnswersError(f"{value}: no such file or folder")
        except AnswersError as exc:
            error.update(str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc))
            self.add_class("invalid")
            return False, None
        error.update("")
        self.remove_class("invalid")
        return True, value


class ColumnMapping(Vertical):
    """Pickers for the columns of a task's roles (text, label, ...), offered from the columns
    the data check saw when it could not tell which is which."""

    DEFAULT_CLASSES = "column-mapping"

    def __init__(self) -> None:
        super().__init__(id="columns")
        self.columns: list[str] = []
        self.for_task: str | None = None  # whose roles the pickers show

    async def offer(self, task: str | None, columns: list[str],
                    chosen: dict[str, str] | None = None) -> None:
        """Show one picker per role of `task` (required ones first), preselecting `chosen`."""
        self.for_task, self.columns, chosen = task, list(columns), dict(chosen or {})
        await self.remove_children()
        if not task:
            await self.mount(Static("Choose the task kind (below), then its columns here.",
                                    classes="help"))
            return
        required, optional = TASK_ROLES[task]
        widgets = [Static(f"Columns of a {task} task (seen: {', '.join(columns)})",
                          classes="question-text")]
        options = [(name, name) for name in columns]
        for role in (*required, *optional):
            start = chosen.get(role, Select.NULL)
            widgets.append(Horizontal(
                Label(role + ("" if role in required else " (optional)"), classes="role-name"),
                Select(options, prompt="choose", value=start if start in columns else Select.NULL,
                       id=f"column-{role}", compact=True),
                classes="role-row"))
        await self.mount_all(widgets)

    def mapping(self) -> dict[str, str]:
        """role -> column for every picker that has a column."""
        return {select.id.removeprefix("column-"): select.value
                for select in self.query(Select) if select.value is not Select.NULL}

    def missing(self) -> list[str]:
        """The required roles without a column."""
        if not self.for_task:
            return ["task"]
        required, _ = TASK_ROLES[self.for_task]
        return [role for role in required if role not in self.mapping()]


class CandidateRow(Horizontal):
    """A running candidate: name, progress bar (with ETA) and its phase."""

    DEFAULT_CLASSES = "candidate-row"

    def __init__(self, strategy: str, animated: bool = True) -> None:
        super().__init__(id=f"row-{strategy.replace(':', '_')}")
        self.strategy = strategy
        self.animated = animated  # False for screenshots: no ETA, no pulsing bar

    def compose(self) -> ComposeResult:
        yield Label(self.strategy, classes="candidate-name")
        # unknown length (pulsing) until the candidate reports steps
        yield ProgressBar(total=None if self.animated else 100, show_eta=self.animated,
                          classes="candidate-bar")
        yield Label("waiting", classes="candidate-phase")

    def update_progress(self, phase: str, step: int = 0, total: int = 0,
                        message: str = "", loss: float | None = None) -> None:
        bar = self.query_one(ProgressBar)
        if total:
            bar.update(total=total, progress=step)
        text = phase + (f" {step}/{total}" if total else "")
        if loss is not None:
            text += f" loss {loss:.3f}"
        if message:
            text += f" · {message}"
        self.query_one(".candidate-phase", Label).update(text)

    def finish(self, status: str) -> None:
        bar = self.query_one(ProgressBar)
        bar.update(total=1, progress=1)
        self.query_one(".candidate-phase", Label).update(status)
        self.add_class("done" if status.startswith("ok") else "problem")
