"""Read a run folder (manifest.json + results.jsonl) into plain data for the report and tables.

The report must never crash on an old, partial or half-written run: a missing manifest, a
truncated last line (the harness appends as candidates finish) or a record without optional
keys all load, and what could not be read is listed as a note rather than raised.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError
from bench.stages import read_stages

ADVICE_FILE = "advice.json"  # the advisor's ranked JSON (+ answers), when the run came from it


@dataclass
class RunData:
    run_dir: Path
    manifest: dict[str, Any]
    records: list[dict[str, Any]]  # one per candidate (the last record wins for a strategy)
    curve_records: list[dict[str, Any]]  # learning-curve points, kept out of the main table
    notes: list[str] = field(default_factory=list)  # what could not be read, said in the report
    # once-per-run stages the candidates shared (bench.stages: the win-rate judge), not ranked
    stages: list[dict[str, Any]] = field(default_factory=list)


def load_run(run_dir: str | Path) -> RunData:
    """The manifest and records of `run_dir`; raises TunewiseError only when there is no run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TunewiseError(f"{run_dir} is not a run folder (expected a folder holding "
                            "results.jsonl, as written by `tunewise bench --out DIR`)")
    results_path = run_dir / "results.jsonl"
    manifest_path = run_dir / "manifest.json"
    if not results_path.exists() and not manifest_path.exists():
        raise TunewiseError(f"{run_dir} holds neither results.jsonl nor manifest.json; "
                            "pass the folder that `tunewise bench` printed last")
    notes: list[str] = []
    manifest = _read_manifest(manifest_path, notes)
    if "advice" not in manifest:
        advice = _read_advice(run_dir / ADVICE_FILE, notes)
        if advice is not None:
            manifest["advice"] = advice
    raw = _read_records(results_path, notes)
    records, curve = split_curve_records(raw)
    records = [with_variant_name(r) for r in records]
    stages = [normalise_record(r) for r in read_stages(run_dir) if isinstance(r, dict)]
    return RunData(run_dir, manifest, _last_per_strategy(records), curve, notes, stages)


def with_variant_name(record: dict[str, Any]) -> dict[str, Any]:
    """Variants of one strategy (multi-task runs: `lora@multitask`, `lora@other_dataset`; one
    run per base model: `lora@SmolLM2-135M`) share the strategy name; the record's `variant`,
    else its log file's name, keeps their rows apart. The strategy's own name stays in
    base_strategy."""
    strategy, log = record.get("strategy"), record.get("log")
    variant = record.get("variant")
    if isinstance(strategy, str) and isinstance(variant, str) and variant != strategy:
        return {**record, "strategy": variant, "base_strategy": strategy}
    if isinstance(strategy, str) and isinstance(log, str):
        stem = Path(log).stem
        if stem.startswith(strategy + "@"):
            return {**record, "strategy": stem, "base_strategy": strategy}
    return record


def _read_advice(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        advice = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"{ADVICE_FILE} could not be read ({exc})")
        return None
    return normalise_manifest({"advice": advice}).get("advice")


def save_advice(run_dir: str | Path, advice: dict[str, Any]) -> Path:
    """Keep the advisor's ranking with the run (advice.json), so a later `tunewise report`
    shows it too; the harness's manifest.json is left as the harness wrote it."""
    path = Path(run_dir) / ADVICE_FILE
    path.write_text(json.dumps(advice, indent=1, default=str) + "\n", encoding="utf-8")
    return path


