"""`dpo`: Direct Preference Optimization (Rafailov et al. 2023) with TRL's DPOTrainer; LoRA by
default, starting from the base model or from an `sft-chosen` stage (config `init_from`).

    tunewise bench data/ --strategies dpo
    tunewise bench data/ --strategies dpo --set init_from=sft-chosen

The reference model comes through the adapter, not a second copy of the weights: with LoRA on
the base, the reference is the model with its adapter switched off; after an SFT stage, TRL
copies the SFT adapter into a frozen "ref" adapter and trains the other. With full weights TRL
keeps a frozen copy of the starting model as the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.preference_policy import finish_policy, load_policy
from strategies.preference_training import (PreferenceConfig, conversational, logged_tokens,
                                            lora_config, pair_tokens, param_counts,
                                            progress_callback, quiet, trainer_args)


@dataclass
class Config(PreferenceConfig):
    learning_rate: float = option(1e-4, help="AdamW learning rate; LoRA wants larger values "
                                             "than full weights (use ~5e-6 with full_weights)")
    beta: float = option(0.1, help="DPO temperature: higher keeps the policy closer to the "
                                   "reference")
    loss_type: str = option("sigmoid", help="DPO loss (TRL loss_type): sigmoid is the paper's; "
                                            "ipo and hinge are alternatives",
                            choices=("sigmoid", "ipo", "hinge", "robust"))
    init_from: str = option("base", help="start from the base model, or from an SFT stage on "
                                         "the chosen responses (the usual recipe, costs "
                                         "sft_steps more)",
                            choices=("base", "sft-chosen"), full="sft-chosen")
    sft_steps: int = option(20, help="SFT steps when init_from=sft-chosen", full=100)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ValueError(f"beta must be positive, got {self.beta}")


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    setup = load_policy(ctx, config)
    ctx.phase("adapt")
    model, info, train_tokens = setup.model, {}, 0
    peft_config = lora_config(config, "CAUSAL_LM")
    if config.init_from == "sft-chosen":
        from dataclasses import replace

        from strategies.sft_chosen import train_sft

        sft_config = replace(config, max_steps=config.sft_steps, learning_rate=2e-4
                             if not config.full_weights else 2e-5)
        model, sft_stats = train_sft(ctx, model, setup.tokenizer, ctx.data.train, sft_config,
                                     setup.settings, stage="sft stage before dpo")
        info.update(sft_steps=sft_stats["steps"], sft_loss=sft_stats["sft_loss"])
        train_tokens += sft_stats["train_tokens"]
        peft_config = None  # DPO trains the SFT adapter on; TRL freezes a copy as reference

    pairs = conversational(setup.tokenizer, ctx.data.train, setup.settings)
    args = trainer_args(DPOConfig, config, ctx, ctx.work_dir / "dpo-trainer", len(pairs),
                        beta=config.beta, loss_type=[config.loss_type],
                        max_length=setup.settings.max_prompt_tokens
                        + setup.settings.max_response_tokens + 16)
    trainer = quiet(DPOTrainer(model=model, ref_model=None, args=args,
                               train_dataset=Dataset.from_list(pairs),
                               processing_class=setup.tokenizer, peft_config=peft_config,
                               callbacks=[progress_callback(ctx, args.max_steps, "dpo")]))
    result = trainer.train()
    estimate = pair_tokens(setup.tokenizer, pairs) // max(1, len(pairs)) * args.max_steps \
        * config.batch_size
    train_tokens += logged_tokens(trainer, estimate)
    model = trainer.model
    if hasattr(model, "peft_config") and "ref" in model.peft_config:
        model.delete_adapter("ref")  # the frozen reference copy is not part of the artifact
    trainable, total = param_counts(model)
    info.update(trainer="trl.DPOTrainer", beta=config.beta, loss_type=config.loss_type,
                init_from=config.init_from, train_loss=float(result.training_loss),
                train_pairs=len(pairs), steps=args.max_steps,
                reference="frozen copy of the SFT adapter" if config.init_from == "sft-chosen"
                and not config.full_weights else "base model (adapter disabled)"
                if not config.full_weights else "frozen copy of the starting weights")
    return finish_policy(ctx, config, setup, model, trainable, total, train_tokens, info)


SPEC = StrategySpec(
    name="dpo", family="preference", tasks=frozenset({"preference"}),
    config_cls=Config, run=run, trainable=True,
    description="Direct Preference Optimization (TRL DPOTrainer) on the pairs, from the base "
                "model or after SFT on the chosen responses; reference via the adapter",
)
