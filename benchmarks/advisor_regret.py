"""Regret of the advisor, and the race against run-all, measured on real datasets.

    python benchmarks/advisor_regret.py                              # every dataset below
    python benchmarks/advisor_regret.py --datasets banking_support,uci_sentiment_sentences
    python benchmarks/advisor_regret.py --datasets banking_support --max-rows 60 \\
        --max-test-rows 24 --candidates majority,knn,transfer        # a small, quick check
    python benchmarks/advisor_regret.py --json regret.json           # the rows as JSON too
    python benchmarks/advisor_regret.py --combine a.json b.json      # one table from such files
    python benchmarks/advisor_regret.py --datasets X --repick X.json --run-all-dir RUN \
        --json X2.json               # the advisor's picks again, scored on that run-all

For each dataset (the bundled samples, and the classification, QA and generation sets under
--data-root, default ../shared/data beside the repository), on ONE split:
1. the advisor's top pick for the bundled answers file of the task kind (advisor/samples/), with
   the data path swapped in: rules only, and with probes when this advisor has them
   (`recommend(..., probe=True)`; the column says "n/a" otherwise);
2. the race (bench.race) over a broad fixed candidate set (per task kind, below; the picks are
   added when they are not in it): successive halving on validation, the winner trained on
   every train row and tested once;
3. run-all: every candidate of the same set on the full budget and the test split (`tunewise
   bench`). When the race declined (no race: every candidate ran in full on test, the same
   split, seed and budgets), its run is run-all's too and is not repeated.
It prints, per dataset, the measured best of run-all with its 95% interval, the points lost by
following each pick (regret = best - pick, in points of the primary metric x 100) and whether
the pick is inside the best's interval (its score >= the interval's low end); the race's
winner, its regret and whether it is run-all's best (or tied with it on test); the wall
time of the race and of run-all, and the race's floor: its choice's full run (the race's own
record of it) over run-all's wall time, the least a race that trains its winner in full can
cost next to run-all, however cheap its rungs. Targets (issue 15): the pick with probes
within 2 points of the best or inside its interval on >= 80% of the datasets; the race finds
run-all's best on >= 80% in <= 1/3 of its wall time.

It trains many candidates: tens of minutes per dataset on a CPU. --max-rows / --max-test-rows
slice each dataset (label-balanced for classification) into --out before running. To keep each
finished dataset, run one dataset per process (`--datasets X --json X.json`) and print the
table of them all with `--combine X.json Y.json ...` (no training).
"""

from __future__ import annotations

import argparse
import inspect
import json
import shutil
import sys
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "bench" / "samples"
DEFAULT_DATA_ROOT = ROOT.parent / "shared" / "data"
ANSWERS = ROOT / "advisor" / "samples"  # <task>.yaml: the answers file per task kind

# name -> (where: "samples" (bundled) or "shared" (--data-root), task kind)
DATASETS: dict[str, tuple[str, str]] = {
    "banking_support": ("samples", "classification"),
    "squad_mini": ("samples", "qa"),
    "self_instruct_mini": ("samples", "generation"),
    "hh_helpful_mini": ("samples", "preference"),
    "banking77": ("shared", "classification"),
    "uci_sentiment_sentences": ("shared", "classification"),
    "pubmedqa": ("shared", "qa"),
    "squad_v1_1_dev_subset": ("shared", "qa"),
    "self_instruct_human": ("shared", "generation"),
}
# The broad fixed candidate set per task kind: a spread of families, each in its quick preset.
CANDIDATES: dict[str, list[str]] = {
    "classification": ["majority", "zero-shot", "few-shot", "knn", "transfer", "setfit",
                       "encoder-ft", "lora"],
    "qa": ["zero-shot", "few-shot", "rag", "lora"],
    "generation": ["zero-shot", "few-shot", "lora"],
    "preference": ["zero-shot", "sft-chosen", "dpo"],
}
# The LLM fine-tuning methods a team weighing "how to fine-tune" runs side by side, besides
# LoRA: the race has something to race only when several expensive candidates are in (with
# one, every candidate runs in full and the race costs what run-all does).
METHODS = ["dora", "ia3", "prompt-tuning", "full", "freeze"]
# And the rest of the catalogue's LLM trainers that run on a CPU: nine racing beside each
# other, where a team that runs "everything" pays for nine full runs. qlora is left out: its
# NF4 weights need CUDA, so on a CPU it is a skipped record in both arms.
MORE_METHODS = ["loha", "adalora", "prefix-tuning"]


