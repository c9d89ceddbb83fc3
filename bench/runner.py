"""Plan a benchmark, run every candidate in its own process, and journal the records.

    from bench.runner import BenchPlan, run_benchmark
    result = run_benchmark(BenchPlan(data="bench/samples/banking_support/train.jsonl",
                                     test="bench/samples/banking_support/test.jsonl",
                                     strategies=["majority", "zero-shot"], out="runs"))
    result.run_dir, result.records

The story of a run:
1. `prepare_run(plan)` loads, checks and splits the data once (bench.data), validates every
   strategy name and config override before anything runs, writes manifest.json and split.json,
   and returns one `CandidateJob` per candidate (plain, picklable data; finished candidates are
   left out on --resume).
2. An executor runs the jobs. `LocalExecutor` runs them one after another; `run_candidate(job)`
   spawns a child per seed (bench.child), relays its progress as events, enforces the timeout
   and the memory ceiling, and turns whatever happened into a record: it never raises for a
   candidate's failure.
3. `run_benchmark` appends each record to results.jsonl (flush + fsync) as it arrives — only
   the driver writes that file — and keeps every record when interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue as queue_module
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from bench import journal
from bench.errors import TunewiseError
from bench.schema import PRIMARY_METRIC, SCHEMA_VERSION

POLL_INTERVAL_S = 0.1
KILL_GRACE_S = 5.0  # SIGTERM first, SIGKILL after this
LOG_TAIL_LINES = 8
SAMPLE_ROWS = 5  # test rows copied into each record for the report


# --------------------------------------------------------------------------- plan and jobs


@dataclass
class BenchPlan:
    """Everything `tunewise bench` (or the TUI) asks for. See advisor/bench_cli.py."""

    data: str
    task: str | None = None
    test: str | None = None
    corpus: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> user's column
    strategies: list[str] = field(default_factory=lambda: ["majority", "zero-shot"])
    model: str = "smollm2-135m"
    encoder: str = "minilm-l6"
    preset: str = "quick"
    out: str = "runs"
    resume: str | None = None  # a run folder to finish
    seed: int = 0
    seeds: int = 1  # repeats per candidate with seeds seed, seed+1, ...
    timeout_s: float | None = None  # per child (per seed)
    max_memory_mb: float | None = None  # RSS ceiling per child
    # strategy -> config overrides; "*" holds overrides for every strategy that has the field
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # RunContext.options (peft_args, ...)
    price_as: str | None = None  # price with another row of the price table (a projection)
    metrics: list[str] = field(default_factory=list)  # extra `evaluate` metric names/paths
    max_train_rows: int | None = None
    device: str = "auto"  # auto | cpu | cuda
    command: str = ""  # the exact command line, for the manifest
    estimates: dict[str, dict] = field(default_factory=dict)  # advisor's estimate per strategy
    prices: str | None = None  # a price table TOML (default: $TUNEWISE_PRICES or bundled)
    # bench.sweeps: Optuna trials per trainable candidate (0 = no tuning), learning-curve
    # train sizes, and further datasets trained together with `data` (multi-task)
    tune: int = 0
    learning_curve: list[int] = field(default_factory=list)
    more_data: list[str] = field(default_factory=list)
    gpus_per_candidate: int = 1  # >1: a trainable candidate trains across that many GPUs


@dataclass
class CandidateJob:
    """One candidate: everything its child needs, as plain data (it crosses processes)."""

    run_dir: str
    run_id: str
    strategy: str
    target: str | None  # "module:attribute" of its StrategySpec (None: via the registry)
    family: str
    task: str
    seed: int
    seeds: list[int]
    split_path: str
    work_dir: str
    log_path: str
    preset: str
    overrides: dict[str, Any]
    config: dict[str, Any]
    model: str
    encoder: str
    device: str  # resolved: cpu | cuda
    options: dict[str, Any]
    timeout_s: float | None
    max_memory_mb: float | None
    metrics: list[str]
    price_row: dict[str, Any]  # {name, usd_per_hour, projected}
    hardware: dict[str, Any]
    requires_cuda: bool = False
    estimate: dict[str, Any] | None = None
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES for the child ("0" or "0,1")
    gpus: int = 1  # GPUs it asks for on CUDA (--gpus-per-candidate, trainable candidates)
    # bench.sweeps runs one strategy several times; these tell the runs apart
    variant: str | None = None  # file-name key (predictions/<variant>.jsonl); None: strategy
    eval_split: str = "test"  # "validation" for a tuning trial: predicted and scored there
    train_subset: list[int] | None = None  # positions of the train rows it sees (curves)
    extra_info: dict[str, Any] = field(default_factory=dict)  # merged into record["info"]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    run_dir: Path
    records: list[dict[str, Any]]
    interrupted: bool = False  # Ctrl-C or cancel: the unfinished candidates can be resumed


# --------------------------------------------------------------------------- events


@dataclass
class CandidateStarted:
    strategy: str
    seed: int = 0
    index: int = 0  # position in this run (1-based) and how many candidates it has
    total: int = 0


@dataclass
class CandidateProgress:
    strategy: str
    phase: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""


@dataclass
class CandidateFinished:
    strategy: str
    record: dict[str, Any]


@dataclass
class RunFinished:
    run_dir: Path


Event = CandidateStarted | CandidateProgress | CandidateFinished | RunFinished
EventHandler = Callable[[Any], None]


def _emit(on_event: EventHandler | None, event: Any) -> None:
    if on_event is not None:
        on_event(event)


# --------------------------------------------------------------------------- preparing a run


def _load_data(plan: BenchPlan):
    """bench.data's loader (the data layer owns formats, checks and splitting)."""
    from bench.data import load_task_data

    return load_task_data(plan.data, task=plan.task, test_path=plan.test,
                          corpus_path=plan.corpus, columns=plan.columns or None,
                          seed=plan.seed, max_rows=plan.max_train_rows, model_name=plan.model)


