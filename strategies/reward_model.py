"""`reward-model`: a scalar reward head on the LLM trained on preference pairs with TRL's
RewardTrainer (Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected)), LoRA by default.

    tunewise bench data/ --strategies reward-model

It is not a policy: it does not answer prompts. Its record's predictions put the reward scores
of the chosen and rejected response in chosen_logp / rejected_logp, so the harness's
preference accuracy *is* the reward model's held-out accuracy (also reported as
extra_metrics["reward_accuracy"]); info says so. Its training, `train_reward_model`, lives in
strategies.preference_training because `rlhf` builds the reward it optimises and the win-rate
judge is built the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.preference_eval import EvalSettings, Judge, fit_messages, settings_from
from strategies.preference_training import (REWARD_LEARNING_RATE, PreferenceConfig, check_rows,
                                            conversational, pair_tokens, train_reward_model)


@dataclass
class Config(PreferenceConfig):
    learning_rate: float = option(REWARD_LEARNING_RATE,
                                  help="AdamW learning rate (LoRA + new reward head)")
    max_steps: int = option(30, help="optimizer steps; more adapts further and costs time", full=150)
    win_rate: bool = option(False, help="unused: a reward model gives no answers to judge")


def reward_scores(judge: Judge, rows: Sequence[dict], settings: EvalSettings
                  ) -> tuple[list[float], list[float]]:
    """Rewards of each pair's chosen and rejected response, prompts fitted like training."""
    from strategies.preference_eval import _text, truncate_text

    messages = [fit_messages(judge.tokenizer, r["prompt"], settings.max_prompt_tokens) for r in rows]

    def side(name):
        return [truncate_text(judge.tokenizer, _text(r[name]), settings.max_response_tokens)
                for r in rows]

    return (judge.score(messages, side("chosen"), settings.batch_size),
            judge.score(messages, side("rejected"), settings.batch_size))


def run(ctx: RunContext, config: Config) -> StrategyOutput:
    check_rows(ctx)
    settings = settings_from(config)
    ctx.phase("load")
    ctx.phase("adapt")
    model, tokenizer, stats = train_reward_model(ctx, ctx.data.train, config, settings,
                                                 ctx.work_dir / "trainer")
    ctx.phase("predict")
    judge = Judge(model, tokenizer)
    chosen, rejected = reward_scores(judge, ctx.data.test, settings)
    predictions = [{"chosen_logp": c, "rejected_logp": r} for c, r in zip(chosen, rejected)]
    accuracy = sum(c > r for c, r in zip(chosen, rejected)) / max(1, len(chosen))
    ctx.phase("save")
    artifact = ctx.work_dir / "reward_model"
    model.save_pretrained(artifact, safe_serialization=True)
    tokenizer.save_pretrained(artifact)
    return StrategyOutput(
        predictions=predictions,
        trainable_params=stats["trainable_params"], total_params=stats["total_params"],
        train_tokens=stats["train_tokens"],
        predict_tokens=pair_tokens(tokenizer, conversational(tokenizer, ctx.data.test, settings)),
        artifact_path=str(artifact),
        extra_metrics={"reward_accuracy": accuracy,
                       "mean_reward_margin": _mean([c - r for c, r in zip(chosen, rejected)])},
        info={"predictions": "chosen_logp / rejected_logp hold the reward model's scores, not "
                             "log-probabilities: preference accuracy here is reward accuracy "
                             "on the held-out pairs; no answers, so no win rate",
              "trainer": "trl.RewardTrainer (Bradley-Terry loss)",
              "adapter": "full weights" if config.full_weights else f"LoRA r={config.lora_r}",
              "train_loss": stats["train_loss"], "train_pairs": stats["train_pairs"]},
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


SPEC = StrategySpec(
    name="reward-model", family="preference", tasks=frozenset({"preference"}),
    config_cls=Config, run=run, trainable=True,
    description="reward model: scalar head on the LLM trained on the pairs with TRL's "
                "RewardTrainer; reports its accuracy on held-out pairs",
)
