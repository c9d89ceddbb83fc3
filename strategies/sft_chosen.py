"""`sft-chosen`: supervised fine-tuning on the chosen responses (the usual first stage before
preference tuning), with TRL's SFTTrainer; LoRA by default.

    tunewise bench data/ --strategies sft-chosen

The pairs become prompt -> chosen completions in chat format (the same messages every
preference strategy uses); the loss covers the completion only. The rejected responses are not
used: this is what preference tuning is measured against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.preference_eval import EvalSettings, render_conversation
from strategies.preference_policy import finish_policy, load_policy
from strategies.preference_training import (PreferenceConfig, conversational, logged_tokens,
                                            lora_config, param_counts, progress_callback, quiet,
                                            trainer_args)


@dataclass
class Config(PreferenceConfig):
    learning_rate: float = option(2e-4, help="AdamW learning rate; LoRA wants larger values "
                                             "than full weights (use ~2e-5 with full_weights)")


def train_sft(ctx: RunContext, model, tokenizer, rows, config: PreferenceConfig,
              settings: EvalSettings, stage: str = "sft on chosen") -> tuple[Any, dict[str, Any]]:
    """SFT on prompt -> chosen; returns the trained model (a PeftModel under LoRA) and stats."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    pairs = conversational(tokenizer, rows, settings)
    examples = [{"prompt": p["prompt"], "completion": p["chosen"]} for p in pairs]
    args = trainer_args(SFTConfig, config, ctx, ctx.work_dir / "sft-trainer", len(examples),
                        max_length=settings.max_prompt_tokens + settings.max_response_tokens + 16,
                        completion_only_loss=True, packing=False)
    trainer = quiet(SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples),
                               processing_class=tokenizer,
                               peft_config=lora_config(config, "CAUSAL_LM"),
                               callbacks=[progress_callback(ctx, args.max_steps, stage)]))
    trainable, total = param_counts(trainer.model)
    result = trainer.train()
    per_example = sum(len(tokenizer(render_conversation(tokenizer, p["prompt"],
                                                        p["chosen"][0]["content"]),
                                    add_special_tokens=False)["input_ids"])
                      for p in pairs) / max(1, len(pairs))
    stats = {"trainable_params": trainable, "total_params": total,
             "train_tokens": logged_tokens(trainer, int(per_example * args.max_steps
                                                        * config.batch_size)),
             "sft_loss": float(result.training_loss), "sft_examples": len(examples), "steps": args.max_steps}
    return trainer.model, stats


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    setup = load_policy(ctx, config)
    ctx.phase("adapt")
    model, stats = train_sft(ctx, setup.model, setup.tokenizer, ctx.data.train, config,
                             setup.settings)
    return finish_policy(ctx, config, setup, model, stats["trainable_params"],
                         stats["total_params"], stats["train_tokens"],
                         {"trainer": "trl.SFTTrainer (completion-only loss on chosen responses)",
                          "train_loss": stats["sft_loss"], "train_pairs": stats["sft_examples"], "steps": stats["steps"]})


SPEC = StrategySpec(
    name="sft-chosen", family="preference", tasks=frozenset({"preference"}),
    config_cls=Config, run=run, trainable=True,
    description="supervised fine-tuning on the chosen responses (TRL SFTTrainer), "
                "the usual first stage before DPO or RLHF",
)
