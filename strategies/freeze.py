"""`freeze`: the top N transformer blocks and the head trained, everything below frozen.

Freezing the lower layers keeps the general features they learned in pre-training and reduces
overfitting on small data, at a fraction of full fine-tuning's optimizer memory. Models that tie
the LM head to the input embeddings (SmolLM2 does) train the embeddings too when the head is
trained: the tensor is shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategyError, StrategySpec, option
from strategies.training import LM_TASKS, TrainingConfig, TrainPlan, run_finetune


@dataclass
class FreezeSettings(TrainingConfig):
    learning_rate: float = option(1e-4, help="peak learning rate")
    trainable_blocks: int = option(2, help="transformer blocks trained, counted from the top; "
                                   "more adapts more and costs more memory")
    train_head: bool = option(True, help="also train the LM head (tied to the embeddings in "
                              "SmolLM2: adds the whole vocabulary matrix)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.trainable_blocks < 1:
            raise ValueError(f"trainable_blocks must be >= 1, got {self.trainable_blocks}")


def transformer_blocks(model):
    """The model's stack of blocks: its largest ModuleList (model.layers in Llama, h in GPT-2)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise StrategyError(f"freeze: cannot find the transformer blocks of {type(model).__name__}")
    return max(lists, key=len)


def build(model, config: FreezeSettings, plan: TrainPlan):
    blocks = transformer_blocks(model)
    if config.trainable_blocks > len(blocks):
        raise StrategyError(f"freeze: trainable_blocks={config.trainable_blocks} but the model "
                            f"has {len(blocks)} blocks")
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(blocks)[-config.trainable_blocks:]:
        for p in block.parameters():
            p.requires_grad_(True)
    # The final norm sits between the top block and the head: it belongs to the trained part.
    inner = getattr(model, "model", None)
    final_norm = getattr(inner, "norm", None) if inner is not None else None
    if final_norm is not None:
        for p in final_norm.parameters():
            p.requires_grad_(True)
    if config.train_head:
        for p in model.get_output_embeddings().parameters():
            p.requires_grad_(True)
    return model, {"trainable_blocks": config.trainable_blocks, "blocks": len(blocks),
                   "train_head": config.train_head}


def run(ctx: RunContext, config: FreezeSettings):
    return run_finetune(ctx, config, build, strategy="freeze")


SPEC = StrategySpec(
    name="freeze", family="fine-tuning", tasks=LM_TASKS, config_cls=FreezeSettings, run=run,
    description="top N blocks (and optionally the head) trained, the rest frozen",
    trainable=True,
)
