"""What the Ray executor costs over the local one, on the same candidates and the same data.

    python benchmarks/ray_overhead.py                         # majority, zero-shot, knn
    python benchmarks/ray_overhead.py --strategies majority,knn --num-cpus 1

The tiny preset: the bundled banking sample (48 train rows), the tiny random models
(tiny-llama, tiny-bert), quick configs. Each executor runs the same plan in its own run folder:
local runs the children one after another; Ray starts a local cluster with --num-cpus CPUs
(default 1, so candidates also run one at a time and the ratio is pure overhead; with 2 they
run side by side). Prints the wall time of each, Ray's start-up separately, and the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.ray_executor import RayExecutor, import_ray
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
    args = parser.parse_args()
    strategies = args.strategies.split(",")
    ray = import_ray()
    with tempfile.TemporaryDirectory() as tmp:
        local_s, local_records = timed_run(LocalExecutor(), Path(tmp) / "local", strategies)
        started = time.perf_counter()
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False,
                 object_store_memory=100 * 2**20)
        startup_s = time.perf_counter() - started
        try:
            ray_s, ray_records = timed_run(RayExecutor(), Path(tmp) / "ray", strategies)
        finally:
            ray.shutdown()
    statuses = {r["strategy"]: (r["status"], r["metrics"].get(r["primary_metric"]))
                for r in local_records}
    same = statuses == {r["strategy"]: (r["status"], r["metrics"].get(r["primary_metric"]))
                        for r in ray_records}
    print(f"candidates: {', '.join(strategies)} (tiny-llama / tiny-bert, 48 train rows)")
    print(f"local executor:       {local_s:7.2f} s")
    print(f"ray executor:         {ray_s:7.2f} s  (+ {startup_s:.2f} s to start Ray, "
          f"{args.num_cpus} CPU(s))")
    print(f"ratio ray/local:      {ray_s / local_s:7.3f}  (excluding Ray's start)")
    print(f"ratio incl. start-up: {(ray_s + startup_s) / local_s:7.3f}")
    print(f"same statuses and primary metrics: {same}")


if __name__ == "__main__":
    main()
