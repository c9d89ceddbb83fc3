"""Probes: the cheap candidates measured on the user's validation split before the advice.

    from advisor.probes import run_probes
    probes = run_probes("bench/samples/banking_support", task="classification")
    probes.scores["knn"].value        # accuracy on validation + cross-validated train rows
    probes.as_dict()                  # what `advise --json`, the run folder and the report carry

Each probe is a candidate of the harness (bench.runner: its own child process, the same
measurement as any run) whose job predicts the VALIDATION split (`eval_split`, as a tuning
trial's does): it learns from the train split only, and the test split stays unseen until the
run. The prompting probes (zero-shot, few-shot, rag) are scored on a seeded slice of validation
(one forward pass per label per row, or a decoded answer per row, makes them the slowest).

A validation split of a few dozen rows is a poor judge (UCI sentiment sentences: 24 validation
rows gave transfer 0.958, 80 test rows 0.800), so knn and transfer also predict the train rows
out of fold (leave-one-out; stratified k-fold: strategies.cross_validation, asked for through
the plan's overrides), and their probe score pools those rows with the validation rows.

The measured scores are facts for the rules (advisor.rules.measured): a probed candidate is
expected to score what it measured.

A second stage follows when the caller names a `training_candidate` (advisor.recommend: the
fitting LLM-training candidate the rules rank highest) and the best cheap probe leaves room
above it (`leaves_room`: below 1 - 2 x its noise). The cheap probes cannot tell whether
training the LLM pays (LoRA beat every one of them by 10+ points on some sets and lost to knn
on others), so that one candidate is measured too, on a short budget (SHORT_BUDGET: 24
optimizer steps, at most 120 s of training): trained on the train split, predicting the
validation split (qa/generation: the prompting probes' slice). Its score is marked
`budget="short"` with the steps it took — a lower bound of what the full run reaches. A short
run that measured nothing about its method is in `failed`, with why, and the candidate stays
unprobed: its predictions collapsed to one answer (the record's `degenerate` flag), or the time
bound let it take fewer than SHORT_MIN_STEPS steps (on a busy machine a QA step can take 30 s:
one step is the base model, not LoRA). The stage's time counts in `Probes.seconds`.
"""

from __future__ import annotations

import dataclasses
import random
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from advisor.rules.base import ProbeScore
from advisor.rules.measured import Z95, best_probe_of, noise, wilson_half_width

# What is cheap enough to measure before advising, per task kind: the majority vote (no
# model), nearest neighbours and a linear head on frozen sentence embeddings (seconds), and
# prompting on a slice. Generation and QA have no seconds-cheap candidate: zero-shot and
# few-shot decode a slice (few-shot scored best of all on pubmedqa, 0.502 token F1), and
# QA with a corpus adds rag (probe_names).
PROBES: dict[str, tuple[str, ...]] = {
    "classification": ("majority", "knn", "transfer", "zero-shot"),
    "generation": ("zero-shot", "few-shot"),
    "qa": ("zero-shot", "few-shot"),
}
WITH_CORPUS: dict[str, tuple[str, ...]] = {"qa": ("rag",)}  # need the data's corpus
# Validation rows the prompting probes are scored on (label scoring: classes x rows forward
# passes; generation and QA: a decoded answer per row).
SLICE_ROWS = {"classification": 48, "generation": 16, "qa": 16}
SLICED = ("zero-shot", "few-shot", "rag")
# The probes that also predict the train rows out of fold (strategies.cross_validation), and the
# folds asked for (knn: leave-one-out whatever the number).
CROSS_VALIDATED = ("knn", "transfer")
CV_FOLDS = 5
PROBE_TIMEOUT_S = 300.0  # per probe: a stuck one cannot hold the advice up for long
# The second stage's training budget (strategies.training_config options, set per candidate on
# the plan): 24 optimizer steps at most, cut sooner by 120 s of training (two to four minutes
# with the model load and the predictions on 2 cores; a QA or generation step takes ~9 s idle). max_steps caps min_steps, so the quick
# preset's floor of 40 does not force more. One validation, at the last step: the weights
# scored are the last ones, not the best of several checks on the split it is scored on.
SHORT_STEPS = 24
# Room: the best cheap probe must lie this many of its noises below a perfect score, so that
# a trained candidate has space to show a gain the validation rows can tell from luck.
ROOM_NOISES = 2.0
SHORT_BUDGET: dict[str, Any] = {"max_steps": SHORT_STEPS, "time_budget_s": 120.0,
                                "eval_every": SHORT_STEPS}
