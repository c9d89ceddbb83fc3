"""`full`: every weight of the base LM trained (the reference the PEFT methods are held to).

Needs the most memory: AdamW keeps two fp32 moments per weight (~16 bytes a parameter with the
weights and gradients), and the artifact is the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import LM_TASKS, TrainingConfig, TrainPlan, run_finetune


@dataclass
class FullSettings(TrainingConfig):
    learning_rate: float = option(5e-5, help="peak learning rate; full fine-tuning wants a small "
                                  "one (PEFT methods use ~10x larger)")
    weight_decay: float = option(0.01, help="AdamW weight decay")


def build(model, config: FullSettings, plan: TrainPlan):
    for p in model.parameters():
        p.requires_grad_(True)
    return model, {"trained": "all weights"}


def run(ctx: RunContext, config: FullSettings):
    return run_finetune(ctx, config, build, strategy="full")


SPEC = StrategySpec(
    name="full", family="fine-tuning", tasks=LM_TASKS, config_cls=FullSettings, run=run,
    description="full fine-tuning: every weight of the LM trained", trainable=True,
)
