"""Executors: who runs a run's jobs, and where. Each yields records as candidates finish.

    LocalExecutor().run(jobs, on_event, cancel)          # one after another on this machine
    LocalExecutor.for_jobs(jobs, per_candidate=2)        # one candidate per GPU group
    bench.ray_executor.RayExecutor(address="auto")       # Ray tasks, same measured path

Every executor runs a candidate through `bench.launch.run_candidate`, so a record measures the
same thing wherever it ran; only the driver (bench.runner) writes results.jsonl.
"""

from __future__ import annotations

import dataclasses
import os
import queue as queue_module
import threading
from typing import Any, Iterable, Iterator, Protocol

from bench.errors import TunewiseError
from bench.events import EventHandler, with_position
from bench.launch import POLL_INTERVAL_S, run_candidate
from bench.plan import CandidateJob
from bench.records import base_record


class Executor(Protocol):
    def run(self, jobs: list[CandidateJob], on_event: EventHandler | None,
            cancel: threading.Event) -> Iterator[dict[str, Any]]:
        """Run the jobs and yield each record as it finishes."""
        ...


class LocalExecutor:
    """Children on this machine: one after another, or one per GPU at a time.

    With `gpus=[0, 1, ...]` (several), each GPU runs its own queue of candidates, pinned with
    CUDA_VISIBLE_DEVICES, so memory and time are still each candidate's own GPU's. With
    `per_candidate=N` the GPUs are taken N at a time ("0,1", "2,3"): a trainable candidate
    that sees several GPUs trains across them (bench.distributed: DDP, or FSDP for full FT)."""

    def __init__(self, gpus: Iterable[int] | None = None, per_candidate: int = 1) -> None:
        gpus = list(gpus or [])
        per_candidate = max(1, per_candidate)
        # Each slot is the CUDA_VISIBLE_DEVICES of one running candidate.
        self.gpus = [",".join(map(str, gpus[i:i + per_candidate]))
                     for i in range(0, len(gpus) - per_candidate + 1, per_candidate)]

    @classmethod
    def for_jobs(cls, jobs: list[CandidateJob], per_candidate: int = 1) -> "LocalExecutor":
        """One child per GPU (or per group of `per_candidate` GPUs) when the candidates run on
        CUDA and there are several GPUs."""
        if jobs and jobs[0].device == "cuda":
            count = int(jobs[0].hardware.get("gpu_count") or 0)
            if per_candidate > count > 0:
                raise TunewiseError(f"--gpus-per-candidate {per_candidate}: this machine has "
                                    f"{count} GPU(s)")
            if count > 1 and not os.environ.get("CUDA_VISIBLE_DEVICES"):
                return cls(range(count), per_candidate)
        return cls()

    def run(self, jobs: list[CandidateJob], on_event: EventHandler | None,
            cancel: threading.Event) -> Iterator[dict[str, Any]]:
        if len(self.gpus) > 1:
            yield from self._run_per_gpu(jobs, on_event, cancel)
            return
        for index, job in enumerate(jobs, start=1):
            if cancel.is_set():
                return
            if self.gpus:
                job = dataclasses.replace(job, visible_devices=self.gpus[0])
            yield run_candidate(job, with_position(on_event, index, len(jobs)), cancel)

    def _run_per_gpu(self, jobs, on_event, cancel) -> Iterator[dict[str, Any]]:
        pending: queue_module.Queue = queue_module.Queue()
        for item in enumerate(jobs, start=1):
            pending.put(item)
        finished: queue_module.Queue = queue_module.Queue()

        def worker(gpu: str) -> None:
            while not cancel.is_set():
                try:
                    index, job = pending.get_nowait()
                except queue_module.Empty:
                    return
                job = dataclasses.replace(job, visible_devices=gpu)
                try:
                    handler = with_position(on_event, index, len(jobs))
                    finished.put(run_candidate(job, handler, cancel))
                except BaseException as exc:  # noqa: BLE001 - a harness bug must not hang the run
                    finished.put(base_record(job, "failed", f"harness error: {exc!r}"))

        threads = [threading.Thread(target=worker, args=(gpu,), daemon=True)
                   for gpu in self.gpus]
        for thread in threads:
            thread.start()
        try:
            for _ in jobs:
                while True:
                    try:
                        record = finished.get(timeout=POLL_INTERVAL_S)
                        break
                    except queue_module.Empty:
                        if not any(t.is_alive() for t in threads) and finished.empty():
                            return  # cancelled: the workers stopped taking jobs
                yield record
        finally:
            if any(t.is_alive() for t in threads):
                cancel.set()  # interrupted: every worker stops its child
            for thread in threads:
                thread.join()


def local_executor_for(jobs: list[CandidateJob]) -> LocalExecutor:
    """The default executor, its GPU groups as large as the jobs ask for (--gpus-per-candidate).
    Untrained candidates get a whole group too: a group is the unit of scheduling."""
    return LocalExecutor.for_jobs(jobs, max((job.gpus for job in jobs), default=1))