def _with(extra: list[str]) -> dict[str, list[str]]:
    return {task: names + (extra if task != "preference" else [])
            for task, names in CANDIDATES.items()}


CANDIDATE_SETS: dict[str, dict[str, list[str]]] = {
    "spread": CANDIDATES,  # one candidate per family
    "methods": _with(METHODS),  # and the fine-tuning methods a team weighs beside LoRA
    "all-methods": _with(METHODS + MORE_METHODS),  # and every other one a CPU runs
}
DATA_FILES = ("train.jsonl", "test.jsonl")
POINTS = 100.0  # a metric in 0-1 -> points
NEAR_POINTS = 2.0  # "within 2 points of the best" (issue 15's target)


# ------------------------------------------------------------------------------- pure parts


def points_lost(best: float | None, value: float | None) -> float | None:
    """Regret in points: how much lower `value` is than `best` (0 when it is the best)."""
    if best is None or value is None:
        return None
    return round(max(0.0, best - value) * POINTS, 1)


def inside_interval(value: float | None, interval: list[float] | None) -> bool | None:
    """Is `value` inside the best's 95% interval (not measurably worse than the best)?"""
    if value is None or not interval or len(interval) != 2:
        return None
    return value >= interval[0]


def score(record: dict[str, Any] | None) -> float | None:
    if not record or record.get("status") != "ok":
        return None
    value = (record.get("metrics") or {}).get(record.get("primary_metric"))
    return float(value) if isinstance(value, (int, float)) else None


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The measured best of run-all: highest primary metric among finished candidates."""
    scored = [r for r in records if score(r) is not None]
    return max(scored, key=score) if scored else None


def race_winner(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in records
                 if ((r.get("info") or {}).get("race") or {}).get("outcome") == "winner"), None)


def _race_info(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next((r["info"]["race"] for r in records
                 if isinstance((r.get("info") or {}).get("race"), dict)), {})


def race_choice(records: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The race's choice: the best of its own test records, as run-all chooses — the racers'
    winner, the fixed (cheap) entrants and the baselines met the test split; the stopped
    racers did not. When it did not race (too few expensive entrants) it ran them all in
    full."""
    if _race_info(records).get("raced") is False:
        return best_record(records), "no race: ran all"
    winner = race_winner(records)
    if winner is None:
        return None, "the race had no winner"
    chosen = best_record(records)
    if chosen is None or chosen["strategy"] == winner["strategy"]:
        return winner, ""
    return chosen, f"the racers' winner {winner['strategy']} {score(winner):.3f} on test"


def full_run_seconds(record: dict[str, Any] | None) -> float | None:
    """Seconds of a candidate's run on the full budget (its record's time_s.total)."""
    seconds = ((record or {}).get("time_s") or {}).get("total")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def rung_cost(race: dict[str, Any]) -> dict[str, float]:
    """What the race's validation runs cost (race.json): how many child processes, their
    seconds, and the parts of them that are not training: starting up (imports, model load: the
    `load` phase), measuring the step and validation time that plans a schedule (`fitting_s`: a
    rung that did not resume a checkpoint) and predicting the validation rows (`predict`). A
    race.json from before 2026-12-04 has no fitting or predicting seconds: 0 there."""
    entries = [e for rungs in (race.get("rungs") or {}).values() for e in rungs
               if (e.get("time_s") or 0) > 0]  # a fixed entrant's carried score cost nothing

    def total(key: str) -> float:
        return round(sum(e.get(key) or 0.0 for e in entries), 1)

    return {"jobs": len(entries), "seconds": total("time_s"), "load_seconds": total("load_s"),
            "fitting_seconds": total("fitting_s"), "predict_seconds": total("predict_s")}


