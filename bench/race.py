"""A race instead of a run-all: successive halving of the candidates on the validation split.

    from bench.race import RaceExecutor, RaceSettings
    service.run_plan(plan, race=RaceSettings())        # `advise --run`, the demo, the TUI

Every entrant starts on a small budget — a stratified, seeded subset of the train rows — and is
scored on the VALIDATION split. After each rung the better half goes on with twice the rows, the
worse half stops. The finalists (default: the one winner) then train on every train row and meet
the test split once. The baselines (majority, zero-shot) do not race: they have nothing to train
and are run once on test, for context, as in every run.

    rung 0: 6 entrants x 27 train rows  -> validation -> 3 kept
    rung 1: 3 entrants x 54 train rows  -> validation -> 2 kept
    rung 2: 2 entrants x 108 train rows -> validation -> 1 kept
    final:  1 winner   x 216 train rows -> test (once)

Every rung is an ordinary `CandidateJob` (`eval_split="validation"`, `train_subset`), run by the
executor in its own child and scored by the harness, so a rung is measured like any candidate and
the child never reads a test label (bench.split_view). Rung records are not journalled as
results — they never saw the test split — but every rung is kept: in each candidate's record
(`info.race`: rung, train rows, validation score, kept/stopped) and, as it happens, in
RUN_DIR/race.json, so an interrupted race loses no measurement. A stopped candidate gets a record
with status "skipped" and the reason; `tunewise bench --resume` finishes the candidates still in
the race at their full budget, without racing.

Why not optuna's pruners: SuccessiveHalvingPruner and HyperbandPruner are asynchronous (a trial
is promoted as soon as it is in the top 1/eta of those that reached its rung so far) and prune
steps inside one objective's training loop. Here the entrants are different strategies in
separate processes, compared rung by rung, all of a rung at once: synchronous halving, a few
lines below.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bench import journal
from bench.errors import TunewiseError
from bench.events import EventHandler, emit
from bench.schema import HIGHER_IS_BETTER, PRIMARY_METRIC

RACE_FILE = "race.json"  # the rungs as they are measured (kept when the race is interrupted)


@dataclass(frozen=True)
class RaceSettings:
    """eta: 1/eta of a rung goes on (2: the better half); finalists: how many train on the full
    budget and meet the test split; min_rows: the smallest rung's train rows (and at least two
    rows per class), below which a validation score says little."""

    eta: int = 2
    finalists: int = 1
    min_rows: int = 16

    def check(self) -> None:
        if self.eta < 2:
            raise TunewiseError(f"race: eta {self.eta} must be at least 2 (2 keeps the better half)")
        if self.finalists < 1:
            raise TunewiseError(f"race: finalists {self.finalists} must be at least 1")
        if self.min_rows < 1:
            raise TunewiseError(f"race: min_rows {self.min_rows} must be at least 1")


@dataclass(frozen=True)
class Rung:
    """One validation rung: every entrant still in trains on `train_rows` rows; `halvings` is how
    many halvings this rung does at once (more than one when small data merged two rungs that
    would have had the same number of rows)."""

    train_rows: int
    halvings: int = 1


@dataclass
class RaceStarted:
    """Before the first rung: who races, and on what budgets."""

    entrants: list[str]
    rungs: list[Rung]
    train_rows: int
    validation_rows: int
    metric: str


@dataclass
class RungFinished:
    """After a rung: each entrant's validation score, best first, and whether it goes on."""

    rung: int
    train_rows: int
    of_train_rows: int
    metric: str
    results: list[dict[str, Any]] = field(default_factory=list)  # {strategy, score, kept}


# ------------------------------------------------------------------------------- the schedule


