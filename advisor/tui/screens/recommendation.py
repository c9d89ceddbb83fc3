"""The recommendation screen: the advisor's ranking with its reasons; the user ticks what to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, LoadingIndicator, Static

from advisor.tui.screens.base import Choice, Nav, StepScreen


@dataclass
class Ranked(Message):
    """The ranking worker finished: a Recommendation, or the error that stopped it."""

    recommendation: Any
    error: str | None = None


class RecommendationScreen(StepScreen[Choice]):
    """The ranking: space (or enter) ticks a candidate, ctrl+r runs the ticked ones, w saves
    that run as a run config (`save_config(ticked)`). Ticks from an earlier visit are kept; on
    a first visit the advisor's picks are ticked."""

    BINDINGS = [
        Binding("space", "toggle", "Tick"),
        Binding("ctrl+r", "run", "Run ticked", priority=True),
        Binding("w", "save_config", "Save config"),
    ]

    def __init__(self, rank: Callable[[], Any], *, ticked: list[str] | None,
                 is_runnable: Callable[[str], bool], has_data: bool,
                 probing: bool = False,
                 save_config: Callable[[list[str]], None] | None = None) -> None:
        super().__init__()
        self.save_config = save_config
        self.rank = rank  # called in a worker thread: the advisor's Recommendation
        self.kept_ticks = ticked  # the user's ticks from an earlier visit; None: the advisor's
        self.is_runnable = is_runnable
        self.has_data = has_data
        self.probing = probing  # the ranking measures the probes first: say why it takes a while
        self.recommendation = None
        self.ticked: list[str] = []

    @property
    def ranking(self):
        return self.recommendation.ranking if self.recommendation else None

    def compose(self) -> ComposeResult:
        yield Static("Recommendation", classes="screen-title")
        yield Static("Measuring the cheap candidates on the validation split first (a minute "
                     "or so; a few more when they leave room and one training candidate is "
                     "measured on a short budget too)…" if self.probing else "", id="probes")
        yield LoadingIndicator(id="ranking-loading")
        table = DataTable(id="ranking", cursor_type="row", zebra_stripes=True)
        table.display = False
        yield table
        yield VerticalScroll(Static("", id="reasons"), id="reasons-box")
        with Horizontal(classes="nav"):
            yield Button("Back", id="back", compact=True)
            if self.save_config is not None:
                yield Button("Save config", id="save-config", compact=True)
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
            self.query_one("#probes", Static).display = False
            self.query_one("#reasons", Static).update(f"[red]{message.error}[/]")
            return
        from advisor.estimate import fmt_bytes_gb, fmt_seconds

        self.recommendation = message.recommendation
        self.show_probes()
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

    def show_probes(self) -> None:
        """What the probes measured, above the ranking (nothing without them)."""
        from rich.markup import escape

        from advisor.probes import summary_line

        line = summary_line(self.ranking.probes)
        probes = self.query_one("#probes", Static)
        probes.update(f"[b]probes[/b] {escape(line)}" if line else "")
        probes.display = bool(line)

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

    @on(Button.Pressed, "#save-config")
    def action_save_config(self) -> None:
        if self.recommendation is not None and self.save_config is not None:
            # in ranking order, as "Run ticked" runs them
            self.save_config([c.strategy for c in self.ranking.ranked if c.strategy in self.ticked])

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        # the ticks go back with the user, so they are still there on the way forward
        ticked = list(self.ticked) if self.recommendation else self.kept_ticks
        self.dismiss(Choice(Nav.BACK, self.recommendation, ticked or []))
