"""How long `tunewise data check` takes on a large CSV, and how much memory it holds.

    python benchmarks/data_check.py                 # 100,000 rows
    python benchmarks/data_check.py --rows 1000000  # ~100 MB of CSV

Writes a synthetic classification CSV (20 labels, ~100 characters of text a row, an unused
column) under the temp folder, then times load_task_data on it in this process. Prints the
seconds, rows per second, the file size and the peak RSS next to the file size: the loader
streams the file and keeps only the columns the task needs, so the ratio stays small.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = [f"word{i}" for i in range(2000)]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("id,text,label,notes\n")
        for i in range(rows):
            text = " ".join(rng.choices(words, k=rng.randint(8, 20)))
            handle.write(f"{i},\"{text}\",intent_{rng.randrange(20)},unused note {i}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tunewise-data-bench-"))
    path = folder / "big.csv"
    write_csv(path, args.rows)
    from bench.data import load_task_data

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    loaded = load_task_data(path)
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = path.stat().st_size / 1e6
    print(f"rows: {loaded.profile['rows']:,}  file: {size_mb:.1f} MB")
    print(f"check: {seconds:.2f} s  ({loaded.profile['rows'] / seconds:,.0f} rows/s)")
    print(f"peak RSS: {rss_after:.0f} MB (before the check {rss_before:.0f} MB); "
          f"growth / file size: {(rss_after - rss_before) / size_mb:.1f}x")
    path.unlink()
    folder.rmdir()


if __name__ == "__main__":
    main()
