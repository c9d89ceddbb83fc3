"""A scripted stand-in for bench.runner.run_benchmark: same call, same events, fixed records.

A test helper for deterministic screenshots and tests of the TUI's run and results screens
(like lm-evaluation-harness's `dummy` model): `TunewiseApp(runner=ScriptedRunner(...))`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class ScriptedResult:
    run_dir: Path
    records: list[dict[str, Any]]
    interrupted: bool = False


def scripted_record(strategy: str, family: str, accuracy: float, memory_mb: float,
                    seconds: float) -> dict[str, Any]:
    return {"strategy": strategy, "family": family, "task": "classification", "status": "ok",
            "error": None, "primary_metric": "accuracy", "metrics": {"accuracy": accuracy},
            "peak_memory_mb": {"cpu_rss": memory_mb, "cuda": None},
            "time_s": {"adapt": seconds * 0.8, "predict": seconds * 0.2, "total": seconds},
            "cost_usd": {"adapt": seconds * 0.8 / 3600 * 0.085,
                         "predict": seconds * 0.2 / 3600 * 0.085, "per_1k_requests": 0.0}}


@dataclass
class ScriptedRunner:
    """Emits started/progress/finished for `records` in order; with `hold_after`, stops after
    that many candidates and waits for cancel (so a screen can be seen mid-run)."""

    records: list[dict[str, Any]]
    run_dir: str = "runs/scripted"
    hold_after: int | None = None
    hold_timeout_s: float = 30.0
    plans: list[Any] = field(default_factory=list)

    executors: list[Any] = field(default_factory=list)  # what the service passed (a race)

    def __call__(self, plan, *, on_event: Callable[[Any], None], cancel: threading.Event,
                 executor: Any = None):
        from bench.runner import (CandidateFinished, CandidateProgress, CandidateStarted,
                                  RunFinished)

        self.plans.append(plan)
        self.executors.append(executor)
        done: list[dict[str, Any]] = []
        for index, record in enumerate(self.records):
            if self.hold_after is not None and index == self.hold_after:
                on_event(CandidateStarted(record["strategy"], 0, index + 1, len(self.records)))
                on_event(CandidateProgress(record["strategy"], "adapt", 3, 10, 1.234,
                                           "epoch 1/2"))
                cancel.wait(self.hold_timeout_s)
            if cancel.is_set():
                break
            on_event(CandidateStarted(record["strategy"], 0, index + 1, len(self.records)))
            on_event(CandidateProgress(record["strategy"], "predict", 1, 1))
            on_event(CandidateFinished(record["strategy"], record))
            done.append(record)
        on_event(RunFinished(Path(self.run_dir)))
        return ScriptedResult(Path(self.run_dir), done, interrupted=cancel.is_set())