# Fewer steps than this and the short run says nothing about training (squad_mini: 8 steps of
# LoRA already moved token F1 from zero-shot's 0.20 to 0.29 on test; 1-3 steps did not).
SHORT_MIN_STEPS = 8


@dataclass(frozen=True)
class Probes:
    """What the probes measured: one ProbeScore per candidate that scored, and why the others
    did not."""

    metric: str
    scores: dict[str, ProbeScore]
    failed: dict[str, str] = field(default_factory=dict)
    validation_rows: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"split": "validation", "metric": self.metric,
                "validation_rows": self.validation_rows, "seconds": round(self.seconds, 1),
                # noise: what a gain over the score must exceed to be told from luck
                "scores": [{**score.as_dict(), "noise": round(noise(score), 4)}
                           for score in self.scores.values()],
                "failed": dict(self.failed)}


def summary_line(probes: dict[str, Any] | None) -> str:
    """What the probes measured, best first, from `Probes.as_dict()` (as the advice JSON and
    the run folder keep it): `accuracy measured on ... : knn 0.958 ±0.10 (24 rows, 12 s) ·
    ...`, ± the probe's noise (rules.measured.noise); a cross-validated probe says on how many
    train and validation rows, and what validation alone gave. Empty without probes."""
    if not probes or not probes.get("scores"):
        return ""
    scores = sorted(probes["scores"], key=lambda s: -s["value"])
    parts = [f"{s['strategy']} {s['value']:.3f}"
             + (f" ±{s['noise']:.2f}" if s.get("noise") is not None else "")
             + f" ({_rows_text(s)}, {s['seconds']:.0f} s"
             + (f", short budget: {s['steps']} steps, a lower bound" if s.get("budget") == "short"
                else "") + ")" for s in scores]
    where = ("the validation split" if not any(s.get("cv_rows") for s in scores)
             else "the validation split and, cross-validated, the train rows")
    return (f"{probes['metric']} measured on {where} before the advice "
            f"({probes['seconds']:.0f} s in all): " + " · ".join(parts))


def _rows_text(score: dict[str, Any]) -> str:
    if not score.get("cv_rows"):
        return f"{score['rows']} rows"
    alone = score.get("validation_value")
    return (f"cross-validated on {score['cv_rows']} train rows + {score['validation_rows']} "
            "validation rows" + (f"; validation alone {alone:.3f}" if alone is not None else ""))


def probe_names(task: str | None, has_corpus: bool = False) -> tuple[str, ...]:
    """The probes of a task kind; rag only where the data has a corpus to retrieve from."""
    extra = WITH_CORPUS.get(task or "", ()) if has_corpus else ()
    return PROBES.get(task or "", ()) + extra


def validation_slice(rows: int, task: str, seed: int = 0) -> list[int] | None:
    """Seeded positions of the validation rows the prompting probes are scored on (None: all
    of them), the same slice for each of them. A seeded sample, not the first rows: a file
    sorted by label would give one class."""
    wanted = SLICE_ROWS.get(task, 16)
    if rows <= wanted:
        return None
    return sorted(random.Random(seed).sample(range(rows), wanted))


