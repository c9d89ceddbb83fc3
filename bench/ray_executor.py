"""Run the candidates as Ray tasks: on this machine, or on a Ray cluster you already run.

    tunewise bench --data bench/samples/banking_support --strategies majority,zero-shot,knn \\
        --executor ray                   # a local Ray, reachable from this machine only
    tunewise bench --data /shared/tickets.csv --strategies lora,qlora,few-shot \\
        --executor ray --address ray://head.example:10001   # an existing cluster

    from bench.ray_executor import RayExecutor
    run_benchmark(plan, executor=RayExecutor(address="auto"))

What travels where:
- Each candidate is one Ray task that asks for the CPUs, GPUs and memory of its estimate
  (`CandidateJob.estimate`, filled from the advisor's estimator; `num_cpus=1` and no memory
  request without one). Tasks are never retried: a crash is a result, not something to hide.
- Inside the task runs the very same measured path as the local executor: `run_candidate`
  spawns the candidate's own child process (bench.child), so peak memory is the candidate's
  own and timeouts, memory ceilings and SIGKILLs are handled exactly as locally.
- The split is put into the object store once (`ray.put`) and every task gets a reference to
  it; a task reads it only on a node that cannot see the run folder (no shared file system).
  There, as everywhere, the task's harness code keeps the labels and scores; the candidate's
  child reads the label-free view run_candidate writes beside the split (bench.split_view).
  There it runs in a scratch copy of the run folder and sends the candidate's log and
  predictions back with its record. Where the run folder is visible (one machine, or a
  cluster with the run folder on a shared file system at the same path), tasks use it in place.
- The model travels by reference (its name or path): every worker loads it from its own cache
  (`$TUNEWISE_CACHE`, bundled wheels) or path, as the local executor does.
- Records come back to the driver as tasks finish (a `ray.wait` loop); only the driver appends
  results.jsonl, so `--resume` works unchanged. A task that raises, a worker process that dies
  and a lost node each become a `failed` record with the reason. Cancelling (Ctrl-C) asks the
  running tasks to stop (their children are stopped the usual way), then force-cancels what
  is left; finished records are kept.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import journal
from bench.errors import TunewiseError
from bench.events import EventHandler, emit, with_position
from bench.launch import KILL_GRACE_S, POLL_INTERVAL_S, run_candidate, with_log_tail
from bench.plan import CandidateJob
from bench.records import base_record

INSTALL_HINT = "pip install 'tunewise[ray]'"
# A local Ray needs little shared memory: records and splits are small. Ray's minimum is 75 MB.
LOCAL_OBJECT_STORE_MB = 200
# A local Ray registers its node at this address, so its control ports (GCS, raylet, workers,
# object manager) listen on loopback only: Ray's ports are unauthenticated unless token auth is
# on, and the ShadowRay attacks ran code through exactly such ports left on a network address.
LOOPBACK = "127.0.0.1"
# On Linux, ray.init turns a loopback node address into the machine's network address unless
# Ray is told that this node forms no cluster (ray._private.services.resolve_ip_for_localhost).
# That switch is Ray's own (the default on Windows and macOS); Ray reads it when it is imported,
# and the processes ray.init starts read it from their environment.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
EVENT_QUEUE_SIZE = 10_000

CandidateFn = Callable[[CandidateJob, EventHandler | None, threading.Event | None], dict]


def import_ray():
    """Ray, imported only when this executor is chosen; a clear message when it is missing."""
    try:
        import ray
    except ImportError:
        raise TunewiseError(f"--executor ray needs Ray, which is not installed here: "
                            f"{INSTALL_HINT}") from None
    return ray


def start_local_ray(ray, *, num_cpus: int, object_store_mb: int = LOCAL_OBJECT_STORE_MB,
                    runtime_env: dict[str, Any] | None = None) -> None:
    """Start a Ray on this machine that nothing else can reach: its node registered at
    127.0.0.1 (every control port on loopback), no dashboard. Ray 2.59+ also turns token
    authentication on for a local cluster by default. Raises TunewiseError if the node still
    registers a network address (a Ray that ignores the switch)."""
    from ray._private import ray_constants

    saved_env, saved_flag = os.environ.get(LOCAL_ONLY_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOCAL_ONLY_ENV] = "0"  # for the GCS, raylet and workers ray.init starts
    ray_constants.ENABLE_RAY_CLUSTER = False  # for this process, which imported Ray already
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                 object_store_memory=object_store_mb * 2**20, log_to_driver=False,
                 runtime_env=runtime_env)
    finally:  # the driver may join a real cluster later: leave its setting as it was
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(LOCAL_ONLY_ENV, None)
        else:
            os.environ[LOCAL_ONLY_ENV] = saved_env
    addresses = {node["NodeManagerAddress"] for node in ray.nodes()}
    if addresses != {LOOPBACK}:
        ray.shutdown()
        raise TunewiseError(f"--executor ray: the local Ray registered {', '.join(addresses)} "
                            f"instead of {LOOPBACK}, which would expose its unauthenticated "
                            "ports to the network; it was stopped. Start a Ray yourself "
                            "(README: Ray) and pass --address")


# --------------------------------------------------------------------------- resources


@dataclass
class TaskResources:
    """What one candidate's Ray task asks the scheduler for."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_bytes: int | None = None  # host RAM; None: no memory request

    def ray_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory_bytes:
            options["memory"] = self.memory_bytes
        return options

    def as_dict(self) -> dict[str, Any]:
        memory_gb = round(self.memory_bytes / 2**30, 3) if self.memory_bytes else None
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "memory_gb": memory_gb}


