"""`tunewise tui` (and plain `tunewise`): the interactive advisor.

    tunewise                                      # questions -> ranking -> run -> results
    tunewise tui --answers advisor/samples/classification.yaml
    tunewise tui --answers my.yaml --out runs --model tiny-llama

Welcome -> data -> labels -> resources -> goals -> recommendation -> run -> results; ctrl+s saves
the answers as YAML (to --save-to, default tunewise-answers.yaml). This module imports neither
torch nor transformers: the data profile, the ranking and the harness load in thread workers.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any, Callable

from textual import work
from textual.app import App
from textual.binding import Binding

from advisor.answers import get

ORDER = ("welcome", "data", "labels", "resources", "goals", "recommendation", "run", "results")


class TunewiseApp(App):
    """The advisor as a Textual app. Everything slow is injected or runs in a worker, so tests
    can pass a fixed `hardware`, `measure=False` and a fake `runner` for deterministic screens."""

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
                 snapshot: bool = False) -> None:
        super().__init__()
        self.answers: dict[str, Any] = answers or {}
        self.save_to = save_to
        self.hardware = hardware
        self.measure = measure
        self.runner = runner
        self.out = out
        self.model_override = model
        self.encoder = encoder
        self.preset = preset
        self.snapshot = snapshot  # no timings or ETAs on screen: deterministic screenshots
        self.profile: dict[str, Any] | None = None
        self.profile_error: str | None = None
        self.ranking = None
        self.recommendation = None
        self.selected: list[str] = []
        self.run_result = None
        self.report_path: str | None = None
        self._profiled_path: str | None = None

    # ------------------------------------------------------------------ navigation

    def on_mount(self) -> None:
        if self.hardware is None:
            self.probe_hardware()
        self.push_screen(self.make_screen("welcome"))

    def make_screen(self, step: str):
        from advisor.tui import screens

        if step == "welcome":
            return screens.WelcomeScreen()
        if step == "data":
            return screens.DataScreen()
        if step == "resources":
            return screens.ResourcesScreen()
        if step in ("labels", "goals"):
            return screens.QuestionScreen(step)
        if step == "recommendation":
            return screens.RecommendationScreen()
        if step == "run":
            return screens.RunScreen()
        return screens.ResultsScreen()

    def go(self, step: str) -> None:
        self.switch_screen(self.make_screen(step))

    def go_next(self, step: str) -> None:
        index = ORDER.index(step)
        if index + 1 < len(ORDER):
            self.go(ORDER[index + 1])

    def go_back(self, step: str) -> None:
        back = {"run": "recommendation", "results": "recommendation"}.get(step)
        index = ORDER.index(step)
        if back:
            self.go(back)
        elif index > 0:
            self.go(ORDER[index - 1])

    def restart(self) -> None:
        self.ranking, self.run_result, self.report_path = None, None, None
        self.go("welcome")

    # ------------------------------------------------------------------ answers

    def action_save_answers(self) -> None:
        from advisor.answers import save_answers
        from bench.errors import TunewiseError

        screen = self.screen
        if hasattr(screen, "collect"):
            screen.collect()
        try:
            path = save_answers(self.answers, self.save_to)
        except TunewiseError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"Answers saved to {path}")

    # ------------------------------------------------------------------ hardware and data

    @work(thread=True, group="probe")
    def probe_hardware(self) -> None:
        from bench.hardware import probe

        hardware = probe()
        self.call_from_thread(setattr, self, "hardware", hardware)

    def hardware_summary(self) -> str:
        hw = self.hardware
        if not hw:
            return "Detecting hardware ..."
        gpu = (f"{hw.get('gpu')} ({hw.get('gpu_memory_gb')} GB)" if hw.get("cuda")
               else "no CUDA GPU")
        return (f"Detected: {hw.get('cores')} CPU cores, {hw.get('memory_gb')} GB RAM, {gpu}. "
                "Edit below if you will run elsewhere.")

    def profile_data(self, path: str, on_done: Callable[[str | None], None]) -> None:
        if path == self._profiled_path and (self.profile or self.profile_error):
            on_done(self.profile_error)
            return
        self._profile_worker(path, on_done)

    @work(thread=True, exclusive=True, group="profile")
    def _profile_worker(self, path: str, on_done: Callable[[str | None], None]) -> None:
        from advisor.recommend import load_profile
        from bench.errors import TunewiseError

        try:
            profile, error = load_profile(path, task=get(self.answers, "task")), None
        except (TunewiseError, OSError, ValueError) as exc:
            profile, error = None, str(exc)

        def store() -> None:
            from advisor.answers import put
            from advisor.questions import prefill

            self.profile, self.profile_error, self._profiled_path = profile, error, path
            if profile:
                # what the data tells fills in unanswered questions; the user's answers win
                for key, value in _flatten(prefill(profile, None)).items():
                    if get(self.answers, key) is None:
                        put(self.answers, key, value)
            on_done(error)

        self.call_from_thread(store)

    def profile_summary(self) -> str:
        p = self.profile
        if not p:
            return f"[red]{self.profile_error}[/]" if self.profile_error else ""
        splits = p.get("splits") or {}
        lines = [f"[b]{p.get('task')}[/b] · {p.get('rows')} rows (train {splits.get('train')}, "
                 f"validation {splits.get('validation')}, test {splits.get('test')})"]
        labels = p.get("labels") or {}
        if labels:
            shown = ", ".join(f"{k} {v}" for k, v in list(labels.items())[:6])
            more = f" (+{len(labels) - 6} more)" if len(labels) > 6 else ""
            lines.append(f"{len(labels)} labels: {shown}{more}")
        lengths = p.get("token_length") or {}
        if lengths:
            lines.append(f"length ({p.get('token_counter', 'tokens')}): median {lengths.get('p50')}, "
                         f"p90 {lengths.get('p90')}, max {lengths.get('max')}")
        if p.get("has_corpus"):
            lines.append(f"corpus: {p.get('corpus_docs')} documents")
        warnings = p.get("warnings") or []
        lines.append("warnings: " + ("; ".join(map(str, warnings[:3])) if warnings else "none"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ ranking

    def compute_ranking(self, on_done: Callable[[str | None], None]) -> None:
        self._ranking_worker(on_done)

    @work(thread=True, exclusive=True, group="ranking")
    def _ranking_worker(self, on_done: Callable[[str | None], None]) -> None:
        from advisor.recommend import recommend
        from bench.errors import TunewiseError

        answers = dict(self.answers)
        if self.model_override:
            answers = {**answers, "model": {**answers.get("model", {}),
                                            "base": self.model_override}}
        try:
            result, error = recommend(answers, profile=self.profile, hardware=self.hardware or {},
                                      measure=self.measure), None
        except (TunewiseError, OSError, ValueError) as exc:
            result, error = None, str(exc)

        def store() -> None:
            if result is not None:
                self.recommendation, self.ranking = result, result.ranking
                if result.profile is not None:
                    self.profile = result.profile
                self.selected = [s for s in result.ranking.recommended() if self.is_runnable(s)]
            on_done(error)

        self.call_from_thread(store)

    def is_runnable(self, strategy: str) -> bool:
        from strategies import registry

        return registry.is_known(strategy)

    # ------------------------------------------------------------------ run

    def run_order(self) -> list[str]:
        """The ticked candidates in ranking order."""
        if self.ranking is None:
            return list(self.selected)
        order = [c.strategy for c in self.ranking.ranked]
        return sorted(self.selected, key=lambda s: order.index(s) if s in order else len(order))

    def start_run(self, on_event: Callable[[Any], None], cancel: threading.Event):
        """Called in the run screen's worker thread: the run service (bench.service) with the
        harness, or with the injected runner; a refused plan raises for the run screen to show."""
        from bench import service
        from bench.errors import TunewiseError
        from bench.runner import BenchPlan, run_benchmark
        from reports.html import write_report

        path = get(self.answers, "data.path")
        model = self.model_override or get(self.answers, "model.base") or "smollm2-135m"
        estimates = {c.strategy: c.estimate for c in (self.ranking.ranked if self.ranking else [])
                     if c.estimate}
        plan = BenchPlan(data=path, task=get(self.answers, "task"),
                         corpus=get(self.answers, "data.corpus"), strategies=self.run_order(),
                         model=model, preset=self.preset, out=self.out,
                         estimates={s: estimates[s] for s in self.run_order() if s in estimates},
                         command="tunewise tui")
        if self.encoder:
            plan.encoder = self.encoder
        if self.runner is None:
            ensure_resource_tracker()
        outcome = service.run_plan(
            plan, advice=self.ranking.as_dict() if self.ranking else None, on_event=on_event,
            cancel=cancel, benchmark=self.runner or run_benchmark,
            write_report=write_report)
        if outcome.error is not None:
            raise TunewiseError(outcome.error)
        self.report_path = str(outcome.report_path) if outcome.report_path else None
        return outcome

    def write_report(self, result) -> str | None:
        """The HTML report with the advisor's ranking in it; None when it cannot be written."""
        run_dir = getattr(result, "run_dir", None)
        if run_dir is None or not Path(run_dir).is_dir():
            return None
        try:
            from reports.html import write_report

            return str(write_report(run_dir, advice=self.ranking.as_dict() if self.ranking
                                    else None))
        except Exception:  # noqa: BLE001 - the measured results matter more than the report
            return None


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


