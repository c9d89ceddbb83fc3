"""The run shape every preference policy shares (sft-chosen, dpo, rlhf): load, then the
strategy's own adaptation, then predict and save.

    setup = load_policy(ctx, config)       # load phase: the base model, the run's referee
    ctx.phase("adapt"); ...                 # the strategy trains setup.model
    return finish_policy(ctx, config, setup, model, trainable, total, train_tokens, info)

The win-rate referee (judge and base-model answers) comes from the run's win-rate-judge stage
(strategies.preference_judge); a candidate only loads it, so its load phase holds its own
model load and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strategies.base import RunContext
from strategies.preference_eval import EvalSettings, settings_from
from strategies.preference_judge import Referee, referee_for
from strategies.preference_training import (PreferenceConfig, cached_base_answers, check_rows,
                                            load_trainable)


@dataclass
class PolicySetup:
    """What every policy strategy has after its load phase."""

    model: Any
    tokenizer: Any
    settings: EvalSettings
    referee: Referee | None  # None: no win rate (win_rate off, or the run's stage failed)
    base_answers: list[str] | None  # the win-rate opponent, generated before any training
    referee_info: dict[str, Any]


def load_policy(ctx: RunContext, config: PreferenceConfig) -> PolicySetup:
    """Load phase: the base model, and (for the win rate) the run's referee. The opponent's
    answers come from the referee; prompts it did not answer (a tuning trial predicts the
    validation split) are answered here by the base model, before any training."""
    check_rows(ctx)
    settings = settings_from(config)
    referee, info = referee_for(ctx, config, settings) if config.win_rate else (None, {})
    ctx.phase("load")
    model, tokenizer = load_trainable(ctx, "causal-lm", config.full_weights)
    answers = referee.answers if referee is not None else None
    if referee is not None and answers is None:
        answers = cached_base_answers(ctx, model, tokenizer, settings)
    return PolicySetup(model, tokenizer, settings, referee, answers, info)


def finish_policy(ctx: RunContext, config: PreferenceConfig, setup: PolicySetup, model,
                  trainable: int, total: int, train_tokens: int, info: dict[str, Any]):
    """Predict and save phases shared by sft-chosen, dpo and rlhf."""
    from strategies.base import StrategyOutput
    from strategies.preference_eval import evaluate_policy_full

    ctx.phase("predict")
    judge = setup.referee.load_judge(ctx) if setup.referee is not None else None
    evaluation = evaluate_policy_full(ctx, model, setup.tokenizer, setup.base_answers, judge,
                                      setup.settings)
    ctx.phase("save")
    artifact = ctx.work_dir / ("adapter" if hasattr(model, "peft_config") else "model")
    model.save_pretrained(artifact, safe_serialization=True)
    setup.tokenizer.save_pretrained(artifact)
    return StrategyOutput(
        predictions=evaluation.predictions, trainable_params=trainable, total_params=total,
        train_tokens=train_tokens, predict_tokens=evaluation.predict_tokens,
        mean_prompt_tokens=evaluation.mean_prompt_tokens, artifact_path=str(artifact),
        info={**info, **evaluation.info, **setup.referee_info,
              "adapter": "full weights" if config.full_weights else f"LoRA r={config.lora_r}"},
    )
