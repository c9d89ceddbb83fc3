"""Estimator accuracy: the advisor's pre-run estimates vs the measured peak memory and time.

    python benchmarks/estimator.py                       # every run under /tmp/tunewise_demo_bench
    python benchmarks/estimator.py RUN_DIR [RUN_DIR ...] # these run folders (any bench run)
    python benchmarks/estimator.py --recorded RUN_DIR    # the estimates stored in the records
    python benchmarks/estimator.py --bench               # run the quick classification bench
                                                         # first (main candidates, ~10 min)
    python benchmarks/estimator.py --fit RUN_DIR [...]   # fit the memory runtime constants on
                                                         # these runs (the bundled samples only)

For every ok record the advisor's estimate is recomputed with today's estimator from the run's
manifest (data profile, model, hardware), so older runs evaluate the current code; `--recorded`
uses the `estimate` stored in the record instead. Measured: peak RSS of the candidate's process
and its total time. For every ok candidate with an estimate this prints estimated / measured and the
relative error |est - measured| / measured, then the median absolute error over candidates, and
per candidate and per family (the catalogue's, `+rag` apart) the median error and the worst
ratio (max(est/meas, meas/est)), so a family that drifts is visible. Targets: median memory
<= 10 %, time <= 25 %, no candidate off by more than 2x. benchmarks/demo.py leaves its run
folders where the default finds them. `--markdown` prints the per-family table for RESULTS.md.

The estimator the numbers come from is whichever `advisor.estimate` is imported: to compare
with another checkout's, run this script with that checkout first on PYTHONPATH. The held-out
check end to end (slices, benches, these tables): benchmarks/estimator_runs.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DEFAULT_RUNS = Path("/tmp/tunewise_demo_bench")
MAIN_CANDIDATES = "majority,zero-shot,few-shot,knn,transfer,encoder-ft,lora"
TARGETS = {"memory": 0.10, "time": 0.25}
MAX_RATIO = 2.0  # no candidate off by more than 2x


def run_dirs(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        found += [p.parent for p in sorted(path.rglob("results.jsonl"))]
    return found


def current_estimate(run_dir: Path, strategy: str, cache: dict) -> dict | None:
    """The estimate today's advisor gives for this run's data, model and machine (from the
    run's manifest): what the benchmark evaluates, whatever estimator wrote the record."""
    if run_dir not in cache:
        from advisor.estimate import (preset_max_steps, shape_for, this_machine,
                                      workload_from_profile)

        manifest = json.loads((run_dir / "manifest.json").read_text())
        plan = manifest.get("plan") or {}
        cache[run_dir] = (shape_for(manifest["model"]), shape_for(manifest["encoder"]),
                          workload_from_profile(manifest["profile"], max_steps=preset_max_steps(
                              manifest.get("preset") or "quick")),
                          this_machine(manifest["hardware"], cpu_only=True, measure=True),
                          manifest.get("preset") or plan.get("preset") or "quick",
                          plan.get("overrides") or {})
    from advisor.estimate import configured_workload, estimate
    from bench.errors import TunewiseError

    shape, encoder, work, machine, preset, overrides = cache[run_dir]
    try:  # the candidate's own config, as the run used it
        work = configured_workload(strategy, work, preset, overrides)
        return estimate(strategy, shape, work, machine, encoder).as_dict()
    except TunewiseError:
        return None


def bench_once(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "advisor.cli", "bench", "--data",
                    "bench/samples/banking_support", "--strategies", MAIN_CANDIDATES,
                    "--out", str(out)], check=False, cwd=Path(__file__).resolve().parent.parent)
    return out


def family_of(strategy: str) -> str:
    """The catalogue's family of a candidate; `<base>+rag` apart from its base's family."""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    family = entry.family if entry is not None else "unknown"
    return f"{family}+rag" if catalogue.rag_base(strategy) else family