def _resolve_device(device: str, hardware: dict[str, Any]) -> str:
    if device == "auto":
        return "cuda" if hardware.get("cuda") else "cpu"
    if device == "cuda" and not hardware.get("cuda"):
        raise TunewiseError("--device cuda: no CUDA GPU was found on this machine")
    if device not in ("cpu", "cuda"):
        raise TunewiseError(f"--device {device!r}: choose auto, cpu or cuda")
    return device


def _strategy_names(plan: BenchPlan, task: str) -> list[str]:
    from strategies import registry
    from strategies.base import StrategyError

    try:
        names = registry.resolve(",".join(plan.strategies), task)
    except StrategyError as exc:
        raise TunewiseError(str(exc)) from None
    if not names:
        raise TunewiseError(f"no strategy selected for a {task} task")
    if len(set(names)) != len(names):
        raise TunewiseError(f"a strategy is listed twice: {', '.join(names)}")
    return names


def _check_names_early(strategies: list[str]) -> None:
    """Unknown names fail before the data is read (which can take a while)."""
    from strategies import registry

    for name in strategies:
        if name != "all" and not registry.is_known(name):
            raise TunewiseError(registry.unknown_message(name))


def _spec(name: str):
    from strategies import registry

    try:
        return registry.get(name)
    except ImportError as exc:
        raise TunewiseError(f"strategy {name!r} cannot be imported here: {exc}") from None


