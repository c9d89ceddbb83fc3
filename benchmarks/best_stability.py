"""How often does run-all name the same best candidate again? The ceiling of "the race finds
run-all's best".

    python benchmarks/best_stability.py RUN_DIR [RUN_DIR ...] [--resamples 2000] [--json FILE]
    python benchmarks/best_stability.py RUN_DIR ... --candidates lora,full   # only these

Each RUN_DIR is a finished run-all (`tunewise bench`) of the same candidates on the same split;
give several that differ only in the candidates' training seed (`--set seed=N`, the split kept
by `--seed`). The regret benchmark says the race "finds the best" when its choice is run-all's
best or tied with it on test (benchmarks/advisor_regret.found_best). Where several candidates lie
within noise of each other, run-all's best is decided by which test rows were drawn and by the
training seed, neither of which a race that chooses on validation can see. This script measures
both:

- **across seeds**: for every ordered pair of runs (a, b), is a's best also b's best (or tied with
  it on b's test scores)? The share of pairs that agree is how often run-all, run again with
  another training seed, names its own best again.
- **across test draws**: in each run, the test rows are resampled with replacement (bootstrap,
  `--resamples`, seeded) and each candidate's share of the resamples in which it is the best or
  tied with it (as found_best counts a tie) is its chance of being "run-all's best" on a test
  set drawn like this one.
  Averaged over the runs, the largest of these chances is the most often ANY choice that does
  not see the test rows and the seed (a race, an oracle that knows each method's true quality)
  can equal run-all's best: the ceiling.

It reads only records and `predictions/<candidate>.jsonl` (per-row scores: `correct` for
classification, the primary metric's own key for QA and generation); it trains nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from bench import journal

ROW_KEY = {"accuracy": "correct"}  # a primary metric whose per-row score has another name


@dataclass
class MeasuredRun:
    """One run-all: each finished candidate's test score and per-row scores."""

    path: Path
    seed: object  # the candidates' training seed, as their records say
    scores: dict[str, float]
    rows: dict[str, np.ndarray]

    def best(self) -> set[str]:
        """The candidates at the top score (a tie: all of them)."""
        top = max(self.scores.values())
        return {name for name, value in self.scores.items() if value == top}


def training_seed(records: list[dict]) -> object:
    """The candidates' training seed, as their records say they trained (info.seed: the
    config's `seed`, or the run's where that is -1); the run's for those that train nothing."""
    seeds = {(r.get("info") or {}).get("seed", r.get("seed")) for r in records}
    return seeds.pop() if len(seeds) == 1 else "/".join(sorted(map(str, seeds)))


def row_scores(run_dir: Path, strategy: str, metric: str) -> np.ndarray:
    """The candidate's per-test-row score of the primary metric (its first seed's rows)."""
    name = f"predictions/{journal.safe_name(strategy)}.jsonl"
    key = ROW_KEY.get(metric, metric)
    rows = journal.read_records(run_dir, name)  # JSON lines, as results.jsonl; [] when missing
    first = rows[0].get("seed") if rows else None
    values = [float(r[key]) for r in rows if r.get("seed") == first and key in r]
    if not values:
        raise SystemExit(f"{run_dir / name}: no per-row '{key}' scores")
    return np.asarray(values)


def read_run(run_dir: Path, candidates: set[str] | None = None) -> MeasuredRun:
    """The run's finished candidates (only `candidates`, when given)."""
    records = [r for r in journal.read_records(run_dir) if r.get("status") == "ok"
               and (candidates is None or r.get("strategy") in candidates)]
    if not records:
        raise SystemExit(f"{run_dir}: no finished candidate (is it a tunewise run folder?)")
    scores, rows = {}, {}
    for record in records:
        metric = record.get("primary_metric")
        value = (record.get("metrics") or {}).get(metric)
        if isinstance(value, (int, float)):
            scores[record["strategy"]] = float(value)
            rows[record["strategy"]] = row_scores(run_dir, record["strategy"], metric)
    return MeasuredRun(run_dir, training_seed(records), scores, rows)


