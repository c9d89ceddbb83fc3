"""`prefix-tuning`: learned key/value prefixes at every layer (Li & Liang 2021); the model is
untouched. Comparable to fine-tuning with full data on GPT-2; weak at ~100 examples on large
decoders (LoRA paper, Table 16) — measured here rather than assumed."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)


@dataclass
class PrefixTuningSettings(TrainingConfig):
    learning_rate: float = option(1e-2, help="peak learning rate")
    num_virtual_tokens: int = option(20, help="prefix length per layer")
    prefix_projection: bool = option(False, help="reparametrise the prefix through an MLP "
                                     "(more stable, many more trainable parameters)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be >= 1, got {self.num_virtual_tokens}")


def build(model, config: PrefixTuningSettings, plan: TrainPlan):
    from peft import PrefixTuningConfig

    peft_config = peft_config_for(PrefixTuningConfig, "prefix-tuning", plan.peft_args,
                                  num_virtual_tokens=config.num_virtual_tokens,
                                  prefix_projection=config.prefix_projection)
    return (apply_peft(model, peft_config, "prefix tuning"),
            {"num_virtual_tokens": peft_config.num_virtual_tokens,
             "prefix_projection": peft_config.prefix_projection})


def run(ctx: RunContext, config: PrefixTuningSettings):
    return run_finetune(ctx, config, build, strategy="prefix-tuning")


SPEC = StrategySpec(
    name="prefix-tuning", family="peft", tasks=LM_TASKS, config_cls=PrefixTuningSettings,
    run=run, description="learned key/value prefixes at every layer (peft)", trainable=True,
)
