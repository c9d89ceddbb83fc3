"""Small widgets of the TUI: a question field built from advisor.questions, path completion,
and a progress row per running candidate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import Suggester
from textual.widgets import Input, Label, ProgressBar, Select, Static, Switch

from advisor.answers import AnswersError
from advisor.questions import Question, coerce


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
            return Switch(bool(value if value is not None else q.default), id=wid)
        text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
        placeholder = {"int": "a whole number", "float": "a number", "path": "path/to/data",
                       "text": str(q.default or "")}.get(q.type, "")
        return Input(text, placeholder=placeholder, id=wid, compact=True,
                     suggester=PathSuggester() if q.type == "path" else None)

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
