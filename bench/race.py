"""A race instead of a run-all: successive halving of the candidates on the validation split.

    from bench.race import RaceExecutor, RaceSettings
    service.run_plan(plan, race=RaceSettings())        # `advise --run`, the demo, the TUI

Only the expensive entrants race. An entrant whose full run the estimator (the plan's estimate,
else advisor.estimate on the run's data profile) puts at `cheap_s` (60 s) or less — knn, transfer,
setfit on a small set — is a *fixed entrant*: a rung of it would cost about its full run, so it
runs once on the full budget and the test split, as in a run-all, and does not race. So is one
that trains nothing (few-shot, rag): a rung of it on fewer train rows measures what its full run
does, and on QA it would generate the validation answers again at every rung. The
expensive ones (the racers) start on a small budget — a stratified, seeded subset of the train
rows — and are scored on validation once, at the rung's end (a fine-tuned LLM does not
validate inside a rung: strategies.training_loop). After each rung the best third of the racers still in
(RaceSettings.eta, 3, as in Hyperband) goes on with three times the rows, the rest stop. The finalists (default: the one winner)
then train on every train row and meet the test split once. The baselines (majority,
zero-shot) do not race either: they have nothing to train and run once on test, as in every
run. So everything that trains cheaply, and the racers' winner, meets the test split; the
report ranks them there, as it ranks a run-all.

A rung compares racers at the same budget only. A fixed entrant once joined every rung at its
full-budget validation score and took a place in its cut: a racer on a small share of its
budget then had to beat a finished knn or encoder-ft to go on, though in full it may beat
them (UCI sentiment: LoRA 0.94, encoder-ft 0.86).

A rung on r of the N train rows trains with r/N of the full run's budget (the job's
`budget_fraction`): a candidate that fine-tunes an LLM (strategies.training) takes r/N of the
optimizer steps the whole split would get, at least RUNG_MIN_STEPS (8) and never more than the
full run's, under r/N of its time bound (strategies.training_budget.RungShare; the record's
info.budget says `limited_by: "rung"`). Planned on its r rows alone, the budget's min_steps
would give a small rung about the full run's steps, and a race would cost about a run-all. The
other trained candidates (encoder-ft, setfit) keep their own budgets on the rung's rows:
encoder-ft's epochs already scale with them; setfit's pairs do until its step cap.

A racer whose training can resume (the catalogue's "resumable" trait: the LLM trainers but
adalora, whose rank schedule is built for a fixed total) continues, as in ASHA and Hyperband:
each of its rung jobs saves a Trainer checkpoint (`save_checkpoint`), its next rung resumes it
(`resume_from`: the previous rung's work folder; weights, optimizer and the learning-rate
schedule over the full run's steps) and trains only from the previous rung's share of the
steps to its own, and the winner's final resumes its last rung and trains on to the full run's
steps; the final validates the weights it resumes first, so its early stopping counts from
the rung's weights, as a run trained straight through would. Its rungs and final together
train one full run's steps, plus a process start and a model load per job; afresh, every rung trains again the steps of the rungs before it, and the
final all of them. The folder is kept
until the job that resumed it finishes, and removed at once when its racer stops (a `full`
checkpoint is a whole model). The others (adalora, encoder-ft, setfit, a plugin) train each
rung and the final afresh, as every racer does with RaceSettings.continue_rungs False. A rung
entry of info.race says `continued_from_rung`, and the final's info.race
`final_continued_from_rung` (None: afresh), when the job's record says it resumed past step 0
(info.budget.resumed_from_step): asked to resume is not having resumed.

    fixed:  knn, transfer x all 216 train rows                 -> test (once)
    rung 0: lora, full, ia3, dora x 24 train rows              -> validation -> 2 kept
    rung 1: the 2 kept x 72 train rows, resuming rung 0        -> validation -> 1 kept
    final:  1 winner x all train rows, resuming its last rung  -> test (once)

No race when it cannot pay: with fewer than `min_racers` (3) expensive entrants, the rung
restarts (a fresh process and model load per rung, 15-30 s each on 2 busy cores) cost more
than halving saves, so every entrant runs on the full budget and the test split, as
`--no-race` does; nor when the estimator (which models the rungs' proportional budgets, and
charges a continuing racer's rungs and final their increments) puts the race above
`max_cost_ratio` of run-all. race.json (`estimated_cost_s`), info.race and the
terminal say so.

A rung decision on a tiny validation split (fewer than `min_validation_rows`, 20) is noisy: an
entrant that would stop is kept anyway when its score lies inside the lowest kept entrant's 95%
interval, at most `reprieves` (1) per rung, except at the last rung (a second finalist would
cost a full run and still be decided on the same validation rows). Ties go, in order, to the
entrant whose predictions did not collapse, to the better second metric (macro-F1 for
classification, exact match for QA), then to the one the advisor ranked higher.

Every rung is an ordinary `CandidateJob` (`eval_split="validation"`, `train_subset`), run by the
executor in its own child and scored by the harness, so a rung is measured like any candidate and
the child never reads a test label (bench.split_view). Every rung job predicts the same
validation rows: all of them, or, above `max_validation_rows`
(200), a seeded subset of that many (stratified by label for classification, the race's seed)
through the job's `eval_subset`. bench keeps a tenth of the train file for validation with no
cap, and a race whose rung jobs each predicted all of it cost more the more data there was,
while a full run's training stays under the preset's cap; the interval of a rung's score and
the tiny-split rule above count the rows scored. Rung records are not journalled as
results — they never saw the test split — but every rung is kept: in each candidate's record
(`info.race`: rung, train rows, validation score, kept/stopped) and, as it happens, in
RUN_DIR/race.json, so an interrupted race loses no measurement. A stopped candidate gets a record
with status "skipped" and the reason; `tunewise bench --resume` finishes the candidates still in
the race at their full budget, without racing, afresh (an interrupted race removes its rung
checkpoints).

Why not optuna's pruners: SuccessiveHalvingPruner and HyperbandPruner are asynchronous (a trial
is promoted as soon as it is in the top 1/eta of those that reached its rung so far) and prune
steps inside one objective's training loop. Here the entrants are different strategies in
separate processes, compared rung by rung, all of a rung at once: synchronous halving, a few
lines below.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Iterator

from bench import journal
from bench.errors import TunewiseError
from bench.events import EventHandler, emit
from bench.schema import HIGHER_IS_BETTER, PRIMARY_METRIC

from bench.race_rules import (TIE_METRIC, RaceSettings, Rung, RaceStarted, RungFinished,
                             rung_schedule, keep_count, tie_rule, rank_rung, reprieved,
                             min_rows_for, is_baseline, estimated_seconds, is_cheap,
                             estimated_cost, race_pays, rung_fraction, scored_validation_rows,
                             continues, runs_once)

RACE_FILE = "race.json"  # the rungs as they are measured (kept when the race is interrupted)


def _rung_job(job, rung_index: int, rung: Rung | None, subset: list[int] | None,
              train_rows: int, validation_subset: list[int] | None = None, *,
              resume_from: str | None = None, save_checkpoint: bool = False):
    """The candidate at one rung: trained on `subset` of the `train_rows` train rows (None: all
    of them) with the same share of the full run's training budget (`budget_fraction`: steps
    and time bound, strategies.training_budget.RungShare), predicting the validation rows at
    `validation_subset` (None: all of them); its own log, work folder and predictions file.
    rung None: a fixed entrant's one validation run on the full budget. A racer that
    continues: `resume_from` its previous rung's work folder (None at its first rung), and
    `save_checkpoint` for the next rung or the final to resume."""
    tag = f"r{rung_index}" if rung is not None else "full"
    variant = f"race-{tag}-{journal.safe_name(job.strategy)}"
    run_dir = Path(job.run_dir)
    fraction = (rung_fraction(rung.train_rows, train_rows)
                if rung is not None and subset is not None else None)
    return dataclasses.replace(job, variant=variant, eval_split="validation",
                               train_subset=subset, budget_fraction=fraction,
                               eval_subset=validation_subset,
                               resume_from=resume_from, save_checkpoint=save_checkpoint,
                               work_dir=str(journal.work_dir(run_dir, variant)),
                               log_path=str(journal.log_path(run_dir, variant)),
                               extra_info={**job.extra_info, "race_rung": rung_index})


def validation_subset(split: dict[str, Any], settings: RaceSettings,
                      seed: int) -> list[int] | None:
    """The positions of the validation rows every rung job predicts when the split has more
    than settings.max_validation_rows: seeded, stratified by label for classification
    (bench.sweeps' sampling, the race's seed), one subset for every rung and entrant so that
    they compare on the same rows. None: all of them."""
    from bench.sweeps import nested_subsets

    total = len(split.get("validation") or [])
    rows = scored_validation_rows(total, settings)
    if rows >= total:
        return None
    labels = ([str(row["label"]) for row in split["validation"]]
              if split.get("task") == "classification" else None)
    return nested_subsets(total, labels, [rows], seed)[rows]


def _score(record: dict[str, Any]) -> float | None:
    return _metric(record, record.get("primary_metric"))


def _metric(record: dict[str, Any], name: str | None) -> float | None:
    if record.get("status") != "ok" or not name:
        return None
    value = (record.get("metrics") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) else None


def _resumed_step(record: dict[str, Any]) -> int | None:
    """The optimizer step its training resumed from, as the strategy reports it
    (info.budget.resumed_from_step; 0: it trained afresh); None when it does not say."""
    step = ((record.get("info") or {}).get("budget") or {}).get("resumed_from_step")
    return step if isinstance(step, int) else None


def _continued_from(record: dict[str, Any], asked: int | None) -> int | None:
    """The rung a job continued: the one it was asked to resume, when its record says it
    resumed from a step past 0; None when it trained afresh (never asked; a node without the
    run folder, bench.ray_executor; a strategy that did not resume, or failed first)."""
    return asked if asked is not None and (_resumed_step(record) or 0) > 0 else None


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
    """One race's state: who races and who is fixed, the schedule, each entrant's rungs so
    far, race.json."""

    def __init__(self, base, settings: RaceSettings, entrants: list, on_event, cancel) -> None:
        self.base, self.settings = base, settings
        self.entrants, self.on_event, self.cancel = entrants, on_event, cancel
        self.order = [job.strategy for job in entrants]
        first = entrants[0]
        self.run_dir = Path(first.run_dir)
        split = journal.read_json(Path(first.split_path))
        self.task = first.task
        self.train_rows = len(split["train"])
        self.validation_rows = len(split.get("validation") or [])
        self.validation_subset = validation_subset(split, settings, first.seed)
        self.scored_rows = (len(self.validation_subset) if self.validation_subset is not None
                            else self.validation_rows)
        self.metric = PRIMARY_METRIC[first.task]
        self.tie_metric = TIE_METRIC.get(first.task)
        self.higher_is_better = HIGHER_IS_BETTER.get(self.metric, True)
        profile = self._profile()
        self.estimates = {job.strategy: estimated_seconds(job, profile) for job in entrants}
        self.fixed = [job.strategy for job in entrants
                      if runs_once(job.strategy, self.estimates[job.strategy], settings)]
        self.racers = [name for name in self.order if name not in self.fixed]
        raced = bool(self.validation_rows) and len(self.racers) >= settings.min_racers
        rungs = (rung_schedule(self.train_rows, len(self.racers), settings,
                               min_rows_for(split, settings)) if raced else [])
        self.cost = self._cost(rungs, profile) if rungs else None
        self.rungs = rungs if race_pays(self.cost, settings) else []
        self.subsets = self._subsets(split, first.seed)
        self.history: dict[str, list[dict[str, Any]]] = {name: [] for name in self.order}
        # the racers whose next rung and final resume their last rung (RaceSettings.continue_rungs)
        self.continuing = [name for name in self.racers
                           if self.rungs and continues(name, settings)]
        # a continuing racer still in: (rung index, work folder) of its last rung's checkpoint
        self.checkpoints: dict[str, tuple[int, str]] = {}
        self.outcome: dict[str, str] = {}
        self.winner: str | None = None
        self.note = self._note()

    # -------------------------------------------------------------- setup

    def _profile(self) -> dict[str, Any] | None:
        try:
            return journal.read_json(self.run_dir / journal.MANIFEST).get("profile")
        except (OSError, ValueError):
            return None

    def _cost(self, rungs: list[Rung], profile: dict[str, Any] | None):
        """(race, run-all) estimated seconds on this data (bench.race_rules.estimated_cost), both
        from the estimator on the run's profile so that they compare; None when unknown."""
        return estimated_cost(self.entrants, self.racers, self.fixed, rungs, profile,
                              self.train_rows, self.validation_rows, self.settings)

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
            return "no validation rows to race on: every entrant runs on the full budget"
        if len(self.racers) < self.settings.min_racers:
            expensive = ", ".join(self.racers) if self.racers else "none"
            return (f"{len(self.racers)} of {len(self.entrants)} entrants are estimated "
                    f"to take over {self.settings.cheap_s:.0f} s ({expensive}); with fewer than "
                    f"{self.settings.min_racers} the rungs' restarts cost more than halving "
                    "saves, so every entrant runs on the full budget and the test split")
        if not self.rungs and self.cost is not None:
            race_s, run_all_s = self.cost
            return (f"the race is estimated at {race_s:.0f} s against {run_all_s:.0f} s for "
                    f"running every entrant in full ({race_s / run_all_s:.2f}; it races at or "
                    f"below {self.settings.max_cost_ratio:.2f}): each rung job pays a process "
                    "start, a model load and its share of the training, so every entrant runs "
                    "on the full budget and the test split")
        if not self.rungs:
            return (f"{len(self.entrants)} entrant(s), no more than the {self.settings.finalists} "
                    "finalist(s): every entrant runs on the full budget")
        return None

    # -------------------------------------------------------------- what is kept

    def summary(self) -> dict[str, Any]:
        """The race as a whole: settings, schedule, entrants, the winner (race.json)."""
        return {
            "metric": self.metric, "split": "validation",
            "budget": "train rows, and the same share of the full run's steps and time",
            "raced": bool(self.rungs),
            "eta": self.settings.eta, "finalists": self.settings.finalists,
            "train_rows": self.train_rows,
            # the rows each rung is scored on, of the validation split's (max_validation_rows)
            "validation_rows": self.scored_rows, "of_validation_rows": self.validation_rows,
            "max_validation_rows": self.settings.max_validation_rows,
            "schedule": [{"rung": k, "train_rows": r.train_rows, "halvings": r.halvings}
                         for k, r in enumerate(self.rungs)],
            "entrants": list(self.order), "fixed": list(self.fixed),
            "cheap_s": self.settings.cheap_s, "max_cost_ratio": self.settings.max_cost_ratio,
            "estimated_cost_s": ({"race": round(self.cost[0], 1),
                                  "run_all": round(self.cost[1], 1)} if self.cost else None),
            "estimated_s": {k: (round(v, 1) if v is not None else None)
                            for k, v in self.estimates.items()},
            "continue_rungs": self.settings.continue_rungs,
            # the racers whose rungs and final continue the previous rung's training
            "continued": list(self.continuing),
            "ties": tie_rule(self.task), "winner": self.winner,
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
        emit(self.on_event, RaceStarted(list(self.racers if self.rungs else self.order),
                                        list(self.rungs), self.train_rows,
                                        self.scored_rows, self.metric,
                                        fixed=list(self.fixed) if self.rungs else [],
                                        note=self.note,
                                        of_validation_rows=(
                                            self.validation_rows
                                            if self.validation_subset is not None else None),
                                        eta=self.settings.eta))
        try:
            yield from self._race()
        finally:  # done or interrupted: no checkpoint is resumed any more (--resume: afresh)
            for name in list(self.checkpoints):
                self._drop_checkpoint(name)

    def _race(self) -> Iterator[dict[str, Any]]:
        self.save()
        if self.rungs and self.fixed:  # the fixed entrants first, once in full on test
            yield from self._run_fixed()
            if self.cancel.is_set():
                return
        alive = [job for job in self.entrants
                 if not self.rungs or job.strategy in self.racers]
        for index, rung in enumerate(self.rungs):
            results = self._run_rung(index, rung, alive)
            if results is None:
                return  # interrupted: race.json keeps what was measured
            alive = yield from self._halve(index, rung, alive, results)
        if self.rungs:
            self.winner = alive[0].strategy if alive else None
            outcome_of = lambda name: "winner" if name == self.winner else "finalist"  # noqa: E731
        else:  # no race: every entrant in full, as a run-all
            self.winner = alive[0].strategy if len(alive) == 1 else None
            outcome_of = lambda name: "winner" if name == self.winner else "full"  # noqa: E731
        for job in alive:
            self.outcome[job.strategy] = outcome_of(job.strategy)
        self.save()
        finals = [self._final_job(job) for job in alive]
        for record in self.base.run(finals, self.on_event, self.cancel):
            yield self._final_record(record)
        if not self.cancel.is_set():
            self.save(finished=True)

    def _run_fixed(self) -> Iterator[dict[str, Any]]:
        """The fixed entrants: each once on every train row and the test split, as run-all
        runs it (its info.race says it ran in full beside the race)."""
        for name in self.fixed:
            self.outcome[name] = "fixed"
        self.save()
        jobs = [dataclasses.replace(job, extra_info={**job.extra_info,
                                                     "race": self.info(job.strategy)})
                for job in self.entrants if job.strategy in self.fixed]
        yield from self.base.run(jobs, self.on_event, self.cancel)

    def _final_job(self, job):
        """A finalist on the full budget and the test split; one that continues resumes its
        last rung's checkpoint and trains on to the full run's steps."""
        info = self.info(job.strategy)
        rung, folder = self.checkpoints.get(job.strategy, (None, None))
        info["final_continued_from_rung"] = rung
        return dataclasses.replace(job, resume_from=folder,
                                   extra_info={**job.extra_info, "race": info})

    def _final_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A finalist's record, its info.race saying what the final did; the checkpoint it
        resumed is not needed any more."""
        name = record.get("strategy")
        race_info = (record.get("info") or {}).get("race")
        if isinstance(race_info, dict) and race_info.get("final_continued_from_rung") is not None:
            race_info["final_continued_from_rung"] = _continued_from(
                record, race_info["final_continued_from_rung"])
        if name in self.checkpoints:
            self._drop_checkpoint(name)
        return record

    def _drop_checkpoint(self, name: str) -> None:
        """Remove a racer's last rung folder (its checkpoint: a whole model for `full`)."""
        _, folder = self.checkpoints.pop(name)
        shutil.rmtree(folder, ignore_errors=True)

    def _run_rung(self, index: int, rung: Rung, alive: list) -> dict[str, dict] | None:
        """Every racer still in, trained on this rung's rows and scored on validation.
        {strategy: record}, or None when the run was cancelled mid-rung (race.json keeps each
        result as it comes)."""
        subset = self.subsets.get(rung.train_rows)
        jobs = {job.strategy: self._racer_job(job, index, rung, subset) for job in alive}
        # the rung each continuing racer's job resumes (None: afresh, its first rung)
        resumes = {name: self.checkpoints.get(name, (None, None))[0] for name in jobs}
        results: dict[str, dict[str, Any]] = {}
        for record in self.base.run(list(jobs.values()), self.on_event, self.cancel):
            if (record.get("info") or {}).get("cancelled"):
                self._drop_rung_folders(jobs)
                return None
            name = record["strategy"]
            results[name] = record
            self.history[name].append(self._entry(
                index, rung, record, continued_from=_continued_from(record, resumes[name])))
            self.save()
            self._keep_or_drop(name, jobs[name], index, record)
        if len(results) < len(alive):
            self._drop_rung_folders(jobs)
            return None  # the executor stopped early: cancelled
        return results

    @staticmethod
    def _drop_rung_folders(jobs: dict[str, Any]) -> None:
        """Interrupted mid-rung: no checkpoint of this rung will be resumed (`tunewise bench
        --resume` runs the candidates still in afresh, on the full budget)."""
        for job in jobs.values():
            if job.save_checkpoint:
                shutil.rmtree(job.work_dir, ignore_errors=True)

    def _racer_job(self, job, index: int, rung: Rung, subset: list[int] | None):
        """A racer's job at this rung; one that continues saves a checkpoint, and after its
        first rung resumes its previous rung's."""
        going_on = job.strategy in self.continuing
        _, folder = self.checkpoints.get(job.strategy, (None, None))
        return _rung_job(job, index, rung, subset, self.train_rows, self.validation_subset,
                         resume_from=folder if going_on else None, save_checkpoint=going_on)

    def _keep_or_drop(self, name: str, job, index: int, record: dict[str, Any]) -> None:
        """After a rung job: the checkpoint it resumed is not needed any more. Its own work
        folder is kept when the next rung or the final may resume it (a continuing racer that
        did not fail; dropped at once if it stops at this rung); otherwise its artifact (an
        adapter, a whole model for full fine-tuning) is not used again. Its log and
        predictions stay."""
        if name in self.checkpoints:
            self._drop_checkpoint(name)
        if job.save_checkpoint and record.get("status") == "ok":
            self.checkpoints[name] = (index, job.work_dir)
        else:
            shutil.rmtree(job.work_dir, ignore_errors=True)

    def _entry(self, index: int, rung: Rung, record: dict[str, Any],
               continued_from: int | None = None) -> dict[str, Any]:
        """One rung of one racer; `continued_from`: the rung whose training this one resumed
        (None: it trained afresh)."""
        times = record.get("time_s") or {}
        fraction = rung_fraction(rung.train_rows, self.train_rows)
        entry = {"rung": index, "train_rows": rung.train_rows,
                 "of_train_rows": self.train_rows,
                 "status": record.get("status"), "validation": _score(record),
                 "validation_ci": (record.get("metrics_ci") or {}).get(self.metric),
                 "time_s": times.get("total"),
                 # the child's start, imports and model load; the schedule's measuring (a rung
                 # that did not resume); predicting the validation rows: what every rung pays
                 "load_s": times.get("load"), "predict_s": times.get("predict"),
                 "fitting_s": ((record.get("info") or {}).get("budget") or {}).get("fitting_s"),
                 "peak_rss_mb": (record.get("peak_memory_mb") or {}).get("cpu_rss"),
                 "kept": None,
                 # the share of the full run's training budget it had (None: all of it)
                 "budget_fraction": round(fraction, 4) if fraction is not None else None}
        if continued_from is not None:  # it trained only from that rung's share to this one's
            entry["continued_from_rung"] = continued_from
            entry["resumed_from_step"] = _resumed_step(record)
        if self.tie_metric:
            entry[self.tie_metric] = _metric(record, self.tie_metric)
        if record.get("degenerate"):
            entry["degenerate"] = True
        if record.get("status") != "ok":
            entry["error"] = record.get("error")
        return entry

    def _ranked(self, alive: list, results: dict[str, dict]) -> list[dict[str, Any]]:
        scored = []
        for job in alive:
            record = results[job.strategy]
            scored.append({"strategy": job.strategy, "score": _score(record),
                           "degenerate": bool(record.get("degenerate")),
                           "tie": _metric(record, self.tie_metric) if self.tie_metric else None,
                           "ci": (record.get("metrics_ci") or {}).get(self.metric)})
        return rank_rung(scored, self.order, self.higher_is_better)

    def _halve(self, index: int, rung: Rung, alive: list, results: dict[str, dict]):
        """Keep the better part of the rung; yield a record for each entrant that stops here."""
        last = index == len(self.rungs) - 1
        ranked = self._ranked(alive, results)
        able = [r for r in ranked if r["score"] is not None]
        keep = keep_count(len(able), rung, self.settings, last)
        kept_names = [r["strategy"] for r in able[:keep]]
        if not last and self.scored_rows < self.settings.min_validation_rows:
            extra = reprieved(able, keep, self.settings.reprieves, self.higher_is_better)
            kept_names += extra
        else:
            extra = []
        for result in ranked:
            result["kept"] = result["strategy"] in kept_names
            result["reprieved"] = result["strategy"] in extra
            entry = self.history[result["strategy"]][-1]
            entry["kept"] = result["kept"]
            if result["reprieved"]:
                entry["reprieved"] = True
        cutoff = min((r["score"] for r in able if r["kept"]), default=None,
                     key=lambda score: score if self.higher_is_better else -score)
        for result in ranked:
            if not result["kept"]:
                status = results[result["strategy"]].get("status")
                self.outcome[result["strategy"]] = "stopped" if status == "ok" else status
                if result["strategy"] in self.checkpoints:  # nothing will resume it
                    self._drop_checkpoint(result["strategy"])
        self.save()
        emit(self.on_event, RungFinished(index, rung.train_rows, self.train_rows, self.metric,
                                         [{k: v for k, v in r.items() if k != "ci"}
                                          for r in ranked]))
        by_name = {job.strategy: job for job in alive}
        for result in ranked:
            if not result["kept"]:
                yield self._out_record(by_name[result["strategy"]], results[result["strategy"]],
                                       index, rung, cutoff, len(kept_names))
        return [by_name[r["strategy"]] for r in ranked if r["kept"]]

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
        rows = f"{rung.train_rows} of {self.train_rows} train rows"
        where = (f"stopped by the race at rung {index + 1} of {len(self.rungs)} ({rows}): "
                 f"validation {self.metric} {score:.3f}")
        if cutoff is None:
            why = where
        elif score == cutoff:
            why = f"{where}, tied with the lowest of the {kept} kept; {tie_rule(self.task)}"
        else:
            why = f"{where}, below the {kept} kept (lowest kept {cutoff:.3f})"
        record = base_record(job, "skipped", why)
        record["log"] = rung_record.get("log", record["log"])
        record["time_s"]["total"] = round(sum(e["time_s"] or 0.0 for e in entries), 3)
        record["peak_memory_mb"]["cpu_rss"] = max((e["peak_rss_mb"] or 0.0 for e in entries),
                                                  default=0.0)
        record["info"]["race"] = self.info(job.strategy)
        return record


# The printers (race_plan_line, rung_line, race_outcome, race_wall_time) live in bench.race_lines.
from bench.race_lines import race_outcome, race_plan_line, race_wall_time, rung_line  # noqa: E402


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


__all__ = ["RACE_FILE", "TIE_METRIC", "RaceExecutor", "RaceSettings", "RaceStarted", "Rung",
           "RungFinished", "check_plan", "estimated_seconds", "is_baseline", "is_cheap",
           "keep_count", "race_outcome", "race_plan_line", "race_wall_time", "rank_rung",
           "reprieved", "rung_line", "rung_schedule", "tie_rule", "validation_subset"]
