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
import re
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
# RunContext.options key of the --label-names file (strategies.prompts.LABEL_NAMES_OPTION:
# strategies sit below bench, so the name is repeated; tests/test_label_names.py checks it)
LABEL_NAMES_OPTION = "label_names_file"


@dataclass
class BenchPlan:
    """Everything `tunewise bench` (or the TUI) asks for. See advisor/bench_cli.py."""

    data: str
    task: str | None = None
    test: str | None = None
    corpus: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical name -> user's column
    strategies: list[str] = field(default_factory=lambda: ["majority", "zero-shot"])
    # the base LLM; several ("a,b" or a list) run every LLM candidate once per model on the
    # same split (model_names); encoder candidates run once
    model: str | list[str] = "smollm2-135m"
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
    test_size: float = 0.2  # share held out for test when no test file is given
    val_size: float = 0.1  # share for validation (`tunewise data check` splits the same way)
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
    # the user's prompt, for every LM candidate (prompting, RAG, fine-tuning): the task
    # instruction and the user turn's template ("Ticket: {text}"), each a text or a file path
    instruction: str | None = None
    prompt_template: str | None = None
    report_to: str = "none"  # none | tensorboard | mlflow: the Trainers' loggers (files only)
    label_names: str | None = None  # --label-names FILE: a description per label (bench.data)


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
    # a race rung (bench.race): the share of the full run's training budget it gets, its train
    # rows over the split's (strategies.training_budget.RungShare); None: the full budget
    budget_fraction: float | None = None
    # a race's continuation (bench.race): the work_dir of this strategy's previous rung job,
    # whose Trainer checkpoint (<resume_from>/trainer/) it resumes to budget_fraction of the
    # full run's steps (None: it trains afresh); save_checkpoint: it leaves a Trainer
    # checkpoint under <work_dir>/trainer/ for the next rung or the final to resume
    resume_from: str | None = None
    save_checkpoint: bool = False
    # with eval_split "validation": the positions of the validation rows it predicts and is
    # scored on (the advisor's probes score zero-shot on a slice); None: every row
    eval_subset: list[int] | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)  # merged into record["info"]
    uses_llm: bool = True  # reads the base model (`model`); False: encoder-only or no model
    per_model: bool = False  # one of several base models' runs (variant `lora@<model>`)
    prompt: dict[str, Any] | None = None  # {instruction, template} given by the user (LM ones)
    report_to: str = "none"  # the Trainers' loggers (bench.tracking)
    # "stage": a once-per-run model the candidates share (bench.stages), recorded on its own
    kind: str = "candidate"

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


# --------------------------------------------------------------------------- base models


def model_names(model: str | list[str]) -> list[str]:
    """--model "a,b" (or a list, from a config file) -> ["a", "b"]: each base model the LLM
    candidates run on, in order; none twice."""
    names = model if isinstance(model, list) else str(model).split(",")
    names = [str(name).strip() for name in names if str(name).strip()]
    if not names:
        raise TunewiseError("--model is empty: name a base model (bundled, hub id or folder)")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TunewiseError(f"a base model is listed twice in --model: {', '.join(twice)}")
    return names


