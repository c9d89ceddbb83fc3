"""Where the race pays, by the project's own estimator: no training, seconds to run.

    python benchmarks/race_cost.py                           # the reference 2-core CPU
    python benchmarks/race_cost.py --gpu h200                # a GPU of the estimator's table
    python benchmarks/race_cost.py --train 100,1000 --racers 3,9 --tasks qa
    python benchmarks/race_cost.py --max-validation-rows 0   # rungs predict all validation
    python benchmarks/race_cost.py --no-continue             # every rung and final afresh
    python benchmarks/race_cost.py --eta 3                   # a third of each rung goes on

For each cell of a grid (task kind x train rows x number of expensive racers) it builds a data
profile shaped like the one bench writes in manifest.json (`profile`) and a real CandidateJob per
entrant, then asks bench.race_rules what bench.race would: which entrants are cheap (fixed) and
which race (estimated_seconds, runs_once), the rungs (rung_schedule, min_rows_for), the race's and
run-all's estimated seconds (estimated_cost: the advisor's estimator via profile_estimate and
estimated_rung_seconds) and whether the race runs (min_racers, race_pays under max_cost_ratio).
By default a racer that can resume its training (the catalogue's "resumable" trait: all the
LLM racers but adalora) continues its last rung at the next rung and the final, and is charged
the increments (RaceSettings.continue_rungs); `--no-continue` charges every rung and the final
afresh, as before continuation.

The racers are LLM-training strategies of the catalogue (EXPENSIVE, the first N of them); the
cheap entrants those of the task kind (CHEAP). Validation rows follow bench's split: a given
train file of T rows loses round(T x val_size) of them to validation (bench.plan's val_size,
0.1; no floor or cap), so a train split of n rows comes with about n x 0.1 / 0.9 validation
rows; a rung job predicts at most RaceSettings.max_validation_rows (200) of them
(`--max-validation-rows N` sets it, 0: all), the "val" column's "(scored)". Token lengths
are those of the bundled banking sample (classification) and SQuAD (qa), as their manifests
report them; `--labels` sets the number of classes.

The floor is what the race pays even with free rungs: the fixed entrants once and the winner
in full (continued, its rungs and final together train about its full run), over run-all;
"best" takes the cheapest racer as the winner, "worst" the dearest (race_cost itself charges
the finalist at the racers' mean final: its full run, or continued the rest of it). The
summary line names, per task kind, the first cell of the grid (fewest train rows, then fewest
racers) whose ratio is at or under TARGET_RATIO. Estimated, not measured: the estimator is off by tens of percent.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from bench.errors import TunewiseError
from bench.plan import BenchPlan, CandidateJob
from bench.race_rules import (RaceSettings, estimated_cost, estimated_seconds, runs_once,
                              min_rows_for, race_pays, rung_schedule, scored_validation_rows)

# The regret benchmark's target: the race finds the best in at most a third of run-all's time.
TARGET_RATIO = 1 / 3
# LLM-training strategies of the catalogue, in the order the racers are taken (the first N).
EXPENSIVE = ("lora", "dora", "ia3", "prompt-tuning", "full", "freeze", "loha", "adalora",
             "qlora")
# The entrants meant to be cheap (fixed) per task kind; the estimate decides, as in the race.
CHEAP = {"classification": ("knn", "transfer"), "qa": ("few-shot", "rag")}
# Token lengths as bench profiles them (SmolLM2's tokenizer): the bundled banking sample and
# the SQuAD subset of the regret runs (their manifests' `profile.token_length`).
TOKEN_LENGTH = {"classification": {"p50": 17, "p90": 34, "p99": 58, "max": 58},
                "qa": {"p50": 186, "p90": 303, "p99": 382, "max": 395}}


@dataclass(frozen=True)
class Machine:
    """Where the candidates would run, as a CandidateJob carries it."""

    name: str
    device: str  # cpu | cuda
    hardware: dict


REFERENCE_CPU = Machine("reference 2-core CPU", "cpu", {})


def gpu(name: str) -> Machine:
    """A GPU of the estimator's table (advisor.estimate_machine.GPU_PEAK_TFLOPS)."""
    from advisor.estimate_machine import GPU_PEAK_TFLOPS, gpu_key

    key = gpu_key(name)
    if key not in name.lower():
        raise TunewiseError(f"--gpu {name}: the estimator knows {', '.join(GPU_PEAK_TFLOPS)}")
    return Machine(key, "cuda", {"cuda": True, "gpu": key, "gpu_count": 1})


@dataclass
class Cell:
    """One grid cell's estimate. validation_rows: the split's; scored_rows: those a rung job
    predicts (RaceSettings.max_validation_rows); racers / fixed: as the race sorts them by
    their estimates; race_s / ratio / floors None when nothing races (every entrant estimated
    cheap)."""

    task: str
    train_rows: int
    validation_rows: int
    scored_rows: int
    asked_racers: int
    racers: list[str]
    fixed: list[str]
    rungs: list[int]
    race_s: float | None
    run_all_s: float | None
    floor_best: float | None
    floor_worst: float | None
    races: bool
    why: str

    @property
    def ratio(self) -> float | None:
        if self.race_s is None or not self.run_all_s:
            return None
        return self.race_s / self.run_all_s