@dataclass
class Arm:
    """One way of choosing a candidate: its choice, the measured score, what it cost."""

    pick: str | None
    score: float | None = None
    regret: float | None = None  # points below the best
    inside: bool | None = None  # inside the best's 95% interval
    note: str = ""


@dataclass
class Row:
    dataset: str
    task: str
    metric: str
    best: str | None
    best_score: float | None
    best_ci: list[float] | None
    rules: Arm
    probes: Arm
    race: Arm
    race_found_best: bool | None
    race_wall_s: float
    run_all_wall_s: float
    notes: list[str] = field(default_factory=list)
    # the race's choice's own full run, in seconds (None: unknown, or a row from before it was
    # recorded)
    race_choice_full_s: float | None = None

    @property
    def time_ratio(self) -> float | None:
        return self.race_wall_s / self.run_all_wall_s if self.run_all_wall_s else None

    @property
    def floor(self) -> float | None:
        """The race's choice's full run over run-all's wall time: the least a race that trains
        its winner in full can cost next to run-all (its rungs free)."""
        if self.race_choice_full_s is None or not self.run_all_wall_s:
            return None
        return self.race_choice_full_s / self.run_all_wall_s


def arm(pick: str | None, by_name: dict[str, dict], best: dict | None,
        note: str = "", measured: dict | None = None) -> Arm:
    """A pick scored on run-all's record of that candidate (or on `measured`, the race's own
    record of its winner), with its regret against the best."""
    record = measured if measured is not None else by_name.get(pick or "")
    if pick is not None and record is None:
        note = note or "not in the measured set"
    value = score(record)
    best_value = score(best)
    interval = ((best or {}).get("metrics_ci") or {}).get((best or {}).get("primary_metric"))
    return Arm(pick, value, points_lost(best_value, value), inside_interval(value, interval),
               note)


def found_best(chosen: dict | None, best: dict | None, by_name: dict[str, dict]) -> bool | None:
    """Did the race choose run-all's best? Its name, or a candidate that run-all measured at
    exactly the best's score on the same test rows (a tie: both are the best)."""
    if chosen is None or best is None:
        return None
    if chosen["strategy"] == best["strategy"]:
        return True
    return score(by_name.get(chosen["strategy"])) == score(best)


def regret_row(dataset: str, task: str, run_all: list[dict], raced: list[dict],
               picks: dict[str, tuple[str | None, str]], race_wall_s: float,
               run_all_wall_s: float) -> Row:
    """The row of one dataset, from run-all's and the race's records and the advisor's picks
    ({"rules": (pick, note), "probes": (pick, note)})."""
    by_name = {r["strategy"]: r for r in run_all}
    best = best_record(run_all)
    winner, race_note = race_choice(raced)
    metric = (best or (run_all[0] if run_all else {})).get("primary_metric", "?")
    interval = ((best or {}).get("metrics_ci") or {}).get(metric)
    rules_pick, rules_note = picks.get("rules", (None, "no pick"))
    probes_pick, probes_note = picks.get("probes", (None, "no pick"))
    race_arm = arm(winner["strategy"] if winner else None, by_name, best, race_note,
                   measured=winner)
    return Row(dataset, task, metric, best["strategy"] if best else None, score(best),
               interval, arm(rules_pick, by_name, best, rules_note),
               arm(probes_pick, by_name, best, probes_note), race_arm,
               found_best(winner, best, by_name),
               round(race_wall_s, 1), round(run_all_wall_s, 1),
               # the choice's full run as run-all ran it (a continued final trains only the rest)
               race_choice_full_s=full_run_seconds(by_name.get(winner["strategy"])
                                                   if winner else None))


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _yes(flag: bool | None) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