class ValidationExecutor:
    """Wraps the harness's executor (by default the one it would pick for the jobs): every job
    predicts the validation split, the `sliced` ones (by default the prompting probes) a seeded
    slice of it."""

    def __init__(self, validation_rows: int, task: str, base=None,
                 sliced: tuple[str, ...] = SLICED) -> None:
        self.validation_rows = validation_rows
        self.task = task
        self.base = base
        self.sliced = sliced

    def run(self, jobs: list, on_event, cancel):
        from bench.executors import local_executor_for

        probed = [dataclasses.replace(
            job, eval_split="validation",
            eval_subset=validation_slice(self.validation_rows, self.task)
            if job.strategy in self.sliced else None) for job in jobs]
        yield from (self.base or local_executor_for(probed)).run(probed, on_event, cancel)


def probe_score(record: dict[str, Any], metric: str, rows: int) -> ProbeScore | None:
    """The record's score as a probe fact, or None when it did not score. A record that also
    cross-validated on the train rows (info.cv, accuracy) scores the pooled rows: right
    answers on validation and out of fold over both row counts, with the Wilson interval on
    the pooled rows (the validation rows' bootstrap interval would speak for them alone)."""
    value = (record.get("metrics") or {}).get(metric)
    if record.get("status") != "ok" or not isinstance(value, (int, float)):
        return None
    seconds = float((record.get("time_s") or {}).get("total") or 0.0)
    cv = (record.get("info") or {}).get("cv")
    if metric == "accuracy" and isinstance(cv, dict) and cv.get("rows"):
        pooled_rows = rows + int(cv["rows"])
        correct = round(float(value) * rows) + int(cv["correct"])
        low, high = wilson_interval(correct, pooled_rows)
        return ProbeScore(strategy=record["strategy"], value=correct / pooled_rows, low=low,
                          high=high, rows=pooled_rows, seconds=seconds,
                          cv_rows=int(cv["rows"]), validation_value=float(value))
    low, high = (record.get("metrics_ci") or {}).get(metric) or (None, None)
    return ProbeScore(strategy=record["strategy"], value=float(value), low=low, high=high,
                      rows=rows, seconds=seconds)


def wilson_interval(correct: int, rows: int) -> tuple[float, float]:
    """The Wilson score interval (95%) of `correct` right answers out of `rows`: unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or `rows` right."""
    p, z2 = correct / rows, Z95 * Z95
    centre = (p + z2 / (2 * rows)) / (1 + z2 / rows)
    half = wilson_half_width(p, rows)
    return max(0.0, centre - half), min(1.0, centre + half)


def run_probes(data: str, *, task: str | None = None, corpus: str | None = None,
               model: str = "smollm2-135m", encoder: str = "minilm-l6",
               strategies: tuple[str, ...] | None = None, out: str | None = None,
               on_event: Callable | None = None, benchmark: Callable | None = None,
               executor=None, label_names: str | None = None,
               training_candidate: str | None = None) -> Probes:
    """Measure the cheap candidates of the task on the validation split of `data` (a run
    folder under `out`, else a temporary one), then, when the best of them leaves room,
    `training_candidate` on a short budget (the module docstring). Raises TunewiseError when
    the data is refused; a probe that fails is in `failed`, with why. `benchmark` and
    `executor` replace the harness's (tests)."""
    from bench.data import load_task_data
    from bench.plan import BenchPlan
    from bench.runner import run_benchmark
    from bench.schema import PRIMARY_METRIC

    started = time.perf_counter()
    if task is not None and strategies is None and not probe_names(task):
        return Probes(PRIMARY_METRIC.get(task, "score"), {})  # nothing cheap to measure
    split = load_task_data(data, task=task, corpus_path=corpus, label_names=label_names).split
    names = list(strategies if strategies is not None
                 else probe_names(split.task, has_corpus=split.corpus is not None))
    metric = PRIMARY_METRIC[split.task]
    rows = len(split.validation or [])
    if not names or not rows:
        return Probes(metric, {}, {name: "no validation rows" for name in names})
    with tempfile.TemporaryDirectory(prefix="tunewise-probes-") as tmp:
        plan = BenchPlan(data=data, task=split.task, corpus=corpus, strategies=names,
                         model=model, encoder=encoder, preset="quick", out=out or tmp,
                         timeout_s=PROBE_TIMEOUT_S, command="tunewise advise (probes)",
                         label_names=label_names,
                         overrides={name: {"cv_folds": CV_FOLDS} for name in names
                                    if name in CROSS_VALIDATED})
        result = (benchmark or run_benchmark)(
            plan, on_event=on_event, executor=ValidationExecutor(rows, split.task, executor))
    scores, failed = {}, {}
    for record in result.records:
        name = record["strategy"]
        subset = validation_slice(rows, split.task) if name in SLICED else None
        score = probe_score(record, metric, len(subset) if subset is not None else rows)
        if score is None:
            failed[name] = str(record.get("error") or record.get("status"))
        else:
            scores[name] = score
    best = best_probe_of(scores)
    name = training_candidate
    if name and name not in scores and best is not None and leaves_room(best, metric):
        score, why = training_probe(plan, name, rows, metric, benchmark or run_benchmark,
                                    on_event=on_event, executor=executor, out=out)
        if score is not None:
            scores[name] = score
        else:
            failed[name] = why
    return Probes(metric, scores, failed, rows, time.perf_counter() - started)


