"""Estimator accuracy: the advisor's pre-run estimates vs the measured peak memory and time.

    python benchmarks/estimator.py                       # every run under /tmp/tunewise_demo_bench
    python benchmarks/estimator.py RUN_DIR [RUN_DIR ...] # these run folders (any bench run)
    python benchmarks/estimator.py --recorded RUN_DIR    # the estimates stored in the records
    python benchmarks/estimator.py --bench               # run the quick classification bench
                                                         # first (main candidates, ~10 min)

For every ok record the advisor's estimate is recomputed with today's estimator from the run's
manifest (data profile, model, hardware), so older runs evaluate the current code; `--recorded`
uses the `estimate` stored in the record instead. Measured: peak RSS of the candidate's process
and its total time. For every ok candidate with an estimate this prints estimated / measured and the
relative error |est - measured| / measured, then the median absolute error over candidates.
Targets: memory <= 10 %, time <= 25 %. benchmarks/demo.py leaves its run folders where the
default finds them.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--bench", action="store_true", help="run the quick bench first")
    parser.add_argument("--recorded", action="store_true",
                        help="use the estimate stored in each record (default: recompute it "
                        "with today's estimator from the run's manifest)")
    args = parser.parse_args()
    cache: dict = {}
    roots = args.runs or [DEFAULT_RUNS]
    if args.bench:
        roots = [bench_once(Path("/tmp/tunewise_estimator_bench"))]
    errors = {"memory": [], "time": []}
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<28} {'candidate':<14} {'mem est/meas MB':>17} {'err':>6} "
          f"{'time est/meas s':>17} {'err':>6}")
    for run_dir in run_dirs(roots):
        for line in (run_dir / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("status") != "ok" or record.get("variant"):
                continue
            estimate = (record.get("estimate") if args.recorded
                        else current_estimate(run_dir, record["strategy"], cache))
            if not estimate:
                continue
            mem_est = estimate["peak_memory_gb"] * 1024
            mem = record["peak_memory_mb"]["cpu_rss"]
            time_est, took = estimate["time_s"], record["time_s"]["total"]
            mem_err, time_err = abs(mem_est - mem) / mem, abs(time_est - took) / took
            errors["memory"].append(mem_err)
            errors["time"].append(time_err)
            print(f"{run_dir.parent.name + '/' + run_dir.name:<28.28} {record['strategy']:<14} "
                  f"{mem_est:8.0f}/{mem:<8.0f} {mem_err:6.0%} {time_est:8.1f}/{took:<8.1f} "
                  f"{time_err:6.0%}")
    if not errors["memory"]:
        raise SystemExit("no ok records with an estimate found: run benchmarks/demo.py or --bench")
    for what, values in errors.items():
        median = statistics.median(values)
        print(f"median absolute {what} error over {len(values)} candidates: {median:.0%} "
              f"(target <= {TARGETS[what]:.0%}: {'MET' if median <= TARGETS[what] else 'NOT MET'})")


if __name__ == "__main__":
    main()