def _config_overrides(plan: BenchPlan, spec) -> dict[str, Any]:
    """This strategy's overrides: the "*" ones its config has, then its own."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    merged = {k: v for k, v in plan.overrides.get("*", {}).items() if k in fields}
    merged.update(plan.overrides.get(spec.name, {}))
    return merged


def _check_overrides(plan: BenchPlan, specs: list) -> None:
    """--set for a strategy not in the run, or a global key no selected config has."""
    names = {spec.name for spec in specs}
    for target in plan.overrides:
        if target != "*" and target not in names:
            raise TunewiseError(f"--set {target}.…: {target!r} is not one of the strategies "
                                f"of this run ({', '.join(sorted(names))})")
    for key in plan.overrides.get("*", {}):
        if not any(key in {f.name for f in dataclasses.fields(s.config_cls)} for s in specs):
            raise TunewiseError(f"--set {key}=…: no selected strategy has an option {key!r}")


def _build_jobs(plan: BenchPlan, run_dir: Path, run_id: str, task: str, names: list[str],
                hardware: dict[str, Any]) -> list[CandidateJob]:
    from bench.cost import load_prices, price_row_for
    from strategies import registry
    from strategies.base import StrategyError

    device = _resolve_device(plan.device, hardware)
    row = price_row_for(hardware, load_prices(plan.prices), plan.price_as)
    specs = [_spec(name) for name in names]
    for spec in specs:
        if task not in spec.tasks:
            raise TunewiseError(f"strategy {spec.name!r} does not support {task} tasks "
                                f"(it supports: {', '.join(sorted(spec.tasks))})")
    _check_overrides(plan, specs)
    seeds = [plan.seed + i for i in range(max(plan.seeds, 1))]
    jobs = []
    for spec in specs:
        overrides = _config_overrides(plan, spec)
        try:
            config = spec.make_config(plan.preset, overrides)
        except StrategyError as exc:
            raise TunewiseError(f"{spec.name}: {exc}") from None
        jobs.append(CandidateJob(
            run_dir=str(run_dir), run_id=run_id, strategy=spec.name,
            target=registry.target_of(spec.name), family=spec.family, task=task,
            seed=seeds[0], seeds=seeds, split_path=str(run_dir / journal.SPLIT),
            work_dir=str(journal.work_dir(run_dir, spec.name)),
            log_path=str(journal.log_path(run_dir, spec.name)),
            preset=plan.preset, overrides=overrides,
            config=dataclasses.asdict(config), model=plan.model, encoder=plan.encoder,
            device=device, options=dict(plan.options), timeout_s=plan.timeout_s,
            max_memory_mb=plan.max_memory_mb, metrics=list(plan.metrics),
            price_row={"name": row.name, "usd_per_hour": row.usd_per_hour,
                       "projected": row.projected},
            hardware=hardware, requires_cuda=spec.requirements.cuda,
            estimate=plan.estimates.get(spec.name),
            gpus=plan.gpus_per_candidate if spec.trainable else 1,
        ))
    return jobs


def _check_metrics(names: Iterable[str]) -> None:
    from bench.metrics import load_extra_metric

    for name in names:
        load_extra_metric(name)  # raises a clear TunewiseError before anything runs


def _manifest(plan: BenchPlan, run_id: str, loaded, task: str, names: list[str],
              hardware: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": plan.command or shlex.join(sys.argv),
        "task": task,
        "strategies": names,
        "model": plan.model,
        "encoder": plan.encoder,
        "preset": plan.preset,
        "seed": plan.seed,
        "seeds": [plan.seed + i for i in range(max(plan.seeds, 1))],
        "data": {"path": plan.data, "test": plan.test, "corpus": plan.corpus,
                 "hash": loaded.data_hash, "sources": loaded.sources},
        "profile": loaded.profile,
        "split": {"indices": loaded.split_indices,
                  "sizes": {part: len(getattr(loaded.split, part))
                            for part in ("train", "validation", "test")}},
        "hardware": hardware,
        "packages": journal.package_versions(),
        "python": sys.version.split()[0],
        "git": journal.git_state(),
        "plan": dataclasses.asdict(plan),
        "sessions": [],
    }


def _resume_plan(plan: BenchPlan, manifest: dict[str, Any]) -> BenchPlan:
    """The stored plan, with this invocation's limits where it gives them."""
    stored = BenchPlan(**{k: v for k, v in manifest["plan"].items()
                          if k in {f.name for f in dataclasses.fields(BenchPlan)}})
    stored.resume = plan.resume
    for name in ("timeout_s", "max_memory_mb"):
        if getattr(plan, name) is not None:
            setattr(stored, name, getattr(plan, name))
    if plan.device != "auto":
        stored.device = plan.device
    return stored