def model_labels(names: list[str]) -> dict[str, str]:
    """A short, file-safe label per model for candidate names (`lora@SmolLM2-135M`): the last
    part of a hub id or folder; the whole name where two models would share a label."""
    def clean(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"

    short = {name: clean(Path(name.rstrip("/")).name or name) for name in names}
    clashes = {label for label in short.values() if list(short.values()).count(label) > 1}
    return {name: clean(name) if short[name] in clashes else short[name] for name in names}


def uses_llm(name: str) -> bool:
    """Does this candidate read the base LLM? Encoder-only and model-free ones (knn, transfer,
    encoder-ft, setfit, majority) do not, so they run once whatever --model lists. A plugin
    without a profile is assumed to."""
    from strategies import catalogue

    entry = catalogue.entry(name)
    return entry is None or entry.profile is None or entry.profile.model == "llm"


def check_model_options(plan: BenchPlan) -> None:
    """--model and --encoder, before the data is read: a misspelt name stops here with the
    closest known one, and a hub id that is neither cached nor reachable (offline) stops with
    why, instead of failing inside every candidate that loads it."""
    from bench.models import check_hub_models, check_model_option

    check_model_option("--model", model_names(plan.model))
    check_model_option("--encoder", [plan.encoder])
    check_hub_models("--model", model_names(plan.model))
    check_hub_models("--encoder", [plan.encoder])


def _check_model_combinations(plan: BenchPlan, names: list[str]) -> None:
    if len(names) > 1 and (plan.tune or plan.learning_curve or plan.more_data):
        raise TunewiseError("several base models (--model a,b) cannot be combined with --tune, "
                            "--learning-curve or --more-data yet; run one model at a time")


# --------------------------------------------------------------------------- the user's prompt

REPORT_TO = ("none", "tensorboard", "mlflow")


def text_or_file(value: str | None, option: str) -> str | None:
    """The option's text, or the content of the file it names when that file exists."""
    if value is None:
        return None
    path = Path(value).expanduser()
    try:
        is_file = path.is_file()
    except OSError:  # a long text is not a path
        is_file = False
    if is_file:
        try:
            value = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TunewiseError(f"{option} {path}: cannot read the file ({exc})") from None
    if not value.strip():
        raise TunewiseError(f"{option} is empty" + (f" (the file {path})" if is_file else ""))
    return value.strip()


def user_prompt(plan: BenchPlan) -> tuple[str | None, str | None]:
    """(instruction, template) as the user gave them, files read; the template unchecked."""
    return (text_or_file(plan.instruction, "--instruction"),
            text_or_file(plan.prompt_template, "--prompt-template"))


def _check_report_to(value: str) -> None:
    from bench.tracking import missing_package

    if value not in REPORT_TO:
        raise TunewiseError(f"--report-to {value!r}: choose one of {', '.join(REPORT_TO)}")
    package = missing_package(value)
    if package is not None:
        raise TunewiseError(f"--report-to {value} needs the {package} package, which is not "
                            f"installed: pip install 'tunewise[tracking]' (or pip install "
                            f"{package})")


def apply_prompt(split, instruction: str | None, template: str | None) -> dict[str, Any]:
    """Put the user's prompt into the split every candidate reads; return what the records
    carry: the instruction used (the user's, else the task's default) and the template."""
    from strategies.base import StrategyError
    from strategies.prompts import check_prompt_template, task_instruction

    if template is not None:
        try:
            check_prompt_template(split.task, template)
        except StrategyError as exc:
            raise TunewiseError(f"--prompt-template: {exc}") from None
        split.prompt_template = template
    if instruction is not None:
        split.instruction = instruction
    try:
        used = task_instruction(split)
    except StrategyError:  # a split the prompts cannot describe; the candidates will say so
        used = split.instruction
    return {"instruction": used, "instruction_source": "user" if instruction else "default",
            "template": template}


# --------------------------------------------------------------------------- checking a run


def _load_data(plan: BenchPlan):
    """bench.data's loader (the data layer owns formats, checks and splitting)."""
    from bench.data import load_task_data

    return load_task_data(plan.data, task=plan.task, test_path=plan.test,
                          corpus_path=plan.corpus, columns=plan.columns or None,
                          seed=plan.seed, test_size=plan.test_size, val_size=plan.val_size,
                          max_rows=plan.max_train_rows, model_name=model_names(plan.model)[0],
                          label_names=plan.label_names)


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


def _job_options(plan: BenchPlan) -> dict[str, Any]:
    """RunContext.options: the plan's, and the --label-names file the LM candidates record."""
    options = dict(plan.options)
    if plan.label_names:
        options[LABEL_NAMES_OPTION] = str(plan.label_names)
    return options


def build_jobs(plan: BenchPlan, checked: CheckedRun, run_dir: Path, run_id: str, task: str,
               hardware: dict[str, Any], prompt: dict[str, Any] | None = None
               ) -> list[CandidateJob]:
    """One job per checked candidate, and per base model for the LLM candidates when --model
    lists several (named `lora@<model>`), placed in its run folder (nothing left to fail)."""
    jobs = []
    for job in _one_job_per_candidate(plan, checked, run_dir, run_id, task, hardware):
        job.uses_llm = uses_llm(job.strategy)
        job.report_to = plan.report_to
        job.prompt = prompt if job.uses_llm else None
        jobs.extend(_per_model(job, model_names(plan.model), run_dir))
    return jobs


def _per_model(job: CandidateJob, models: list[str], run_dir: Path) -> list[CandidateJob]:
    """The job itself with one model (or for a candidate without the LLM); else one job per
    model, its name, folder and log told apart by the model's label."""
    if len(models) == 1 or not job.uses_llm:
        return [dataclasses.replace(job, model=models[0])]
    labels = model_labels(models)
    return [dataclasses.replace(
        job, model=model, variant=f"{job.strategy}@{labels[model]}", per_model=True,
        work_dir=str(journal.work_dir(run_dir, f"{job.strategy}@{labels[model]}")),
        log_path=str(journal.log_path(run_dir, f"{job.strategy}@{labels[model]}")))
        for model in models]


def candidate_key(strategy: str, variant: str | None) -> str:
    """The name a candidate is known by in a run: its variant (`lora@SmolLM2-135M`), else
    its strategy."""
    return variant or strategy


def _one_job_per_candidate(plan: BenchPlan, checked: CheckedRun, run_dir: Path, run_id: str,
                           task: str, hardware: dict[str, Any]) -> list[CandidateJob]:
    from strategies import registry

    seeds = _seeds(plan)
    return [CandidateJob(
        run_dir=str(run_dir), run_id=run_id, strategy=c.spec.name,
        target=registry.target_of(c.spec.name), family=c.spec.family, task=task,
        seed=seeds[0], seeds=seeds, split_path=str(run_dir / journal.SPLIT),
        work_dir=str(journal.work_dir(run_dir, c.spec.name)),
        log_path=str(journal.log_path(run_dir, c.spec.name)),
        preset=plan.preset, overrides=c.overrides, config=c.config,
        model=model_names(plan.model)[0],
        encoder=plan.encoder, device=checked.device, options=_job_options(plan),
        timeout_s=plan.timeout_s, max_memory_mb=plan.max_memory_mb, metrics=list(plan.metrics),
        price_row=dict(checked.price_row), hardware=hardware,
        requires_cuda=c.spec.requirements.cuda, estimate=plan.estimates.get(c.spec.name),
        gpus=plan.gpus_per_candidate if c.spec.trainable else 1,
    ) for c in checked.candidates]


# --------------------------------------------------------------------------- the run folder


def _manifest(plan: BenchPlan, run_id: str, loaded, task: str, names: list[str],
              hardware: dict[str, Any], prompt: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": plan.command or shlex.join(sys.argv),
        "task": task,
        "strategies": names,
        "model": model_names(plan.model)[0],
        "models": model_names(plan.model),
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
        "prompt": prompt,
        "report_to": plan.report_to,
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
    jobs = build_jobs(resumed, checked, run_dir, manifest["run_id"], task, hardware,
                      manifest.get("prompt"))
    journal.prepare_resume(run_dir)
    finished = {candidate_key(r["strategy"], r.get("variant"))
                for r in journal.read_records(run_dir)}
    return run_dir, [job for job in jobs
                     if candidate_key(job.strategy, job.variant) not in finished]


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
    _check_model_combinations(plan, model_names(plan.model))
    check_model_options(plan)
    _check_report_to(plan.report_to)
    instruction, template = user_prompt(plan)
    loaded = _load_data(plan)
    task = loaded.split.task
    prompt = apply_prompt(loaded.split, instruction, template)  # before split.json is written
    names = selected_strategies(plan.strategies, task)
    checked = check_candidates(plan, task, names, hardware)
    if plan.options.get("augment"):  # --augment: the train split only, before split.json;
        from bench.augment import augment_loaded  # after every check (generating takes a while)

        augment_loaded(plan, loaded, model_names(plan.model)[0])
    run_dir = journal.new_run_dir(plan.out)  # only now: bad input leaves no run folder behind
    run_id = run_dir.name
    journal.write_json_atomic(run_dir / journal.SPLIT, dataclasses.asdict(loaded.split))
    journal.write_json_atomic(run_dir / journal.MANIFEST,
                              _manifest(plan, run_id, loaded, task, names, hardware, prompt))
    return run_dir, build_jobs(plan, checked, run_dir, run_id, task, hardware, prompt)