def ratio(estimated: float, measured: float) -> float:
    """How many times off, whichever way: 1.0 is exact."""
    if estimated <= 0 or measured <= 0:
        return float("inf")
    return max(estimated / measured, measured / estimated)


def rows_for(roots: list[Path], recorded: bool) -> list[dict]:
    """One row per ok candidate with an estimate: estimated and measured memory (MB) and time."""
    cache: dict = {}
    rows = []
    for run_dir in run_dirs(roots):
        for line in (run_dir / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("status") != "ok" or record.get("variant"):
                continue
            estimate = (record.get("estimate") if recorded
                        else current_estimate(run_dir, record["strategy"], cache))
            if not estimate:
                continue
            rows.append({"run": run_dir.parent.name + "/" + run_dir.name,
                         "strategy": record["strategy"], "family": family_of(record["strategy"]),
                         "mem_est": estimate["peak_memory_gb"] * 1024,
                         "mem": record["peak_memory_mb"]["cpu_rss"],
                         "time_est": estimate["time_s"], "time": record["time_s"]["total"]})
    for row in rows:
        row["mem_err"] = abs(row["mem_est"] - row["mem"]) / row["mem"]
        row["time_err"] = abs(row["time_est"] - row["time"]) / row["time"]
        row["mem_ratio"] = ratio(row["mem_est"], row["mem"])
        row["time_ratio"] = ratio(row["time_est"], row["time"])
    return rows


def grouped(rows: list[dict], key: str) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row[key], []).append(row)
    return groups


def print_groups(rows: list[dict], key: str, markdown: bool) -> None:
    """Median error and worst ratio per group, memory and time."""
    if markdown:
        print(f"| {key} | n | memory median err | memory worst | time median err | time worst |")
        print("|---|---|---|---|---|---|")
    else:
        print(f"{key:<16} {'n':>3} {'mem med':>8} {'worst':>6} {'time med':>9} {'worst':>6}")
    for name, group in grouped(rows, key).items():
        mem = statistics.median(r["mem_err"] for r in group)
        took = statistics.median(r["time_err"] for r in group)
        worst_mem = max(r["mem_ratio"] for r in group)
        worst_time = max(r["time_ratio"] for r in group)
        if markdown:
            print(f"| {name} | {len(group)} | {mem:.0%} | {worst_mem:.2f}x | {took:.0%} | "
                  f"{worst_time:.2f}x |")
        else:
            print(f"{name:<16} {len(group):>3} {mem:8.0%} {worst_mem:5.2f}x {took:9.0%} "
                  f"{worst_time:5.2f}x")


# The memory constants `--fit` searches, one group of candidates at a time: each group's
# constants are fitted on the candidates whose memory they decide, the earlier ones held.
FIT_STEPS = (
    ({"CPU_RUNTIME_GB": [r / 100 for r in range(20, 71)],
      "CPU_INFERENCE_SLACK": [1 + s / 20 for s in range(0, 31)]},
     ("zero-shot", "few-shot", "encoder-ft")),
    ({"SENTENCE_ENCODER_RUNTIME_GB": [r / 100 for r in range(0, 51)]}, ("knn", "transfer", "rag")),
    ({"TRAINER_RUNTIME_GB": [r / 100 for r in range(0, 61)]}, None),  # the LLM trainers
)