# ------------------------------------------------------------------------------- the inputs


def validation_rows(train_rows: int, val_size: float | None = None) -> int:
    """Validation rows beside `train_rows` left for training, as bench carves them from a given
    train file: val_size of the file's rows (bench.plan.BenchPlan.val_size), no cap."""
    share = BenchPlan.val_size if val_size is None else val_size
    return max(1, round(train_rows * share / (1 - share)))


def data_profile(task: str, train: int, validation: int, test: int, labels: int) -> dict:
    """A profile as bench.data writes it in manifest.json, for the estimator."""
    profile = {"task": task, "rows": train + validation + test,
               "splits": {"train": train, "validation": validation, "test": test},
               "token_length": dict(TOKEN_LENGTH[task]), "token_counter": "smollm2-135m",
               "corpus_docs": 0, "has_corpus": False}
    if task == "classification":
        profile["labels"] = {f"label_{k}": train // labels for k in range(labels)}
    return profile


def job(strategy: str, task: str, machine: Machine, preset: str, model: str) -> CandidateJob:
    """A CandidateJob as bench.plan builds it, for what the estimator reads (strategy, preset,
    model, encoder, device, hardware, no --set); the paths are never used."""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    return CandidateJob(
        run_dir="-", run_id="race-cost", strategy=strategy, target=None,
        family=entry.family if entry else "", task=task, seed=0, seeds=[0], split_path="-",
        work_dir="-", log_path="-", preset=preset, overrides={}, config={}, model=model,
        encoder=BenchPlan.encoder, device=machine.device, options={}, timeout_s=None,
        max_memory_mb=None, metrics=[], price_row={}, hardware=dict(machine.hardware))


# ------------------------------------------------------------------------------- one cell


def cell(task: str, train: int, racers: int, machine: Machine, *, test_rows: int = 200,
         labels: int = 4, preset: str = "quick", model: str = BenchPlan.model,
         settings: RaceSettings | None = None) -> Cell:
    """The race's estimated cost on this cell, decided as bench.race decides it."""
    settings = settings or RaceSettings()
    validation = validation_rows(train)
    profile = data_profile(task, train, validation, test_rows, labels)
    names = [*EXPENSIVE[:racers], *CHEAP[task]]
    jobs = [job(name, task, machine, preset, model) for name in names]
    full = {j.strategy: estimated_seconds(j, profile) for j in jobs}
    fixed = [name for name in names if runs_once(name, full[name], settings)]
    racing = [name for name in names if name not in fixed]
    split = {"task": task, "labels": list(profile.get("labels") or [])}
    rungs = (rung_schedule(train, len(racing), settings, min_rows_for(split, settings))
             if racing else [])
    cost = estimated_cost(jobs, racing, fixed, rungs, profile, train, validation, settings)
    floors = _floors(racing, fixed, full, cost)
    races, why = _decision(racing, cost, settings)
    return Cell(task, train, validation, scored_validation_rows(validation, settings),
                racers, racing, fixed,
                [r.train_rows for r in rungs], cost[0] if cost else None,
                cost[1] if cost else _sum(full.values()), *floors, races, why)


def _sum(values) -> float | None:
    values = list(values)
    return None if any(v is None for v in values) else float(sum(values))


def _floors(racing: list[str], fixed: list[str], full: dict, cost) -> tuple:
    """(best, worst): the fixed entrants and the cheapest / dearest racer in full, over
    run-all; (None, None) without a cost."""
    if not cost or not racing:
        return None, None
    paid = sum(full[name] for name in fixed)
    by_cost = sorted(full[name] for name in racing)
    return (paid + by_cost[0]) / cost[1], (paid + by_cost[-1]) / cost[1]


def _decision(racing: list[str], cost, settings: RaceSettings) -> tuple[bool, str]:
    """Whether bench.race would race, and why not."""
    if not racing:
        return False, f"every entrant estimated at <= {settings.cheap_s:.0f} s"
    if len(racing) < settings.min_racers:
        return False, f"fewer than {settings.min_racers} racers"
    if cost is None:
        return True, "cost unknown: races"
    if not race_pays(cost, settings):
        return False, f"above {settings.max_cost_ratio:.2f} of run-all"
    return True, ""


def grid(tasks: list[str], trains: list[int], racer_counts: list[int], machine: Machine,
         **options) -> list[Cell]:
    """Every cell, task by task, fewest train rows first, then fewest racers."""
    return [cell(task, train, racers, machine, **options)
            for task in tasks for train in trains for racers in racer_counts]


# ------------------------------------------------------------------------------- printing


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table_lines(cells: list[Cell]) -> list[str]:
    """One row per cell. "val" is the validation split's rows, "(scored)" those each rung job
    predicts when fewer; "LLM" is the number of EXPENSIVE strategies entered, "racing" and
    "fixed" how many entrants (those and the task kind's CHEAP ones) race or run once, as their
    estimates sort them."""
    lines = ["| task | train | val (scored) | LLM | racing | fixed | rungs (train rows) | race s "
             "| run-all s | ratio | floor best-worst | races? |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|"]
    for c in cells:
        floor = ("n/a" if c.floor_best is None
                 else f"{c.floor_best:.2f}-{c.floor_worst:.2f}")
        races = "yes" if c.races else f"no: {c.why}"
        val = (f"{c.validation_rows} ({c.scored_rows})" if c.scored_rows < c.validation_rows
               else str(c.validation_rows))
        lines.append(f"| {c.task} | {c.train_rows} | {val} | {c.asked_racers} "
                     f"| {len(c.racers)} | {len(c.fixed)} "
                     f"| {' → '.join(map(str, c.rungs)) or '-'} "
                     f"| {_fmt(c.race_s, 0)} | {_fmt(c.run_all_s, 0)} | {_fmt(c.ratio)} "
                     f"| {floor} | {races} |")
    return lines


def summary_line(cells: list[Cell], task: str, target: float = TARGET_RATIO) -> str:
    """The first cell of `task` (grid order) whose ratio is at or under `target`, or the
    lowest ratio when none is."""
    mine = [c for c in cells if c.task == task]
    first = next((c for c in mine if c.ratio is not None and c.ratio <= target), None)
    if first:
        return (f"{task}: the race is first estimated at or under {target:.2f} of run-all with "
                f"{first.train_rows} train rows and {first.asked_racers} LLM racers "
                f"({first.ratio:.2f})")
    known = [c for c in mine if c.ratio is not None]
    if not known:
        return f"{task}: nothing races on this grid (every entrant estimated cheap)"
    low = min(known, key=lambda c: c.ratio)
    return (f"{task}: never at or under {target:.2f} of run-all on this grid; lowest "
            f"{low.ratio:.2f} with {low.train_rows} train rows and {low.asked_racers} LLM racers")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated whole numbers")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected whole numbers of at least 1")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=_ints, default=[100, 300, 1000, 3000, 10000],
                        help="train rows, comma-separated (default 100,300,1000,3000,10000)")
    parser.add_argument("--racers", type=_ints, default=[3, 6, 9],
                        help=f"expensive entrants, comma-separated, at most {len(EXPENSIVE)} "
                        "(default 3,6,9)")
    parser.add_argument("--test-rows", type=int, default=200)
    parser.add_argument("--labels", type=int, default=4, help="classes (default 4)")
    parser.add_argument("--tasks", default="classification,qa")
    parser.add_argument("--preset", default="quick", choices=("quick", "full"))
    parser.add_argument("--model", default=BenchPlan.model)
    parser.add_argument("--max-validation-rows", type=int, metavar="N",
                        default=RaceSettings.max_validation_rows,
                        help="validation rows a rung job predicts at most (the race's "
                        "RaceSettings.max_validation_rows, default %(default)s; 0: all of them)")
    parser.add_argument("--gpu", metavar="NAME", help="a GPU of the estimator's table "
                        "(default: the reference 2-core CPU)")
    parser.add_argument("--no-continue", action="store_true",
                        help="every rung and the final train afresh (RaceSettings."
                        "continue_rungs False); default: a resumable racer continues its last "
                        "rung")
    parser.add_argument("--eta", type=int, default=RaceSettings.eta,
                        help="1/eta of a rung goes on (RaceSettings.eta, default %(default)s)")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        if unknown := [t for t in tasks if t not in CHEAP]:
            raise TunewiseError(f"--tasks {','.join(unknown)}: choose from {', '.join(CHEAP)}")
        if max(args.racers) > len(EXPENSIVE):
            raise TunewiseError(f"--racers: at most {len(EXPENSIVE)} ({', '.join(EXPENSIVE)})")
        machine = gpu(args.gpu) if args.gpu else REFERENCE_CPU
        settings = RaceSettings(max_validation_rows=args.max_validation_rows, eta=args.eta,
                                continue_rungs=not args.no_continue)
        settings.check()
        cells = grid(tasks, args.train, args.racers, machine, test_rows=args.test_rows,
                     labels=args.labels, preset=args.preset, model=args.model,
                     settings=settings)
    except TunewiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Race vs run-all, estimated, not measured ({machine.name}, preset {args.preset}, "
          f"{args.model}, {args.test_rows} test rows, {args.labels} labels, validation "
          f"{BenchPlan.val_size:g} of the train file, "
          + (f"a rung job scores at most {settings.max_validation_rows} of it"
             if settings.max_validation_rows else "a rung job scores all of it") + "; "
          f"LLM racers: the first "
          f"N of {', '.join(EXPENSIVE)}; eta {settings.eta}; "
          + ("a resumable racer's next rung and final continue its last rung"
             if settings.continue_rungs else "every rung and the final train afresh")
          + f"; races at or under max_cost_ratio {settings.max_cost_ratio:.2f})\n")
    print("\n".join(table_lines(cells)))
    print()
    for task in tasks:
        print(summary_line(cells, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
