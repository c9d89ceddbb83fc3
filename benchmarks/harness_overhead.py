"""What the harness adds around a candidate: spawn + imports + scoring + record.

    python benchmarks/harness_overhead.py              # 5 repeats of `majority`
    python benchmarks/harness_overhead.py --repeats 10

Prepares one run on the bundled classification sample, then runs the `majority` candidate
(a no-op: it counts labels) through `run_candidate` several times. For each repeat it prints the
wall time of the whole candidate, the strategy's own announced phases, and the difference — the
harness's overhead — and the child's peak RSS. It also times the same strategy called in this
process, side by side, so the ratio shows what isolation costs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.runner import BenchPlan, prepare_run, run_candidate

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


def in_process_seconds(run_dir: Path) -> float:
    """The same strategy, called directly: no child, no scoring, no record."""
    import json

    from strategies import registry
    from strategies.base import RunContext, TaskSplit

    split = TaskSplit(**json.loads((run_dir / "split.json").read_text()))
    spec = registry.get("majority")
    started = time.perf_counter()
    ctx = RunContext(data=split, model_name="tiny-llama", encoder_name="tiny-bert",
                     load_model=None, device="cpu", seed=0, work_dir=run_dir / "direct")
    spec.run(ctx, spec.make_config("quick"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        run_dir, jobs = prepare_run(BenchPlan(data=str(SAMPLE), strategies=["majority"],
                                              out=out, model="tiny-llama"))
        job = jobs[0]
        walls, overheads = [], []
        print(f"{'repeat':>6} {'wall s':>8} {'strategy s':>10} {'overhead s':>10} {'peak MB':>8}")
        for repeat in range(args.repeats):
            started = time.perf_counter()
            record = run_candidate(job)
            wall = time.perf_counter() - started
            own = sum(record["info"]["phases_s"].values())
            walls.append(wall)
            overheads.append(wall - own)
            print(f"{repeat:>6} {wall:>8.3f} {own:>10.4f} {wall - own:>10.3f} "
                  f"{record['peak_memory_mb']['cpu_rss']:>8.1f}")
        direct = in_process_seconds(run_dir)
        median_wall = statistics.median(walls)
        print(f"\nmedian harness overhead per candidate: {statistics.median(overheads):.3f} s "
              f"(spawn + imports + scoring + record)")
        print(f"in-process call of the same strategy: {direct * 1000:.2f} ms; isolated / "
              f"in-process = {median_wall / max(direct, 1e-9):.0f}x, which matters only for "
              "candidates that take well under a second")


if __name__ == "__main__":
    main()