def agreement(runs: list[MeasuredRun]) -> tuple[int, int]:
    """(pairs that agree, ordered pairs): run a's best is among run b's best."""
    pairs = list(itertools.permutations(runs, 2))
    agree = sum(1 for a, b in pairs if a.best() & b.best())
    return agree, len(pairs)


def best_shares(run: MeasuredRun, resamples: int, seed: int) -> dict[str, float]:
    """Each candidate's share of bootstrap test draws in which it is the best or tied with it
    (a tie counts for each: advisor_regret.found_best counts a choice tied with the best as
    finding it)."""
    names = sorted(run.rows)
    lengths = {len(run.rows[n]) for n in names}
    if len(lengths) != 1:
        raise SystemExit(f"{run.path}: candidates scored different test rows ({sorted(lengths)})")
    matrix = np.stack([run.rows[n] for n in names])  # candidates x rows
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, matrix.shape[1], size=(resamples, matrix.shape[1]))
    means = matrix[:, draws].mean(axis=2)  # candidates x resamples
    is_best = means == means.max(axis=0, keepdims=True)
    return dict(zip(names, (is_best.sum(axis=1) / resamples).tolist()))


def report(runs: list[MeasuredRun], resamples: int, seed: int) -> tuple[list[str], dict]:
    names = sorted(set().union(*(r.scores for r in runs)))
    shares = [best_shares(r, resamples, seed) for r in runs]
    mean_share = {n: float(np.mean([s.get(n, 0.0) for s in shares])) for n in names}
    lines = ["| candidate | " + " | ".join(f"seed {r.seed}" for r in runs)
             + " | P(best or tied), test draws |", "|---|" + "---:|" * (len(runs) + 1)]
    for name in sorted(names, key=lambda n: -mean_share[n]):
        cells = [f"{r.scores[name]:.3f}" + (" ★" if name in r.best() else "")
                 if name in r.scores else "—" for r in runs]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean_share[name]:.2f} |")
    agree, pairs = agreement(runs)
    ceiling_name = max(mean_share, key=mean_share.get)
    summary = {"runs": [str(r.path) for r in runs], "seeds": [r.seed for r in runs],
               "scores": {str(r.seed): r.scores for r in runs},
               "best": {str(r.seed): sorted(r.best()) for r in runs},
               "seed_agreement": [agree, pairs], "p_best": mean_share,
               "p_best_per_run": {str(r.seed): s for r, s in zip(runs, shares)},
               "ceiling": {"candidate": ceiling_name, "p": mean_share[ceiling_name]},
               "resamples": resamples, "measured_on": date.today().isoformat()}
    lines += ["",
              f"    run-all's best named again with another training seed: {agree}/{pairs} "
              "ordered pairs of runs" if pairs else
              "    one run: give runs with other training seeds to measure agreement",
              f"    ceiling (test draws, {resamples} bootstrap resamples per run, averaged over "
              f"{len(runs)} run(s)): the likeliest best, {ceiling_name}, is run-all's best (or tied "
              f"with it) on {mean_share[ceiling_name]:.0%} of test sets drawn like this one"]
    return lines, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's seed")
    parser.add_argument("--candidates", metavar="A,B",
                        help="compare only these candidates (each run must have them all)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers")
    args = parser.parse_args(argv)
    chosen = set(args.candidates.split(",")) if args.candidates else None
    runs = [read_run(path, chosen) for path in args.runs]
    missing = [f"{r.path}: {', '.join(sorted(chosen - set(r.scores)))}" for r in runs
               if chosen and chosen - set(r.scores)]
    if missing:
        raise SystemExit("not measured (or not finished) in every run: " + "; ".join(missing))
    lines, summary = report(runs, args.resamples, args.seed)
    print("\n".join(lines))
    if args.json:
        summary["candidates"] = sorted(chosen) if chosen else "all"
        args.json.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
