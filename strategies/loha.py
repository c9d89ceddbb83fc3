"""`loha`: low-rank Hadamard-product adapters (LyCORIS LoHa): two low-rank factor pairs combined
element-wise, a higher effective rank than LoRA for the same parameter count."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)


@dataclass
class LoHaSettings(TrainingConfig):
    learning_rate: float = option(2e-3, help="peak learning rate")
    r: int = option(8, help="rank of each factor pair; higher adds capacity and memory")
    alpha: int = option(8, help="scaling numerator (update scaled by alpha / r)")
    target_modules: list = option(["q_proj", "k_proj", "v_proj", "o_proj"],
                                  help="module names to adapt (comma-separated on the CLI)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r < 1 or self.alpha <= 0:
            raise ValueError(f"r must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")


def build(model, config: LoHaSettings, plan: TrainPlan):
    from peft import LoHaConfig

    peft_config = peft_config_for(LoHaConfig, "loha", plan.peft_args, r=config.r, alpha=config.alpha,
                                  target_modules=list(config.target_modules))
    return (apply_peft(model, peft_config, "LoHa"),
            {"r": peft_config.r, "alpha": peft_config.alpha,
             "target_modules": peft_config.target_modules if isinstance(peft_config.target_modules, str)
             else sorted(peft_config.target_modules)})


def run(ctx: RunContext, config: LoHaSettings):
    return run_finetune(ctx, config, build, strategy="loha")


SPEC = StrategySpec(
    name="loha", family="peft", tasks=LM_TASKS, config_cls=LoHaSettings, run=run,
    description="LoHa: low-rank Hadamard-product adapters (peft)", trainable=True,
)
