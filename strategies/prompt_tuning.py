"""`prompt-tuning`: learned soft-prompt vectors prepended to the input (Lester et al. 2021);
the model is untouched. Reaches full fine-tuning only at ~10B parameters: on small models
expect it to trail LoRA (EVIDENCE.md); it is here so that gap is measured, not assumed."""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategySpec, option
from strategies.training import (LM_TASKS, TrainingConfig, TrainPlan, apply_peft, peft_config_for,
                                 run_finetune)


@dataclass
class PromptTuningSettings(TrainingConfig):
    learning_rate: float = option(3e-2, help="peak learning rate; soft prompts need a large one")
    num_virtual_tokens: int = option(20, help="soft-prompt length; longer adds capacity and "
                                     "prompt tokens per request")
    init: str = option("sample_vocab", choices=("sample_vocab", "random"),
                       help="start from embeddings of random vocabulary tokens, or random vectors")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be >= 1, got {self.num_virtual_tokens}")


def build(model, config: PromptTuningSettings, plan: TrainPlan):
    from peft import PromptTuningConfig, PromptTuningInit

    init = {"sample_vocab": PromptTuningInit.SAMPLE_VOCAB, "random": PromptTuningInit.RANDOM}
    peft_config = peft_config_for(PromptTuningConfig, "prompt-tuning", plan.peft_args,
                                  num_virtual_tokens=config.num_virtual_tokens,
                                  prompt_tuning_init=init[config.init])
    return (apply_peft(model, peft_config, "prompt tuning"),
            {"num_virtual_tokens": peft_config.num_virtual_tokens,
             "init": str(getattr(peft_config.prompt_tuning_init, "value",
                                 peft_config.prompt_tuning_init)).lower()})


def run(ctx: RunContext, config: PromptTuningSettings):
    return run_finetune(ctx, config, build, strategy="prompt-tuning")


SPEC = StrategySpec(
    name="prompt-tuning", family="peft", tasks=LM_TASKS, config_cls=PromptTuningSettings,
    run=run, description="soft prompt vectors learned in front of the input (peft)",
    trainable=True,
)
