"""The race's rules, pure: its settings, the rungs' schedule, how many go on from a rung, how
a rung's results are ranked and ties broken, and which candidates are cheap enough to run once
at full budget instead of racing. bench.race runs the race with them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from bench.errors import TunewiseError


@dataclass(frozen=True)
class RaceSettings:
    """eta: 1/eta of a rung goes on (3: the best third, Hyperband's default; 2: the better
    half, more rungs, each a process start and a model load); finalists: how many train on the
    full budget and meet the test split; min_rows: the smallest rung's train rows (and at least two
    rows per class), below which a validation score says little. cheap_s: an entrant whose full
    run is estimated at this many seconds or fewer runs once on the full budget instead of
    racing (a rung of it would cost about as much: the process start and model load dominate);
    min_racers: fewer expensive entrants than this and there is no race (run-all);
    min_validation_rows / reprieves: below that many validation rows scored, up to `reprieves`
    entrants per rung inside the lowest kept one's 95% interval are kept too.
    max_validation_rows: a rung job (and a fixed entrant's validation run) predicts at most this
    many validation rows, a seeded subset (stratified by label for classification), the same
    at every rung, so that every entrant of a rung is scored on the same rows; 0: all of them.
    bench keeps a tenth of the train file for validation with no cap (1,111 rows beside
    10,000), and every rung job predicting all of them made the race dearer the more data
    there was (benchmarks/race_cost.py, 2026-12-03, before the cap: nine LLM racers on 10,000
    classification rows, 2.29 of run-all); on 200 rows an accuracy's 95% interval is at most
    about +-7 points wide.
    max_cost_ratio: the race runs only when its estimated cost (the fixed entrants once, the
    racers' rungs, the finalists' full runs) is at most this fraction of running every entrant
    in full. Each rung job pays a process start and a model load, and a training candidate
    its rung's share of the full run's training (a rung on r of N rows: r/N of the steps and
    time bound, at least strategies.training_budget.RUNG_MIN_STEPS steps). Before rungs had
    that share they trained to the budget's min_steps, about a full run on small data
    (measured with benchmarks/advisor_regret.py on squad_mini, 2026-12-03: race 1069 s
    against run-all 940 s); the process starts and model loads remain, and a race that saves
    little is not worth the risk of stopping the best entrant early, and the estimates
    themselves are off by tens of percent.
    continue_rungs: a racer whose strategy can resume its training (the catalogue's
    "resumable" trait: the LLM trainers but adalora) continues: its next rung resumes its last
    rung's Trainer checkpoint (weights, optimizer, the learning-rate schedule over the full
    run's steps) and trains only the extra steps, and the winner's final resumes its last rung
    and trains to the full run's steps, so a racer's rungs and final together cost about one
    full run (and a process start per rung) instead of one per rung; the cost estimate charges
    each such job its increment. False: every rung and the final train afresh."""

    eta: int = 3
    finalists: int = 1
    min_rows: int = 16
    cheap_s: float = 60.0
    min_racers: int = 3
    min_validation_rows: int = 20
    reprieves: int = 1
    max_cost_ratio: float = 0.67
    max_validation_rows: int = 200
    continue_rungs: bool = True

    def check(self) -> None:
        if self.eta < 2:
            raise TunewiseError(f"race: eta {self.eta} must be at least 2 (2 keeps the better half)")
        if self.finalists < 1:
            raise TunewiseError(f"race: finalists {self.finalists} must be at least 1")
        if self.min_rows < 1:
            raise TunewiseError(f"race: min_rows {self.min_rows} must be at least 1")
        if self.cheap_s < 0:
            raise TunewiseError(f"race: cheap_s {self.cheap_s} must not be negative")
        if self.min_racers < 2:
            raise TunewiseError(f"race: min_racers {self.min_racers} must be at least 2 "
                                "(one racer has nobody to race)")
        if self.max_cost_ratio <= 0:
            raise TunewiseError(f"race: max_cost_ratio {self.max_cost_ratio} must be positive")
        if self.min_validation_rows < 0 or self.reprieves < 0:
            raise TunewiseError("race: min_validation_rows and reprieves must not be negative")
        if self.max_validation_rows < 0:
            raise TunewiseError(f"race: max_validation_rows {self.max_validation_rows} must not "
                                "be negative (0: score every validation row)")


@dataclass(frozen=True)
class Rung:
    """One validation rung: every entrant still in trains on `train_rows` rows; `halvings` is how
    many halvings this rung does at once (more than one when small data merged two rungs that
    would have had the same number of rows)."""

    train_rows: int
    halvings: int = 1


@dataclass
class RaceStarted:
    """Before the first rung: who races, and on what budgets. `validation_rows`: the rows every
    rung job is scored on, of `of_validation_rows` (None: the same, no subset); `fixed`: the
    entrants that run once on the full budget and the test split beside the race (cheap, or
    training nothing); `note`: why there is no race (every entrant then runs in full), None
    when there is one; `eta`: 1/eta of a rung's racers go on."""

    entrants: list[str]
    rungs: list[Rung]
    train_rows: int
    validation_rows: int
    metric: str
    fixed: list[str] = field(default_factory=list)
    note: str | None = None
    of_validation_rows: int | None = None
    eta: int = 3


def going_on(eta: int) -> str:
    """Who goes on after a rung, in words: "the better half" (eta 2), "the best third" (3)."""
    return {2: "the better half", 3: "the best third", 4: "the best quarter"}.get(
        eta, f"the best 1/{eta}")


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


# The second metric that breaks a tie on the primary one (same split, same rows): macro-F1 tells
# apart two classifiers of equal accuracy by how they serve the smaller classes.
TIE_METRIC = {"classification": "macro_f1", "qa": "exact_match"}
TIE_RULE = ("ties go to the entrant whose predictions did not collapse, then to the better "
            "{tie_metric}, then to the one the advisor ranked higher")


def tie_rule(task: str) -> str:
    """How a tie on the primary metric is broken, in words (the stop records and race.json)."""
    tie_metric = TIE_METRIC.get(task)
    rule = TIE_RULE.format(tie_metric=tie_metric or "")
    return rule if tie_metric else rule.replace(", then to the better ", "")


def rank_rung(results: list[dict[str, Any]], order: list[str],
              higher_is_better: bool = True) -> list[dict[str, Any]]:
    """The rung's results best first: scored before unscored (failed), then by validation score,
    a collapsed candidate (one answer for every row) after one that is not, then by the tie
    metric (`tie`, when the results carry it), then the entrants' order (the advisor's
    ranking)."""
    def signed(value: float | None) -> float:
        if value is None:
            return math.inf  # unknown sorts last
        return -value if higher_is_better else value

    def key(result: dict[str, Any]):
        score = result.get("score")
        return (score is None, signed(score) if score is not None else 0.0,
                bool(result.get("degenerate")), signed(result.get("tie")),
                order.index(result["strategy"]))

    return sorted(results, key=key)


def reprieved(able: list[dict[str, Any]], keep: int, cap: int,
              higher_is_better: bool = True) -> list[str]:
    """On a tiny validation split: the entrants below the cut (able is ranked, all scored) whose
    score lies inside the 95% interval (`ci`) of the lowest kept one, best first, at most
    `cap` — the rung cannot tell them apart from it."""
    if keep < 1 or keep >= len(able) or cap < 1:
        return []
    ci = able[keep - 1].get("ci")
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2):
        return []
    low, high = ci
    inside = [r["strategy"] for r in able[keep:]
              if (r["score"] >= low if higher_is_better else r["score"] <= high)]
    return inside[:cap]