def prepare_run(plan: BenchPlan) -> tuple[Path, list[CandidateJob]]:
    """Load and split the data once, validate everything, write the manifest; return jobs."""
    from bench.hardware import probe

    hardware = dict(probe())
    if plan.resume:
        run_dir = journal.open_run_dir(plan.resume)
        manifest = journal.read_json(run_dir / journal.MANIFEST)
        resumed = _resume_plan(plan, manifest)
        task, names = manifest["task"], manifest["strategies"]
        jobs = _build_jobs(resumed, run_dir, manifest["run_id"], task, names, hardware)
        finished = journal.prepare_resume(run_dir)
        return run_dir, [job for job in jobs if job.strategy not in finished]

    _check_names_early(plan.strategies)
    loaded = _load_data(plan)
    task = loaded.split.task
    names = _strategy_names(plan, task)
    _check_metrics(plan.metrics)
    # Validate jobs against a placeholder folder first: bad input leaves no run folder behind.
    _build_jobs(plan, Path(plan.out) / "pending", "pending", task, names, hardware)
    run_dir = journal.new_run_dir(plan.out)
    run_id = run_dir.name
    journal.write_json_atomic(run_dir / journal.SPLIT, dataclasses.asdict(loaded.split))
    journal.write_json_atomic(run_dir / journal.MANIFEST,
                              _manifest(plan, run_id, loaded, task, names, hardware))
    return run_dir, _build_jobs(plan, run_dir, run_id, task, names, hardware)


# --------------------------------------------------------------------------- one child


@dataclass
class ChildOutcome:
    status: str  # ok | failed | skipped | timeout | cancelled
    error: str | None = None
    payload: dict[str, Any] | None = None
    wall_s: float = 0.0
    sampled_peak_mb: float = 0.0


def _tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _rss_mb(process) -> float:
    """RSS of the child and its own children, MB (0 once it is gone)."""
    import psutil

    try:
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20
    except psutil.Error:
        return 0.0


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


