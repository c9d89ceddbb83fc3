"""Plan a benchmark, run every candidate in its own process, and journal the records.

    from bench.runner import BenchPlan, run_benchmark
    result = run_benchmark(BenchPlan(data="bench/samples/banking_support/train.jsonl",
                                     test="bench/samples/banking_support/test.jsonl",
                                     strategies=["majority", "zero-shot"], out="runs"))
    result.run_dir, result.records

The story of a run, one module per step:
1. bench.plan: `prepare_run(plan)` checks the plan, loads and splits the data once
   (bench.data), writes manifest.json and split.json, and returns one `CandidateJob` per
   candidate (finished candidates are left out on --resume).
2. bench.executors: an executor runs the jobs (`LocalExecutor` here, bench.ray_executor on
   Ray); bench.launch's `run_candidate(job)` runs each seed in its own child and bench.records
   turns what happened into a record. Progress reaches the caller as bench.events.
3. bench.stages: models the candidates share (the preference win-rate judge) are built first,
   once, each as a stage with its own record in stages.jsonl.
4. Here: `run_benchmark` appends each record to results.jsonl (flush + fsync) as it arrives —
   only the driver writes that file — and keeps every record when interrupted.
Front doors (the CLI, `advise --run`, the demo, the TUI) call bench.service, which wraps this
with one error policy and the report.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import journal, stages
from bench.events import (CandidateFinished, CandidateProgress, CandidateStarted, Event,
                          EventHandler, RunFinished, emit)
from bench.executors import Executor, LocalExecutor, local_executor_for
from bench.launch import run_candidate
from bench.plan import BenchPlan, CandidateJob, prepare_run

__all__ = ["BenchPlan", "CandidateJob", "CandidateFinished", "CandidateProgress",
           "CandidateStarted", "Event", "EventHandler", "Executor", "LocalExecutor",
           "RunFinished", "RunResult", "prepare_run", "run_benchmark", "run_candidate"]


@dataclass
class RunResult:
    run_dir: Path
    records: list[dict[str, Any]]
    interrupted: bool = False  # Ctrl-C or cancel: the unfinished candidates can be resumed
    stages: list[dict[str, Any]] = field(default_factory=list)  # bench.stages, this session


def run_benchmark(plan: BenchPlan, *, on_event: EventHandler | None = None,
                  cancel: threading.Event | None = None, executor: Executor | None = None
                  ) -> RunResult:
    """Prepare, run every candidate, append each record as it finishes; see the module doc."""
    sweeping = plan.tune or plan.learning_curve or plan.more_data
    if sweeping:
        from bench import sweeps

        sweeps.check_plan(plan)  # before any data is read or any run folder is made
    with journal.lock_run_dir(plan.resume) if plan.resume else contextlib.nullcontext():
        run_dir, jobs = prepare_run(plan)
        if sweeping:
            jobs = sweeps.expand_jobs(plan, run_dir, jobs)
        stage_jobs, jobs = stages.plan_stages(run_dir, jobs)
        stage_executor = executor or local_executor_for(stage_jobs)  # a stage is never swept
        if sweeping:
            executor = sweeps.SweepExecutor(executor or local_executor_for(jobs), plan.tune)
        return _run_jobs(run_dir, jobs, on_event, cancel, executor, (stage_jobs, stage_executor))


def _run_jobs(run_dir: Path, jobs: list[CandidateJob], on_event: EventHandler | None,
              cancel: threading.Event | None, executor: Executor | None,
              stage_plan: tuple[list[CandidateJob], Executor] | None = None) -> RunResult:
    records = journal.read_records(run_dir)  # finished ones, when resuming
    cancel = cancel or threading.Event()
    executor = executor or local_executor_for(jobs)
    started = time.time()
    interrupted = False
    stage_records: list[dict[str, Any]] = []
    try:
        if stage_plan is not None:  # shared models first: the candidates load them
            stage_records += stages.run_stages(run_dir, *stage_plan, on_event, cancel)
        for record in executor.run(jobs, on_event, cancel):
            if record.get("info", {}).get("cancelled"):
                interrupted = True  # not journalled: --resume runs it again
                continue
            journal.append_record(run_dir, record)
            records.append(record)
            emit(on_event, CandidateFinished(record.get("variant") or record["strategy"],
                                             record))
    except KeyboardInterrupt:
        cancel.set()
        interrupted = True
    interrupted = interrupted or cancel.is_set()
    _record_session(run_dir, started, [job.strategy for job in jobs], interrupted)
    emit(on_event, RunFinished(run_dir))
    return RunResult(run_dir, records, interrupted, stage_records)


def _record_session(run_dir: Path, started: float, strategies: list[str],
                    interrupted: bool) -> None:
    path = run_dir / journal.MANIFEST
    manifest = journal.read_json(path)
    manifest.setdefault("sessions", []).append({
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 2),
        "candidates": strategies,
        "interrupted": interrupted,
    })
    journal.write_json_atomic(path, manifest)
