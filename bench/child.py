"""The spawned child: one candidate, one seed, one fresh process.

The parent (bench.runner) starts `child_main(job, seed, queue)` in a `spawn` process. The child
seeds Python's `random`, numpy and torch from the seed, builds the RunContext on the label-free
view of the split (bench.split_view: test inputs only; the parent keeps the labels and scores),
runs the strategy, counts the parameters and training tokens the strategy hands it, and sends
back over the queue:

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
import importlib.abc
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from bench.errors import out_of_gpu_memory
from bench.peak_memory import peak_cuda_mb, peak_rss_mb

OMP_SAMPLES, OMP_SAMPLE_INTERVAL_S = 8, 0.02  # ~0.15 s of looking before torch loads


def choose_omp_wait_policy(others_runnable: list[int]) -> str:
    """OpenMP's wait policy for this candidate, from how many threads besides ours were
    runnable in each sample.

    OpenMP threads spin while they wait for work (libgomp's default ACTIVE policy). On a machine
    with more runnable threads than cores -- a shared box -- a spinning thread holds the core
    its sibling needs: torch on 2 threads ran label scoring 6.9x slower than with PASSIVE
    waiting (95 s vs 14 s, load average 7, benchmarks/RESULTS.md). On an idle machine PASSIVE
    costs ~6 % of a training step instead. So: PASSIVE when, in most samples, some other thread
    wanted a core; ACTIVE when the machine is ours."""
    busy = sorted(others_runnable)[len(others_runnable) // 2] if others_runnable else 0
    return "PASSIVE" if busy >= 1 else "ACTIVE"


def _others_runnable() -> list[int]:
    """Runnable threads on the machine besides this one, sampled now (/proc/loadavg's R/T;
    the 1-minute load average would still count the candidate that just finished)."""
    samples = []
    for _ in range(OMP_SAMPLES):
        try:
            with open("/proc/loadavg", encoding="ascii") as loadavg:
                samples.append(int(loadavg.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):  # not Linux: the load average, rounded
            return [round(os.getloadavg()[0])] if hasattr(os, "getloadavg") else []
        time.sleep(OMP_SAMPLE_INTERVAL_S)
    return samples


def omp_wait_policy_now() -> str:
    """The user's OMP_WAIT_POLICY if set, else the one choose_omp_wait_policy picks now."""
    return os.environ.get("OMP_WAIT_POLICY") or choose_omp_wait_policy(_others_runnable())


def set_omp_wait_policy() -> str:
    """Set OMP_WAIT_POLICY before torch loads libgomp in this fresh process; a user's own
    setting wins. Returns the policy in force (it goes into the record's info)."""
    os.environ["OMP_WAIT_POLICY"] = omp_wait_policy_now()
    return os.environ["OMP_WAIT_POLICY"]


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


def _load_split(job: dict[str, Any]):
    """The split as the strategy may see it: the label-free view the parent wrote beside
    split.json (bench.split_view), never split.json itself."""
    from bench.split_view import inputs_path
    from strategies.base import TaskSplit

    path = inputs_path(job["split_path"])
    return TaskSplit(**json.loads(path.read_text(encoding="utf-8")))


def _job_view(split, job: dict[str, Any]):
    """The rows this job sees (bench.sweeps): a learning-curve point trains on a subset of
    train; a tuning trial predicts the validation split, so its score never touches test.
    It trains on validation's labels as any candidate may, but predicts validation's inputs
    only, blinded like test rows; the parent scores them."""
    from bench.split_view import blind_rows, eval_rows

    if job.get("train_subset") is not None:
        split.train = [split.train[i] for i in job["train_subset"]]
    if job.get("eval_split", "test") == "validation":
        split.test = blind_rows(split.task, eval_rows(split.validation, job.get("eval_subset")),
                                job["seed"])
    return split


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


# --------------------------------------------------------------------------- seeding


class _SeedingLoader(importlib.abc.Loader):
    """Runs the real loader, then seeds the freshly imported module."""

    def __init__(self, loader, seeder: Callable[[Any], None]) -> None:
        self.loader, self.seeder = loader, seeder

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self.loader  # leave no trace behind
        self.seeder(module)


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Seeds numpy / torch the moment the strategy first imports them."""

    def __init__(self, seeders: dict[str, Callable[[Any], None]]) -> None:
        self.seeders = seeders

    def find_spec(self, name, path, target=None):
        seeder = self.seeders.pop(name, None)
        if seeder is None:
            return None
        for finder in sys.meta_path:
            found = getattr(finder, "find_spec", None)
            spec = found(name, path, target) if found is not None and finder is not self else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _SeedingLoader(spec.loader, seeder)
                return spec
        return None


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, numpy's global generator and torch (CPU and every GPU) from the
    record's seed, once, before the strategy runs.

    numpy and torch are seeded when the strategy first imports them (at once if something
    already has): importing them here would cost a strategy that never uses them (majority)
    their start-up time and tens to hundreds of MB of RSS."""
    import random

    random.seed(seed)
    seeders: dict[str, Callable[[Any], None]] = {
        "numpy": lambda numpy: numpy.random.seed(seed % 2**32),
        "torch": lambda torch: torch.manual_seed(seed),
    }
    for name in [name for name in seeders if name in sys.modules]:
        seeders.pop(name)(sys.modules[name])
    if seeders:
        sys.meta_path.insert(0, _SeedOnImport(seeders))


# --------------------------------------------------------------------------- harness counts


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters of a model the strategy handed over. A PEFT model counts
    with peft's own method (4-bit weights at their unpacked size); others by numel, trainable
    meaning requires_grad."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = total = 0
    for parameter in model.parameters():
        n = parameter.numel() * (2 if type(parameter).__name__ == "Params4bit" else 1)
        total += n
        trainable += n if parameter.requires_grad else 0
    return trainable, total


def _batch_tokens(batch):
    """Real tokens in a training batch: its attention mask's ones, else every input id. A
    tensor stays a tensor (summed on its device: no GPU sync per step)."""
    mask = batch.get("attention_mask")
    if mask is None:
        ids = batch["input_ids"]
        return ids.numel() if hasattr(ids, "numel") else sum(len(row) for row in ids)
    return mask.sum() if hasattr(mask, "sum") else sum(sum(row) for row in mask)


class HarnessCounts:
    """Parameters and trained tokens counted by harness code, from the models and batches the
    strategy hands to RunContext.count_model / count_train_batch."""

    def __init__(self) -> None:
        self.params: dict[str, tuple[int, int]] = {}  # role -> (trainable, total)
        self.batches = 0
        self._tokens: Any = 0

    def count_model(self, model, role: str) -> None:
        self.params[role] = parameter_counts(model)

    def count_batch(self, batch) -> None:
        self._tokens = self._tokens + _batch_tokens(batch)
        self.batches += 1

    def figures(self, output) -> tuple[dict[str, int], dict[str, Any]]:
        """The record's trainable/total parameters and train tokens, and info saying who
        counted each: the harness where the strategy handed things over, else the strategy
        (an estimate where a helper noted one, strategies.base.note_estimate)."""
        from strategies.base import take_estimates

        reported = {"trainable_params": int(output.trainable_params or 0),
                    "total_params": int(output.total_params or 0),
                    "train_tokens": int(output.train_tokens or 0)}
        counted: dict[str, int] = {}
        if self.params:
            counted["trainable_params"] = sum(t for t, _ in self.params.values())
            counted["total_params"] = sum(n for _, n in self.params.values())
        if self.batches:
            counted["train_tokens"] = int(self._tokens)
        estimates = take_estimates()
        info: dict[str, Any] = {
            "reported_by": {**{name: "harness" if name in counted else "strategy"
                               for name in reported}, "predict_tokens": "strategy"},
            "train_tokens_source": ("harness count" if "train_tokens" in counted
                                    else "estimate" if "train_tokens" in estimates
                                    else "strategy count")}
        if info["train_tokens_source"] == "estimate":
            info["train_tokens_estimate"] = estimates["train_tokens"]
            info["tokens_per_s_note"] = ("tokens_per_s includes train tokens the strategy "
                                         "estimated, not counted")
        differing = {k: v for k, v in reported.items() if k in counted and v and v != counted[k]}
        if differing:  # the strategy's own claim, kept beside the harness's count
            info["strategy_reported"] = differing
        return {**reported, **counted}, info


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
    job = {**job, "omp_wait_policy": set_omp_wait_policy()}
    _log(f"candidate {job['strategy']} seed {seed} pid {os.getpid()}", timer.start)
    try:
        payload = _run(job, seed, queue, timer)
        _measure_forgetting(job, payload, queue)  # after the candidate's own evaluation
        queue.put(("result", payload))
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the parent
        from strategies.base import StrategyError, StrategySkipped

        traceback.print_exc()
        if isinstance(exc, StrategySkipped):
            _log(f"skipped: {exc}", timer.start)
            queue.put(("skipped", str(exc) or "skipped by the strategy"))
        elif oom := out_of_gpu_memory(exc):
            queue.put(("failed", oom))
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


def _measure_forgetting(job: dict[str, Any], payload: dict[str, Any], queue) -> None:
    """bench.forgetting's general-text probe of a trained LLM, outside the timed phases."""
    from bench.forgetting import measure_in_child

    loader = _model_loader(job["device"], bool(job["options"].get("trust_remote_code")))
    measure_in_child(job, payload, loader, lambda message: queue.put(
        ("progress", "forgetting", 0, 0, None, message)))


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
    if payload["info"]["reported_by"]["train_tokens"] == "harness":
        # Each rank's harness counted its own batches: the candidate's tokens are their sum
        # (the trainer's own count, gathered over the ranks, is the same total).
        payload["train_tokens"] = summary["train_tokens"]
        claimed = payload["info"].get("strategy_reported", {})
        if claimed.get("train_tokens") == summary["train_tokens"]:
            claimed.pop("train_tokens")  # rank 0's local count differed, the totals agree
            if not claimed:
                payload["info"].pop("strategy_reported", None)
    else:
        # The trainers count tokens gathered over all ranks, so rank 0's count is the total.
        summary["train_tokens"] = payload["train_tokens"]
    # What the Trainer really did: accelerate runs FSDP on GPUs only, and falls back to DDP
    # on CPU ranks; the record says which one ran, not only which one was planned.
    wrapped_as = payload["info"].get("parallel")
    payload["info"]["distributed"] = {"mode": plan.mode, "wrapped_as": wrapped_as,
                                      "backend": plan.backend, "quantized": plan.quantized,
                                      **summary}
    payload["peak_cuda_mb"] = summary["peak_cuda_mb"]  # the fullest GPU
    payload["peak_rss_mb"] = sum(summary["peak_rss_mb_per_rank"]) + peak_rss_mb()
    payload["child_s"] = time.perf_counter() - timer.start
    return payload


def _resume_dir(job: dict[str, Any], seed: int) -> str | None:
    """The previous rung's folder this seed resumes from (bench.race's continuation): the
    job's `resume_from`, and in it the seed's own folder when the job runs several seeds, as
    its work folder is (None: it trains afresh)."""
    if not job.get("resume_from"):
        return None
    folder = Path(job["resume_from"]) / (f"seed{seed}" if len(job["seeds"]) > 1 else "")
    return str(folder.resolve())


def _run_here(job: dict[str, Any], seed: int, queue, timer: PhaseTimer,
              spec=None) -> dict[str, Any]:
    from bench.journal import dumps
    from strategies.base import RunContext, make_config

    seed_everything(seed)
    spec = spec or _load_spec(job)  # a rank of a distributed candidate loads its own
    split = _load_split(job)
    full_train_rows = len(split.train)  # before a rung's subset: its budget is a share of this
    split = _job_view(split, job)
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

    _set_tracker_env(job, seed)
    counts = HarnessCounts()
    ctx = RunContext(
        data=split, model_name=job["model"], encoder_name=job["encoder"],
        load_model=_model_loader(job["device"], bool(job["options"].get("trust_remote_code"))),
        device=job["device"], seed=seed, work_dir=work, preset=job["preset"],
        on_progress=on_progress, on_phase=on_phase, options=dict(job["options"]),
        on_count_model=counts.count_model, on_train_batch=counts.count_batch,
        budget_fraction=float(job.get("budget_fraction") or 1.0),
        full_train_rows=full_train_rows,
        resume_from=_resume_dir(job, seed), save_checkpoint=bool(job.get("save_checkpoint")),
    )
    output = spec.run(ctx, config)
    phases = timer.close()
    _log("finished: " + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()), timer.start)
    artifact = output.artifact_path
    if artifact and not Path(artifact).is_absolute():
        artifact = str(work / artifact)
    figures, counted_info = counts.figures(output)
    import dataclasses

    peaks = {"peak_rss_mb": peak_rss_mb(), "peak_cuda_mb": peak_cuda_mb()}  # before serving
    return {
        "predictions": list(output.predictions),
        **figures,  # trainable_params, total_params, train_tokens
        "predict_tokens": int(output.predict_tokens or 0),
        "mean_prompt_tokens": float(output.mean_prompt_tokens or 0.0),
        "artifact_path": artifact,
        "extra_metrics": {k: float(v) for k, v in (output.extra_metrics or {}).items()},
        # Through JSON: whatever a strategy puts in `info` must pickle and land in a record.
        "info": {**json.loads(dumps(dict(output.info or {}))), **counted_info,
                 **({"omp_wait_policy": job["omp_wait_policy"]} if "omp_wait_policy" in job
                    else {})},
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {},
        "phases": phases,
        "deploy": _deployment_facts(job, seed, output, split, timer.start),
        "child_s": time.perf_counter() - timer.start,
        **peaks,
    }


def _set_tracker_env(job: dict[str, Any], seed: int) -> None:
    """--report-to: where the Trainers' TensorBoard / MLflow callbacks write (bench.tracking)."""
    from bench.tracking import tracker_env

    name = job.get("variant") or job["strategy"]
    os.environ.update(tracker_env(job.get("report_to", "none"), job["run_dir"], job["run_id"],
                                  name, seed, len(job["seeds"]) > 1))


def _deployment_facts(job: dict[str, Any], seed: int, output, split,
                      start: float) -> dict[str, Any] | None:
    """Latency at batch 1 and serving memory (bench.deploy), for a candidate scored on test,
    in its first seed's child (the record keeps that one); None for the other seeds, sweep
    trials and curve points; not measured for a rank of a distributed candidate (its forward
    needs every rank in lockstep)."""
    if job.get("eval_split", "test") != "test" or job.get("train_subset") is not None:
        return None
    if seed != job["seeds"][0]:
        return None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return {"error": "not measured: the candidate ran across several processes"}
    from bench.deploy import measure_deploy

    facts = measure_deploy(output.answer, split.test, job["device"])
    _log(f"deployment facts: {facts}", start)
    return facts