def fit_memory_constants(roots: list[Path]) -> dict[str, float]:
    """The runtime constants and the inference heap slack that minimise the mean absolute memory
    error over these runs' candidates (grid search, in FIT_STEPS order). Fit on the bundled
    samples only, then evaluate on other data with the default command."""
    import itertools

    import advisor.estimate as facade
    import advisor.estimate_memory as memory
    from advisor.estimate import configured_workload, estimate
    from strategies import catalogue

    cache: dict = {}
    cases = []  # (strategy, shape, work, machine, encoder, measured MB)
    for run_dir in run_dirs(roots):
        for line in (run_dir / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("status") != "ok" or record.get("variant"):
                continue
            if current_estimate(run_dir, record["strategy"], cache) is None:
                continue
            shape, encoder, work, machine, preset, overrides = cache[run_dir]
            cases.append((record["strategy"], shape,
                          configured_workload(record["strategy"], work, preset, overrides),
                          machine, encoder, record["peak_memory_mb"]["cpu_rss"]))

    def set_constant(name: str, value: float) -> None:
        for module in (memory, facade):
            setattr(module, name, value)

    def trainer(strategy: str) -> bool:
        entry = catalogue.entry(strategy)
        return bool(entry and entry.profile and entry.profile.model == "llm"
                    and entry.profile.train in ("full", "adapter"))

    fitted: dict[str, float] = {}
    for grid, names in FIT_STEPS:
        chosen = [c for c in cases if (c[0] in names if names else trainer(c[0]))]
        if not chosen:
            continue
        best = None
        for values in itertools.product(*grid.values()):
            for name, value in zip(grid, values):
                set_constant(name, value)
            errors = [abs(estimate(s, shape, w, m, enc).peak_memory_gb * 1024 - measured)
                      / measured for s, shape, w, m, enc, measured in chosen]
            score = sum(errors) / len(errors)
            if best is None or score < best[0]:
                best = (score, values)
        for name, value in zip(grid, best[1]):
            set_constant(name, value)
            fitted[name] = value
        print(f"fitted {', '.join(f'{n} = {v:g}' for n, v in zip(grid, best[1]))} on "
              f"{len(chosen)} candidates ({', '.join(sorted({c[0] for c in chosen}))}): "
              f"mean absolute memory error {best[0]:.1%}")
    return fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--bench", action="store_true", help="run the quick bench first")
    parser.add_argument("--recorded", action="store_true",
                        help="use the estimate stored in each record (default: recompute it "
                        "with today's estimator from the run's manifest)")
    parser.add_argument("--fit", action="store_true",
                        help="fit the memory runtime constants on these runs and print them "
                        "(then the table with them)")
    parser.add_argument("--markdown", action="store_true",
                        help="print the per-candidate and per-family tables as Markdown")
    args = parser.parse_args()
    roots = args.runs or [DEFAULT_RUNS]
    if args.bench:
        roots = [bench_once(Path("/tmp/tunewise_estimator_bench"))]
    if args.fit:
        fit_memory_constants(roots)
    rows = rows_for(roots, args.recorded)
    if not rows:
        raise SystemExit("no ok records with an estimate found: run benchmarks/demo.py or --bench")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<36} {'candidate':<14} {'mem est/meas MB':>17} {'err':>6} "
          f"{'time est/meas s':>17} {'err':>6}")
    for row in rows:
        print(f"{row['run']:<36.36} {row['strategy']:<14} {row['mem_est']:8.0f}/{row['mem']:<8.0f} "
              f"{row['mem_err']:6.0%} {row['time_est']:8.1f}/{row['time']:<8.1f} "
              f"{row['time_err']:6.0%}")
    print()
    print_groups(rows, "strategy", args.markdown)
    print()
    print_groups(rows, "family", args.markdown)
    print()
    for what in ("memory", "time"):
        short = "mem" if what == "memory" else "time"
        median = statistics.median(r[f"{short}_err"] for r in rows)
        worst = max(rows, key=lambda r: r[f"{short}_ratio"])
        met = median <= TARGETS[what] and worst[f"{short}_ratio"] <= MAX_RATIO
        print(f"median absolute {what} error over {len(rows)} candidates: {median:.0%} "
              f"(target <= {TARGETS[what]:.0%}); worst {worst[f'{short}_ratio']:.2f}x "
              f"({worst['strategy']} in {worst['run']}; target <= {MAX_RATIO:g}x): "
              f"{'MET' if met else 'NOT MET'}")


if __name__ == "__main__":
    main()