def rung_schedule(train_rows: int, entrants: int, settings: RaceSettings,
                  min_rows: int | None = None) -> list[Rung]:
    """The validation rungs for `entrants` candidates on `train_rows` rows; [] when no halving is
    needed (no more entrants than finalists). Halvings continue until at most `finalists`
    remain; the last rung trains on train_rows / eta, each earlier one on 1/eta of the next,
    never fewer than `min_rows` (default settings.min_rows). Rungs that would train on the same
    number of rows are merged into one that halves more than once."""
    floor = min(train_rows, max(1, min_rows if min_rows is not None else settings.min_rows))
    halvings, alive = 0, entrants
    while alive > settings.finalists:
        alive = max(settings.finalists, math.ceil(alive / settings.eta))
        halvings += 1
    rungs: list[Rung] = []
    for k in range(halvings):
        rows = max(floor, round(train_rows / settings.eta ** (halvings - k)))
        if rungs and rungs[-1].train_rows == rows:
            rungs[-1] = Rung(rows, rungs[-1].halvings + 1)
        else:
            rungs.append(Rung(rows, 1))
    return rungs


def keep_count(alive: int, rung: Rung, settings: RaceSettings, last: bool) -> int:
    """How many of `alive` scored entrants go on after `rung` (the last rung keeps the
    finalists)."""
    if last:
        return min(alive, settings.finalists)
    return min(alive, max(settings.finalists, math.ceil(alive / settings.eta ** rung.halvings)))


def rank_rung(results: list[dict[str, Any]], order: list[str],
              higher_is_better: bool = True) -> list[dict[str, Any]]:
    """The rung's results best first: scored before unscored (failed), then by validation score,
    a collapsed candidate (one answer for every row) after one that is not, then the entrants'
    order (the advisor's ranking) for a tie."""
    def key(result: dict[str, Any]):
        score = result.get("score")
        signed = -score if (score is not None and higher_is_better) else score
        return (score is None, signed if score is not None else 0.0,
                bool(result.get("degenerate")), order.index(result["strategy"]))

    return sorted(results, key=key)


def min_rows_for(split: dict[str, Any], settings: RaceSettings) -> int:
    """The smallest rung's rows: settings.min_rows, and two rows per class so that a stratified
    subset shows every class twice."""
    labels = split.get("labels") or []
    return max(settings.min_rows, 2 * len(labels)) if split.get("task") == "classification" \
        else settings.min_rows


# ------------------------------------------------------------------------------- the entrants


def is_baseline(strategy: str) -> bool:
    """A baseline (majority, zero-shot) runs once on test for context; it does not race."""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    return entry is not None and "baseline" in entry.traits


def _rung_job(job, rung_index: int, rung: Rung, subset: list[int] | None):
    """The candidate at one rung: trained on `subset` of train (None: all of it), predicting
    the validation split; its own log, work folder and predictions file."""
    variant = f"race-r{rung_index}-{journal.safe_name(job.strategy)}"
    run_dir = Path(job.run_dir)
    return dataclasses.replace(job, variant=variant, eval_split="validation",
                               train_subset=subset,
                               work_dir=str(journal.work_dir(run_dir, variant)),
                               log_path=str(journal.log_path(run_dir, variant)),
                               extra_info={**job.extra_info, "race_rung": rung_index})


def _score(record: dict[str, Any]) -> float | None:
    if record.get("status") != "ok":
        return None
    value = (record.get("metrics") or {}).get(record.get("primary_metric"))
    return float(value) if isinstance(value, (int, float)) else None


# ------------------------------------------------------------------------------- the race


class RaceExecutor:
    """Wraps any executor (local, Ray): the baselines go to it once, on test; the entrants race
    rung by rung, each rung one batch of jobs through it; the finalists run on the full budget
    and test. Yields a record per candidate, as the runner journals it."""

    def __init__(self, base=None, settings: RaceSettings | None = None) -> None:
        self.base = base
        self.settings = settings or RaceSettings()
        self.settings.check()

    def run(self, jobs: list, on_event: EventHandler | None, cancel) -> Iterator[dict[str, Any]]:
        from bench.executors import local_executor_for

        base = self.base or local_executor_for(jobs)
        context = [job for job in jobs if is_baseline(job.strategy)]
        entrants = [job for job in jobs if not is_baseline(job.strategy)]
        if context:
            yield from base.run(context, on_event, cancel)
        if entrants and not cancel.is_set():
            race = _Race(base, self.settings, entrants, on_event, cancel)
            yield from race.run()