def _arm_cells(a: Arm) -> list[str]:
    if a.pick is None:
        return [f"n/a ({a.note})" if a.note else "—", "—", "—"]
    if a.score is None and a.note:
        return [f"{a.pick} ({a.note})", "—", "—"]
    shown = f"{a.pick} {_value(a.score)}" + (f" ({a.note})" if a.note else "")
    return [shown, "—" if a.regret is None else f"{a.regret:.1f}", _yes(a.inside)]


HEADER = ["dataset", "task", "best (run-all) [95% CI]", "rules pick", "regret", "in CI",
          "probes pick", "regret", "in CI", "race winner", "regret", "= best",
          "race s", "run-all s", "race/all", "floor"]


def table_lines(rows: list[Row]) -> list[str]:
    """The regret table as Markdown (printed, and pasted into README as it is)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        ci = f" [{row.best_ci[0]:.3f}, {row.best_ci[1]:.3f}]" if row.best_ci else ""
        ratio = row.time_ratio
        cells = [row.dataset, row.task, f"{row.best or '—'} {_value(row.best_score)}{ci}",
                 *_arm_cells(row.rules), *_arm_cells(row.probes), *_arm_cells(row.race)[:2],
                 _yes(row.race_found_best), f"{row.race_wall_s:.0f}", f"{row.run_all_wall_s:.0f}",
                 "—" if ratio is None else f"{ratio:.2f}",
                 "n/a" if row.floor is None else f"{row.floor:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def summary_lines(rows: list[Row]) -> list[str]:
    """How often each target was met, over the datasets that could be scored."""
    def share(flags: list[bool]) -> str:
        return f"{sum(flags)}/{len(flags)}" if flags else "0/0"

    def near(name: str) -> str:  # the arm's pick within NEAR_POINTS or inside the interval
        arms = [getattr(r, name) for r in rows if getattr(r, name).regret is not None]
        return share([a.regret <= NEAR_POINTS or bool(a.inside) for a in arms])

    lines = [f"{name} pick within {NEAR_POINTS:g} points of the best or inside its interval: "
             f"{near(name)} datasets" for name in ("rules", "probes")]
    found = [r.race_found_best for r in rows if r.race_found_best is not None]
    ratios = [r.time_ratio for r in rows if r.time_ratio is not None]
    fast = [ratio <= 1 / 3 for ratio in ratios]
    lines.append(f"race found run-all's best: {share(found)} datasets (its choice within "
                 f"{NEAR_POINTS:g} points of the best or inside its interval: "
                 f"{near('race')}); race wall time <= 1/3 of run-all: {share(fast)}"
                 + (f" (median ratio {sorted(ratios)[len(ratios) // 2]:.2f})" if ratios else ""))
    lines.append(floor_line(rows))
    return lines


def floor_line(rows: list[Row]) -> str:
    """The race's floor over the rows that have one: how often it lets the race reach 1/3 of
    run-all at all; the rows without one (from before it was recorded) counted as n/a."""
    floors = sorted(r.floor for r in rows if r.floor is not None)
    unknown = len(rows) - len(floors)
    n_a = f"; n/a on {unknown}" if unknown else ""
    if not floors:
        return (f"race floor (its choice's full run / run-all's wall time): n/a on all "
                f"{len(rows)} datasets (rows from before it was recorded)")
    within = sum(f <= 1 / 3 for f in floors)
    return (f"race floor (its choice's full run / run-all's wall time): <= 1/3 on "
            f"{within}/{len(floors)} datasets (median {floors[len(floors) // 2]:.2f}){n_a}")


def report_lines(rows: list[Row], tail: str) -> list[str]:
    """What a run prints at its end: the table, each dataset's notes, the summary, and a last
    line that says what the columns mean followed by `tail` (time and date)."""
    notes = [f"note: {row.dataset}: {note}" for row in rows for note in row.notes]
    return [*table_lines(rows), *notes, *summary_lines(rows),
            "regret = points (x100) of the primary metric below run-all's best; in CI: inside "
            f"the best's 95% bootstrap interval; {tail}"]


# ------------------------------------------------------------------------------- --combine


def row_from_json(data: dict[str, Any]) -> Row:
    """A Row back from what --json wrote (asdict(Row) plus time_ratio and floor, which Row
    computes); a row from before race_choice_full_s was recorded has no floor ("n/a")."""
    arms = {"rules", "probes", "race"}
    values = {f.name: data[f.name] for f in fields(Row) if f.name in data}
    missing = [f.name for f in fields(Row) if f.name not in data  # those without a default
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ValueError(f"not a row of --json: no {', '.join(missing)}")
    return Row(**{k: Arm(**v) if k in arms else v for k, v in values.items()})


def read_rows(path: Path) -> tuple[list[Row], str | None]:
    """The rows of one --json file and the day they were measured (written in the file;
    files from before it was, the file's modification day: the file is written at the end)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        rows = [row_from_json(item) for item in items]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"{path}: cannot read regret rows ({exc})") from None
    days = {item.get("measured_on") for item in items} - {None}
    day = max(days) if days else time.strftime("%Y-%m-%d", time.localtime(path.stat().st_mtime))
    return rows, day


def combined_lines(paths: list[Path]) -> list[str]:
    """The report of a run, printed from per-dataset --json files."""
    rows, days = [], []
    for path in paths:
        more, day = read_rows(path)
        rows.extend(more)
        days.append(day)
    wall = sum(r.race_wall_s + r.run_all_wall_s for r in rows)
    span = min(days) if min(days) == max(days) else f"{min(days)} to {max(days)}"
    return report_lines(rows, f"race + run-all {wall:.0f} s in all ({len(paths)} files "
                              f"combined); measured {span}")


# ------------------------------------------------------------------------------- data


def locate(name: str, data_root: Path) -> Path:
    if name not in DATASETS:
        raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    where, _ = DATASETS[name]
    path = (SAMPLES if where == "samples" else data_root) / name
    if not (path / "train.jsonl").exists():
        raise SystemExit(f"{name}: no train.jsonl under {path} (see --data-root)")
    return path


def balanced(rows: list[dict], count: int, label_key: str | None) -> list[dict]:
    """`count` rows taken in turn from each label (file order within a label); the first
    `count` rows when there are no labels."""
    if label_key is None:
        return rows[:count]
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(str(row.get(label_key)), []).append(row)
    queues, picked = list(by_label.values()), []
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def _read_jsonl(path: Path) -> list[dict]:
    # split on newlines only: str.splitlines() also splits inside a JSON string at U+2028 and
    # other line separators, which real text (the UCI sentiment sentences) contains
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")
            if line.strip()]