def resources_for(job: CandidateJob) -> TaskResources:
    """The task's request from the job's estimate (advise JSON keys, plus optional
    `num_cpus`/`num_gpus`/`host_memory_gb` a caller may add).

    On CUDA, `peak_memory_gb` is GPU memory, which Ray schedules by whole GPUs: the task asks
    for one GPU (the estimate's `num_gpus`, or --gpus-per-candidate for a trainable candidate,
    which then trains across them) and host memory only when `host_memory_gb` says."""
    estimate = job.estimate or {}
    cuda = job.device == "cuda"
    num_cpus = float(estimate.get("num_cpus") or 1)
    num_gpus = float(estimate.get("num_gpus") or (job.gpus if cuda else 0))
    memory_gb = estimate.get("host_memory_gb")
    if memory_gb is None and not cuda:
        memory_gb = estimate.get("peak_memory_gb")
    memory = int(float(memory_gb) * 2**30) if memory_gb else None
    return TaskResources(num_cpus, num_gpus, memory)


def fit_to_cluster(resources: TaskResources, cluster: dict[str, float]) -> tuple[TaskResources,
                                                                                 str | None]:
    """(request, None) when the cluster can ever run it, else (request, why not).

    Memory is a scheduling hint: an estimate above what Ray offers is capped (the candidate then
    runs alone, as it would locally) rather than waiting for memory that never appears."""
    cpus, gpus = cluster.get("CPU", 0.0), cluster.get("GPU", 0.0)
    if resources.num_gpus > gpus:
        return resources, (f"needs {resources.num_gpus:g} GPU(s); the Ray cluster has {gpus:g}")
    if resources.num_cpus > cpus:
        return resources, (f"needs {resources.num_cpus:g} CPU(s); the Ray cluster has {cpus:g}")
    offered = int(cluster.get("memory", 0))
    if resources.memory_bytes and offered and resources.memory_bytes > offered:
        resources = dataclasses.replace(resources, memory_bytes=offered)
    return resources, None


# --------------------------------------------------------------------------- the worker side


class _EventForwarder:
    """Sends the candidate's events to the driver through a Ray queue (never blocks: a
    display that falls behind loses progress ticks, never a record)."""

    def __init__(self, events) -> None:
        self.events = events

    def __call__(self, event: Any) -> None:
        try:
            self.events.put_nowait(event)
        except Exception:  # noqa: BLE001 - Full, or the driver went away: progress is optional
            pass


def _sees_run_dir(job: CandidateJob) -> bool:
    return (Path(job.run_dir) / journal.MANIFEST).exists()


def _rebase(path: str, old_root: str, new_root: Path) -> str:
    return str(new_root / os.path.relpath(path, old_root))


