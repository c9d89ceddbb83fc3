"""The welcome screen and the question forms (built from advisor.questions)."""

from __future__ import annotations

from typing import Any, Mapping

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Input, Static

from advisor.questions import get, questions_for
from advisor.tui import views
from advisor.tui.screens.base import FormResult, Nav, StepScreen
from advisor.tui.widgets import QuestionField

TITLES = {
    "data": "1/4 · Your data",
    "labels": "2/4 · Labels and examples",
    "resources": "3/4 · Compute and budget",
    "goals": "4/4 · Goals",
}


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


class ResourcesScreen(QuestionScreen):
    """Detected hardware shown; every value editable (the app fills in its defaults)."""

    def __init__(self, answers: Mapping[str, Any], *, hardware: dict[str, Any] | None,
                 snapshot: bool = False) -> None:
        super().__init__("resources", answers, snapshot=snapshot)
        self.hardware = hardware

    def extra_top(self) -> ComposeResult:
        yield Static(views.hardware_summary(self.hardware), id="hardware", classes="profile")