def sliced(source: Path, task: str, target: Path, max_rows: int | None,
           max_test_rows: int | None) -> Path:
    """A copy of the dataset with at most max_rows train and max_test_rows test rows
    (label-balanced for classification); the corpus, if any, copied whole."""
    if not max_rows and not max_test_rows:
        return source
    target.mkdir(parents=True, exist_ok=True)
    label_key = "label" if task == "classification" else None
    for name, cap in (("train.jsonl", max_rows), ("test.jsonl", max_test_rows)):
        rows = _read_jsonl(source / name)
        rows = balanced(rows, cap, label_key) if cap else rows
        (target / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                           for r in rows), encoding="utf-8")
    if (source / "corpus.jsonl").exists():
        shutil.copyfile(source / "corpus.jsonl", target / "corpus.jsonl")
    return target


# ------------------------------------------------------------------------------- the advisor


def advisor_pick(task: str, data: Path, with_probes: bool) -> tuple[str | None, str]:
    """The advisor's top fitting candidate (not a baseline) for the task's bundled answers with
    `data` swapped in; (None, why) when it cannot say."""
    from advisor.answers import load_answers, put
    from advisor.recommend import recommend
    from bench.errors import TunewiseError

    answers = load_answers(str(ANSWERS / f"{task}.yaml"))
    put(answers, "data.path", str(data))
    kwargs: dict[str, Any] = {"measure": False}
    takes_probe = "probe" in inspect.signature(recommend).parameters
    if with_probes and not takes_probe:
        return None, "this advisor has no probes"
    if takes_probe:
        kwargs["probe"] = with_probes
    try:
        result = recommend(answers, **kwargs)
    except TunewiseError as exc:
        return None, str(exc)
    top = next((c for c in result.ranking.ranked if c.fits and not c.baseline), None)
    return (top.strategy, "") if top else (None, "no fitting candidate")