def scored_validation_rows(validation_rows: int, settings: RaceSettings) -> int:
    """How many validation rows a rung job predicts and is scored on: all of them, at most
    settings.max_validation_rows (0: no cap)."""
    cap = settings.max_validation_rows
    return min(validation_rows, cap) if cap else validation_rows


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


def can_continue(strategy: str) -> bool:
    """Its training resumes a Trainer checkpoint to a larger share of the full run's steps
    (the catalogue's "resumable" trait): a race's next rung and final continue its last rung."""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    return entry is not None and "resumable" in entry.traits


def continues(strategy: str, settings: RaceSettings) -> bool:
    """A racer of this race whose rungs and final continue its last rung (continue_rungs)."""
    return settings.continue_rungs and can_continue(strategy)


def estimated_seconds(job, profile: dict[str, Any] | None) -> float | None:
    """The entrant's full run in seconds: the plan's estimate (the advisor's, `job.estimate`),
    else the advisor's estimator on the run's data profile, preset and --set overrides (the
    reference 2-core CPU, or this GPU). None when neither can say (a plugin strategy without an
    estimate profile): such an entrant races, as an expensive one would."""
    given = (job.estimate or {}).get("time_s")
    if isinstance(given, (int, float)):
        return float(given)
    return profile_estimate(job, profile)