class _Race:
    """One race's state: the schedule, each entrant's rungs so far, race.json."""

    def __init__(self, base, settings: RaceSettings, entrants: list, on_event, cancel) -> None:
        self.base, self.settings = base, settings
        self.entrants, self.on_event, self.cancel = entrants, on_event, cancel
        self.order = [job.strategy for job in entrants]
        first = entrants[0]
        self.run_dir = Path(first.run_dir)
        split = journal.read_json(Path(first.split_path))
        self.train_rows = len(split["train"])
        self.validation_rows = len(split.get("validation") or [])
        self.metric = PRIMARY_METRIC[first.task]
        self.higher_is_better = HIGHER_IS_BETTER.get(self.metric, True)
        self.rungs = (rung_schedule(self.train_rows, len(entrants), settings,
                                    min_rows_for(split, settings))
                      if self.validation_rows else [])
        self.subsets = self._subsets(split, first.seed)
        self.history: dict[str, list[dict[str, Any]]] = {name: [] for name in self.order}
        self.outcome: dict[str, str] = {}
        self.winner: str | None = None
        self.note = self._note()

    # -------------------------------------------------------------- setup

    def _subsets(self, split: dict[str, Any], seed: int) -> dict[int, list[int]]:
        """Nested, stratified, seeded train subsets per rung size (bench.sweeps' sampling):
        a later rung adds rows to the same examples."""
        from bench.sweeps import nested_subsets

        sizes = sorted({r.train_rows for r in self.rungs if r.train_rows < self.train_rows})
        if not sizes:
            return {}
        labels = ([str(row["label"]) for row in split["train"]]
                  if split.get("task") == "classification" else None)
        return nested_subsets(self.train_rows, labels, sizes, seed)

    def _note(self) -> str | None:
        if not self.validation_rows:
            return "no validation rows to race on: every entrant ran on the full budget"
        if not self.rungs:
            return (f"{len(self.entrants)} entrant(s), no more than the {self.settings.finalists} "
                    "finalist(s): every entrant ran on the full budget")
        return None

    # -------------------------------------------------------------- what is kept

    def summary(self) -> dict[str, Any]:
        """The race as a whole: settings, schedule, entrants, the winner (race.json)."""
        return {
            "metric": self.metric, "split": "validation", "budget": "train rows",
            "eta": self.settings.eta, "finalists": self.settings.finalists,
            "train_rows": self.train_rows, "validation_rows": self.validation_rows,
            "schedule": [{"rung": k, "train_rows": r.train_rows, "halvings": r.halvings}
                         for k, r in enumerate(self.rungs)],
            "entrants": list(self.order), "winner": self.winner,
            **({"note": self.note} if self.note else {}),
        }

    def info(self, strategy: str) -> dict[str, Any]:
        """info.race of one candidate's record: its rungs and how its race ended."""
        return {**self.summary(), "rungs": list(self.history[strategy]),
                "outcome": self.outcome.get(strategy, "running")}

    def save(self, finished: bool = False) -> None:
        journal.write_json_atomic(self.run_dir / RACE_FILE, {
            **self.summary(), "finished": finished, "outcome": dict(self.outcome),
            "rungs": {name: list(entries) for name, entries in self.history.items()}})

    # -------------------------------------------------------------- running it

    def run(self) -> Iterator[dict[str, Any]]:
        emit(self.on_event, RaceStarted(list(self.order), list(self.rungs), self.train_rows,
                                        self.validation_rows, self.metric))
        alive = list(self.entrants)
        self.save()
        for index, rung in enumerate(self.rungs):
            results = self._run_rung(index, rung, alive)
            if results is None:
                return  # interrupted: race.json keeps what was measured
            alive = yield from self._halve(index, rung, alive, results)
        if self.rungs:
            self.winner = alive[0].strategy if alive else None
        elif len(alive) == 1:
            self.winner = alive[0].strategy
        for job in alive:
            self.outcome[job.strategy] = "winner" if job.strategy == self.winner else "finalist"
        self.save()
        finals = [dataclasses.replace(job, extra_info={**job.extra_info,
                                                       "race": self.info(job.strategy)})
                  for job in alive]
        yield from self.base.run(finals, self.on_event, self.cancel)
        if not self.cancel.is_set():
            self.save(finished=True)

    def _run_rung(self, index: int, rung: Rung, alive: list) -> dict[str, dict] | None:
        """Every entrant still in, on this rung's rows, scored on validation: {strategy:
        record}, or None when the run was cancelled mid-rung (race.json keeps each result as
        it comes)."""
        subset = self.subsets.get(rung.train_rows)
        jobs = {job.strategy: _rung_job(job, index, rung, subset) for job in alive}
        results: dict[str, dict[str, Any]] = {}
        for record in self.base.run(list(jobs.values()), self.on_event, self.cancel):
            if (record.get("info") or {}).get("cancelled"):
                return None
            name = record["strategy"]
            results[name] = record
            self.history[name].append(self._entry(index, rung, record))
            self.save()
            # The rung's artifact (an adapter, a whole model for full fine-tuning) is not used
            # again: the next rung and the final train afresh. Its log and predictions stay.
            shutil.rmtree(jobs[name].work_dir, ignore_errors=True)
        if len(results) < len(jobs):
            return None  # the executor stopped early: cancelled
        return results

    def _entry(self, index: int, rung: Rung, record: dict[str, Any]) -> dict[str, Any]:
        entry = {"rung": index, "train_rows": rung.train_rows, "of_train_rows": self.train_rows,
                 "status": record.get("status"), "validation": _score(record),
                 "validation_ci": (record.get("metrics_ci") or {}).get(self.metric),
                 "time_s": (record.get("time_s") or {}).get("total"),
                 "peak_rss_mb": (record.get("peak_memory_mb") or {}).get("cpu_rss"),
                 "kept": None}
        if record.get("degenerate"):
            entry["degenerate"] = True
        if record.get("status") != "ok":
            entry["error"] = record.get("error")
        return entry

    def _halve(self, index: int, rung: Rung, alive: list, results: dict[str, dict]):
        """Keep the better part of the rung; yield a record for each entrant that stops here."""
        last = index == len(self.rungs) - 1
        scored = [{"strategy": job.strategy, "score": _score(results[job.strategy]),
                   "degenerate": bool(results[job.strategy].get("degenerate"))} for job in alive]
        ranked = rank_rung(scored, self.order, self.higher_is_better)
        able = [r for r in ranked if r["score"] is not None]
        kept_names = [r["strategy"] for r in able[:keep_count(len(able), rung, self.settings,
                                                               last)]]
        for result in ranked:
            result["kept"] = result["strategy"] in kept_names
            self.history[result["strategy"]][-1]["kept"] = result["kept"]
        cutoff = min((r["score"] for r in able if r["kept"]), default=None,
                     key=lambda s: s if self.higher_is_better else -s)
        for result in ranked:
            if not result["kept"]:
                status = results[result["strategy"]].get("status")
                self.outcome[result["strategy"]] = "stopped" if status == "ok" else status
        self.save()
        emit(self.on_event, RungFinished(index, rung.train_rows, self.train_rows, self.metric,
                                         [dict(r) for r in ranked]))
        by_name = {job.strategy: job for job in alive}
        for result in ranked:
            if not result["kept"]:
                yield self._out_record(by_name[result["strategy"]], results[result["strategy"]],
                                       index, rung, cutoff, len(kept_names))
        return [by_name[name] for name in kept_names]

    def _out_record(self, job, rung_record: dict[str, Any], index: int, rung: Rung,
                    cutoff: float | None, kept: int) -> dict[str, Any]:
        """The record of an entrant that leaves the race at this rung: its failure as it
        happened, or "skipped" with why it was stopped. Either way it carries its rungs, the
        seconds and memory they took, and the last rung's log."""
        from bench.records import base_record

        entries = self.history[job.strategy]
        if rung_record.get("status") != "ok":
            record = dict(rung_record)
            record["info"] = {**{k: v for k, v in (rung_record.get("info") or {}).items()
                                 if k != "race_rung"}, "race": self.info(job.strategy)}
            record.pop("predictions", None)  # validation predictions: not the test's
            return record
        score = entries[-1]["validation"]
        where = (f"stopped by the race at rung {index + 1} of {len(self.rungs)} "
                 f"({rung.train_rows} of {self.train_rows} train rows): validation "
                 f"{self.metric} {score:.3f}")
        if cutoff is None:
            why = where
        elif score == cutoff:
            why = (f"{where}, tied with the lowest of the {kept} kept; a tie goes to the "
                   "candidate ranked higher by the advisor")
        else:
            why = f"{where}, below the {kept} kept (lowest kept {cutoff:.3f})"
        record = base_record(job, "skipped", why)
        record["log"] = rung_record.get("log", record["log"])
        record["time_s"]["total"] = round(sum(e["time_s"] or 0.0 for e in entries), 3)
        record["peak_memory_mb"]["cpu_rss"] = max((e["peak_rss_mb"] or 0.0 for e in entries),
                                                  default=0.0)
        record["info"]["race"] = self.info(job.strategy)
        return record


