"""Sweeps over candidates: hyperparameter tuning, data-efficiency curves and multi-task training.

    tunewise bench --data bench/samples/banking_support --strategies lora --tune 8
    tunewise bench --data bench/samples/banking_support --strategies few-shot,lora \\
        --learning-curve 16,64,256
    tunewise bench --data tickets_a.csv --data tickets_b.csv --strategies lora

Every trial, subset and multi-task run is an ordinary `CandidateJob`: run by the executor in its
own child and scored by the harness, so a sweep is measured exactly like a single candidate.
This module only decides which jobs to run and folds their records together:

- `--tune N`: N Optuna trials (TPE, seeded) per trainable candidate, each trained on train and
  scored on the VALIDATION split (`job.eval_split`); the best trial's config is then refit on
  train and tested once on test. That one record carries every trial (info.trials) and says
  which config won (info.tuning). Trials are not journalled as records of their own: they
  never saw the test split, so they must not sit in the results table beside test scores.
- `--learning-curve 16,64,256`: every candidate rerun on nested, stratified, seeded train
  subsets (the sampling of bench.data's train cap); one record per (strategy, size) with
  info.learning_curve = {"train_rows": n, ...} and info.train_rows = n (what the report reads).
  `crossover_message` tells at which size fine-tuning overtakes prompting.
- multi-task (`--data A --data B`): each trainable candidate trains one adapter on the mixed,
  task-tagged train splits of all datasets ("[A] text ..."), then is scored on each dataset's
  test split; beside it the same strategy trained on each dataset alone. Restriction: all
  datasets must be of the same task kind; for classification the labels are the union of the
  datasets' labels, so a multi-task model can answer a label of another dataset (scored wrong).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator

from bench import journal
from bench.errors import TunewiseError
from bench.schema import HIGHER_IS_BETTER, PRIMARY_METRIC
from strategies import catalogue

# ------------------------------------------------------------------------------- search spaces
#
# Data, not code: for each config field, the range searched, per strategy family ("*" for any
# family). A field is searched only when the candidate's config has it and the user did not fix
# it with --set. ("log", low, high) is a log-uniform float; ("choice", [...]) a categorical.
# Learning-rate ranges follow the defaults of each family: PEFT methods want ~10x full FT's.

SEARCH_SPACES: dict[str, dict[str, tuple]] = {
    "learning_rate": {
        "peft": ("log", 1e-4, 3e-3),
        "fine-tuning": ("log", 1e-5, 3e-4),
        "transfer": ("log", 1e-5, 3e-4),
        "preference": ("log", 1e-6, 1e-4),
    },
    "epochs": {"*": ("choice", [1, 2, 3])},
    "batch_size": {"*": ("choice", [4, 8, 16])},
    "r": {"*": ("choice", [4, 8, 16])},  # LoRA rank: capacity vs memory and artifact size
    "alpha": {"*": ("choice", [8, 16, 32])},
    "lora_r": {"*": ("choice", [4, 8, 16])},
    "lora_alpha": {"*": ("choice", [8, 16, 32])},
}

MULTITASK_SPLIT = "split-multitask.json"
# the row field that carries the task tag in multi-task prompts, per task kind
TAG_FIELD = {"classification": "text", "generation": "instruction", "qa": "question"}


def search_space(spec, fixed: dict[str, Any] | None = None) -> dict[str, tuple]:
    """{field: range} for this strategy: the fields its config has, less those the user fixed."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    space = {}
    for name, by_family in SEARCH_SPACES.items():
        rule = by_family.get(spec.family, by_family.get("*"))
        if rule is not None and name in fields and name not in (fixed or {}):
            space[name] = rule
    return space