def estimated_rung_seconds(job, profile: dict[str, Any] | None, train_rows: int,
                           validation_rows: int, full_train_rows: int | None = None,
                           from_fraction: float | None = None) -> float | None:
    """The entrant's run at one rung: trained on `train_rows` of the `full_train_rows` rows
    (default: the profile's train split) with that share of the full run's training budget, as
    the child gives a rung job (bench.race's budget_fraction, strategies.training_budget's
    RungShare: at least RUNG_MIN_STEPS steps), predicting the validation rows. A candidate
    that does not train through strategies.training is estimated on its rung's rows alone.
    from_fraction: a racer that continues (RaceSettings.continue_rungs) and the share its
    previous rung reached (0.0 at its first rung): its steps are the increment of the full
    run's time-bounded schedule (advisor.estimate.continuing_workload); None: afresh."""
    if not profile:
        return None
    splits = {**(profile.get("splits") or {}), "train": train_rows, "test": validation_rows}
    full_rows = full_train_rows or int((profile.get("splits") or {}).get("train") or 0)
    fraction = rung_fraction(train_rows, full_rows) or 1.0
    return profile_estimate(job, {**profile, "splits": splits}, budget_fraction=fraction,
                            full_train_rows=full_rows, continues_from=from_fraction)


def estimated_final_seconds(job, profile: dict[str, Any] | None, from_fraction: float,
                            full_train_rows: int) -> float | None:
    """The final of a racer that continues its last rung (which trained to `from_fraction` of
    the full run's schedule): the rest of the schedule on every train row, then the test
    split, with its own process start and model load."""
    return profile_estimate(job, profile, full_train_rows=full_train_rows,
                            continues_from=from_fraction)


def rung_fraction(train_rows: int, full_train_rows: int) -> float | None:
    """A rung's share of the full run's training budget: its train rows over the split's;
    None when it trains on all of them (the full budget)."""
    if full_train_rows <= 0 or train_rows >= full_train_rows:
        return None
    return train_rows / full_train_rows


def profile_estimate(job, profile: dict[str, Any] | None, *, budget_fraction: float = 1.0,
                     full_train_rows: int = 0, continues_from: float | None = None
                     ) -> float | None:
    """The advisor's estimator for `job` on a data profile (None when it cannot say); with a
    budget_fraction below 1, a race rung's share of the budget of `full_train_rows` rows;
    `continues_from`: a continuing racer's job (Workload.continues_from)."""
    if not profile:
        return None
    from advisor.estimate import preset_max_steps, shape_for, this_machine, workload_from_profile
    from advisor.recommend import estimates_for

    def shape(name: str):
        try:
            return shape_for(name)
        except (TunewiseError, OSError, ValueError):
            return None  # a model without a known shape: its LLM candidates are not estimated

    try:
        work = dataclasses.replace(
            workload_from_profile(profile, max_steps=preset_max_steps(job.preset)),
            budget_fraction=budget_fraction, full_train_rows=full_train_rows,
            continues_from=continues_from)
        machine = this_machine(job.hardware, measure=False, cpu_only=job.device == "cpu")
        found = estimates_for([job.strategy], shape(job.model), work, machine,
                              shape(job.encoder), preset=job.preset,
                              overrides={job.strategy: dict(job.overrides)})
    except (TunewiseError, KeyError, ValueError):
        return None
    seconds = (found.get(job.strategy) or {}).get("time_s")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def race_cost(racers: list[str], fixed: list[str], rungs: list[Rung],
              full_s: dict[str, float | None], rung_s: list[dict[str, float | None]],
              settings: RaceSettings, final_s: dict[str, float | None] | None = None
              ) -> tuple[float, float] | None:
    """(race, run-all) in estimated seconds; None when an estimate it needs is unknown.
    Run-all: every entrant in full. The race: the fixed entrants once in full, at each rung the
    racers still in at the racers' mean rung cost, then the finalists at the racers' mean
    final cost: `final_s` (a racer that continues its last rung pays the rest of its
    training; default: every racer in full, full_s)."""
    final_s = final_s if final_s is not None else full_s
    needed = ([full_s.get(n) for n in (*racers, *fixed)] + [final_s.get(n) for n in racers]
              + [costs.get(n) for costs in rung_s for n in racers])
    if not racers or any(v is None for v in needed):
        return None
    run_all = sum(full_s[n] for n in (*racers, *fixed))
    race, alive = sum(full_s[n] for n in fixed), len(racers)
    for rung, costs in zip(rungs, rung_s):
        race += alive * sum(costs[n] for n in racers) / len(racers)
        alive = keep_count(alive, rung, settings, last=False)
    race += min(settings.finalists, len(racers)) * sum(final_s[n] for n in racers) / len(racers)
    return race, run_all


