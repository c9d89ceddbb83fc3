"""`peft:<type>`: any peft method by its type name, with keyword arguments as JSON.

    tunewise bench --strategies peft:vera --peft-args '{"r": 256}'
    tunewise bench --strategies peft:ln-tuning

The type is peft's own name (`PeftType`), case-insensitive, `_` or `-`. The JSON arguments go
to that method's config class (`task_type` is set to CAUSAL_LM); many methods find their target
modules for known architectures themselves, others need `target_modules` in the JSON. An unknown
type, or arguments the config rejects, give a StrategyError listing what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategyError, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)

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


def spec_for(peft_type: str) -> StrategySpec:
    """The StrategySpec of `peft:<peft_type>`; unknown types raise StrategyError."""
    kind, config_cls = _config_class(peft_type)
    if kind in UNSUPPORTED:
        raise StrategyError(f"peft:{kind} is not supported as a candidate: {UNSUPPORTED[kind]}")
    name = f"peft:{kind.replace('_', '-')}"

    def build(model, cfg: TrainingConfig, plan: TrainPlan):
        peft_config = peft_config_for(config_cls, name, plan.peft_args)  # all from --peft-args
        return apply_peft(model, peft_config, name), {"peft_type": kind, "peft_args": plan.peft_args}

    def run(ctx: RunContext, config: PeftGenericSettings):
        return run_finetune(ctx, config, build, strategy=name)

    return StrategySpec(name=name, family="peft", tasks=LM_TASKS, config_cls=PeftGenericSettings,
                        run=run, description=f"peft method {kind} with --peft-args",
                        trainable=True)
