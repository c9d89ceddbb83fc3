"""`dora`: weight-decomposed LoRA (Liu et al. 2024) — LoRA with peft's `use_dora`: the update is
split into a magnitude vector and a low-rank direction. Same settings as `lora`."""

from __future__ import annotations

from strategies.base import RunContext, StrategySpec
from strategies.lora import LoraSettings, wrap_with_lora
from strategies.training import LM_TASKS, TrainPlan, run_finetune


def build(model, config: LoraSettings, plan: TrainPlan):
    return wrap_with_lora(model, config, use_dora=True, plan=plan, method="dora")


def run(ctx: RunContext, config: LoraSettings):
    return run_finetune(ctx, config, build, strategy="dora")


SPEC = StrategySpec(
    name="dora", family="peft", tasks=LM_TASKS, config_cls=LoraSettings, run=run,
    description="DoRA: LoRA with a separate magnitude vector (peft use_dora)", trainable=True,
)