def record_metric(record: dict[str, Any]) -> tuple[str, float | None]:
    name = record.get("primary_metric") or "metric"
    value = (record.get("metrics") or {}).get(name)
    return name, value if isinstance(value, (int, float)) else None


def measured_rows(result, ranking) -> tuple[list[tuple[str, ...]], str | None]:
    """Rows of the results screen, from the one results table (reports.tables): finished
    candidates best first, then the others; the advisor's prior rank beside the measured one."""
    from reports.tables import results_grid

    records = list(getattr(result, "records", []) or [])
    grid = results_grid(records)
    prior = {c.strategy: i for i, c in enumerate(ranking.ranked, 1)} if ranking else {}
    rows = []
    for i, row in enumerate(grid.rows, 1):
        record = row.record
        metric = row.cell(grid.metric)
        seconds = (record.get("time_s") or {}).get("total")
        estimate = (record.get("estimate") or {}).get("time_s")
        if estimate is None and ranking:
            estimate = next(((c.estimate or {}).get("time_s") for c in ranking.ranked
                             if c.strategy == row.strategy), None)
        cost = (record.get("cost_usd") or {}).get("adapt"), (record.get("cost_usd") or {}).get("predict")
        total_cost = sum(c for c in cost if isinstance(c, (int, float)))
        memory = row.value(grid.memory_key)
        rows.append((str(i), row.strategy, row.status,
                     metric.text if metric and metric.value is not None else "—",
                     str(prior.get(row.strategy, "—")),
                     f"{memory:.0f}" if memory is not None else "—",
                     f"{seconds:.1f}" if isinstance(seconds, (int, float)) else "—",
                     f"{estimate:.0f}" if isinstance(estimate, (int, float)) else "—",
                     f"{total_cost:.4f}"))
    return rows, grid.metric if records else None


def _flatten(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


# ---------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers", metavar="FILE", help="start from an answers YAML")
    parser.add_argument("--save-to", metavar="FILE", help="where ctrl+s saves the answers "
                        "(default: the --answers file, else tunewise-answers.yaml)")
    parser.add_argument("--out", default="runs", help="run folder root (default runs)")
    parser.add_argument("--model", help="base model for the run (overrides model.base)")
    parser.add_argument("--encoder", help="sentence encoder for RAG/kNN/transfer")
    parser.add_argument("--preset", default="quick", choices=("quick", "full"))


def run(args: argparse.Namespace) -> int:
    from advisor.answers import load_answers

    answers = load_answers(args.answers) if args.answers else {}
    app = TunewiseApp(answers, save_to=args.save_to or args.answers or "tunewise-answers.yaml",
                      out=args.out, model=args.model, encoder=args.encoder, preset=args.preset)
    app.run()
    return 0
