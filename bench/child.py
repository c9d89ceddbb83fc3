"""The spawned child: one candidate, one seed, one fresh process.

The parent (bench.runner) starts `child_main(job, seed, queue)` in a `spawn` process. The child
builds the RunContext, runs the strategy, and sends back over the queue:

    ("phase", name, seconds_since_start)           as the strategy announces phases
    ("progress", phase, step, total, loss, message)
    ("result", {...})                               predictions, counts, phase times, memory
    ("skipped", reason) | ("failed", message)

It imports only what the strategy needs (this module pulls in nothing heavier than the
strategy contract), so a no-op candidate costs little more than an interpreter start. Everything
the child prints — including C-level output and tracebacks — goes to logs/<strategy>.log.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

# OpenMP threads spin while they wait for work (libgomp's default ACTIVE policy). On a machine
# with more runnable threads than cores -- a shared box, or the parent's bars and samplers --
# a spinning thread holds the core its sibling needs, and torch on 2 threads ran label scoring
# 6.9x slower than with PASSIVE waiting (95 s vs 14 s, load average 7, benchmarks/RESULTS.md).
# Set before torch loads libgomp in this fresh process; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Progress messages are throttled: a display needs a few per second, not one per token.
PROGRESS_INTERVAL_S = 0.1
LOG_PROGRESS_INTERVAL_S = 2.0
PARENT_CHECK_INTERVAL_S = 0.5  # an orphaned child notices its parent's death this fast


class PhaseTimer:
    """Seconds per phase from the strategy's `ctx.phase(name)` announcements.

    Time before the first announcement counts as "load"; each announcement closes the
    previous phase, and a phase announced twice accumulates."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.current = "load"
        self.since = self.start
        self.seconds: dict[str, float] = {}
        self.announced = False

    def enter(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.since
        self.current, self.since, self.announced = name, now, True

    def close(self) -> dict[str, float]:
        self.enter("done")
        self.seconds.pop("done", None)
        if not self.announced:
            # A strategy that announced nothing: all of its time was spent producing the
            # predictions, so price and time it as prediction rather than hide it in "load".
            self.seconds = {"predict": sum(self.seconds.values())}
        return self.seconds


def _redirect_output(log_file: Path) -> None:
    """Send fd 1 and 2 (Python and C-level output, tracebacks) to the candidate's log."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)


def _log(message: str, start: float) -> None:
    print(f"[tunewise {time.perf_counter() - start:8.2f}s] {message}", file=sys.stderr, flush=True)


def _load_spec(job: dict[str, Any]):
    if job.get("target"):
        module_name, attr = job["target"].split(":")
        return getattr(importlib.import_module(module_name), attr)
    from strategies import registry

    return registry.get(job["strategy"])


def _load_split(path: str):
    from strategies.base import TaskSplit

    return TaskSplit(**json.loads(Path(path).read_text(encoding="utf-8")))


def _job_view(split, job: dict[str, Any]):
    """The rows this job sees (bench.sweeps): a learning-curve point trains on a subset of
    train; a tuning trial predicts the validation split, so its score never touches test."""
    if job.get("train_subset") is not None:
        split.train = [split.train[i] for i in job["train_subset"]]
    if job.get("eval_split", "test") == "validation":
        split.test = split.validation
    return split


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark, MB.

    Linux: VmHWM of /proc/self/status, which belongs to the process's own memory map.
    (ru_maxrss is not usable in a spawned child: Linux carries it across fork + exec, so it
    would report the parent's size.) Elsewhere: ru_maxrss (KB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _peak_cuda_mb() -> float | None:
    torch = sys.modules.get("torch")  # a strategy that never imported torch used no GPU
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def _error_text(exc: BaseException) -> str:
    """`Type: message (at file:line)` — the last frame tells the user where it broke."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip() or "(no message)"
    return f"{type(exc).__name__}: {message}{where}"


def _model_loader(device: str, trust_remote_code: bool):
    from bench.models import load_model

    def loader(name, kind="causal-lm", *, dtype=None, quantization=None, num_labels=None):
        return load_model(name, kind, dtype=dtype, quantization=quantization,
                          num_labels=num_labels, device=device,
                          trust_remote_code=trust_remote_code)

    return loader


def _exit_with_parent(interval_s: float = PARENT_CHECK_INTERVAL_S) -> None:
    """Stop when the parent dies without stopping us (a SIGKILLed driver, a Ray worker that
    crashed or was force-cancelled): nobody would read our result, and an orphan would keep
    the candidate's memory and cores busy."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="tunewise-parent-watch", daemon=True).start()


def child_main(job: dict[str, Any], seed: int, queue) -> None:
    """Entry point of the spawned process (see the module docstring)."""
    # Ctrl-C goes to the whole process group; the parent decides what to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    if job.get("visible_devices") is not None:  # before anything can initialise CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = job["visible_devices"]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    _redirect_output(Path(job["log_path"]))
    timer = PhaseTimer()
    _log(f"candidate {job['strategy']} seed {seed} pid {os.getpid()}", timer.start)
    try:
        queue.put(("result", _run(job, seed, queue, timer)))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        from strategies.base import StrategyError, StrategySkipped

        traceback.print_exc()
        if isinstance(exc, StrategySkipped):
            _log(f"skipped: {exc}", timer.start)
            queue.put(("skipped", str(exc) or "skipped by the strategy"))
        elif isinstance(exc, StrategyError):
            queue.put(("failed", str(exc) or type(exc).__name__))
        else:
            queue.put(("failed", _error_text(exc)))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    _release_named_semaphores()
    # Hand the last message to the pipe, then leave without the interpreter's teardown:
    # unloading torch and friends can take seconds and would only delay the next candidate.
    queue.close()
    queue.join_thread()
    os._exit(0)


def _release_named_semaphores() -> None:
    """Unlink tqdm's lock before os._exit.

    tqdm (which transformers loads) guards its bars with a multiprocessing RLock: a named
    semaphore registered with the resource tracker this process shares with the parent. os._exit
    skips the finalizer that would unlink it, and the tracker then printed "There appear to be 1
    leaked semaphore objects" as the last line of every run with a model."""
    std = sys.modules.get("tqdm.std")
    lock = getattr(getattr(std, "TqdmDefaultWriteLock", None), "mp_lock", None)
    name = getattr(getattr(lock, "_semlock", None), "name", None)
    if not name:
        return
    from multiprocessing import resource_tracker, synchronize

    try:
        synchronize.sem_unlink(name)
        resource_tracker.unregister(name, "semaphore")
    except OSError:  # already gone: nothing to release
        pass


class _NoQueue:
    """Ranks of a distributed candidate cannot reach the parent's queue (they are the
    launcher's children): their phases and progress go to the log, the launcher reports."""

    def put(self, message) -> None:
        pass


def _run(job: dict[str, Any], seed: int, queue, timer: PhaseTimer) -> dict[str, Any]:
    from bench.distributed import plan_for_child

    spec = _load_spec(job)
    plan = plan_for_child(spec.name, spec.trainable, job["device"])
    if plan is None:
        return _run_here(job, seed, queue, timer, spec)
    return _run_ranks(job, seed, queue, timer, plan)


def _rank_entry(job: dict[str, Any], seed: int) -> tuple[dict[str, Any], int]:
    """One rank of a distributed candidate (bench.distributed.launch runs it per GPU): the same
    strategy run as one process, the Trainer wrapping the model from the plan's arguments."""
    timer = PhaseTimer()
    rank = os.environ.get("RANK", "0")
    _log(f"rank {rank} of {os.environ.get('WORLD_SIZE')} pid {os.getpid()}", timer.start)
    if rank != "0":  # only rank 0's artifact is the candidate's; the others must not race it
        job = {**job, "work_dir": str(Path(job["work_dir"]) / f"rank{rank}")}
    payload = _run_here(job, seed, _NoQueue(), timer)
    return payload, payload["train_tokens"]


def _run_ranks(job: dict[str, Any], seed: int, queue, timer: PhaseTimer, plan) -> dict[str, Any]:
    """Spread one candidate over plan.world_size processes (DDP or FSDP) and measure it as one:
    rank 0's predictions and record, the peak memory of every GPU and of every rank's process.
    Every rank predicts the test split in lockstep (FSDP's forward needs all of them)."""
    from bench.distributed import measured_summary, launch

    _log(f"distributed: {plan.mode} over {plan.world_size} ranks ({plan.backend})", timer.start)
    queue.put(("progress", "load", 0, 0, None, f"{plan.mode} x{plan.world_size}"))
    results = launch(_rank_entry, (job, seed), plan)
    import shutil

    for rank in range(1, plan.world_size):
        shutil.rmtree(Path(job["work_dir"]) / f"rank{rank}", ignore_errors=True)
    payload = results[0].value
    summary = measured_summary(results)
    for phase, seconds in payload["phases"].items():
        queue.put(("phase", phase, seconds))
    # The trainers count tokens gathered over all ranks, so rank 0's count is the total.
    summary["train_tokens"] = payload["train_tokens"]
    # What the Trainer really did: accelerate runs FSDP on GPUs only, and falls back to DDP
    # on CPU ranks; the record says which one ran, not only which one was planned.
    wrapped_as = payload["info"].get("parallel")
    payload["info"]["distributed"] = {"mode": plan.mode, "wrapped_as": wrapped_as,
                                      "backend": plan.backend, "quantized": plan.quantized,
                                      **summary}
    payload["peak_cuda_mb"] = summary["peak_cuda_mb"]  # the fullest GPU
    payload["peak_rss_mb"] = sum(summary["peak_rss_mb_per_rank"]) + _peak_rss_mb()
    payload["child_s"] = time.perf_counter() - timer.start
    return payload


def _run_here(job: dict[str, Any], seed: int, queue, timer: PhaseTimer,
              spec=None) -> dict[str, Any]:
    import random

    from bench.journal import dumps
    from strategies.base import RunContext, make_config

    random.seed(seed)
    spec = spec or _load_spec(job)  # a rank of a distributed candidate loads its own
    split = _job_view(_load_split(job["split_path"]), job)
    config = make_config(spec.config_cls, job["preset"], job["overrides"])
    # Absolute: strategies return paths built on ctx.work_dir, and a relative one (under a
    # relative --out) would be read against the wrong folder when joined below or measured.
    work = (Path(job["work_dir"]) / (f"seed{seed}" if len(job["seeds"]) > 1 else "")).resolve()
    work.mkdir(parents=True, exist_ok=True)

    def on_phase(name: str) -> None:
        timer.enter(name)
        _log(f"phase {name}", timer.start)
        queue.put(("phase", name, time.perf_counter() - timer.start))

    last = {"sent": 0.0, "logged": 0.0}

    def on_progress(progress) -> None:
        now = time.perf_counter()
        final = progress.total and progress.step >= progress.total
        if final or now - last["sent"] >= PROGRESS_INTERVAL_S:
            last["sent"] = now
            queue.put(("progress", progress.phase, progress.step, progress.total,
                       progress.loss, progress.message))
        if final or now - last["logged"] >= LOG_PROGRESS_INTERVAL_S:
            last["logged"] = now
            loss = f" loss {progress.loss:.4f}" if progress.loss is not None else ""
            _log(f"{progress.phase} {progress.step}/{progress.total}{loss} {progress.message}",
                 timer.start)

    ctx = RunContext(
        data=split, model_name=job["model"], encoder_name=job["encoder"],
        load_model=_model_loader(job["device"], bool(job["options"].get("trust_remote_code"))),
        device=job["device"], seed=seed, work_dir=work, preset=job["preset"],
        on_progress=on_progress, on_phase=on_phase, options=dict(job["options"]),
    )
    output = spec.run(ctx, config)
    phases = timer.close()
    _log("finished: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()), timer.start)
    artifact = output.artifact_path
    if artifact and not Path(artifact).is_absolute():
        artifact = str(work / artifact)
    import dataclasses

    return {
        "predictions": list(output.predictions),
        "trainable_params": int(output.trainable_params or 0),
        "total_params": int(output.total_params or 0),
        "train_tokens": int(output.train_tokens or 0),
        "predict_tokens": int(output.predict_tokens or 0),
        "mean_prompt_tokens": float(output.mean_prompt_tokens or 0.0),
        "artifact_path": artifact,
        "extra_metrics": {k: float(v) for k, v in (output.extra_metrics or {}).items()},
        # Through JSON: whatever a strategy puts in `info` must pickle and land in a record.
        "info": json.loads(dumps(dict(output.info or {}))),
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {},
        "phases": phases,
        "child_s": time.perf_counter() - timer.start,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_cuda_mb": _peak_cuda_mb(),
    }
