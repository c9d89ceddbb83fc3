"""`reward-model`: a scalar reward head on the LLM trained on preference pairs with TRL's
RewardTrainer (Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected)), LoRA by default.

    tunewise bench data/ --strategies reward-model

It is not a policy: it does not answer prompts. Its predictions are the reward scores of each
test pair's two responses (response_a_reward / response_b_reward); the harness, which alone
knows which response was chosen, scores them as reward_accuracy (which is also its preference
accuracy) and reward_margin; info says so. Its training, `train_reward_model`, lives in
strategies.preference_training because `rlhf` builds the reward it optimises and the win-rate
judge is built the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from strategies.base import (PAIR_FIELDS, PAIR_REWARD_FIELDS, RunContext, StrategyOutput,
                             StrategySpec, option)
from strategies.preference_eval import EvalSettings, Judge, fit_messages, settings_from
from strategies.preference_training import (REWARD_LEARNING_RATE, PreferenceConfig, check_rows,
                                            conversational, load_trainable, pair_tokens,
                                            train_reward_model)


@dataclass
class Config(PreferenceConfig):
    learning_rate: float = option(REWARD_LEARNING_RATE,
                                  help="AdamW learning rate (LoRA + new reward head)")
    max_steps: int = option(30, help="optimizer steps; more adapts further and costs time", full=150)
    win_rate: bool = option(False, help="unused: a reward model gives no answers to judge")


def reward_scores(judge: Judge, rows: Sequence[dict], settings: EvalSettings
                  ) -> tuple[list[float], list[float]]:
    """Rewards of each test pair's two responses (response_a, response_b), prompts fitted like
    training."""
    from strategies.preference_eval import response_text, truncate_text

    messages = [fit_messages(judge.tokenizer, r["prompt"], settings.max_prompt_tokens) for r in rows]

    def side(name):
        return [truncate_text(judge.tokenizer, response_text(r[name]), settings.max_response_tokens)
                for r in rows]

    return (judge.score(messages, side(PAIR_FIELDS[0]), settings.batch_size),
            judge.score(messages, side(PAIR_FIELDS[1]), settings.batch_size))


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    check_rows(ctx)
    settings = settings_from(config)
    ctx.phase("load")
    # the model load is load, not adaptation
    loaded = load_trainable(ctx, "seq-cls", config.full_weights)
    ctx.phase("adapt")
    model, tokenizer, stats = train_reward_model(ctx, ctx.data.train, config, settings,
                                                 ctx.work_dir / "trainer", loaded=loaded)
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
