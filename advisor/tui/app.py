"""`tunewise tui` (and plain `tunewise`): the interactive advisor.

    tunewise                                      # questions -> ranking -> run -> results
    tunewise tui --answers advisor/samples/classification.yaml
    tunewise tui --answers my.yaml --out runs --model tiny-llama

The app drives the flow: it pushes a screen, waits for what the user decided (each screen is a
`Screen[T]` that dismisses with its result) and chooses the next screen from it. Welcome ->
data -> labels -> resources -> goals -> recommendation -> run -> results, with back at every
step; ctrl+s saves the answers as YAML (to --save-to, default tunewise-answers.yaml), and the
recommendation screen's "Save config" (w) saves the run it would start with the ticked candidates
as a run config for `tunewise bench --config` (to --write-config, default tunewise-run.yaml). This
module imports neither torch nor transformers: the data check, the ranking and the harness run
in thread workers.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any, Awaitable, Callable

from textual import work
from textual.app import App
from textual.binding import Binding

from advisor.answers import prefill
from advisor.questions import get, put
from advisor.tui.screens import (Choice, DataResult, DataScreen, FormResult, Nav, QuestionScreen,
                                 RecommendationScreen, ResourcesScreen, ResultsScreen, RunOutcome,
                                 RunScreen, WelcomeScreen)
from advisor.tui.views import measured_rows

# where the flow can start (`start_at`): the run and results steps need a ranking first
STARTS = ("welcome", "data", "labels", "resources", "goals", "recommendation")
# a step of the flow: shows its screen, takes the result in, returns the next step (None ends)
Step = Callable[[], Awaitable["Step | None"]]


class TunewiseApp(App):
    """The advisor as a Textual app. Everything slow is injected or runs in a worker, so tests
    can pass a fixed `hardware`, `measure=False` and a fake `runner` for deterministic screens;
    `start_at` opens the flow at a later step (the answers given must cover the ones before).
    With data, the ranking first measures the cheap candidates on the validation split
    (advisor.probes) once per data/model/task; `probe=False` ranks by the rules alone, and a
    `prober(answers) -> Probes` replaces the measurement (tests)."""

    CSS_PATH = "app.tcss"
    TITLE = "tunewise"
    SUB_TITLE = "decide, then measure"
    BINDINGS = [
        Binding("ctrl+s", "save_answers", "Save answers", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, answers: dict[str, Any] | None = None, *,
                 save_to: str = "tunewise-answers.yaml", hardware: dict[str, Any] | None = None,
                 measure: bool = True, runner: Callable | None = None, out: str = "runs",
                 model: str | None = None, encoder: str | None = None, preset: str = "quick",
                 snapshot: bool = False, start_at: str = "welcome", race: bool = True,
                 probe: bool = True, prober: Callable | None = None,
                 config_to: str = "tunewise-run.yaml") -> None:
        super().__init__()
        if start_at not in STARTS:
            raise ValueError(f"start_at must be one of {', '.join(STARTS)}, not {start_at!r}")
        self.answers: dict[str, Any] = answers or {}
        self.save_to = save_to
        self.config_to = config_to  # where "Save config" writes the run config
        self.hardware = hardware
        self.measure = measure
        self.runner = runner
        self.out = out
        self.model_override = model
        self.encoder = encoder
        self.preset = preset
        self.snapshot = snapshot  # no timings or ETAs on screen: deterministic screenshots
        self.start_at = start_at
        self.race = race  # the ticked candidates race (bench.race); False: each runs in full
        self.profile: dict[str, Any] | None = None  # of `profiled_path`
        self.profiled_path: str | None = None
        self.columns: dict[str, str] = {}  # role -> column, when the user mapped them
        self.ranking = None
        self.recommendation = None
        self.selected: list[str] | None = None  # the user's ticks; None: the advisor's picks
        self.run_result = None
        self.report_path: str | None = None
        self._probe = None
        self.probe = probe
        self.prober = prober
        self.probed: tuple[tuple, Any] | None = None  # (data, model, task) -> advisor.probes.Probes

    # ------------------------------------------------------------------ the flow

    def on_mount(self) -> None:
        if self.hardware is None:
            self._probe = self.probe_hardware()
        self.flow(self.steps()[self.start_at])

    def steps(self) -> dict[str, Step]:
        """The steps the flow can start from, by name."""
        return {"welcome": self.welcome, "data": self.data, "labels": self.labels,
                "resources": self.resources, "goals": self.goals,
                "recommendation": self.recommend}

    @work(exclusive=True, group="flow")
    async def flow(self, step: Step | None) -> None:
        """Each step shows its screen, takes its result in and returns the next step."""
        while step is not None:
            step = await step()

    async def welcome(self) -> Step:
        await self.push_screen_wait(WelcomeScreen())  # its only way out is on
        return self.data

    async def data(self) -> Step:
        path = get(self.answers, "data.path")
        known = self.profile if path and path == self.profiled_path else None
        result: DataResult = await self.push_screen_wait(
            DataScreen(self.answers, profile=known, columns=self.columns, snapshot=self.snapshot))
        self.take_answers(result)
        if result.profile is not None:
            self.profile, self.profiled_path = result.profile, get(self.answers, "data.path")
            self.columns = dict(result.columns)
            # what the data tells fills in unanswered questions; the user's answers win
            fill_unanswered(self.answers, prefill(result.profile, None))
        return self.welcome if result.nav is Nav.BACK else self.labels

    async def labels(self) -> Step:
        result = await self.ask("labels")
        return self.data if result.nav is Nav.BACK else self.resources

    async def resources(self) -> Step:
        if self._probe is not None:
            await self._probe.wait()
        # defaults from the hardware ("CPU only?" on without CUDA, the GPU's memory with it),
        # shown on the screen; they become answers when the user goes on
        shown = dict_copy(self.answers)
        fill_unanswered(shown, prefill(None, self.hardware))
        result: FormResult = await self.push_screen_wait(
            ResourcesScreen(shown, hardware=self.hardware, snapshot=self.snapshot))
        self.take_answers(result)
        return self.labels if result.nav is Nav.BACK else self.goals

    async def goals(self) -> Step:
        result = await self.ask("goals")
        return self.resources if result.nav is Nav.BACK else self.recommend

    async def ask(self, section: str) -> FormResult:
        result: FormResult = await self.push_screen_wait(
            QuestionScreen(section, self.answers, snapshot=self.snapshot))
        self.take_answers(result)
        return result

    def take_answers(self, result: FormResult) -> None:
        for key, value in result.answers.items():
            put(self.answers, key, value)

    async def recommend(self) -> Step:
        choice: Choice = await self.push_screen_wait(RecommendationScreen(
            self.ranker(), ticked=self.selected, is_runnable=self.is_runnable,
            has_data=bool(get(self.answers, "data.path")), probing=self.probing_now(),
            save_config=self.save_run_config))
        if choice.recommendation is not None:
            self.recommendation, self.ranking = choice.recommendation, choice.recommendation.ranking
            if choice.recommendation.probes is not None:
                self.probed = (self.probe_key(), choice.recommendation.probes)
            if choice.recommendation.profile is not None:
                self.profile = choice.recommendation.profile
        if choice.recommendation is not None or choice.ticked:
            self.selected = list(choice.ticked)
        return self.run_candidates if choice.nav is Nav.NEXT else self.goals

    def ranker(self) -> Callable[[], Any]:
        """The advisor's ranking for the answers as they are now (called in a worker)."""
        from functools import partial

        answers = dict_copy(self.answers)
        if self.model_override:
            put(answers, "model.base", self.model_override)
        probing = self.probe and bool(get(answers, "data.path"))
        known = self.probed[1] if self.probed and self.probed[0] == self.probe_key() else None
        return partial(_recommend, answers, profile=self.profile, hardware=self.hardware or {},
                       measure=self.measure, probe=probing, probes=known if probing else None,
                       prober=self.prober if probing and known is None else None)

    def probing_now(self) -> bool:
        """Will the next ranking measure the probes (data, probing on, none kept for it)?"""
        kept = self.probed is not None and self.probed[0] == self.probe_key()
        return self.probe and bool(get(self.answers, "data.path")) and not kept

    def probe_key(self) -> tuple:
        """What the probes depend on: measured once for these, reused on every visit."""
        return (get(self.answers, "data.path"), self.model_override or get(self.answers,
                                                                           "model.base"),
                get(self.answers, "task"))

    def is_runnable(self, strategy: str) -> bool:
        from strategies import registry

        return registry.is_known(strategy)

    async def run_candidates(self) -> Step:
        outcome: RunOutcome = await self.push_screen_wait(
            RunScreen(self.run_order(), self.start_run, animated=not self.snapshot))
        if outcome.result is None:
            return self.recommend
        self.run_result = outcome.result
        return self.results

    async def results(self) -> Step:
        rows, metric = measured_rows(self.run_result, self.ranking)
        nav: Nav = await self.push_screen_wait(ResultsScreen(
            rows, metric, report_path=self.report_path,
            run_dir=getattr(self.run_result, "run_dir", None),
            interrupted=bool(getattr(self.run_result, "interrupted", False))))
        if nav is Nav.RESTART:
            self.ranking, self.recommendation, self.selected = None, None, None
            self.run_result, self.report_path = None, None
            return self.welcome
        return self.recommend

    # ------------------------------------------------------------------ answers and hardware

    def action_save_answers(self) -> None:
        from advisor.answers import save_answers
        from bench.errors import TunewiseError

        answers = dict_copy(self.answers)
        if isinstance(self.screen, QuestionScreen):  # what is on screen counts, valid or not yet
            for key, value in self.screen.pending_answers().items():
                put(answers, key, value)
        try:
            path = save_answers(answers, self.save_to)
        except TunewiseError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Answers saved to {path}")

    @work(thread=True, group="probe")
    def probe_hardware(self) -> None:
        from bench.hardware import probe

        hardware = probe()
        self.call_from_thread(setattr, self, "hardware", hardware)

    # ------------------------------------------------------------------ run

    def run_order(self) -> list[str]:
        """The ticked candidates in ranking order."""
        ticked = list(self.selected or [])
        if self.ranking is None:
            return ticked
        order = [c.strategy for c in self.ranking.ranked]
        return sorted(ticked, key=lambda s: order.index(s) if s in order else len(order))

    def start_run(self, on_event: Callable[[Any], None], cancel: threading.Event):
        """Called in the run screen's worker thread: the run service (bench.service) with the
        harness, or with the injected runner; a refused plan raises for the run screen to show."""
        from bench import service
        from bench.errors import TunewiseError
        from bench.race import RaceSettings
        from bench.runner import run_benchmark
        from reports.html import write_report

        plan = self.run_plan(self.run_order())
        if self.runner is None:
            ensure_resource_tracker()
        outcome = service.run_plan(
            plan, advice=self.ranking.as_dict() if self.ranking else None, on_event=on_event,
            cancel=cancel, benchmark=self.runner or run_benchmark,
            write_report=write_report, race=RaceSettings() if self.race else None)
        if outcome.error is not None:
            raise TunewiseError(outcome.error)
        if outcome.run_dir is not None and self.runner is None:
            from advisor.bench_cli import new_parser
            from advisor.config import store_in_run_folder

            store_in_run_folder(outcome.run_dir, new_parser())  # RUN_DIR/config.yaml
        self.report_path = str(outcome.report_path) if outcome.report_path else None
        return outcome

    def run_plan(self, strategies: list[str]):
        """The BenchPlan of a run of these candidates on the answers' data (what "Run ticked"
        starts and "Save config" writes)."""
        from bench.runner import BenchPlan

        path = get(self.answers, "data.path")
        model = self.model_override or get(self.answers, "model.base") or "smollm2-135m"
        estimates = {c.strategy: c.estimate for c in (self.ranking.ranked if self.ranking else [])
                     if c.estimate}
        plan = BenchPlan(data=path, task=get(self.answers, "task"),
                         corpus=get(self.answers, "data.corpus"), strategies=list(strategies),
                         columns=dict(self.columns), model=model, preset=self.preset,
                         out=self.out, estimates={s: estimates[s] for s in strategies if s in estimates},
                         command="tunewise tui")
        if self.encoder:
            plan.encoder = self.encoder
        return plan

    def save_run_config(self, ticked: list[str]) -> None:
        """The recommendation screen's "Save config": the run of the ticked candidates (in
        ranking order) as a run config file (`tunewise bench --config FILE` runs it)."""
        from advisor.bench_cli import new_parser
        from advisor.config import write_plan_config
        from bench.errors import TunewiseError

        if not ticked:
            self.notify("Tick at least one candidate to save a run config", severity="warning")
            return
        if not get(self.answers, "data.path"):
            self.notify("A run config needs data: set the data file first", severity="error")
            return
        try:
            path = write_plan_config(self.run_plan(ticked), self.config_to, new_parser())
        except TunewiseError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Run config saved to {path}: tunewise bench --config {path}")


