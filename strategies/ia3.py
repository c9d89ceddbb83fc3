"""`ia3`: learned rescaling vectors on keys, values and the feed-forward (Liu et al. 2022,
T-Few's method): the fewest trainable parameters of the adapter methods."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)


@dataclass
class IA3Settings(TrainingConfig):
    learning_rate: float = option(5e-3, help="peak learning rate; IA3 vectors need a large one")


def build(model, config: IA3Settings, plan: TrainPlan):
    from peft import IA3Config

    # peft's per-architecture defaults: keys, values and the feed-forward's down projection.
    peft_config = peft_config_for(IA3Config, "ia3", plan.peft_args)
    peft_model = apply_peft(model, peft_config, "IA3")
    targets = peft_model.peft_config["default"].target_modules
    return peft_model, {"target_modules": sorted({str(t).rsplit(".", 1)[-1] for t in targets})}


def run(ctx: RunContext, config: IA3Settings):
    return run_finetune(ctx, config, build, strategy="ia3")


SPEC = StrategySpec(
    name="ia3", family="peft", tasks=LM_TASKS, config_cls=IA3Settings, run=run,
    description="IA3: learned rescaling of keys, values and feed-forward (peft)", trainable=True,
)
