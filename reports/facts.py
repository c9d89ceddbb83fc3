"""Facts read off one record or the run's manifest: its metrics and their intervals, its
memory, time, cost and deployment facts. Pure getters over plain dicts that tolerate missing
keys (old or partial records); reports.analysis and the report's sections build on them.
"""

from __future__ import annotations

from typing import Any

from bench.schema import HIGHER_IS_BETTER, PRIMARY_METRIC
from reports import format as fmt

# Metrics of each task kind, in the order the table shows them (primary first).
TASK_METRICS = {
    "classification": ["accuracy", "macro_f1", "precision", "recall"],
    "generation": ["rouge_l", "token_f1", "exact_match"],
    "qa": ["token_f1", "exact_match", "rouge_l"],
    "preference": ["preference_accuracy", "win_rate", "reward_accuracy"],
}
FAILED_STATUSES = ("failed", "skipped", "timeout")


def dig(mapping: Any, *keys: str) -> Any:
    """mapping[k1][k2]... or None as soon as a level is missing or not a dict."""
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def as_list(value: Any) -> list:
    """value when it is a list, else [] (advice and records can be partial or odd)."""
    return value if isinstance(value, list) else []


def ok_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") == "ok"]


def is_degenerate(record: dict) -> bool:
    """The harness flagged its predictions as collapsed to one answer (it did not learn)."""
    return record.get("degenerate") is True


DEGENERATE_MARK = "⚠ collapsed"  # shown beside a degenerate candidate's metric


def unfinished_records(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("status") != "ok"]


# ---------------------------------------------------------------- the task and its metrics

def run_task(records: list[dict], manifest: dict) -> str:
    task = dig(manifest, "data", "task") or manifest.get("task")
    if not task:
        task = next((r.get("task") for r in records if r.get("task")), None)
    return str(task or "classification")


def primary_metric(records: list[dict], manifest: dict) -> str:
    named = next((r.get("primary_metric") for r in ok_records(records) if r.get("primary_metric")), None)
    return str(named or PRIMARY_METRIC.get(run_task(records, manifest), "accuracy"))


def quality_metrics(records: list[dict], manifest: dict) -> list[str]:
    """Primary metric first, then the task's usual metrics, then extras any record reports."""
    primary = primary_metric(records, manifest)
    present = {name for r in records for name in (r.get("metrics") or {})}
    ordered = [primary] + [m for m in TASK_METRICS.get(run_task(records, manifest), []) if m != primary]
    extras = sorted(present - set(ordered))
    return [m for m in ordered if m == primary or m in present] + extras


def metric_value(record: dict, metric: str) -> float | None:
    return fmt.as_number(dig(record, "metrics", metric))


def metric_ci(record: dict, metric: str) -> tuple[float, float] | None:
    """The 95% interval: bootstrap CI when recorded, else mean ± 2 std over seeds."""
    interval = dig(record, "metrics_ci", metric)
    if isinstance(interval, (list, tuple)) and len(interval) == 2:
        low, high = fmt.as_number(interval[0]), fmt.as_number(interval[1])
        if low is not None and high is not None:
            return (low, high)
    value, std = metric_value(record, metric), fmt.as_number(dig(record, "metrics_std", metric))
    if value is not None and std is not None:
        return (value - 2 * std, value + 2 * std)
    return None


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER.get(metric, True)


# ---------------------------------------------------------------- resources

def peak_memory_mb(record: dict) -> float | None:
    """The memory that limits where a candidate can run: CUDA when measured, else process RSS."""
    cuda = fmt.as_number(dig(record, "peak_memory_mb", "cuda"))
    return cuda if cuda is not None else fmt.as_number(dig(record, "peak_memory_mb", "cpu_rss"))


def time_part(record: dict, part: str) -> float | None:
    return fmt.as_number(dig(record, "time_s", part))


def cost_part(record: dict, part: str) -> float | None:
    return fmt.as_number(dig(record, "cost_usd", part))


def test_rows(manifest: dict) -> int | None:
    """Test split size, wherever this manifest version keeps it."""
    for path in (("split", "sizes", "test"), ("split", "test"), ("splits", "test"), ("split_sizes", "test"),
                 ("profile", "splits", "test"),
                 ("data", "split_sizes", "test"), ("data", "profile", "splits", "test")):
        value = dig(manifest, *path)
        if isinstance(value, list):
            return len(value)
        number = fmt.as_number(value)
        if number:
            return int(number)
    return None


def train_rows(manifest: dict) -> int | None:
    for path in (("split", "sizes", "train"), ("split", "train"), ("profile", "splits", "train"),
                 ("data", "profile", "splits", "train")):
        value = dig(manifest, *path)
        number = len(value) if isinstance(value, list) else fmt.as_number(value)
        if number:
            return int(number)
    return None


def seconds_per_request(record: dict, manifest: dict) -> float | None:
    predict, rows = time_part(record, "predict"), test_rows(manifest)
    if predict is None or not rows:
        return None
    return predict / rows


def has_cuda_memory(records: list[dict]) -> bool:
    return any(fmt.as_number(dig(r, "peak_memory_mb", "cuda")) is not None for r in records)


def deploy_value(record: dict, key: str) -> float | None:
    """A deployment fact measured after evaluation (bench.deploy): p50_ms, p95_ms, serving_mb."""
    return fmt.as_number(dig(record, "deploy", key))


def has_deploy_facts(records: list[dict]) -> bool:
    return any(deploy_value(r, "p50_ms") is not None for r in records)
