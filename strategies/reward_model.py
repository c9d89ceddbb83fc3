"""`reward-model`: a scalar reward head on the LLM trained on preference pairs with TRL's
RewardTrainer (Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected)), LoRA by default.

    tunewise bench data/ --strategies reward-model

It is not a policy: it does not answer prompts. Its predictions are the reward scores of each
test pair's two responses (response_a_reward / response_b_reward); the harness, which alone
knows which response was chosen, scores them as reward_accuracy (which is also its preference
accuracy) and reward_margin; info says so. `train_reward_model` is also how `rlhf` builds
the reward it optimises and how the win-rate judge is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from strategies.base import (PAIR_FIELDS, PAIR_REWARD_FIELDS, RunContext, StrategyOutput,
                             StrategySpec, option)
from strategies.preference_eval import EvalSettings, Judge, fit_messages, settings_from
from strategies.preference_training import (PreferenceConfig, check_rows, conversational,
                                            load_trainable, logged_tokens, lora_config, pair_tokens, param_counts,
                                            progress_callback, quiet, trainer_args)


@dataclass
class Config(PreferenceConfig):
    learning_rate: float = option(1e-4, help="AdamW learning rate (LoRA + new reward head)")
    max_steps: int = option(30, help="optimizer steps; more adapts further and costs time", full=150)
    win_rate: bool = option(False, help="unused: a reward model gives no answers to judge")


def train_reward_model(ctx: RunContext, rows: Sequence[dict], config: PreferenceConfig,
                       settings: EvalSettings, out_dir: Path, stage: str = "reward model",
                       phase: str = "adapt") -> tuple[Any, Any, dict[str, Any]]:
    """Train a reward model on `rows`; returns (model with LoRA merged, tokenizer, stats)."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model, tokenizer = load_trainable(ctx, "seq-cls")
    model.config.pad_token_id = tokenizer.pad_token_id
    pairs = conversational(tokenizer, rows, settings)
    # The filter in RewardTrainer drops pairs over max_length; our budget keeps every pair in.
    max_length = settings.max_prompt_tokens + settings.max_response_tokens + 16
    args = trainer_args(RewardConfig, config, ctx, out_dir, len(pairs), max_length=max_length,
                        center_rewards_coefficient=0.01)
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(pairs),
                            processing_class=tokenizer,
                            peft_config=lora_config(config, "SEQ_CLS"),
                            callbacks=[progress_callback(ctx, args.max_steps, stage, phase)])
    quiet(trainer)
    trainable, total = param_counts(trainer.model)
    result = trainer.train()
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.eval()
    per_pair = pair_tokens(tokenizer, pairs) / max(1, len(pairs))
    stats = {"trainable_params": trainable, "total_params": total,
             "train_tokens": logged_tokens(trainer, int(per_pair * args.max_steps * config.batch_size)),
             "train_loss": float(result.training_loss), "train_pairs": len(pairs), "steps": args.max_steps}
    return model, tokenizer, stats


def reward_scores(judge: Judge, rows: Sequence[dict], settings: EvalSettings
                  ) -> tuple[list[float], list[float]]:
    """Rewards of each test pair's two responses (response_a, response_b), prompts fitted like
    training."""
    from strategies.preference_eval import _text, truncate_text

    messages = [fit_messages(judge.tokenizer, r["prompt"], settings.max_prompt_tokens) for r in rows]

    def side(name):
        return [truncate_text(judge.tokenizer, _text(r[name]), settings.max_response_tokens)
                for r in rows]

    return (judge.score(messages, side(PAIR_FIELDS[0]), settings.batch_size),
            judge.score(messages, side(PAIR_FIELDS[1]), settings.batch_size))


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    check_rows(ctx)
    settings = settings_from(config)
    ctx.phase("load")
    ctx.phase("adapt")
    model, tokenizer, stats = train_reward_model(ctx, ctx.data.train, config, settings,
                                                 ctx.work_dir / "trainer")
    ctx.phase("predict")
    judge = Judge(model, tokenizer)
    first, second = reward_scores(judge, ctx.data.test, settings)
    a_key, b_key = PAIR_REWARD_FIELDS
    predictions = [{a_key: a, b_key: b} for a, b in zip(first, second)]
    # Token count only (the order of the two responses does not change it).
    scored_pairs = [{"prompt": row["prompt"], "chosen": row[PAIR_FIELDS[0]],
                     "rejected": row[PAIR_FIELDS[1]]} for row in ctx.data.test]
    ctx.phase("save")
    artifact = ctx.work_dir / "reward_model"
    model.save_pretrained(artifact, safe_serialization=True)
    tokenizer.save_pretrained(artifact)
    return StrategyOutput(
        predictions=predictions,
        trainable_params=stats["trainable_params"], total_params=stats["total_params"],
        train_tokens=stats["train_tokens"],
        predict_tokens=pair_tokens(tokenizer, conversational(tokenizer, scored_pairs, settings)),
        artifact_path=str(artifact),
        info={"predictions": "reward scores of both responses: preference accuracy here is reward "
                             "accuracy on the held-out pairs; no answers, so no win rate",
              "trainer": "trl.RewardTrainer (Bradley-Terry loss)",
              "adapter": "full weights" if config.full_weights else f"LoRA r={config.lora_r}",
              "train_loss": stats["train_loss"], "train_pairs": stats["train_pairs"]},
    )


SPEC = StrategySpec(
    name="reward-model", family="preference", tasks=frozenset({"preference"}),
    config_cls=Config, run=run, trainable=True,
    description="reward model: scalar head on the LLM trained on the pairs with TRL's "
                "RewardTrainer; reports its accuracy on held-out pairs",
)
