"""The run folder: what a benchmark leaves behind, and how a run is resumed.

    runs/<run-id>/
      manifest.json              data hash, split indices, models, hardware, package versions,
                                 git hash, seed(s), the exact command, the plan
      split.json                 the rows every candidate sees (train / validation / test ...)
      results.jsonl              one record per candidate, appended + fsync'd as each finishes
      attempts.jsonl             records superseded on --resume (failed / timeout reruns)
      stages.jsonl               once-per-run shared models (bench.stages), one record each
      logs/<strategy>.log        the child's stdout, stderr, phases and progress
      predictions/<strategy>.jsonl   every test prediction with its reference and score
      work/<strategy>/           the candidate's artifacts (adapter, index, ...); a stage's too

Only the driver process writes results.jsonl, so appends never interleave.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterable

from bench.errors import TunewiseError

MANIFEST = "manifest.json"
SPLIT = "split.json"
RESULTS = "results.jsonl"
ATTEMPTS = "attempts.jsonl"
FINISHED_STATUSES = ("ok", "skipped")  # not rerun on --resume

# Versions recorded in the manifest (read from metadata: nothing is imported).
TRACKED_PACKAGES = (
    "torch", "transformers", "peft", "trl", "accelerate", "bitsandbytes", "sentence-transformers",
    "faiss-cpu", "scikit-learn", "datasets", "evaluate", "rouge-score", "numpy", "tunewise",
)


def new_run_dir(out: str | os.PathLike) -> Path:
    """A fresh folder under `out`, named by UTC time plus a random suffix (sortable, unique)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out) / f"{stamp}-{secrets.token_hex(2)}"
    try:
        (run_dir / "logs").mkdir(parents=True)
        (run_dir / "predictions").mkdir()
        (run_dir / "work").mkdir()
    except OSError as exc:
        raise TunewiseError(f"cannot create the run folder under {out}: {exc}") from None
    return run_dir


@contextlib.contextmanager
def lock_run_dir(path: str | os.PathLike):
    """Hold the run folder while resuming it: a second `--resume` of the same folder stops
    with a message instead of interleaving two runs' records."""
    from filelock import FileLock, Timeout

    run_dir = open_run_dir(path)
    lock = FileLock(str(run_dir / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TunewiseError(f"{run_dir} is being run by another tunewise process; wait for it "
                            "to finish (or stop it) before resuming") from None
    try:
        yield run_dir
    finally:
        lock.release()


def open_run_dir(path: str | os.PathLike) -> Path:
    run_dir = Path(path)
    if not (run_dir / MANIFEST).exists() or not (run_dir / SPLIT).exists():
        raise TunewiseError(f"{run_dir} is not a tunewise run folder (no {MANIFEST} / {SPLIT})")
    for sub in ("logs", "predictions", "work"):
        (run_dir / sub).mkdir(exist_ok=True)
    return run_dir


# --------------------------------------------------------------------------- JSON helpers


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2),
                   encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- records


def append_record(run_dir: Path, record: dict[str, Any], filename: str = RESULTS) -> None:
    """Append one record as a JSON line, flushed and fsync'd: a crash never loses it."""
    line = dumps(record) + "\n"
    with open(run_dir / filename, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read_records(run_dir: Path, filename: str = RESULTS) -> list[dict[str, Any]]:
    """Every record in the file; a torn last line (killed mid-write) is ignored."""
    path = Path(run_dir) / filename
    if not path.exists():
        return []
    records = []
    # split on newlines only: the records keep non-ASCII text as it is (ensure_ascii=False), and
    # str.splitlines() would also cut a record at a U+2028 or U+0085 inside a data row's text
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def finished_strategies(run_dir: Path) -> set[str]:
    return {r["strategy"] for r in read_records(run_dir) if r.get("status") in FINISHED_STATUSES}


def prepare_resume(run_dir: Path) -> set[str]:
    """Keep finished records in results.jsonl and move the others (failed, timeout, torn
    lines) to attempts.jsonl, so after the rerun results.jsonl has one record per candidate.
    Returns the finished strategy names."""
    records = read_records(run_dir)
    keep = [r for r in records if r.get("status") in FINISHED_STATUSES]
    for record in records:
        if record.get("status") not in FINISHED_STATUSES:
            append_record(run_dir, record, ATTEMPTS)
    tmp = run_dir / (RESULTS + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(dumps(r) + "\n" for r in keep)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / RESULTS)
    return {r["strategy"] for r in keep}


def write_predictions(run_dir: Path, strategy: str, rows: Iterable[dict[str, Any]]) -> Path:
    path = run_dir / "predictions" / f"{safe_name(strategy)}.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(dumps(row) + "\n" for row in rows)
    return path


def safe_name(strategy: str) -> str:
    """A file name for a strategy name (`peft:ia3` -> `peft_ia3`)."""
    return strategy.replace(":", "_").replace("/", "_")


def log_path(run_dir: Path, strategy: str) -> Path:
    return run_dir / "logs" / f"{safe_name(strategy)}.log"


def work_dir(run_dir: Path, strategy: str) -> Path:
    return run_dir / "work" / safe_name(strategy)


# --------------------------------------------------------------------------- manifest facts


def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    import importlib.metadata  # here, not at the top: the child imports this module too

    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """The commit of the tunewise checkout and whether it had local changes (None outside git)."""
    import subprocess

    repo = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=repo, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def size_on_disk_mb(path: str | os.PathLike | None) -> float:
    """Size of a file or a folder tree in MB (0 when there is nothing)."""
    if not path:
        return 0.0
    target = Path(path)
    if target.is_file():
        return target.stat().st_size / 2**20
    if not target.is_dir():
        return 0.0
    total = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return total / 2**20
