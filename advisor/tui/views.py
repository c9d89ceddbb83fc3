"""What the TUI's screens show, as text and table rows, from plain data (a hardware probe, a
data profile, run records). Pure functions: no widgets, no app, easy to test."""

from __future__ import annotations

import re
from typing import Any


def hardware_summary(hw: dict[str, Any] | None) -> str:
    if not hw:
        return "Detecting hardware ..."
    gpu = (f"{hw.get('gpu')} ({hw.get('gpu_memory_gb')} GB)" if hw.get("cuda")
           else "no CUDA GPU")
    return (f"Detected: {hw.get('cores')} CPU cores, {hw.get('memory_gb')} GB RAM, {gpu}. "
            "Edit below if you will run elsewhere.")


def profile_summary(p: dict[str, Any]) -> str:
    splits = p.get("splits") or {}
    lines = [f"[b]{p.get('task')}[/b] · {p.get('rows')} rows (train {splits.get('train')}, "
             f"validation {splits.get('validation')}, test {splits.get('test')})"]
    labels = p.get("labels") or {}
    if labels:
        shown = ", ".join(f"{k} {v}" for k, v in list(labels.items())[:6])
        more = f" (+{len(labels) - 6} more)" if len(labels) > 6 else ""
        lines.append(f"{len(labels)} labels: {shown}{more}")
    lengths = p.get("token_length") or {}
    if lengths:
        lines.append(f"length ({p.get('token_counter', 'tokens')}): median {lengths.get('p50')}, "
                     f"p90 {lengths.get('p90')}, max {lengths.get('max')}")
    if p.get("has_corpus"):
        lines.append(f"corpus: {p.get('corpus_docs')} documents")
    warnings = p.get("warnings") or []
    lines.append("warnings: " + ("; ".join(map(str, warnings[:3])) if warnings else "none"))
    return "\n".join(lines)


def without_cli_hints(message: str) -> str:
    """A data error as the TUI shows it: the command-line flags it suggests ("pass --label-col
    COLUMN") left out, since the data screen offers column pickers instead."""
    message = re.sub(r"\s*\((?:pass )?--[^()]*\)", "", message)  # "(pass --text-col txt)"
    clauses = re.split(r"(?<=[.;])\s+", message)
    text = " ".join(clause for clause in clauses if "--" not in clause).strip().rstrip(";")
    return text if text.endswith(".") or not text else text + "."


def record_metric(record: dict[str, Any]) -> tuple[str, float | None]:
    name = record.get("primary_metric") or "metric"
    value = (record.get("metrics") or {}).get(name)
    return name, value if isinstance(value, (int, float)) else None


def _number(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def live_row(record: dict[str, Any]) -> tuple[str, ...]:
    """A finished candidate in the run screen's table: strategy, status, metric, memory, time."""
    _, value = record_metric(record)
    return (record.get("strategy", "?"), record.get("status", "?"), _number(value, 3),
            _number((record.get("peak_memory_mb") or {}).get("cpu_rss"), 0),
            _number((record.get("time_s") or {}).get("total"), 1))


def finished_status(record: dict[str, Any]) -> str:
    """The text a candidate's progress row ends on."""
    name, value = record_metric(record)
    status = record.get("status", "?")
    if value is not None:
        return f"{status} {name}={value:.3f}"
    return f"{status}: {(record.get('error') or '')[:60]}"


def measured_rows(result, ranking) -> tuple[list[tuple[str, ...]], str | None]:
    """Rows of the results table: ok records best first, then the others; the advisor's prior
    rank beside the measured one."""
    records = list(getattr(result, "records", []) or [])
    prior = {c.strategy: i for i, c in enumerate(ranking.ranked, 1)} if ranking else {}
    metric = next((r.get("primary_metric") for r in records if r.get("primary_metric")), None)

    def sort_key(record):
        _, value = record_metric(record)
        return (record.get("status") != "ok" or value is None, -(value or 0.0))

    rows = []
    for i, record in enumerate(sorted(records, key=sort_key), 1):
        strategy = record.get("strategy", "?")
        _, value = record_metric(record)
        memory = (record.get("peak_memory_mb") or {}).get("cpu_rss")
        seconds = (record.get("time_s") or {}).get("total")
        estimate = (record.get("estimate") or {}).get("time_s")
        if estimate is None and ranking:
            estimate = next(((c.estimate or {}).get("time_s") for c in ranking.ranked
                             if c.strategy == strategy), None)
        cost = (record.get("cost_usd") or {}).get("adapt"), (record.get("cost_usd") or {}).get("predict")
        total_cost = sum(c for c in cost if isinstance(c, (int, float)))
        rows.append((str(i), strategy, record.get("status", "?"), _number(value, 3),
                     str(prior.get(strategy, "—")), _number(memory, 0), _number(seconds, 1),
                     _number(estimate, 0), f"{total_cost:.4f}"))
    return rows, metric
