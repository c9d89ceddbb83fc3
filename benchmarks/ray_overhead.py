"""What the Ray executor costs over the local one, on the same candidates and the same data.

    python benchmarks/ray_overhead.py                         # majority, zero-shot, knn
    python benchmarks/ray_overhead.py --strategies majority,knn --repeats 3

The tiny preset: the bundled banking sample (48 train rows), the tiny random models
(tiny-llama, tiny-bert), quick configs. Each executor runs the same plan in its own run folder:
local runs the children one after another; Ray starts a local cluster with --num-cpus CPUs
(default 1, so candidates also run one at a time and the ratio is pure overhead; with 2 they
run side by side). Repeats alternate which executor goes first (a shared machine's load and
a cold file cache would otherwise favour the second). Prints the median wall time of each,
Ray's start-up separately, and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.ray_executor import RayExecutor, import_ray, start_local_ray
from bench.runner import BenchPlan, LocalExecutor, run_benchmark

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


def plan(out: Path, strategies: list[str]) -> BenchPlan:
    return BenchPlan(data=str(SAMPLE), strategies=strategies, model="tiny-llama",
                     encoder="tiny-bert", preset="quick", max_train_rows=48, out=str(out),
                     command="benchmarks/ray_overhead.py")


def timed_run(executor, out: Path, strategies: list[str]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    result = run_benchmark(plan(out, strategies), executor=executor)
    return time.perf_counter() - started, result.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="majority,zero-shot,knn")
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    ray = import_ray()
    started = time.perf_counter()
    start_local_ray(ray, num_cpus=args.num_cpus, object_store_mb=100)  # loopback only
    startup_s = time.perf_counter() - started
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    outcomes: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                order = ["local", "ray"] if repeat % 2 == 0 else ["ray", "local"]
                for name in order:
                    executor = LocalExecutor() if name == "local" else RayExecutor()
                    wall, records = timed_run(executor, Path(tmp) / f"{name}{repeat}",
                                              strategies)
                    seconds[name].append(wall)
                    outcomes[name] = {r["strategy"]: (r["status"],
                                                      r["metrics"].get(r["primary_metric"]))
                                      for r in records}
                    print(f"repeat {repeat + 1} {name:5s}: {wall:7.2f} s", flush=True)
    finally:
        ray.shutdown()
    local_s, ray_s = statistics.median(seconds["local"]), statistics.median(seconds["ray"])
    print(f"candidates: {', '.join(strategies)} (tiny-llama / tiny-bert, 48 train rows)")
    print(f"local executor (median of {args.repeats}): {local_s:7.2f} s")
    print(f"ray executor   (median of {args.repeats}): {ray_s:7.2f} s  (+ {startup_s:.2f} s "
          f"once to start Ray, {args.num_cpus} CPU(s))")
    print(f"ratio ray/local:      {ray_s / local_s:7.3f}  (excluding Ray's start)")
    print(f"ratio incl. start-up: {(ray_s + startup_s) / local_s:7.3f}")
    print(f"same statuses and primary metrics: {outcomes['local'] == outcomes['ray']}")


if __name__ == "__main__":
    main()
