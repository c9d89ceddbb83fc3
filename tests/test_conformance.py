"""Every registered strategy, on every task kind it declares, on tiny random models.

A strategy joins this matrix by being registered: nothing here names one. A registry entry
whose module file does not exist yet is skipped (another engineer's work in progress); an
entry whose module exists but fails is a failure.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from strategies import registry
from strategies.base import (PRESETS, StrategyOutput, StrategySkipped, StrategySpec,
                             config_help)
from tests.conftest import make_context, tiny_split

# Keep the matrix fast on tiny models: short answers, one pass of training.
FAST_OVERRIDES = {"max_new_tokens": 4, "epochs": 1, "min_steps": 0}
PHASES = {"load", "adapt", "predict", "save"}


def _module_file_exists(name: str) -> bool:
    module = registry.target_of(name).split(":")[0]
    return importlib.util.find_spec(module) is not None


def _spec_or_skip(name: str) -> StrategySpec:
    if not _module_file_exists(name):
        pytest.skip(f"not implemented yet: {registry.target_of(name)}")
    return registry.get(name)


def _cases():
    cases = []
    for name in registry.names():
        if not _module_file_exists(name):
            cases.append(pytest.param(name, "classification", id=f"{name}-missing"))
            continue
        for task in sorted(registry.get(name).tasks):
            cases.append(pytest.param(name, task, id=f"{name}-{task}"))
    return cases


def _fast_config(spec: StrategySpec):
    fields = {f.name for f in dataclasses.fields(spec.config_cls)}
    overrides = {k: v for k, v in FAST_OVERRIDES.items() if k in fields}
    return spec.make_config("quick", overrides)


@pytest.mark.parametrize("name", registry.names())
def test_spec_is_well_formed(name):
    spec = _spec_or_skip(name)
    assert spec.name == name
    assert spec.family == registry.family_of(name)
    assert spec.tasks, "a strategy must support at least one task kind"
    for preset in PRESETS:
        spec.make_config(preset)
    for row in config_help(spec.config_cls):
        assert row["help"], f"{name}: option {row['name']} has no help text"


@pytest.mark.parametrize("name,task", _cases())
def test_strategy_runs_and_returns_a_valid_output(name, task, tmp_path):
    spec = _spec_or_skip(name)
    split = tiny_split(task)
    phases: list[str] = []
    ctx = make_context(task, tmp_path / name, split=split)
    ctx.on_phase = phases.append
    try:
        output = spec.run(ctx, _fast_config(spec))
    except StrategySkipped as skipped:
        assert str(skipped), "a skipped strategy must say why"
        pytest.skip(f"{name} skipped itself: {skipped}")

    assert isinstance(output, StrategyOutput)
    assert len(output.predictions) == len(split.test), "one prediction per test row"
    _check_prediction_types(task, output.predictions, split)
    _check_counts(spec, output)
    assert "predict" in phases and set(phases) <= PHASES, phases
    if output.artifact_path is not None:
        artifact = Path(output.artifact_path)
        assert artifact.exists(), f"artifact {artifact} was returned but not written"
        assert ctx.work_dir.resolve() in artifact.resolve().parents
    assert isinstance(output.info, dict) and isinstance(output.extra_metrics, dict)


def _check_prediction_types(task, predictions, split):
    if task == "classification":
        assert all(p in split.labels for p in predictions), predictions
    elif task in ("generation", "qa"):
        assert all(isinstance(p, str) for p in predictions), predictions
    else:
        from strategies.base import PAIR_LOGP_FIELDS, PAIR_REWARD_FIELDS

        for p in predictions:  # both responses of the (blinded) pair scored: logps or rewards
            assert isinstance(p, dict)
            keys = PAIR_LOGP_FIELDS if PAIR_LOGP_FIELDS[0] in p else PAIR_REWARD_FIELDS
            assert all(math.isfinite(p[key]) for key in keys), p


def _check_counts(spec, output):
    assert 0 <= output.trainable_params <= output.total_params
    if spec.family != "baseline":
        assert output.total_params > 0, "a model-based strategy must count its parameters"
    if spec.trainable:
        assert output.trainable_params > 0 and output.train_tokens > 0
    for count in (output.train_tokens, output.predict_tokens):
        assert isinstance(count, int) and count >= 0
    assert output.mean_prompt_tokens >= 0