def _scratch_job(job: CandidateJob, split_bytes: bytes, scratch: Path) -> CandidateJob:
    """The job moved into a scratch run folder on a node without the shared one. A race
    rung's continuation cannot follow it there (the previous rung's checkpoint stayed in the
    node where it ran, and the scratch folder goes with the task): such a job trains afresh
    to its budget_fraction, as a race with continue_rungs=False does (its record's
    info.budget.resumed_from_step says 0, and the race's info.race says it was not continued)."""
    run_dir = scratch / job.run_id
    for part in ("logs", "predictions", "work"):  # the layout journal.new_run_dir makes
        (run_dir / part).mkdir(parents=True, exist_ok=True)
    split_path = run_dir / journal.SPLIT
    split_path.write_bytes(split_bytes)
    return dataclasses.replace(
        job, run_dir=str(run_dir), split_path=str(split_path),
        work_dir=_rebase(job.work_dir, job.run_dir, run_dir),
        log_path=_rebase(job.log_path, job.run_dir, run_dir),
        resume_from=None, save_checkpoint=False)


def _files_to_return(job: CandidateJob, record: dict[str, Any]) -> dict[str, bytes]:
    """Log and predictions of a scratch run, by path relative to the run folder."""
    files = {}
    for relative in (record.get("log"), record.get("predictions")):
        if relative and (Path(job.run_dir) / relative).is_file():
            files[relative] = (Path(job.run_dir) / relative).read_bytes()
    return files


def candidate_task(job: CandidateJob, split_holder: list, events, index: int, total: int,
                   candidate_fn: CandidateFn = run_candidate,
                   shared_run_dir: bool | None = None) -> dict[str, Any]:
    """The body of one Ray task: the local executor's measured path, on whichever node."""
    import ray

    on_event = with_position(_EventForwarder(events) if events is not None else None, index, total)
    files: dict[str, bytes] = {}
    in_place = _sees_run_dir(job) if shared_run_dir is None else shared_run_dir
    if in_place:
        record = candidate_fn(job, on_event, None)
    else:
        # The reference was wrapped in a list so that only nodes that need it fetch it.
        with tempfile.TemporaryDirectory(prefix="tunewise-ray-") as scratch:
            moved = _scratch_job(job, ray.get(split_holder[0]), Path(scratch))
            record = candidate_fn(moved, on_event, None)
            files = _files_to_return(moved, record)
    context = ray.get_runtime_context()
    return {"record": record, "files": files,
            "worker": {"node_id": context.get_node_id(), "pid": os.getpid(),
                       "shared_run_dir": in_place}}


# --------------------------------------------------------------------------- the driver side


def _absolute(job: CandidateJob) -> CandidateJob:
    """Workers may start elsewhere than the driver's folder: every path absolute."""
    return dataclasses.replace(job, **{name: os.path.abspath(getattr(job, name))
                                       for name in ("run_dir", "split_path", "work_dir",
                                                    "log_path", "resume_from")
                                       if getattr(job, name)})


