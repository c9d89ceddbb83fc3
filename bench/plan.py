"""What a run will do: the plan a front door asks for, checked once, and one job per candidate.

    from bench.plan import BenchPlan, prepare_run
    run_dir, jobs = prepare_run(BenchPlan(data="bench/samples/banking_support",
                                          strategies=["majority", "zero-shot"]))

`prepare_run` checks everything it can before the data is read (strategy names, --set
targets, extra metrics), loads, checks and splits the data once (bench.data), checks every
candidate's task and config, and only then makes the run folder, writes manifest.json and
split.json and returns one `CandidateJob` per candidate: plain, picklable data, because a job
crosses into a child process or a Ray task. Bad input raises TunewiseError and leaves no run
folder behind. On --resume the stored plan is used and finished candidates are left out.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import journal
from bench.errors import TunewiseError
from bench.schema import SCHEMA_VERSION

ALL = "all"  # --strategies all: every strategy that supports the task


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
class CheckedCandidate:
    """A candidate whose task support and config were checked; not yet in a run folder."""

    spec: Any  # strategies.base.StrategySpec
    overrides: dict[str, Any]
    config: dict[str, Any]


@dataclass
class CheckedRun:
    """What every job of a run shares, checked before the run folder exists."""

    device: str  # resolved: cpu | cuda
    price_row: dict[str, Any]
    candidates: list[CheckedCandidate]


# --------------------------------------------------------------------------- strategies


def check_strategy_names(strategies: list[str]) -> None:
    """The --strategies list, checked once and before the data is read (which can take a
    while): known names, no name twice, `all` on its own."""
    from strategies import registry

    if not strategies:
        raise TunewiseError("--strategies is empty")
    if ALL in strategies and strategies != [ALL]:
        raise TunewiseError(f"--strategies {','.join(strategies)}: `all` already means every "
                            "strategy for the task; give it alone or list the names")
    for name in strategies:
        if name != ALL and not registry.is_known(name):
            raise TunewiseError(registry.unknown_message(name))
    twice = sorted({name for name in strategies if strategies.count(name) > 1})
    if twice:
        raise TunewiseError(f"a strategy is listed twice: {', '.join(twice)}")


def selected_strategies(strategies: list[str], task: str) -> list[str]:
    """The checked names, with `all` expanded to every strategy that supports `task`."""
    from strategies import registry

    if strategies != [ALL]:
        return list(strategies)
    names = [name for name in registry.names() if task in strategy_spec(name).tasks]
    if not names:
        raise TunewiseError(f"no strategy selected for a {task} task")
    return names


def strategy_spec(name: str):
    """The StrategySpec of a checked name; a clear message when its module cannot load here."""
    from strategies import registry

    try:
        return registry.get(name)
    except ImportError as exc:
        raise TunewiseError(f"strategy {name!r} cannot be imported here: {exc}") from None


def _config_fields(spec) -> set[str]:
    return {f.name for f in dataclasses.fields(spec.config_cls)}


def _config_overrides(plan: BenchPlan, spec) -> dict[str, Any]:
    """This strategy's overrides: the "*" ones its config has, then its own."""
    fields = _config_fields(spec)
    merged = {k: v for k, v in plan.overrides.get("*", {}).items() if k in fields}
    merged.update(plan.overrides.get(spec.name, {}))
    return merged


def check_override_targets(overrides: dict[str, dict[str, Any]], names: list[str]) -> None:
    """--set STRATEGY.KEY=… for a strategy that is not in the run."""
    for target, values in overrides.items():
        if target != "*" and target not in names:
            key = next(iter(values), "KEY")
            raise TunewiseError(f"--set {target}.{key}=…: {target!r} is not among --strategies "
                                f"({', '.join(names)})")


def _check_global_overrides(plan: BenchPlan, specs: list) -> None:
    """--set KEY=… that no selected strategy's config has."""
    for key in plan.overrides.get("*", {}):
        if not any(key in _config_fields(spec) for spec in specs):
            raise TunewiseError(f"--set {key}=…: no selected strategy has an option {key!r}")


# --------------------------------------------------------------------------- checking a run


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


def _check_metrics(names: list[str]) -> None:
    from bench.metrics import load_extra_metric

    for name in names:
        load_extra_metric(name)  # raises a clear TunewiseError before anything runs