def _read_manifest(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.exists():
        notes.append("manifest.json is missing: data profile and environment are unknown")
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        notes.append(f"manifest.json could not be read ({exc})")
        return {}
    if not isinstance(manifest, dict):
        notes.append("manifest.json does not hold an object; ignored")
        return {}
    return normalise_manifest(manifest)


def _read_records(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    if not path.exists():
        notes.append("results.jsonl is missing: no candidate has finished yet")
        return []
    records = []
    # newlines only: str.splitlines() also cuts at U+2028/U+0085 inside a record's text
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            # The harness appends and flushes per candidate; a crash can leave half a line.
            notes.append(f"results.jsonl line {number} is not valid JSON; skipped")
            continue
        if isinstance(record, dict) and record.get("strategy") not in (None, ""):
            records.append(normalise_record(record))
        else:
            notes.append(f"results.jsonl line {number} is not a candidate record; skipped")
    return records


# Keys whose value must have one type for the report to read it; anything else is dropped.
RECORD_DICTS = ("metrics", "metrics_ci", "metrics_std", "peak_memory_mb", "time_s", "cost_usd", "hardware",
                "config", "info", "confusion_matrix", "estimate", "deploy", "prompt")
RECORD_LISTS = ("samples", "seeds", "per_class")
RECORD_TEXTS = ("strategy", "family", "status", "error", "primary_metric", "task", "log", "predictions",
                "model", "variant")
MANIFEST_DICTS = ("data", "profile", "split", "hardware", "packages", "advice", "git", "plan")


def normalise_record(record: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every known key has the type the report expects (or is absent): an old
    or hand-edited record degrades to missing values instead of crashing the report."""
    clean = dict(record)
    for key in RECORD_DICTS:
        if key in clean and not isinstance(clean[key], dict):
            del clean[key]
    for key in RECORD_LISTS:
        if key in clean and not isinstance(clean[key], list):
            del clean[key]
    for key in ("samples", "per_class"):
        if key in clean:
            clean[key] = [item for item in clean[key] if isinstance(item, dict)]
    for key in RECORD_TEXTS:
        if key in clean and clean[key] is not None and not isinstance(clean[key], str):
            clean[key] = str(clean[key])
    return clean


def normalise_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    clean = dict(manifest)
    for key in MANIFEST_DICTS:
        if key in clean and not isinstance(clean[key], dict):
            del clean[key]
    return clean


def is_curve_record(record: dict[str, Any]) -> bool:
    """A learning-curve point: a record run on a slice of the train rows, flagged in info."""
    info = record.get("info") or {}
    return bool(info.get("learning_curve")) and not isinstance(info.get("learning_curve"), list)


def split_curve_records(records: list[dict]) -> tuple[list[dict], list[dict]]:
    main = [r for r in records if not is_curve_record(r)]
    curve = [r for r in records if is_curve_record(r)]
    return main, curve


def _last_per_strategy(records: list[dict]) -> list[dict]:
    """On --resume a strategy can appear twice; its latest record is the one that counts."""
    latest: dict[str, dict] = {}
    for record in records:
        latest[str(record["strategy"])] = record
    return list(latest.values())


# ---------------------------------------------------------------- sample predictions

SAMPLE_ERRORS = 6  # wrong (or lowest-scored) predictions shown first
SAMPLE_RIGHT = 3  # then a few right ones, for contrast


@dataclass
class Samples:
    rows: list[dict[str, Any]]  # errors first (lowest score first), then right ones
    wrong: int | None  # test rows scored below 1 (None: not known)
    total: int  # test rows these were chosen from
    score_key: str | None  # the per-row score that ranks them ("correct", "rouge_l", ...)
    source: str  # "predictions" (every test row) or "record" (the few rows kept in the record)


def row_score_key(record: dict[str, Any], row: dict[str, Any]) -> str | None:
    """The per-row score that says how right a prediction is: `correct` for classification,
    else the primary metric's own row score when the row has it."""
    for key in ("correct", record.get("primary_metric")):
        if isinstance(key, str) and isinstance(row.get(key), (int, float)):  # bools too
            return key
    return None


def error_first_samples(run_dir: str | Path, record: dict[str, Any]) -> Samples:
    """Up to SAMPLE_ERRORS wrong predictions (lowest score first), then up to SAMPLE_RIGHT right
    ones, from the candidate's predictions file (every test row of its first seed), or from the
    few rows its record keeps when that file is gone."""
    rows = _prediction_rows(Path(run_dir), record)
    source = "predictions"
    if rows is None:
        rows, source = [dict(s) for s in record.get("samples") or [] if isinstance(s, dict)], "record"
    key = next((k for k in (row_score_key(record, row) for row in rows) if k), None)
    if key is None:
        return Samples(rows[:SAMPLE_ERRORS + SAMPLE_RIGHT], None, len(rows), None, source)
    scored = [(float(row[key]), position, row) for position, row in enumerate(rows)
              if isinstance(row.get(key), (int, float))]
    wrong = [item for item in scored if item[0] < 1.0]
    right = [item for item in scored if item[0] >= 1.0]
    chosen = heapq.nsmallest(SAMPLE_ERRORS, wrong) + right[:SAMPLE_RIGHT]
    return Samples([row for _, _, row in chosen], len(wrong), len(scored), key, source)


def _prediction_rows(run_dir: Path, record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The first seed's rows of predictions/<strategy>.jsonl, or None when it cannot be read.
    Only a file inside the run folder is read: a record cannot point the report elsewhere."""
    relative = record.get("predictions")
    if not isinstance(relative, str) or not relative:
        return None
    path = (run_dir / relative).resolve()
    if not path.is_file() or run_dir.resolve() not in path.parents:
        return None
    seed = record.get("seed")
    rows = []
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and (seed is None or row.get("seed", seed) == seed):
                    rows.append(row)
    except OSError:
        return None
    return rows or None