def _failure_text(ray, exc: BaseException) -> str:
    """What went wrong, in one or two lines (Ray's own messages carry whole tracebacks)."""
    exceptions = ray.exceptions
    if isinstance(exc, exceptions.RayTaskError):
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return f"its Ray task raised {type(cause).__name__}: {str(cause).strip().splitlines()[-1]}"
    if isinstance(exc, exceptions.WorkerCrashedError):
        return ("the Ray worker process running it died (killed, out of memory, or a crash "
                "in native code)")
    if isinstance(exc, (exceptions.NodeDiedError, exceptions.LocalRayletDiedError)):
        return "the Ray node running it died"
    lines = str(exc).strip().splitlines()
    return f"Ray reported {type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class RayExecutor:
    """The Executor protocol on Ray: one task per candidate, records streamed to the driver.

    address: None starts a local Ray (num_cpus CPUs, loopback only, no dashboard:
    start_local_ray); "auto", "HOST:6379" or
    "ray://HOST:10001" joins a running cluster. An already initialised Ray is used as it is.
    shared_run_dir: None detects per node whether the run folder is visible there; False
    always runs in a scratch folder with the split from the object store (no shared file
    system); True trusts that every node sees the run folder at the same path.
    candidate_fn: what each task runs (run_candidate; tests swap in misbehaving ones)."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 runtime_env: dict[str, Any] | None = None,
                 shared_run_dir: bool | None = None,
                 candidate_fn: CandidateFn = run_candidate) -> None:
        self.address = address
        self.shared_run_dir = shared_run_dir
        self.num_cpus = num_cpus
        self.runtime_env = runtime_env
        self.candidate_fn = candidate_fn

    # -- connecting

    def _connect(self, ray) -> bool:
        """Start or join Ray; True when this executor started it (and so shuts it down)."""
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address, log_to_driver=False, runtime_env=self.runtime_env)
            else:
                start_local_ray(ray, num_cpus=self.num_cpus or os.cpu_count() or 1,
                                runtime_env=self.runtime_env)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray"
            raise TunewiseError(f"--executor ray: could not start or join {where}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
        return True

    # -- the Executor protocol

    def run(self, jobs: list[CandidateJob], on_event: EventHandler | None,
            cancel: threading.Event) -> Iterator[dict[str, Any]]:
        if not jobs:
            return
        ray = import_ray()
        started_here = self._connect(ray)
        try:
            yield from self._run_tasks(ray, [_absolute(job) for job in jobs], on_event, cancel)
        finally:
            if started_here:
                ray.shutdown()

    def _run_tasks(self, ray, jobs, on_event, cancel) -> Iterator[dict[str, Any]]:
        from ray.util.queue import Queue

        # The split goes into the object store once; every task holds a reference to it.
        split_ref = ray.put(Path(jobs[0].split_path).read_bytes())
        events = (Queue(maxsize=EVENT_QUEUE_SIZE, actor_options={"num_cpus": 0})
                  if on_event is not None else None)
        cluster = ray.cluster_resources()
        task = ray.remote(candidate_task)
        pending: dict[Any, tuple[CandidateJob, TaskResources]] = {}
        try:
            for index, job in enumerate(jobs, start=1):
                resources, why_not = fit_to_cluster(resources_for(job), cluster)
                if why_not:
                    yield self._annotate(base_record(job, "skipped", why_not), resources, None)
                    continue
                ref = task.options(**resources.ray_options(), max_retries=0,
                                   name=f"tunewise-{job.strategy}").remote(
                    job, [split_ref], events, index, len(jobs), self.candidate_fn,
                    self.shared_run_dir)
                pending[ref] = (job, resources)
            while pending and not cancel.is_set():
                done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_INTERVAL_S)
                self._relay_events(events, on_event)
                for ref in done:
                    job, resources = pending.pop(ref)
                    yield self._collect(ray, ref, job, resources)
            self._relay_events(events, on_event)
        finally:
            if pending:
                self._cancel(ray, pending)
            if events is not None:
                events.shutdown()

    def _relay_events(self, events, on_event) -> None:
        if events is None:
            return
        try:
            waiting = events.qsize()
            batch = events.get_nowait_batch(waiting) if waiting else []
        except Exception:  # noqa: BLE001 - a lost progress tick must never stop the run
            return
        for event in batch:
            emit(on_event, event)

    def _collect(self, ray, ref, job: CandidateJob, resources: TaskResources) -> dict[str, Any]:
        """The task's record, or a `failed` one saying what Ray saw."""
        try:
            result = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            record = base_record(job, "failed", "cancelled before it finished")
            record["info"]["cancelled"] = True  # not journalled: --resume runs it again
            return self._annotate(record, resources, None)
        except ray.exceptions.RayError as exc:
            record = base_record(job, "failed",
                                  with_log_tail(_failure_text(ray, exc), job.log_path))
            return self._annotate(record, resources, None)
        for relative, content in result["files"].items():
            target = Path(job.run_dir) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return self._annotate(result["record"], resources, result["worker"])

    @staticmethod
    def _annotate(record: dict[str, Any], resources: TaskResources,
                  worker: dict[str, Any] | None) -> dict[str, Any]:
        record.setdefault("info", {})["executor"] = {
            "name": "ray", "resources": resources.as_dict(), **(worker or {})}
        return record

    @staticmethod
    def _cancel(ray, pending: dict) -> None:
        """Ask politely first (KeyboardInterrupt in the task: run_candidate stops its child
        the usual way), then force what is still running after the grace period."""
        refs = list(pending)
        for ref in refs:
            ray.cancel(ref, force=False)
        _, still_running = ray.wait(refs, num_returns=len(refs), timeout=KILL_GRACE_S + 2)
        for ref in still_running:
            ray.cancel(ref, force=True)
        pending.clear()
