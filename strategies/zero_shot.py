"""`zero-shot`: the base LLM with its chat template and the task instruction, no examples.

classification: label log-likelihood scoring with contextual calibration (on by default);
generation/qa: greedy decoding (qa puts the row's context in the prompt);
preference: the base policy scored on the held-out pairs (strategies.preference_eval), the
reference point for sft-chosen, dpo and rlhf.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategies.base import RunContext, StrategyOutput, StrategySpec
from strategies.prompting import PromptingConfig, load_frozen_lm, predict_with_prompts


@dataclass
class ZeroShotConfig(PromptingConfig):
    pass


def run(ctx: RunContext, config: ZeroShotConfig) -> StrategyOutput:
    ctx.phase("load")
    model, tokenizer = load_frozen_lm(ctx)
    ctx.phase("predict")
    if ctx.data.task == "preference":
        return _preference(ctx, model, tokenizer, config)
    return predict_with_prompts(ctx, model, tokenizer, config)


def _preference(ctx: RunContext, model, tokenizer, config: ZeroShotConfig) -> StrategyOutput:
    from strategies.lm_predict import param_counts
    from strategies.preference_eval import EvalSettings, evaluate_policy_full

    settings = EvalSettings(max_new_tokens=config.max_new_tokens, batch_size=config.batch_size)
    evaluation = evaluate_policy_full(ctx, model, tokenizer, baseline=None, settings=settings)
    trainable, total = param_counts(model)
    return StrategyOutput(predictions=evaluation.predictions, trainable_params=trainable,
                          total_params=total, predict_tokens=evaluation.predict_tokens,
                          mean_prompt_tokens=evaluation.mean_prompt_tokens, info=evaluation.info)


SPEC = StrategySpec(
    name="zero-shot", family="prompting",
    tasks=frozenset({"classification", "generation", "qa", "preference"}),
    config_cls=ZeroShotConfig, run=run,
    description="base LLM + chat template + task instruction; labels by calibrated "
                "log-likelihood, answers by greedy decoding",
)