def estimated_cost(jobs: list, racers: list[str], fixed: list[str], rungs: list[Rung],
                   profile: dict[str, Any] | None, train_rows: int, validation_rows: int,
                   settings: RaceSettings) -> tuple[float, float] | None:
    """(race, run-all) estimated seconds of a race of `jobs` on this data (race_cost): every
    entrant's full run and each racer's rungs from the estimator on the same data profile, so
    that they compare; None when unknown. A rung predicts the `validation_rows` the race
    scores (at most settings.max_validation_rows of them). A racer that continues
    (`continues`) is charged, at each rung and at the final, the increment of the full run's
    budget over its previous rung; the others each rung's whole share and the final in full.
    bench.race decides with it, and benchmarks/race_cost.py tabulates it."""
    by_name = {job.strategy: job for job in jobs}
    full = {name: profile_estimate(job, profile) for name, job in by_name.items()}
    scored = scored_validation_rows(validation_rows, settings)
    reached = [rung_fraction(rung.train_rows, train_rows) or 1.0 for rung in rungs]
    continuing = {name for name in racers if continues(name, settings)}

    def previous(name: str, k: int) -> float | None:  # the share its rung k continues from
        if name not in continuing:
            return None  # afresh
        return reached[k - 1] if k > 0 else 0.0

    per_rung = [{name: estimated_rung_seconds(by_name[name], profile, rung.train_rows,
                                              scored, train_rows, previous(name, k))
                 for name in racers} for k, rung in enumerate(rungs)]
    final = {name: (estimated_final_seconds(by_name[name], profile, reached[-1], train_rows)
                    if name in continuing and rungs else full[name]) for name in racers}
    return race_cost(racers, fixed, rungs, full, per_rung, settings, final)


def race_pays(cost: tuple[float, float] | None, settings: RaceSettings) -> bool:
    """Race unless its estimated cost is above max_cost_ratio of run-all's (unknown: race)."""
    return cost is None or cost[0] <= settings.max_cost_ratio * cost[1]


def trains_nothing(strategy: str) -> bool:
    """It trains nothing (zero-shot, few-shot, rag, knn: the catalogue's profile has no
    `train`): a rung of it on fewer train rows measures about what its full run does, so it
    runs once, however dear its predictions (a QA few-shot generates for every row)."""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    return entry is not None and entry.profile is not None and entry.profile.train is None


def runs_once(strategy: str, seconds: float | None, settings: RaceSettings) -> bool:
    """A fixed entrant: it runs once on the full budget and the test split instead of racing,
    being cheap (is_cheap) or training nothing (trains_nothing)."""
    return is_cheap(seconds, settings) or trains_nothing(strategy)


def is_cheap(seconds: float | None, settings: RaceSettings) -> bool:
    """Runs once on the full budget instead of racing: its whole run is estimated to cost no
    more than `cheap_s` (unknown: not cheap)."""
    return seconds is not None and seconds <= settings.cheap_s