def ensure_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with the real stderr. Textual replaces
    sys.stderr with a capture object whose fileno() is not a real descriptor, and the tracker,
    started lazily by the harness's first spawned child, would fail with "bad value(s) in
    fds_to_keep"."""
    import sys
    from multiprocessing import resource_tracker

    saved = sys.stderr
    try:
        sys.stderr = sys.__stderr__
        resource_tracker.ensure_running()
    finally:
        sys.stderr = saved


def _recommend(answers: dict[str, Any], *, prober: Callable | None = None, **kwargs: Any):
    from advisor.recommend import recommend

    if prober is not None:
        kwargs["probes"] = prober(answers)
    return recommend(answers, **kwargs)


def dict_copy(answers: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(answers)


def fill_unanswered(answers: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> None:
    """Put each of the nested `defaults` into `answers` where that key has no answer yet."""
    for key, value in defaults.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            fill_unanswered(answers, value, dotted + ".")
        elif get(answers, dotted) is None:
            put(answers, dotted, value)


# ---------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers", metavar="FILE", help="start from an answers YAML")
    parser.add_argument("--save-to", metavar="FILE", help="where ctrl+s saves the answers "
                        "(default: the --answers file, else tunewise-answers.yaml)")
    parser.add_argument("--write-config", metavar="FILE", default="tunewise-run.yaml",
                        help="where the recommendation screen's Save config writes the run "
                        "config (default tunewise-run.yaml)")
    parser.add_argument("--out", default="runs", help="run folder root (default runs)")
    parser.add_argument("--model", help="base model for the run (overrides model.base)")
    parser.add_argument("--encoder", help="sentence encoder for RAG/kNN/transfer")
    parser.add_argument("--preset", default="quick", choices=("quick", "full"))
    from bench.cli_options import add_probe_and_race_flags

    add_probe_and_race_flags(parser)


def run(args: argparse.Namespace) -> int:
    from advisor.answers import load_answers
    from bench.models import check_model_option

    answers = load_answers(args.answers) if args.answers else {}
    for option, name in (("--model", args.model), ("--encoder", args.encoder)):
        check_model_option(option, [name] if name else [])  # before the screens open
    app = TunewiseApp(answers, save_to=args.save_to or args.answers or "tunewise-answers.yaml",
                      out=args.out, model=args.model, encoder=args.encoder, preset=args.preset,
                      race=not args.no_race, probe=not args.no_probe,
                      config_to=args.write_config)
    app.run()
    return 0
