"""`peft:<type>`: any peft method by its type name, with keyword arguments as JSON.

    tunewise bench --strategies peft:vera --peft-args '{"r": 256}'
    tunewise bench --strategies peft:ln-tuning

The type is peft's own name (`PeftType`), case-insensitive, `_` or `-`. The JSON arguments go
to that method's config class (`task_type` is set to CAUSAL_LM); many methods find their target
modules for known architectures themselves, others need `target_modules` in the JSON. An unknown
type, or arguments the config rejects, give a StrategyError listing what is accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from strategies.base import RunContext, StrategyError, StrategySpec, option
from strategies.training import LM_TASKS, TrainingConfig, TrainPlan, apply_peft, run_finetune

# Types that cannot run as a single-task causal-LM candidate here: they need extra inputs
# (task ids, mixtures of trained adapters, per-token prompts) that the generic recipe lacks.
UNSUPPORTED = {
    "multitask_prompt_tuning": "needs a task id per row (multi-task training)",
    "xlora": "mixes several already-trained LoRA adapters",
    "poly": "needs a task id per row",
    "cpt": "needs per-token prompt type masks",
}


@dataclass
class PeftGenericSettings(TrainingConfig):
    learning_rate: float = option(1e-3, help="peak learning rate (tune it for the method)")


def available_types() -> list[str]:
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    return sorted(str(getattr(t, "value", t)).lower().replace("_", "-")
                  for t in PEFT_TYPE_TO_CONFIG_MAPPING)


def _config_class(peft_type: str):
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    wanted = peft_type.strip().lower().replace("-", "_")
    for key, cls in PEFT_TYPE_TO_CONFIG_MAPPING.items():
        if str(getattr(key, "value", key)).lower() == wanted:
            return wanted, cls
    import difflib

    close = difflib.get_close_matches(wanted.replace("_", "-"), available_types(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise StrategyError(f"unknown peft type {peft_type!r}.{hint} "
                        f"Available: {', '.join(available_types())}")


def peft_args(ctx: RunContext) -> dict[str, Any]:
    raw = ctx.options.get("peft_args") or {}
    if isinstance(raw, dict):
        return dict(raw)
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"--peft-args is not valid JSON ({exc.msg} at char {exc.pos}): "
                            f"{raw!r}") from None
    if not isinstance(parsed, dict):
        raise StrategyError(f"--peft-args must be a JSON object of keyword arguments, got {raw!r}")
    return parsed


def make_peft_config(config_cls, kind: str, kwargs: dict[str, Any]):
    from peft import TaskType

    try:
        return config_cls(task_type=TaskType.CAUSAL_LM, **kwargs)
    except TypeError as exc:
        import dataclasses

        accepted = sorted(f.name for f in dataclasses.fields(config_cls)
                          if f.name not in ("peft_type", "task_type", "auto_mapping"))
        raise StrategyError(f"peft:{kind}: {exc}. Accepted arguments: {', '.join(accepted)}") from None
    except ValueError as exc:
        raise StrategyError(f"peft:{kind}: {exc}") from None


def spec_for(peft_type: str) -> StrategySpec:
    """The StrategySpec of `peft:<peft_type>`; unknown types raise StrategyError."""
    kind, config_cls = _config_class(peft_type)
    if kind in UNSUPPORTED:
        raise StrategyError(f"peft:{kind} is not supported as a candidate: {UNSUPPORTED[kind]}")
    name = f"peft:{kind.replace('_', '-')}"

    def run(ctx: RunContext, config: PeftGenericSettings):
        kwargs = peft_args(ctx)

        def build(model, cfg: TrainingConfig, plan: TrainPlan):
            peft_config = make_peft_config(config_cls, kind, kwargs)
            return apply_peft(model, peft_config, name), {"peft_type": kind, "peft_args": kwargs}

        return run_finetune(ctx, config, build, strategy=name)

    return StrategySpec(name=name, family="peft", tasks=LM_TASKS, config_cls=PeftGenericSettings,
                        run=run, description=f"peft method {kind} with --peft-args",
                        trainable=True)
