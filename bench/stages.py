"""Once-per-run stages: models the candidates share, built before them and measured on their own.

    stage_jobs, jobs = plan_stages(run_dir, jobs)     # which stages the jobs need, and links
    for record in run_stages(run_dir, stage_jobs, executor, on_event, cancel): ...

Some candidates need a model that is not theirs: the preference policies are judged for their
win rate by a referee (strategies.preference_judge: a reward model and the base model's
answers) that must be the same for every candidate of the run. Built inside the first candidate
that needs it, its minutes and memory would land on whichever candidate ran first and no cost
would be charged for it. Here it is a stage: a job of its own, run through the same executor
and child process as a candidate (bench.launch), with a record of its own (phases, peak memory,
time, cost; `kind: "stage"`) in stages.jsonl beside results.jsonl, shown in the report and
counted in the run's totals, and billed to no candidate. Each candidate gets the stage's folder
in its options and only loads from it.

A provider is a strategies module with STAGE (its StrategySpec), STAGE_NAME, STAGE_TARGET,
OPTION and `stage_overrides(task, candidate_config)` (None: this candidate needs no stage),
`option_for(folder, stage, seed)` and `stage_finished(folder)`. Candidates whose overrides and
data agree share one stage; a stage finished before a --resume is not built again.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import threading
from pathlib import Path
from typing import Any, Iterator

from bench import journal
from bench.events import EventHandler, StageFinished, emit
from bench.plan import CandidateJob

STAGES = "stages.jsonl"
PROVIDERS = ("strategies.preference_judge",)


def _providers():
    return [importlib.import_module(name) for name in PROVIDERS]


def _stage_job(run_dir: Path, job: CandidateJob, provider, name: str,
               overrides: dict[str, Any]) -> CandidateJob:
    """A job for the stage, on the data and machine of the first candidate that needs it, run
    once (the run's first seed) on the whole train split."""
    config = dataclasses.asdict(provider.STAGE.make_config(job.preset, overrides))
    return dataclasses.replace(
        job, strategy=name, target=provider.STAGE_TARGET, family=provider.STAGE.family,
        seeds=[job.seed], work_dir=str(journal.work_dir(run_dir, name)),
        log_path=str(journal.log_path(run_dir, name)), overrides=overrides, config=config,
        estimate=None, gpus=1, variant=None, eval_split="test", train_subset=None,
        budget_fraction=None, extra_info={"used_by": []}, kind="stage")


def _finished(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["strategy"]: r for r in journal.read_records(run_dir, STAGES)
            if r.get("status") == "ok"}


def plan_stages(run_dir: Path, jobs: list[CandidateJob]
                ) -> tuple[list[CandidateJob], list[CandidateJob]]:
    """The stages still to run for these jobs, and the jobs with each stage's folder in their
    options (the provider's OPTION)."""
    run_dir = Path(run_dir)
    stages: dict[str, CandidateJob] = {}  # by what makes a stage: provider, data, config
    linked: list[CandidateJob] = []
    for job in jobs:
        for provider in _providers():
            overrides = provider.stage_overrides(job.task, job.config)
            if overrides is None:
                continue
            key = json.dumps([provider.STAGE_NAME, job.split_path, overrides], sort_keys=True)
            if key not in stages:
                same = sum(s.target == provider.STAGE_TARGET for s in stages.values())
                name = provider.STAGE_NAME + (f"-{same + 1}" if same else "")
                stages[key] = _stage_job(run_dir, job, provider, name, overrides)
            stage = stages[key]
            stage.extra_info["used_by"].append(job.variant or job.strategy)
            job = dataclasses.replace(job, options={
                **job.options,
                provider.OPTION: provider.option_for(stage.work_dir, stage.strategy, stage.seed)})
        linked.append(job)
    finished = _finished(run_dir)
    pending = [stage for stage in stages.values()
               if not _reusable(finished.get(stage.strategy), stage)]
    return pending, linked


def _reusable(record: dict[str, Any] | None, stage: CandidateJob) -> bool:
    """A stage finished in an earlier session of this run, with the same config, whose folder
    is still complete."""
    if record is None or record.get("config") != stage.config:
        return False
    provider = next(p for p in _providers() if p.STAGE_TARGET == stage.target)
    return provider.stage_finished(stage.work_dir)


def run_stages(run_dir: Path, stage_jobs: list[CandidateJob], executor,
               on_event: EventHandler | None, cancel: threading.Event
               ) -> Iterator[dict[str, Any]]:
    """Run the stages (before any candidate), journal each record in stages.jsonl and yield
    it. A cancelled stage is not journalled: --resume builds it again."""
    if not stage_jobs:
        return
    for record in executor.run(stage_jobs, on_event, cancel):
        if record.get("info", {}).get("cancelled"):
            continue
        journal.append_record(Path(run_dir), record, STAGES)
        emit(on_event, StageFinished(record["strategy"], record))
        yield record


def read_stages(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's stage records, the latest per stage (a --resume may have rebuilt one)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in journal.read_records(Path(run_dir), STAGES):
        latest[str(record.get("strategy"))] = record
    return list(latest.values())
