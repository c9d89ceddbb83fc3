"""Run one candidate: each seed in its own spawned child process, watched from here.

    record = run_candidate(job, on_event=print)

`run_candidate` spawns a child per seed (bench.child), relays its progress as events,
samples its memory, enforces the timeout and the memory ceiling, stops it on cancel, and
turns whatever happened into a record (bench.records): it never raises for a candidate's own
failure — crash, timeout, memory ceiling, SIGKILL, StrategyError and StrategySkipped all
become records. The local executor and the Ray executor both run candidates through it.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
import time
from pathlib import Path
from typing import Any

from bench.events import CandidateProgress, CandidateStarted, EventHandler, emit
from bench.plan import CandidateJob
from bench.records import (ChildOutcome, base_record, finished_record, stage_record,
                           unfinished_record)

POLL_INTERVAL_S = 0.1
KILL_GRACE_S = 5.0  # SIGTERM first, SIGKILL after this
LOG_TAIL_LINES = 8


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


# Finding the child's own children means reading every process's /proc entry (psutil has no
# cheaper way): ~1.4 ms per look with 80 processes, which at every poll took ~1.4 % of a core
# from the candidate it watches. Its RSS is read every poll; its children are looked up this often.
DESCENDANTS_INTERVAL_S = 1.0


class RssSampler:
    """RSS of the child and its own children (distributed ranks, helpers), MB: the child's read
    at every sample, the list of its children refreshed every DESCENDANTS_INTERVAL_S."""

    def __init__(self, process, interval_s: float = DESCENDANTS_INTERVAL_S) -> None:
        self.process, self.interval_s = process, interval_s
        self.descendants: list = []
        self.looked_at = float("-inf")

    def __call__(self) -> float:
        """MB now (0 once the child is gone)."""
        import psutil

        try:
            total = self.process.memory_info().rss
            if time.perf_counter() - self.looked_at >= self.interval_s:
                self.descendants = self.process.children(recursive=True)
                self.looked_at = time.perf_counter()
        except psutil.Error:
            return 0.0
        for child in self.descendants:
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20


def _kill(proc, process) -> None:
    """Stop the child and anything it started: SIGTERM, then SIGKILL after a grace period."""
    import psutil

    if not proc.is_alive():
        return
    try:
        helpers = process.children(recursive=True)
    except psutil.Error:
        helpers = []
    proc.terminate()
    proc.join(KILL_GRACE_S)
    if proc.is_alive():
        proc.kill()
        proc.join(KILL_GRACE_S)
    for helper in helpers:
        try:
            helper.kill()
        except psutil.Error:
            pass


def with_log_tail(head: str, log_path: str, lines: int = 3) -> str:
    """The message plus what the candidate was doing last (from its log)."""
    tail = _tail(log_path, lines)
    return f"{head}\nlast lines of its log:\n{tail}" if tail else head


def _death_message(exitcode: int | None, log_path: str) -> str:
    import signal

    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else exitcode
        why = (" — usually the kernel's out-of-memory killer, or a kill from outside"
               if name == "SIGKILL" else "")
        head = f"the candidate's process died from signal {name}{why}"
    else:
        head = f"the candidate's process exited with code {exitcode} before reporting a result"
    return with_log_tail(head, log_path, LOG_TAIL_LINES)


def _run_child(job: CandidateJob, seed: int, on_event: EventHandler | None,
               cancel: threading.Event | None) -> ChildOutcome:
    import psutil

    from bench import child

    spawn = multiprocessing.get_context("spawn")
    messages = spawn.Queue()
    proc = spawn.Process(target=child.child_main, args=(job.as_dict(), seed, messages),
                         name=f"tunewise-{job.strategy}")
    started = time.perf_counter()
    proc.start()
    process = psutil.Process(proc.pid)
    rss_mb = RssSampler(process)
    outcome: ChildOutcome | None = None
    peak = 0.0
    try:
        while outcome is None:
            try:
                message = messages.get(timeout=POLL_INTERVAL_S)
            except queue_module.Empty:
                message = None
            if message is not None:
                outcome = _handle_message(job, message, on_event)
                if outcome is not None:
                    break
            outcome = _check_child(job, proc, process, messages, on_event, started, cancel)
            peak = max(peak, rss_mb())
            if outcome is None and job.max_memory_mb and peak > job.max_memory_mb:
                _kill(proc, process)
                outcome = ChildOutcome(
                    "failed", with_log_tail(f"exceeded --max-memory {job.max_memory_mb:.0f} MB "
                                            f"(the process reached {peak:.0f} MB RSS) and was "
                                            "stopped", job.log_path))
        # The candidate's time ends with its result, not with the process's exit.
        outcome.wall_s = time.perf_counter() - started
        proc.join(KILL_GRACE_S)  # a reporting child exits right after its last message
    finally:
        try:
            _kill(proc, process)
        except KeyboardInterrupt:  # a second Ctrl-C: no more grace
            proc.kill()
            raise
        finally:
            messages.close()
    outcome.sampled_peak_mb = peak
    return outcome


def _check_child(job, proc, process, messages, on_event, started,
                 cancel) -> ChildOutcome | None:
    """Has the child died, run out of time, or been cancelled?"""
    if not proc.is_alive():
        outcome = _drain_after_exit(job, messages, on_event)
        if outcome is None:
            proc.join()
            outcome = ChildOutcome("failed", _death_message(proc.exitcode, job.log_path))
        return outcome
    if job.timeout_s and time.perf_counter() - started > job.timeout_s:
        _kill(proc, process)
        return ChildOutcome("timeout", with_log_tail(f"timed out after {job.timeout_s:g} s "
                                                     "(--timeout) and was stopped", job.log_path))
    if cancel is not None and cancel.is_set():
        _kill(proc, process)
        return ChildOutcome("cancelled", "cancelled before it finished")
    return None


def _shown_name(job: CandidateJob) -> str:
    """The name progress shows: `lora@<model>` when the run has several base models."""
    return job.variant if job.per_model and job.variant else job.strategy


def _handle_message(job: CandidateJob, message: tuple, on_event) -> ChildOutcome | None:
    kind = message[0]
    if kind == "phase":
        emit(on_event, CandidateProgress(_shown_name(job), message[1]))
    elif kind == "progress":
        _, phase, step, total, loss, text = message
        emit(on_event, CandidateProgress(_shown_name(job), phase, step, total, loss, text))
    elif kind == "result":
        return ChildOutcome("ok", payload=message[1])
    elif kind == "skipped":
        return ChildOutcome("skipped", message[1])
    elif kind == "failed":
        return ChildOutcome("failed", message[1])
    return None


def _drain_after_exit(job, messages, on_event) -> ChildOutcome | None:
    """The child exited: its last messages may still be in the pipe."""
    while True:
        try:
            message = messages.get(timeout=POLL_INTERVAL_S)
        except (queue_module.Empty, EOFError, OSError):
            return None
        outcome = _handle_message(job, message, on_event)
        if outcome is not None:
            return outcome


def run_candidate(job: CandidateJob, on_event: EventHandler | None = None,
                  cancel: threading.Event | None = None) -> dict[str, Any]:
    """Run one candidate (each seed in its own spawned child) and return its record.

    Never raises for the candidate's own failures: crash, timeout, memory ceiling, SIGKILL,
    StrategyError and StrategySkipped all become records."""
    if job.requires_cuda and job.device != "cuda":
        return base_record(job, "skipped", "needs a CUDA GPU; none is available here")
    from bench.split_view import ensure_inputs_view

    ensure_inputs_view(job.split_path, job.seed)  # what the child reads: test inputs, no labels
    outcomes: list[ChildOutcome] = []
    for seed in job.seeds:
        emit(on_event, CandidateStarted(_shown_name(job), seed))
        outcomes.append(_run_child(job, seed, on_event, cancel))
        if outcomes[-1].status != "ok":
            return unfinished_record(job, outcomes)
    return (stage_record if job.kind == "stage" else finished_record)(job, outcomes)