def check_candidates(plan: BenchPlan, task: str, names: list[str],
                     hardware: dict[str, Any]) -> CheckedRun:
    """Device, price row, each candidate's task support, --set and config: every way a run's
    input can be wrong, checked once, before a run folder is made."""
    from bench.cost import load_prices, price_row_for
    from strategies.base import StrategyError

    device = _resolve_device(plan.device, hardware)
    row = price_row_for(hardware, load_prices(plan.prices), plan.price_as)
    specs = [strategy_spec(name) for name in names]
    for spec in specs:
        if task not in spec.tasks:
            raise TunewiseError(f"strategy {spec.name!r} does not support {task} tasks "
                                f"(it supports: {', '.join(sorted(spec.tasks))})")
    check_override_targets(plan.overrides, names)
    _check_global_overrides(plan, specs)
    candidates = []
    for spec in specs:
        overrides = _config_overrides(plan, spec)
        try:
            config = spec.make_config(plan.preset, overrides)
        except StrategyError as exc:
            raise TunewiseError(f"{spec.name}: {exc}") from None
        candidates.append(CheckedCandidate(spec, overrides, dataclasses.asdict(config)))
    price_row = {"name": row.name, "usd_per_hour": row.usd_per_hour, "projected": row.projected}
    return CheckedRun(device, price_row, candidates)


def _seeds(plan: BenchPlan) -> list[int]:
    return [plan.seed + i for i in range(max(plan.seeds, 1))]


def build_jobs(plan: BenchPlan, checked: CheckedRun, run_dir: Path, run_id: str, task: str,
               hardware: dict[str, Any]) -> list[CandidateJob]:
    """One job per checked candidate, placed in its run folder (nothing left to fail)."""
    from strategies import registry

    seeds = _seeds(plan)
    return [CandidateJob(
        run_dir=str(run_dir), run_id=run_id, strategy=c.spec.name,
        target=registry.target_of(c.spec.name), family=c.spec.family, task=task,
        seed=seeds[0], seeds=seeds, split_path=str(run_dir / journal.SPLIT),
        work_dir=str(journal.work_dir(run_dir, c.spec.name)),
        log_path=str(journal.log_path(run_dir, c.spec.name)),
        preset=plan.preset, overrides=c.overrides, config=c.config, model=plan.model,
        encoder=plan.encoder, device=checked.device, options=dict(plan.options),
        timeout_s=plan.timeout_s, max_memory_mb=plan.max_memory_mb, metrics=list(plan.metrics),
        price_row=dict(checked.price_row), hardware=hardware,
        requires_cuda=c.spec.requirements.cuda, estimate=plan.estimates.get(c.spec.name),
        gpus=plan.gpus_per_candidate if c.spec.trainable else 1,
    ) for c in checked.candidates]


# --------------------------------------------------------------------------- the run folder


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
        "seeds": _seeds(plan),
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


def _prepare_resume(plan: BenchPlan, hardware: dict[str, Any]) -> tuple[Path, list[CandidateJob]]:
    run_dir = journal.open_run_dir(plan.resume)
    manifest = journal.read_json(run_dir / journal.MANIFEST)
    resumed = _resume_plan(plan, manifest)
    task, names = manifest["task"], manifest["strategies"]
    checked = check_candidates(resumed, task, names, hardware)
    jobs = build_jobs(resumed, checked, run_dir, manifest["run_id"], task, hardware)
    finished = journal.prepare_resume(run_dir)
    return run_dir, [job for job in jobs if job.strategy not in finished]


def prepare_run(plan: BenchPlan) -> tuple[Path, list[CandidateJob]]:
    """Check everything, load and split the data once, write the manifest; return the jobs."""
    from bench.hardware import probe

    hardware = dict(probe())
    if plan.resume:
        return _prepare_resume(plan, hardware)
    check_strategy_names(plan.strategies)
    if plan.strategies != [ALL]:
        check_override_targets(plan.overrides, plan.strategies)
    _check_metrics(plan.metrics)
    loaded = _load_data(plan)
    if plan.options.get("augment"):  # --augment: the train split only, before split.json
        from bench.augment import augment_loaded

        augment_loaded(plan, loaded)
    task = loaded.split.task
    names = selected_strategies(plan.strategies, task)
    checked = check_candidates(plan, task, names, hardware)
    run_dir = journal.new_run_dir(plan.out)  # only now: bad input leaves no run folder behind
    run_id = run_dir.name
    journal.write_json_atomic(run_dir / journal.SPLIT, dataclasses.asdict(loaded.split))
    journal.write_json_atomic(run_dir / journal.MANIFEST,
                              _manifest(plan, run_id, loaded, task, names, hardware))
    return run_dir, build_jobs(plan, checked, run_dir, run_id, task, hardware)
