"""End to end: `tunewise demo` and `tunewise demo --tiny` wall time, per candidate and per phase.

    python benchmarks/demo.py                 # both: --tiny then the default demo
    python benchmarks/demo.py --quick         # --tiny only
    python benchmarks/demo.py --from RUN_DIR  # only the breakdown of an existing run folder
    python benchmarks/demo.py --profile       # --tiny under pyinstrument (pip install pyinstrument)

Runs each demo as its own process (exactly the command a user types), measures its wall time
from outside, then reads the run folder's results.jsonl and prints, per candidate, the phases the
harness timed (load, adapt, predict) and the rest of the candidate's time (process start,
imports, scoring, record), plus what is outside every candidate (advisor, data, report).
Targets on 2 cores: --tiny <= 2 min, default <= 10 min. The run folders are kept under
--out (default /tmp/tunewise_demo_bench) so benchmarks/estimator.py can read them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TARGETS = {"tiny": 120.0, "default": 600.0}


def newest_run(folder: Path) -> Path:
    runs = [p for p in folder.iterdir() if (p / "results.jsonl").exists()]
    if not runs:
        raise SystemExit(f"no run folder with results.jsonl under {folder}")
    return max(runs, key=lambda p: p.stat().st_mtime)


def breakdown(run_dir: Path) -> float:
    """Print the per-candidate, per-phase table; return the summed candidate time."""
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()
               if line.strip()]
    print(f"  {'candidate':<12} {'status':<8} {'load':>7} {'adapt':>7} {'predict':>7} "
          f"{'other':>7} {'total':>7}  peak MB")
    summed = 0.0
    for r in records:
        t = r.get("time_s") or {}
        phases = sum(t.get(k, 0.0) for k in ("load", "adapt", "predict"))
        total = t.get("total", 0.0)
        summed += total
        print(f"  {r['strategy']:<12} {r['status']:<8} {t.get('load', 0):7.1f} "
              f"{t.get('adapt', 0):7.1f} {t.get('predict', 0):7.1f} {total - phases:7.1f} "
              f"{total:7.1f}  {r['peak_memory_mb']['cpu_rss']:.0f}")
    return summed


def run_demo(name: str, out: Path, profile: bool) -> None:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    command = ["demo", "--out", str(folder)] + (["--tiny"] if name == "tiny" else [])
    launcher = ([sys.executable, "-m", "pyinstrument", "-o", str(out / f"{name}.pyinstrument.txt"),
                 "-m", "advisor.cli"] if profile else [sys.executable, "-m", "advisor.cli"])
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(launcher + command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    wall = time.perf_counter() - started
    run_dir = newest_run(folder)
    print(f"\ntunewise {' '.join(command)}  (load average at start {load:.1f}, exit {done.returncode})")
    summed = breakdown(run_dir)
    print(f"  wall {wall:.0f} s = candidates {summed:.0f} s + advisor/data/report/spawn "
          f"{wall - summed:.0f} s; target <= {TARGETS[name]:.0f} s: "
          f"{'MET' if wall <= TARGETS[name] else 'NOT MET'}; run folder {run_dir}")
    if done.returncode not in (0, 1):
        print("  stderr tail:", done.stderr[-800:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only demo --tiny")
    parser.add_argument("--from", dest="run_dir", type=Path, help="breakdown of this run only")
    parser.add_argument("--profile", action="store_true", help="run under pyinstrument")
    parser.add_argument("--out", type=Path, default=Path("/tmp/tunewise_demo_bench"))
    args = parser.parse_args()
    if args.run_dir:
        breakdown(args.run_dir)
        return
    for name in (("tiny",) if args.quick else ("tiny", "default")):
        run_demo(name, args.out, args.profile)


if __name__ == "__main__":
    main()