def leaves_room(best: ProbeScore, metric: str) -> bool:
    """Is there room above the best cheap probe for a trained candidate to show a gain: its
    value below 1 - ROOM_NOISES x its noise? (Never for a metric where lower is better, or
    one not known to be bounded by 1.) On a small validation split the noise is wide: 0.80
    on 24 rows is ±0.15, so only a best probe below ~0.69 leaves room there."""
    from bench.schema import HIGHER_IS_BETTER

    if HIGHER_IS_BETTER.get(metric) is not True:  # lower is better, or unknown: no ceiling
        return False
    return best.value < 1.0 - ROOM_NOISES * noise(best)


def training_probe(plan, name: str, rows: int, metric: str, benchmark: Callable, *,
                   on_event: Callable | None = None, executor=None,
                   out: str | None = None) -> tuple[ProbeScore | None, str]:
    """The second stage: `name` alone, on the cheap probes' plan with the SHORT_BUDGET
    overrides, predicting validation (classification: every row; qa/generation: zero-shot's
    slice). Its score marked `budget="short"` with the steps taken, or None and why it is not
    a measurement (it did not run, failed, or its predictions collapsed)."""
    from bench.errors import TunewiseError

    sliced = (name,) if plan.task != "classification" else ()
    subset = validation_slice(rows, plan.task) if sliced else None
    try:
        with tempfile.TemporaryDirectory(prefix="tunewise-probes-") as tmp:
            short = dataclasses.replace(
                plan, strategies=[name], overrides={name: dict(SHORT_BUDGET)}, out=out or tmp,
                command="tunewise advise (short-budget training probe)")
            result = benchmark(short, on_event=on_event,
                               executor=ValidationExecutor(rows, plan.task, executor, sliced))
    except TunewiseError as exc:
        return None, f"short-budget training probe did not run: {exc}"
    record = next((r for r in result.records if r.get("strategy") == name), None)
    if record is None:
        return None, "short-budget training probe left no record"
    if record.get("degenerate"):
        return None, ("short-budget training probe collapsed, not used as a measurement: "
                      + str(record.get("degenerate_why") or "one answer for nearly every row"))
    score = probe_score(record, metric, len(subset) if subset is not None else rows)
    if score is None:
        return None, str(record.get("error") or record.get("status"))
    steps = steps_taken(record)
    if steps is not None and steps < SHORT_MIN_STEPS:
        return None, (f"short-budget training probe took {steps} step(s) within its "
                      f"{SHORT_BUDGET['time_budget_s']:.0f} s, fewer than {SHORT_MIN_STEPS}: too "
                      "few to tell what training does, not used as a measurement")
    return dataclasses.replace(score, budget="short", steps=steps), ""


def steps_taken(record: dict[str, Any]) -> int | None:
    """The optimizer steps a training record took (info.steps; else its budget's)."""
    info = record.get("info") or {}
    steps = info.get("steps")
    if not isinstance(steps, int):
        steps = (info.get("budget") or {}).get("steps")
    return steps if isinstance(steps, int) else None