# ------------------------------------------------------------------------------- for printers


def race_plan_line(event: RaceStarted) -> str:
    """"race: 6 entrants on 24 validation rows, 27 → 54 → 108 of 216 train rows, then the
    winner on all of them and the test split"."""
    if not event.rungs:
        return (f"race: {len(event.entrants)} entrant(s), nothing to halve: each runs on all "
                f"{event.train_rows} train rows and the test split")
    budgets = " → ".join(str(r.train_rows) for r in event.rungs)
    return (f"race: {len(event.entrants)} entrants ({', '.join(event.entrants)}) scored on "
            f"{event.validation_rows} validation rows after {budgets} of {event.train_rows} "
            "train rows; the worse half stops at each rung, the winner trains on all of them "
            "and meets the test split once")


def rung_line(event: RungFinished) -> str:
    """"rung 1 (27 train rows), validation accuracy: knn 0.917 ✓, lora 0.500 ✗ ..."."""
    def shown(result: dict[str, Any]) -> str:
        score = result.get("score")
        value = f"{score:.3f}" if score is not None else "failed"
        return f"{result['strategy']} {value} {'kept' if result.get('kept') else 'stopped'}"

    return (f"rung {event.rung + 1} ({event.train_rows} of {event.of_train_rows} train rows), "
            f"validation {event.metric}: " + ", ".join(shown(r) for r in event.results))