def _with_tail(head: str, log_path: str, lines: int = 3) -> str:
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
    return _with_tail(head, log_path, LOG_TAIL_LINES)


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
            peak = max(peak, _rss_mb(process))
            if outcome is None and job.max_memory_mb and peak > job.max_memory_mb:
                _kill(proc, process)
                outcome = ChildOutcome(
                    "failed", _with_tail(f"exceeded --max-memory {job.max_memory_mb:.0f} MB "
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
        return ChildOutcome("timeout", _with_tail(f"timed out after {job.timeout_s:g} s "
                                                  "(--timeout) and was stopped", job.log_path))
    if cancel is not None and cancel.is_set():
        _kill(proc, process)
        return ChildOutcome("cancelled", "cancelled before it finished")
    return None


def _handle_message(job: CandidateJob, message: tuple, on_event) -> ChildOutcome | None:
    kind = message[0]
    if kind == "phase":
        _emit(on_event, CandidateProgress(job.strategy, message[1]))
    elif kind == "progress":
        _, phase, step, total, loss, text = message
        _emit(on_event, CandidateProgress(job.strategy, phase, step, total, loss, text))
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


# --------------------------------------------------------------------------- records


def _read_split(path: str) -> dict[str, Any]:
    return journal.read_json(Path(path))


def _base_record(job: CandidateJob, status: str, error: str | None) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": job.run_id,
        "strategy": job.strategy,
        "family": job.family,
        "task": job.task,
        "status": status,
        "error": error,
        "primary_metric": PRIMARY_METRIC[job.task],
        "metrics": {},
        "metrics_ci": {},
        "seeds": list(job.seeds),
        "peak_memory_mb": {"cpu_rss": 0.0, "cuda": None},
        "time_s": {"load": 0.0, "adapt": 0.0, "predict": 0.0, "total": 0.0},
        "tokens_per_s": None,
        "trainable_params": 0,
        "total_params": 0,
        "artifact_mb": 0.0,
        "cost_usd": {"adapt": 0.0, "predict": 0.0, "per_1k_requests": 0.0},
        "cost_projected": bool(job.price_row.get("projected")),
        "hardware": {**job.hardware, "price_row": job.price_row["name"],
                     "price_per_hour": job.price_row["usd_per_hour"], "device": job.device},
        "seed": job.seed,
        "config": job.config,
        "info": dict(job.extra_info),
        "estimate": job.estimate,
        "log": str(Path(job.log_path).relative_to(job.run_dir)),
    }


def _unfinished_record(job: CandidateJob, outcomes: list[ChildOutcome]) -> dict[str, Any]:
    last = outcomes[-1]
    status = "failed" if last.status == "cancelled" else last.status
    error = last.error or status
    if len(job.seeds) > 1:
        error = f"seed {job.seeds[len(outcomes) - 1]}: {error}"
    record = _base_record(job, status, error)
    record["peak_memory_mb"]["cpu_rss"] = round(max(o.sampled_peak_mb for o in outcomes), 1)
    record["time_s"]["total"] = round(sum(o.wall_s for o in outcomes), 3)
    if last.status == "cancelled":
        record["info"]["cancelled"] = True
    return record


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _prediction_rows(task, test_rows, references, predictions_per_seed, seeds, row_scores):
    input_key = {"classification": "text", "generation": "instruction", "qa": "question",
                 "preference": "prompt"}[task]
    for seed, predictions in zip(seeds, predictions_per_seed):
        for i, (row, reference, prediction) in enumerate(zip(test_rows, references, predictions)):
            entry = {"index": i, "seed": seed, "input": row.get(input_key),
                     "prediction": prediction, "reference": reference}
            if seed == seeds[0] and i < len(row_scores):
                entry.update(row_scores[i])
            yield entry


def _score_record(job: CandidateJob, record: dict[str, Any], payloads: list[dict]) -> None:
    from bench.metrics import compute_extra_metric, load_extra_metric, reference_of, score_seeds
    from bench.metrics import per_class_scores

    split = _read_split(job.split_path)
    test_rows = split[job.eval_split]
    references = [reference_of(job.task, row) for row in test_rows]
    predictions_per_seed = [p["predictions"] for p in payloads]
    scored = score_seeds(job.task, predictions_per_seed, references,
                         labels=split.get("labels") or None, seed=job.seed)
    metrics, ci = dict(scored.metrics), dict(scored.ci)
    for name in job.metrics:
        metric = load_extra_metric(name)
        values = [compute_extra_metric(metric, name, job.task, predictions, references,
                                       split.get("labels"))
                  for predictions in predictions_per_seed]
        metrics.update({k: _mean([v[k] for v in values]) for k in values[0]})
    for key in {k for p in payloads for k in p["extra_metrics"]}:
        metrics.setdefault(key, _mean([p["extra_metrics"][key] for p in payloads
                                       if key in p["extra_metrics"]]))
    record["metrics"] = {k: round(v, 6) for k, v in metrics.items()}
    record["metrics_ci"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in ci.items()}
    if len(payloads) > 1:
        record["metrics_std"] = {k: round(v, 6) for k, v in scored.std.items()}
    if scored.confusion is not None:
        record["confusion_matrix"] = scored.confusion
    if job.family != "baseline":  # the majority vote answers one label by design
        from bench.metrics import collapse_over_seeds  # candidates that did not learn the task
        record.update(collapse_over_seeds(job.task, predictions_per_seed, references))
    if job.task == "classification":
        record["per_class"] = per_class_scores(predictions_per_seed, references,
                                               split.get("labels") or None)
    record["samples"] = [
        {"input": row.get({"classification": "text", "generation": "instruction",
                           "qa": "question", "preference": "prompt"}[job.task]),
         "prediction": predictions_per_seed[0][i], "reference": references[i],
         **scored.row_scores[i]}
        for i, row in enumerate(test_rows[:SAMPLE_ROWS])
    ]
    path = journal.write_predictions(
        Path(job.run_dir), job.variant or job.strategy,
        _prediction_rows(job.task, test_rows, references, predictions_per_seed, job.seeds,
                         scored.row_scores))
    record["predictions"] = str(path.relative_to(job.run_dir))
    record["_test_rows"] = len(test_rows)


def _measure_record(job: CandidateJob, record: dict[str, Any], outcomes: list[ChildOutcome]):
    from bench.cost import PriceRow, candidate_cost

    payloads = [o.payload for o in outcomes]
    phases = {name: _mean([p["phases"].get(name, 0.0) for p in payloads])
              for name in {k for p in payloads for k in p["phases"]}}
    total = _mean([o.wall_s for o in outcomes])
    record["time_s"] = {"load": round(phases.get("load", 0.0), 3),
                        "adapt": round(phases.get("adapt", 0.0), 3),
                        "predict": round(phases.get("predict", 0.0), 3),
                        "total": round(total, 3)}
    busy = phases.get("adapt", 0.0) + phases.get("predict", 0.0)
    tokens = _mean([p["train_tokens"] + p["predict_tokens"] for p in payloads])
    record["tokens_per_s"] = round(tokens / busy, 2) if tokens and busy > 0 else None
    record["peak_memory_mb"] = {
        "cpu_rss": round(max(max(p["peak_rss_mb"], o.sampled_peak_mb)
                             for p, o in zip(payloads, outcomes)), 1),
        "cuda": (round(max(p["peak_cuda_mb"] for p in payloads), 1)
                 if any(p["peak_cuda_mb"] is not None for p in payloads) else None),
    }
    first = payloads[0]
    record["trainable_params"] = first["trainable_params"]
    record["total_params"] = first["total_params"]
    record["artifact_mb"] = round(journal.size_on_disk_mb(first["artifact_path"]), 3)
    record["config"] = first["config"] or job.config
    row = PriceRow(job.price_row["name"], job.price_row["usd_per_hour"],
                   projected=job.price_row["projected"])
    # Priced from the recorded (rounded) seconds, so a reader can recompute every dollar.
    cost = candidate_cost(adapt_s=record["time_s"]["adapt"], predict_s=record["time_s"]["predict"],
                          test_rows=record.pop("_test_rows", 0), row=row)
    record["cost_usd"] = {k: round(v, 8) for k, v in cost.items()}
    info = dict(first["info"])
    info.update({
        "mean_prompt_tokens": first["mean_prompt_tokens"],
        "train_tokens": first["train_tokens"],
        "predict_tokens": first["predict_tokens"],
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        # spawn + imports + record: what the harness adds around the strategy's own work
        "harness_overhead_s": round(_mean([o.wall_s - p["child_s"]
                                           for o, p in zip(outcomes, payloads)]), 3),
    })
    if first["artifact_path"]:
        info["artifact_path"] = os.path.relpath(first["artifact_path"], job.run_dir)
    if len(outcomes) > 1:
        info["time_s_per_seed"] = [round(o.wall_s, 3) for o in outcomes]
    if row.projected:
        info["cost_note"] = (f"projected with the {row.name} price row; the seconds were "
                             "measured on this machine")
    record["info"] = info


def _finished_record(job: CandidateJob, outcomes: list[ChildOutcome]) -> dict[str, Any]:
    record = _base_record(job, "ok", None)
    try:
        _score_record(job, record, [o.payload for o in outcomes])
    except (ValueError, KeyError, TunewiseError) as exc:
        # A strategy that returned the wrong number or shape of predictions failed, even
        # though its process finished cleanly.
        failed = _unfinished_record(job, [dataclasses.replace(outcomes[-1], status="failed")])
        failed["error"] = f"its predictions could not be scored: {exc}"
        return failed
    if record["primary_metric"] not in record["metrics"]:
        # e.g. preference predictions without chosen/rejected log-probabilities
        failed = _unfinished_record(job, [dataclasses.replace(outcomes[-1], status="failed")])
        failed["error"] = (f"its predictions gave no {record['primary_metric']} "
                           f"(metrics: {', '.join(record['metrics']) or 'none'})")
        return failed
    _measure_record(job, record, outcomes)
    record["info"].update(job.extra_info)
    return record


def run_candidate(job: CandidateJob, on_event: EventHandler | None = None,
                  cancel: threading.Event | None = None) -> dict[str, Any]:
    """Run one candidate (each seed in its own spawned child) and return its record.

    Never raises for the candidate's own failures: crash, timeout, memory ceiling, SIGKILL,
    StrategyError and StrategySkipped all become records."""
    if job.requires_cuda and job.device != "cuda":
        return _base_record(job, "skipped", "needs a CUDA GPU; none is available here")
    outcomes: list[ChildOutcome] = []
    for seed in job.seeds:
        _emit(on_event, CandidateStarted(job.strategy, seed))
        outcomes.append(_run_child(job, seed, on_event, cancel))
        if outcomes[-1].status != "ok":
            return _unfinished_record(job, outcomes)
    return _finished_record(job, outcomes)


# --------------------------------------------------------------------------- executors


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
            yield run_candidate(job, _tagged(on_event, index, len(jobs)), cancel)

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
                    finished.put(run_candidate(job, _tagged(on_event, index, len(jobs)), cancel))
                except BaseException as exc:  # noqa: BLE001 - a harness bug must not hang the run
                    finished.put(_base_record(job, "failed", f"harness error: {exc!r}"))

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


def _tagged(on_event: EventHandler | None, index: int, total: int) -> EventHandler:
    """Adds the candidate's position in the run to its CandidateStarted events."""
    def handler(event: Any) -> None:
        if isinstance(event, CandidateStarted):
            event.index, event.total = index, total
        _emit(on_event, event)
    return handler


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


def run_benchmark(plan: BenchPlan, *, on_event: EventHandler | None = None,
                  cancel: threading.Event | None = None, executor: Executor | None = None
                  ) -> RunResult:
    """Prepare, run every candidate, append each record as it finishes; see the module doc."""
    with journal.lock_run_dir(plan.resume) if plan.resume else contextlib.nullcontext():
        run_dir, jobs = prepare_run(plan)
        if plan.tune or plan.learning_curve or plan.more_data:
            from bench import sweeps

            jobs = sweeps.expand_jobs(plan, run_dir, jobs)
            executor = sweeps.SweepExecutor(executor or _local_executor(jobs), plan.tune)
        return _run_jobs(run_dir, jobs, on_event, cancel, executor)


def _local_executor(jobs: list[CandidateJob]) -> "LocalExecutor":
    """The default executor, its GPU groups as large as the jobs ask for (--gpus-per-candidate).
    Untrained candidates get a whole group too: a group is the unit of scheduling."""
    return LocalExecutor.for_jobs(jobs, max((job.gpus for job in jobs), default=1))


def _run_jobs(run_dir: Path, jobs: list[CandidateJob], on_event: EventHandler | None,
              cancel: threading.Event | None, executor: Executor | None) -> RunResult:
    records = journal.read_records(run_dir)  # finished ones, when resuming
    cancel = cancel or threading.Event()
    executor = executor or _local_executor(jobs)
    started = time.time()
    interrupted = False
    try:
        for record in executor.run(jobs, on_event, cancel):
            if record.get("info", {}).get("cancelled"):
                interrupted = True  # not journalled: --resume runs it again
                continue
            journal.append_record(run_dir, record)
            records.append(record)
            _emit(on_event, CandidateFinished(record["strategy"], record))
    except KeyboardInterrupt:
        cancel.set()
        interrupted = True
    interrupted = interrupted or cancel.is_set()
    _record_session(run_dir, started, [job.strategy for job in jobs], interrupted)
    _emit(on_event, RunFinished(run_dir))
    return RunResult(run_dir, records, interrupted)