# ------------------------------------------------------------------------------- measuring


def measured_run(data: Path, task: str, strategies: list[str], out: Path, *, race: bool,
                 preset: str, seed: int, sets: list[str] | None = None
                 ) -> tuple[list[dict], float, Path | None]:
    """One run through the run service: (records, wall seconds, run folder); `sets` as
    `tunewise bench --set` takes them, for both the race and run-all."""
    from advisor.bench_cli import parse_sets
    from bench import service
    from bench.race import RaceSettings
    from bench.runner import BenchPlan

    corpus = data / "corpus.jsonl"
    plan = BenchPlan(data=str(data), task=task, strategies=strategies, preset=preset,
                     out=str(out), seed=seed, corpus=str(corpus) if corpus.exists() else None,
                     overrides=parse_sets(sets or []),
                     command=f"benchmarks/advisor_regret.py ({'race' if race else 'run-all'})")
    started = time.perf_counter()
    outcome = service.run_plan(plan, race=RaceSettings() if race else None)
    wall = time.perf_counter() - started
    if outcome.error:
        raise SystemExit(f"{data}: {outcome.error}")
    return outcome.records, wall, outcome.run_dir


def same_split(run_a: Path | None, run_b: Path | None) -> bool:
    """Both runs split the data identically (the manifests' split indices)."""
    if run_a is None or run_b is None:
        return False
    read = lambda p: json.loads((p / "manifest.json").read_text())["split"]["indices"]  # noqa: E731
    return read(run_a) == read(run_b)


def did_race(race_dir: Path | None) -> bool:
    """The race ran rungs (race.json's `raced`); False when it declined and ran every
    candidate in full, as run-all does (the same split, seed and budgets)."""
    from bench.race import RACE_FILE

    path = (race_dir / RACE_FILE) if race_dir else None
    if path is None or not path.exists():
        return False
    return bool(json.loads(path.read_text(encoding="utf-8")).get("raced"))


def race_notes(race_dir: Path | None) -> list[str]:
    """How the race went (race.json): no race and why, or its fixed entrants and rungs, and
    what its validation runs cost, start-up included."""
    from bench.race import RACE_FILE

    path = (race_dir / RACE_FILE) if race_dir else None
    if path is None or not path.exists():
        return []
    race = json.loads(path.read_text(encoding="utf-8"))
    if not race.get("raced"):
        return [f"no race: {race.get('note', '')}"]
    cost = rung_cost(race)
    rows = " → ".join(str(r["train_rows"]) for r in race.get("schedule") or [])
    fixed = ", ".join(race.get("fixed") or []) or "none"
    return [f"race: rungs on {rows} of {race.get('train_rows')} train rows, "
            f"{race.get('validation_rows')} validation rows; fixed (cheap) entrants: {fixed}; "
            f"{cost['jobs']} validation runs took {cost['seconds']:.0f} s, "
            f"{cost['load_seconds']:.0f} s of it starting up (process, imports, model load)"
            + _measuring_and_predicting(cost)]


def _measuring_and_predicting(cost: dict[str, float]) -> str:
    """The rest of what a rung pays beside its training, when race.json recorded it."""
    if not cost["fitting_seconds"] and not cost["predict_seconds"]:
        return ""
    rest = (cost["seconds"] - cost["load_seconds"] - cost["fitting_seconds"]
            - cost["predict_seconds"])
    return (f", {cost['fitting_seconds']:.0f} s timing steps and validation rows to plan "
            f"schedules, {cost['predict_seconds']:.0f} s predicting the validation rows, "
            f"{rest:.0f} s training (with the Trainer's setup)")