def optuna_distributions(space: dict[str, tuple]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    out = {}
    for name, rule in space.items():
        if rule[0] == "log":
            out[name] = FloatDistribution(rule[1], rule[2], log=True)
        elif rule[0] == "choice":
            out[name] = CategoricalDistribution(list(rule[1]))
        else:
            raise ValueError(f"search space of {name}: unknown kind {rule[0]!r}")
    return out


# ------------------------------------------------------------------------------- checking a plan


def parse_sizes(text: str) -> list[int]:
    """"16,64,256" -> [16, 64, 256]; a clear message for anything else."""
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise TunewiseError(f"--learning-curve {text!r}: sizes must be positive whole "
                                f"numbers of train rows, e.g. 16,64,256 (got {part!r})")
        sizes.append(int(part))
    if not sizes:
        raise TunewiseError("--learning-curve needs at least one size, e.g. 16,64,256")
    if len(set(sizes)) != len(sizes):
        raise TunewiseError(f"--learning-curve {text!r}: a size is listed twice")
    return sorted(sizes)


def check_plan(plan) -> None:
    """Bad sweep flags stop before any data is read or any run folder is made (bench.runner
    calls this once, before bench.plan.prepare_run). Strategy names are not checked here:
    prepare_run's check_strategy_names is the one place that does, so an unknown name is left
    to its message."""
    from strategies import registry

    if plan.tune < 0:
        raise TunewiseError(f"--tune {plan.tune}: the number of trials must be at least 1")
    if any(size < 1 for size in plan.learning_curve):
        raise TunewiseError("--learning-curve sizes must be positive numbers of train rows")
    if not (plan.tune or plan.more_data) or "all" in plan.strategies:
        return  # with "all", the trainable ones among them are tuned / trained together
    names = list(plan.strategies)
    if not all(registry.is_known(name) for name in names):
        return
    if not any(_spec(name).trainable for name in names):
        flag = "--tune" if plan.tune else "multi-task training (--data given twice)"
        raise TunewiseError(
            f"{flag} needs a trainable candidate, and {', '.join(names)} "
            f"{'is' if len(names) == 1 else 'are'} not: they adapt no weights. Trainable ones: "
            + ", ".join(n for n in registry.names() if _trainable(n)))


def _trainable(name: str) -> bool:
    from strategies import registry

    try:
        return registry.get(name).trainable
    except ImportError:
        return False


def _spec(name: str):
    from bench.plan import strategy_spec as runner_spec

    return runner_spec(name)


def _variant_job(job, variant: str, **changes):
    """The same candidate under another file name (its own log, work folder, predictions)."""
    run_dir = Path(job.run_dir)
    return dataclasses.replace(job, variant=variant,
                               work_dir=str(journal.work_dir(run_dir, variant)),
                               log_path=str(journal.log_path(run_dir, variant)), **changes)


def _configured(job, spec, params: dict[str, Any]):
    """The job with `params` as config overrides (the child rebuilds its config from them)."""
    overrides = {**job.overrides, **params}
    config = spec.make_config(job.preset, overrides)
    return dataclasses.replace(job, overrides=overrides, config=dataclasses.asdict(config))


# ------------------------------------------------------------------------------- expanding jobs


def expand_jobs(plan, run_dir: Path, jobs: list) -> list:
    """The run's jobs plus the learning-curve points and the multi-task runs; tuning happens
    in SweepExecutor (each trial depends on the ones before). The plan was checked by
    check_plan before the data was read."""
    out = list(jobs)
    if plan.tune and jobs and not any(_spec(j.strategy).trainable for j in jobs):
        raise TunewiseError("--tune: none of the selected candidates is trainable")
    if plan.learning_curve:
        out += learning_curve_jobs(plan, run_dir, jobs)
    if plan.more_data:
        out = multitask_jobs(plan, run_dir, out)
    return out


def nested_subsets(train_rows: int, labels: list[str] | None, sizes: list[int],
                   seed: int) -> dict[int, list[int]]:
    """Train positions for each size: stratified by label where there are labels, seeded
    (bench.data's train cap, the same sampling as --max-train-rows), and nested: each smaller
    subset is drawn from the next larger one, so a curve adds rows to the same examples rather
    than drawing a fresh sample at every size."""
    from bench.data import cap_train

    class _Quiet:  # cap_train notes what it did in the data profile; nothing to note here
        def note(self, text: str) -> None:
            pass

    pool = list(range(train_rows))
    subsets: dict[int, list[int]] = {}
    for size in sorted(sizes, reverse=True):
        pool = sorted(cap_train(pool, labels, size, seed, _Quiet()))
        subsets[size] = pool
    return subsets


def learning_curve_jobs(plan, run_dir: Path, jobs: list) -> list:
    split = journal.read_json(run_dir / journal.SPLIT)
    train = split["train"]
    labels = [str(r["label"]) for r in train] if split["task"] == "classification" else None
    sizes = [s for s in plan.learning_curve if s < len(train)]
    if not sizes:
        raise TunewiseError(f"--learning-curve {','.join(map(str, plan.learning_curve))}: every "
                            f"size is at least the train split's {len(train)} rows; the full "
                            "run already measures that point — choose smaller sizes")
    positions = nested_subsets(len(train), labels, sizes, plan.seed)
    out = []
    for job in jobs:
        for size in sizes:
            info = {"learning_curve": {"train_rows": size, "of_train_rows": len(train),
                                       "nested": True, "stratified": labels is not None,
                                       "subset_seed": plan.seed},
                    "train_rows": size}
            out.append(_variant_job(job, f"{job.strategy}@n{size}",
                                    train_subset=positions[size], extra_info=info))
    return out


# ------------------------------------------------------------------------------- multi-task


def dataset_name(path: str) -> str:
    """A short tag for a dataset: its folder or file name without extension."""
    p = Path(path.rstrip("/"))
    name = p.name if p.is_dir() else p.stem
    if name in ("train", "data") and p.parent.name:
        name = p.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "data"


def _tagged(rows: list[dict], task: str, name: str) -> list[dict]:
    key = TAG_FIELD[task]
    return [{**row, key: f"[{name}] {row[key]}"} for row in rows]


def mix_splits(named: list[tuple[str, dict]]) -> tuple[dict, list[dict]]:
    """One split from several of the same task kind: train, validation and test concatenated
    with task-tagged prompts; returns it and where each dataset's test rows lie."""
    task = named[0][1]["task"]
    mixed = {"task": task, "train": [], "validation": [], "test": [], "labels": [],
             "label_names": {}, "corpus": None, "instruction": None}
    parts = []
    for name, split in named:
        for part in ("train", "validation", "test"):
            rows = _tagged(split[part], task, name)
            if part == "test":
                parts.append({"name": name, "start": len(mixed["test"]),
                              "end": len(mixed["test"]) + len(rows),
                              "labels": list(split.get("labels") or [])})
            mixed[part].extend(rows)
        for label in split.get("labels") or []:
            if label not in mixed["labels"]:
                mixed["labels"].append(label)
        for label, text in (split.get("label_names") or {}).items():
            mixed["label_names"].setdefault(label, text)
    instructions = {split.get("instruction") for _, split in named}
    if len(instructions) == 1:  # one shared description is kept; different ones: the default
        mixed["instruction"] = instructions.pop()
    return mixed, parts


def _load_more_data(plan, task: str) -> list[tuple[str, dict]]:
    from bench.data import load_task_data

    loaded = []
    for path in plan.more_data:
        data = load_task_data(path, task=plan.task or task, columns=plan.columns or None,
                              seed=plan.seed, test_size=plan.test_size,
                              val_size=plan.val_size, max_rows=plan.max_train_rows,
                              model_name=plan.model)
        if data.split.task != task:
            raise TunewiseError(f"multi-task: {path} is a {data.split.task} dataset but "
                                f"{plan.data} is {task}; all datasets must be one task kind")
        if task not in TAG_FIELD:
            raise TunewiseError(f"multi-task training supports classification, generation "
                                f"and qa datasets, not {task}")
        loaded.append((dataset_name(path), dataclasses.asdict(data.split)))
    return loaded


def multitask_jobs(plan, run_dir: Path, jobs: list) -> list:
    split = journal.read_json(run_dir / journal.SPLIT)
    primary = dataset_name(plan.data)
    named = [(primary, split)] + _load_more_data(plan, split["task"])
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        names = [f"{name}{i}" for i, name in enumerate(names, start=1)]
        named = [(new, s) for new, (_, s) in zip(names, named)]
    for name, single in named[1:]:
        journal.write_json_atomic(run_dir / f"split-{name}.json", single)
    mixed, parts = mix_splits(named)
    journal.write_json_atomic(run_dir / MULTITASK_SPLIT, mixed)

    out = []
    base_jobs = [j for j in jobs if j.variant is None]
    trainable = [j for j in base_jobs if _spec(j.strategy).trainable]
    if not trainable:
        raise TunewiseError("multi-task training (--data given twice) needs a trainable "
                            "candidate among --strategies")
    for job in jobs:
        if job.variant is None and job in trainable:
            job = dataclasses.replace(job, extra_info={**job.extra_info, "multitask": {
                "datasets": names, "trained_on": [names[0]], "scored_on": names[0],
                "mode": "single-task"}})
        out.append(job)
    for job in trainable:
        for name, _ in named[1:]:
            out.append(_variant_job(job, f"{job.strategy}@{name}",
                                    split_path=str(run_dir / f"split-{name}.json"),
                                    extra_info={"multitask": {
                                        "datasets": names, "trained_on": [name],
                                        "scored_on": name, "mode": "single-task"}}))
        out.append(_variant_job(job, f"{job.strategy}@multitask",
                                split_path=str(run_dir / MULTITASK_SPLIT),
                                extra_info={"multitask": {
                                    "datasets": names, "trained_on": names,
                                    "mode": "multi-task", "parts": parts}}))
    return out


def split_multitask_record(record: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The multi-task job's record (scored on all test rows at once) -> one record per
    dataset, re-scored on that dataset's rows from the predictions file. Time, memory and cost
    are the one joint training run's, the same in each."""
    from bench.metrics import score_seeds

    multitask = record["info"]["multitask"]
    parts = multitask["parts"]
    if record.get("status") != "ok" or not record.get("predictions"):
        return [_part_record(record, part, multitask) for part in parts]
    rows = journal.read_records(run_dir, record["predictions"])
    seeds = record.get("seeds") or [record.get("seed", 0)]
    out = []
    for part in parts:
        per_seed = [[r for r in rows if r.get("seed") == seed
                     and part["start"] <= r["index"] < part["end"]] for seed in seeds]
        references = [r["reference"] for r in per_seed[0]]
        scored = score_seeds(record["task"], [[r["prediction"] for r in rs] for rs in per_seed],
                             references, labels=part["labels"] or None,
                             seed=record.get("seed", 0))
        sub = _part_record(record, part, multitask)
        sub["metrics"] = {k: round(v, 6) for k, v in scored.metrics.items()}
        sub["metrics_ci"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in scored.ci.items()}
        if scored.confusion is not None:
            sub["confusion_matrix"] = scored.confusion
        sub["samples"] = [{"input": r["input"], "prediction": r["prediction"],
                           "reference": r["reference"], **scored.row_scores[i]}
                          for i, r in enumerate(per_seed[0][:5])]
        out.append(sub)
    return out


def _part_record(record: dict, part: dict, multitask: dict) -> dict:
    sub = copy.deepcopy(record)
    info = {k: v for k, v in multitask.items() if k != "parts"}
    sub["info"]["multitask"] = {**info, "scored_on": part["name"],
                                "test_rows": part["end"] - part["start"],
                                "note": "one adapter trained on every dataset; time, memory "
                                        "and cost are that joint run's"}
    return sub


# ------------------------------------------------------------------------------- the executor


class SweepExecutor:
    """Wraps any executor (local, Ray): plain jobs (learning-curve points, multi-task runs)
    go to it as one batch; tuned candidates run their trials one after another (each trial
    is chosen from the ones before), every trial and refit through the same executor."""

    def __init__(self, base, tune: int = 0) -> None:
        self.base = base
        self.tune = tune

    def _tuned(self, job) -> bool:
        return bool(self.tune) and job.variant is None and _spec(job.strategy).trainable

    def run(self, jobs: list, on_event, cancel) -> Iterator[dict[str, Any]]:
        plain = [job for job in jobs if not self._tuned(job)]
        for record in self.base.run(plain, on_event, cancel):
            if (record.get("info", {}).get("multitask", {}).get("parts")
                    and not record["info"].get("cancelled")):
                yield from split_multitask_record(record, Path(plain[0].run_dir))
            else:
                yield record
        for job in jobs:
            if self._tuned(job) and not cancel.is_set():
                yield self.tune_candidate(job, on_event, cancel)

    def _run_one(self, job, on_event, cancel) -> dict[str, Any]:
        for record in self.base.run([job], on_event, cancel):
            return record
        return {"status": "failed", "error": "cancelled before it started", "metrics": {},
                "time_s": {"total": 0.0}, "info": {"cancelled": True}}

    def tune_candidate(self, job, on_event, cancel) -> dict[str, Any]:
        """N trials on validation, then the best config refit on train and tested on test."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        spec = _spec(job.strategy)
        space = search_space(spec, fixed=job.overrides)
        metric = PRIMARY_METRIC[job.task]
        if not space:
            record = self._run_one(job, on_event, cancel)
            record["info"]["tuning"] = {"note": "every searchable option was fixed with --set; "
                                                "ran once with the given config"}
            return record
        direction = "maximize" if HIGHER_IS_BETTER.get(metric, True) else "minimize"
        study = optuna.create_study(direction=direction,
                                    sampler=optuna.samplers.TPESampler(seed=job.seed))
        distributions = optuna_distributions(space)
        trials: list[dict[str, Any]] = []
        for number in range(self.tune):
            if cancel.is_set():
                break
            trial = study.ask(distributions)
            trial_job = _variant_job(_configured(job, spec, trial.params),
                                     f"{job.strategy}@trial{number}", eval_split="validation")
            record = self._run_one(trial_job, on_event, cancel)
            if record["info"].get("cancelled"):
                return record  # the runner drops it and marks the run interrupted
            value = record["metrics"].get(metric) if record["status"] == "ok" else None
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            trials.append({"number": number, "params": dict(trial.params), "value": value,
                           "status": record["status"], "error": record.get("error"),
                           "time_s": record["time_s"]["total"]})
        tuning = {"n_trials": len(trials), "objective": f"{metric} on the validation split",
                  "sampler": f"optuna TPESampler(seed={job.seed})", "space": {
                      k: list(v[1:]) if v[0] == "log" else v[1] for k, v in space.items()},
                  "space_kinds": {k: v[0] for k, v in space.items()}}
        completed = [t for t in trials if t["value"] is not None]
        if not completed:
            from bench.records import base_record

            record = base_record(job, "failed", "every tuning trial failed; first error: "
                                  + str(trials[0]["error"] if trials else "no trial ran"))
            record["info"].update({"trials": trials, "tuning": tuning})
            return record
        best = study.best_trial
        tuning.update({"best_trial": best.number, "best_params": dict(best.params),
                       "best_validation_value": best.value})
        refit = _configured(job, spec, best.params)
        refit = dataclasses.replace(refit, extra_info={**job.extra_info, "trials": trials,
                                                       "tuning": tuning})
        return self._run_one(refit, on_event, cancel)


# ------------------------------------------------------------------------------- the crossover

# The two sides of the crossover, by family (from the strategy catalogue): the frozen LLM told
# what to do in its prompt or helped by retrieval, against the candidates trained on labels
# (the preference family trains on pairs, not on the learning curve's rows).
PROMPTING_FAMILIES = catalogue.families_where(
    lambda e: not e.trainable and bool(e.traits & {"prompting", "retrieval"}))
TRAINED_FAMILIES = catalogue.families_where(
    lambda e: e.trainable and not e.tasks <= catalogue.PREFERENCE)


def curve_points(records: list[dict]) -> dict[str, dict[int, float]]:
    """{strategy: {train_rows: primary metric}} from the learning-curve records."""
    points: dict[str, dict[int, float]] = {}
    for record in records:
        info = record.get("info") or {}
        if not isinstance(info.get("learning_curve"), dict) or record.get("status") != "ok":
            continue
        value = record["metrics"].get(record["primary_metric"])
        if value is not None:
            points.setdefault(record["strategy"], {})[int(info["train_rows"])] = value
    return points


def is_curve_point(record: dict) -> bool:
    return isinstance((record.get("info") or {}).get("learning_curve"), dict)


def curve_lines(records: list[dict]) -> list[str]:
    """One terminal line per strategy: its metric at each train size, then on the full split."""
    points = curve_points(records)
    full = {r["strategy"]: r["metrics"].get(r["primary_metric"]) for r in records
            if not is_curve_point(r) and r.get("status") == "ok"
            and not (r.get("info") or {}).get("multitask")}
    lines = []
    for strategy, by_size in points.items():
        steps = [f"{n} rows {v:.3f}" for n, v in sorted(by_size.items())]
        if full.get(strategy) is not None:
            steps.append(f"all {full[strategy]:.3f}")
        lines.append(f"  {strategy}: " + " → ".join(steps))
    return lines


def crossover_message(records: list[dict]) -> str | None:
    """"lora overtakes few-shot from 64 train rows" — the number a user needs to decide —
    or None when the curve lacks a prompting or a trained candidate."""
    points = curve_points(records)
    family = {r["strategy"]: r.get("family") for r in records}
    prompting = {s: p for s, p in points.items() if family.get(s) in PROMPTING_FAMILIES}
    trained = {s: p for s, p in points.items() if family.get(s) in TRAINED_FAMILIES}
    if not prompting or not trained:
        return None
    sizes = sorted({n for p in points.values() for n in p})
    first_win = None
    for size in sizes:
        best_prompt = max(((p[size], s) for s, p in prompting.items() if size in p), default=None)
        best_trained = max(((p[size], s) for s, p in trained.items() if size in p), default=None)
        if best_prompt is None or best_trained is None:
            continue
        if best_trained[0] > best_prompt[0]:
            first_win = (size, best_trained, best_prompt)
            break
    if first_win is None:
        return (f"learning curve: no fine-tuned candidate beat prompting at any measured size "
                f"({', '.join(map(str, sizes))} train rows)")
    size, (tv, ts), (pv, ps) = first_win
    ci = {(r["strategy"], int(r["info"]["train_rows"])): r.get("metrics_ci", {}).get(
        r["primary_metric"]) for r in records if is_curve_point(r)}
    trained_ci, prompt_ci = ci.get((ts, size)), ci.get((ps, size))
    if trained_ci and prompt_ci and trained_ci[0] <= prompt_ci[1]:
        caveat = "but their 95% intervals overlap: not shown to differ at this size"
    else:
        caveat = "95% intervals apart" if trained_ci and prompt_ci else "no intervals recorded"
    return (f"learning curve: {ts} overtakes {ps} from {size} train rows "
            f"({tv:.3f} vs {pv:.3f}; {caveat})")
