"""A once-per-run stage provider for the harness tests (bench.stages), and candidates that use it.

The stage sleeps STAGE_SECONDS in its adapt phase and leaves built.json (with its process id);
`fake-staged` candidates read it from the folder the harness hands them. Registered at test time
by tests/test_stages.py, which points bench.stages.PROVIDERS at this module.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from strategies.base import RunContext, StrategyOutput, StrategySpec, option

STAGE_NAME = "fake-shared"
STAGE_TARGET = "fake_stage:STAGE"
OPTION = "fake_shared"
STAGE_SECONDS = 0.6
BUILT = "built.json"
TASKS = frozenset({"classification", "generation", "qa", "preference"})


@dataclass
class StageConfig:
    steps: int = option(3, help="what the candidates ask the stage for; negative: it crashes")


def stage_overrides(task: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    return {"steps": config["stage_steps"]} if config.get("wants_stage") else None


def option_for(folder, stage: str, seed: int) -> dict[str, Any]:
    return {"folder": str(folder), "stage": stage}


def stage_finished(folder) -> bool:
    return (Path(folder) / BUILT).exists()


def run_stage(ctx: RunContext, config: StageConfig) -> StrategyOutput:
    ctx.phase("load")
    ctx.phase("adapt")
    if config.steps < 0:
        raise RuntimeError("deliberate crash inside the stage")
    time.sleep(STAGE_SECONDS)
    ctx.phase("save")
    (ctx.work_dir / BUILT).write_text(json.dumps({"steps": config.steps, "pid": os.getpid()}))
    return StrategyOutput(predictions=[], artifact_path=BUILT,
                          info={"stage": "a fake model the candidates share"})


STAGE = StrategySpec(STAGE_NAME, "baseline", TASKS, StageConfig, run_stage)


@dataclass
class StagedConfig:
    wants_stage: bool = option(True, help="use the run's fake-shared stage")
    stage_steps: int = option(3, help="what to ask the stage for")


def run_staged(ctx: RunContext, config: StagedConfig) -> StrategyOutput:
    """Reads what the stage built; predicts the first label."""
    ctx.phase("load")
    given = ctx.options.get(OPTION)
    built = None
    if given and stage_finished(given["folder"]):
        built = json.loads((Path(given["folder"]) / BUILT).read_text())
    ctx.phase("predict")
    return StrategyOutput(predictions=[ctx.data.labels[0] for _ in ctx.data.test],
                          info={"stage_seen": built, "stage_name": given and given["stage"]})


SPEC_STAGED = StrategySpec("fake-staged", "baseline", TASKS, StagedConfig, run_staged)
SPEC_STAGED_2 = StrategySpec("fake-staged-2", "baseline", TASKS, StagedConfig, run_staged)
SPECS = {"fake-staged": "SPEC_STAGED", "fake-staged-2": "SPEC_STAGED_2"}


def register_staged() -> None:
    from strategies import catalogue, registry

    for name, attr in SPECS.items():
        if name not in catalogue.names():
            registry.register(name, f"fake_stage:{attr}", "baseline")