def journal_records(run_dir: Path) -> list[dict]:
    from bench import journal

    return journal.read_records(run_dir)


def run_wall_seconds(run_dir: Path) -> float:
    """A finished run's wall time: its manifest's sessions (bench.runner writes each one's
    wall_s, the candidates' runs from first to last; the split and profile before them, a few
    seconds that the race's own wall time includes, are not in it)."""
    from bench import journal

    sessions = journal.read_json(run_dir / journal.MANIFEST).get("sessions") or []
    if not sessions or any(s.get("interrupted") for s in sessions):
        raise SystemExit(f"{run_dir}: not one finished run (no session, or interrupted)")
    return float(sum(s["wall_s"] for s in sessions))


def supported(names: list[str], task: str) -> list[str]:
    from strategies import registry

    return [n for n in names if registry.is_known(n) and task in registry.get(n).tasks]


def measure_dataset(name: str, args: argparse.Namespace) -> Row:
    _, task = DATASETS[name]
    source = locate(name, args.data_root)
    data = sliced(source, task, args.out / "data" / name, args.max_rows, args.max_test_rows)
    picks = ({"rules": (None, "not asked (--no-picks)"), "probes": (None, "not asked")}
             if args.no_picks else
             {"rules": advisor_pick(task, data, with_probes=False),
              "probes": advisor_pick(task, data, with_probes=True)})
    fixed = (args.candidates.split(",") if args.candidates
             else CANDIDATE_SETS[args.candidate_set][task])
    names = supported(list(dict.fromkeys(
        [*fixed, *(p for p, _ in picks.values() if p and not args.candidates)])), task)
    print(f"\n== {name} ({task}): {', '.join(names)}; advisor picks: "
          + ", ".join(f"{k} {p or '—'}" for k, (p, _) in picks.items()), flush=True)
    raced, race_wall, race_dir = measured_run(data, task, names, args.out / "runs" / name,
                                              race=True, preset=args.preset, seed=args.seed,
                                              sets=args.sets)
    if args.run_all_dir:  # measured before, on the same slice (same_split checks the split)
        run_all_dir = args.run_all_dir
        run_all, run_all_wall = journal_records(run_all_dir), run_wall_seconds(run_all_dir)
        row_note = f"run-all: {run_all_dir}, measured before the race"
    elif did_race(race_dir):
        run_all, run_all_wall, run_all_dir = measured_run(
            data, task, names, args.out / "runs" / name, race=False, preset=args.preset,
            seed=args.seed, sets=args.sets)
    else:  # the race declined: its run was a run-all (every candidate in full, on test)
        run_all, run_all_wall, run_all_dir = raced, race_wall, race_dir
    row = regret_row(name, task, run_all, raced, picks, race_wall, run_all_wall)
    if args.run_all_dir:
        row.notes.append(row_note)
    if args.sets:
        row.notes.append("measured with --set " + " --set ".join(args.sets))
    if run_all_dir == race_dir:
        row.notes.append("the race declined, so its run (every candidate in full on test) "
                         "is run-all too: measured once")
    if not same_split(run_all_dir, race_dir):
        row.notes.append("the race and run-all did not split the data identically")
    row.notes.extend(race_notes(race_dir))
    for pick, note in picks.values():
        if pick and pick not in names:
            row.notes.append(f"{pick} (an advisor pick) cannot run here ({note or 'not registered'})")
    print(f"   run-all {run_all_dir} ({run_all_wall:.0f} s) · race {race_dir} "
          f"({race_wall:.0f} s)", flush=True)
    return row