def race_outcome(record: dict[str, Any]) -> str | None:
    """How a record's race ended (winner | finalist | stopped | failed | ...), None when the
    candidate did not race."""
    race = (record.get("info") or {}).get("race")
    return race.get("outcome") if isinstance(race, dict) else None


def race_wall_time(records: list[dict[str, Any]]) -> float:
    """Seconds the race's candidates took, rungs included (from the records' info.race)."""
    total = 0.0
    for record in records:
        race = (record.get("info") or {}).get("race")
        if not isinstance(race, dict):
            continue
        if race.get("outcome") in ("winner", "finalist"):
            total += float((record.get("time_s") or {}).get("total") or 0.0)
        total += sum(float(e.get("time_s") or 0.0) for e in race.get("rungs") or [])
    return total


def check_plan(plan) -> None:
    """A race runs the plan's candidates once each at most on the full budget: the sweeps
    (--tune, --learning-curve, multi-task) and --resume are bench's, not the race's."""
    if plan.tune or plan.learning_curve or plan.more_data:
        raise TunewiseError("a race cannot be combined with --tune, --learning-curve or a "
                            "second --data; run those with `tunewise bench`")
    if plan.resume:
        raise TunewiseError("a race starts a new run; finish an interrupted one with "
                            "`tunewise bench --resume RUN_DIR` (it runs the candidates still in "
                            "the race on the full budget)")


__all__ = ["RACE_FILE", "RaceExecutor", "RaceSettings", "RaceStarted", "Rung", "RungFinished",
           "check_plan", "is_baseline", "keep_count", "race_outcome", "race_plan_line",
           "race_wall_time", "rank_rung", "rung_line", "rung_schedule"]
