"""`adalora`: LoRA whose rank budget is reallocated during training by importance (Zhang et al.
2023). The rank schedule needs the total step count, and peft's `update_and_allocate` must run
after every optimizer step (while the gradients it scores are still there): a Trainer callback
does it. AdaLoRA's orthogonality regulariser is added by peft only to a loss the model computes
itself; TRL computes the SFT loss outside the model, so it is not applied here."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)


@dataclass
class AdaLoraSettings(TrainingConfig):
    learning_rate: float = option(5e-3, help="peak learning rate; higher than LoRA's since "
                                  "its singular values start at zero")
    init_r: int = option(12, help="starting rank of every adapter")
    target_r: int = option(8, help="average rank kept after pruning")
    alpha: int = option(16, help="scaling numerator")
    target_modules: list = option(["all-linear"], help="module names to adapt")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.target_r <= self.init_r:
            raise ValueError(f"need 1 <= target_r <= init_r, got {self.target_r}, {self.init_r}")


def build(model, config: AdaLoraSettings, plan: TrainPlan):
    from peft import AdaLoraConfig

    total = max(plan.total_steps, 3)
    # Warm up at full rank for the first 10%, prune in the middle, fix the ranks for the last 20%.
    tinit, tfinal = max(0, total // 10), max(1, total // 5)
    if tinit + tfinal >= total:
        tinit, tfinal = 0, 1
    targets = config.target_modules
    peft_config = peft_config_for(
        AdaLoraConfig, "adalora", plan.peft_args, init_r=config.init_r, target_r=config.target_r,
        lora_alpha=config.alpha, tinit=tinit, tfinal=tfinal, deltaT=1, total_step=total,
        target_modules="all-linear" if targets == ["all-linear"] else list(targets))
    return (apply_peft(model, peft_config, "AdaLoRA"),
            {"init_r": peft_config.init_r, "target_r": peft_config.target_r,
             "total_step": peft_config.total_step, "tinit": peft_config.tinit,
             "tfinal": peft_config.tfinal})


def rank_allocation_callback(model):
    from transformers import TrainerCallback

    class AllocateRanks(TrainerCallback):
        def on_optimizer_step(self, args, state, control, **kwargs):
            model.base_model.update_and_allocate(state.global_step)

    return [AllocateRanks()]


def run(ctx: RunContext, config: AdaLoraSettings):
    return run_finetune(ctx, config, build, strategy="adalora", callbacks=rank_allocation_callback)


SPEC = StrategySpec(
    name="adalora", family="peft", tasks=LM_TASKS, config_cls=AdaLoraSettings, run=run,
    description="AdaLoRA: LoRA with importance-based rank allocation (peft)", trainable=True,
)