def repick_dataset(name: str, args: argparse.Namespace) -> Row:
    """The row of `name` in --repick's file with the advisor's picks chosen again by this
    advisor and scored on the records of --run-all-dir (the same data slice, read from --out,
    the run folder of that row's run-all): nothing trains beyond the probes. The race and the
    wall times stay as that row measured them; a note says so."""
    from bench import journal

    rows, day = read_rows(args.repick)
    row = next((r for r in rows if r.dataset == name), None)
    if row is None:
        raise SystemExit(f"{args.repick}: no row for {name}")
    _, task = DATASETS[name]
    data = sliced(locate(name, args.data_root), task, args.out / "data" / name, args.max_rows,
                  args.max_test_rows)
    run_all = journal.read_records(args.run_all_dir)
    if best_record(run_all) is None or score(best_record(run_all)) != row.best_score:
        raise SystemExit(f"{args.run_all_dir}: its best is not the row's best "
                         f"({row.best} {row.best_score}): not that row's run-all")
    picks = {"rules": advisor_pick(task, data, with_probes=False),
             "probes": advisor_pick(task, data, with_probes=True)}
    by_name, best = {r["strategy"]: r for r in run_all}, best_record(run_all)
    row.rules = arm(picks["rules"][0], by_name, best, picks["rules"][1])
    row.probes = arm(picks["probes"][0], by_name, best, picks["probes"][1])
    if row.race_choice_full_s is None and row.race.pick in by_name:
        # a row from before the floor was recorded: its choice's full run, as run-all ran it
        row.race_choice_full_s = full_run_seconds(by_name[row.race.pick])
    row.notes.append(f"advisor picks chosen again on {time.strftime('%Y-%m-%d')} and scored on "
                     f"the records of run-all measured {day} (nothing retrained)")
    print(f"== {name}: rules {row.rules.pick}, probes {row.probes.pick}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT,
                        help="folder of the shared datasets (default ../shared/data)")
    parser.add_argument("--max-rows", type=int, default=400,
                        help="train rows per dataset, label-balanced (default 400; 0: all)")
    parser.add_argument("--max-test-rows", type=int, default=100,
                        help="test rows per dataset (default 100; 0: all)")
    parser.add_argument("--candidates", help="comma-separated candidate set for every dataset "
                        "(default: the broad set of the task kind; the advisor's picks are "
                        "then not added)")
    parser.add_argument("--candidate-set", default="spread", choices=sorted(CANDIDATE_SETS),
                        help="spread (default): one candidate per family; methods: also "
                        + ", ".join(METHODS) + " beside LoRA; all-methods: also "
                        + ", ".join(MORE_METHODS) + " (qlora needs CUDA)")
    parser.add_argument("--no-picks", action="store_true",
                        help="skip the advisor's picks (no probes): the race and run-all only")
    parser.add_argument("--preset", default="quick", choices=("quick", "full"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a candidate option for the race and run-all, as `tunewise bench "
                        "--set` (e.g. time_budget_s=900: a training bound that machine load "
                        "does not reach, so the steps are those of an idle machine)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tunewise_regret"),
                        help="sliced data and run folders (default /tmp/tunewise_regret)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="FILE",
                        help="print the table of the rows in these --json files (no training)")
    parser.add_argument("--repick", type=Path, metavar="FILE",
                        help="a --json file of one dataset: choose the advisor's picks again and "
                        "score them on --run-all-dir's records; the race and times are kept")
    parser.add_argument("--run-all-dir", type=Path, metavar="RUN_DIR",
                        help="with --repick: the run folder of that row's run-all; without: "
                        "a run-all measured before on the same slice, to pair with a new race "
                        "(one dataset)")
    args = parser.parse_args(argv)
    if args.repick and not args.run_all_dir:
        parser.error("--repick needs --run-all-dir")
    if args.combine:
        print("\n".join(combined_lines(args.combine)))
        return 0
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    for name in names:
        locate(name, args.data_root)  # every name checked before anything trains
    started = time.perf_counter()
    measure = repick_dataset if args.repick else measure_dataset
    rows = [measure(name, args) for name in names]
    print()
    print("\n".join(report_lines(rows, f"{time.perf_counter() - started:.0f} s in all; "
                                        f"{time.strftime('%Y-%m-%d')}")))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(r), "time_ratio": r.time_ratio,
                                          "floor": r.floor,
                                          "measured_on": time.strftime("%Y-%m-%d")}
                                         for r in rows], indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
