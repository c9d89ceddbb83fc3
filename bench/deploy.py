"""Deployment facts of a finished candidate: latency per request at batch 1 and serving memory.

    deploy = measure_deploy(output.answer, split.test, device="cpu")
    # {"p50_ms": 41.2, "p95_ms": 55.0, "requests": 8, "serving_mb": 912.3, "memory_kind": ...}

Called by the child (bench.child) after the strategy returned its predictions, in the same
process, with the candidate still loaded: the strategy hands over `StrategyOutput.answer`, its
own predict path for more rows, and this module is the one place that times it. It answers a few
test rows one at a time (one untimed warm-up first: lazy initialisation is not a request's
latency), within a small time budget, and reports nearest-rank p50/p95 over the timed requests.
Its own seconds (`measure_s`) are recorded apart from the candidate's time_s.total
(bench.records): measuring the candidate is not the candidate's work.

Serving memory is the peak while answering those requests: CUDA memory allocated by torch on a
GPU, else the process's resident set (its high-water mark reset first where Linux allows it).
It is an upper bound on what a server needs: it includes whatever the candidate's process still
holds after adapting. Measuring never fails the candidate: an error is recorded instead.
"""

from __future__ import annotations

import gc
import math
import sys
import time
from typing import Any, Callable

from bench.peak_memory import peak_rss_mb

MAX_REQUESTS = 8  # timed requests at most
MIN_REQUESTS = 2  # timed even past the budget (unless the rows run out)
BUDGET_S = 4.0  # seconds (warm-up included) after which no new request starts


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (the smallest value with at least q% of the values <= it)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def measure_deploy(answer: Callable[[list[dict[str, Any]]], list[Any]] | None,
                   rows: list[dict[str, Any]], device: str,
                   budget_s: float = BUDGET_S) -> dict[str, Any]:
    """{p50_ms, p95_ms, requests, serving_mb, memory_kind, measure_s} or {"error": why}."""
    if answer is None:
        return {"error": "not measured: the strategy exposes no predict path for new rows"}
    if not rows:
        return {"error": "not measured: no test rows"}
    started = time.perf_counter()
    try:
        _reset_peak_memory(device)
        answer([rows[0]])  # warm-up, untimed
        latencies = _timed_requests(answer, rows[:MAX_REQUESTS], started + budget_s)
        serving_mb, kind = _serving_memory(device)
    except Exception as exc:  # noqa: BLE001 - a measurement must never fail the candidate
        return {"error": f"not measured: {type(exc).__name__}: {str(exc).strip()[:200]}"}
    return {"p50_ms": round(percentile(latencies, 50) * 1000, 2),
            "p95_ms": round(percentile(latencies, 95) * 1000, 2),
            "requests": len(latencies), "batch_size": 1,
            "serving_mb": round(serving_mb, 1) if serving_mb is not None else None,
            "memory_kind": kind, "measure_s": round(time.perf_counter() - started, 3)}


def _timed_requests(answer, rows: list[dict[str, Any]], deadline: float) -> list[float]:
    latencies: list[float] = []
    for row in rows:
        if len(latencies) >= MIN_REQUESTS and time.perf_counter() >= deadline:
            break
        start = time.perf_counter()
        predictions = answer([row])
        seconds = time.perf_counter() - start
        if len(predictions) != 1:
            raise ValueError(f"answered {len(predictions)} predictions for 1 row")
        latencies.append(seconds)
    return latencies


def _torch_cuda(device: str):
    torch = sys.modules.get("torch")
    if device != "cuda" or torch is None or not torch.cuda.is_available():
        return None
    return torch.cuda


def _reset_peak_memory(device: str) -> None:
    """Forget the peaks of adapting: only answering counts from here."""
    gc.collect()
    cuda = _torch_cuda(device)
    if cuda is not None:
        cuda.empty_cache()
        cuda.reset_peak_memory_stats()
        return
    try:  # Linux: "5" resets this process's VmHWM to its current RSS
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass  # elsewhere the high-water mark keeps the adapting peak (an over-estimate)


def _serving_memory(device: str) -> tuple[float | None, str]:
    cuda = _torch_cuda(device)
    if cuda is not None:
        return cuda.max_memory_allocated() / 2**20, "cuda allocated"
    return peak_rss_mb(), "process rss"
