"""Prompt-and-predict, shared by `zero-shot`, `few-shot` and `rag`: they differ only in what goes
into the prompt (nothing, fixed demonstrations, retrieved neighbours or passages), so the model
call, the scoring and the counting are the same code.

    output = predict_with_prompts(ctx, model, tokenizer, config,
                                  demos=lambda i, row: fixed_demos,
                                  passages=lambda i, row: [])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from strategies.base import RunContext, StrategyError, StrategyOutput, option
from strategies.lm_predict import freeze, generate_texts, param_counts, predict_labels
from strategies.prompts import (CONTENT_FREE_TEXT, classification_prompt, generation_prompt,
                                label_names_info, qa_prompt)

Rows = Sequence[dict[str, Any]]
DemosFor = Callable[[int, dict[str, Any]], Rows]
PassagesFor = Callable[[int, dict[str, Any]], Sequence[str]]


@dataclass
class PromptingConfig:
    """Options every prompting candidate shares (zero-shot, few-shot, rag)."""

    calibrate: bool = option(True, help="contextual calibration: divide out the label prior "
                             "measured on a content-free input (classification)")
    scoring: str = option("mean", help="label score: mean per-token log-prob (no bias to short "
                          "labels) or sum (the label's full probability)", choices=("mean", "sum"))
    max_new_tokens: int = option(32, help="greedy answer length for generation/qa; longer is "
                                 "slower", full=96)
    use_context: bool = option(True, help="qa: put the row's own context in the prompt")
    batch_size: int = option(8, help="prompts per forward pass; higher is faster and uses more "
                             "memory")
    max_prompt_tokens: int = option(1024, help="prompts are cut from the left beyond this")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1 or self.max_prompt_tokens < 16:
            raise ValueError("max_new_tokens and batch_size must be >= 1, max_prompt_tokens >= 16")


def load_frozen_lm(ctx: RunContext):
    """The base LLM, frozen: prompting adapts no weights."""
    model, tokenizer = ctx.load_model(ctx.model_name, "causal-lm")
    freeze(model)
    return model, tokenizer


def no_demos(i: int, row: dict[str, Any]) -> Rows:
    return ()


def no_passages(i: int, row: dict[str, Any]) -> Sequence[str]:
    return ()


def build_prompts(ctx: RunContext, tokenizer, config: PromptingConfig,
                  demos: DemosFor = no_demos, passages: PassagesFor = no_passages) -> list[str]:
    split = ctx.data
    prompts = []
    for i, row in enumerate(split.test):
        if split.task == "classification":
            prompts.append(classification_prompt(tokenizer, split, row["text"], demos(i, row)))
        elif split.task == "generation":
            prompts.append(generation_prompt(tokenizer, split, row, demos(i, row), passages(i, row)))
        elif split.task == "qa":
            prompts.append(qa_prompt(tokenizer, split, row, demos(i, row), passages(i, row),
                                     use_context=config.use_context))
        else:
            raise StrategyError(f"prompting has no {split.task!r} prompt here")
    return prompts


def predict_with_prompts(ctx: RunContext, model, tokenizer, config: PromptingConfig,
                         demos: DemosFor = no_demos, passages: PassagesFor = no_passages,
                         calibration_demos: Rows = ()) -> StrategyOutput:
    """Predict the test split from prompts; returns predictions and token/param counts.

    `calibration_demos`: demonstrations for the content-free calibration prompt (few-shot uses
    its fixed demos; RAG's differ per row, so the prior is measured without them)."""
    split = ctx.data
    prompts = build_prompts(ctx, tokenizer, config, demos, passages)
    trainable, total = param_counts(model)
    info: dict[str, Any] = label_names_info(split, ctx.options)
    if split.task == "classification":
        calibration = (classification_prompt(tokenizer, split, CONTENT_FREE_TEXT, calibration_demos)
                       if config.calibrate else None)
        result = predict_labels(ctx, model, tokenizer, prompts, calibration_prompt=calibration,
                                scoring=config.scoring, batch_size=config.batch_size,
                                max_prompt_tokens=config.max_prompt_tokens)
        predictions, prompt_tokens, processed = (result.labels, result.prompt_tokens,
                                                 result.processed_tokens)
        info.update(calibrated=config.calibrate, scoring=config.scoring)
    else:
        predictions, prompt_tokens, generated = generate_texts(
            ctx, model, tokenizer, prompts, max_new_tokens=config.max_new_tokens,
            batch_size=config.batch_size, max_prompt_tokens=config.max_prompt_tokens)
        processed = prompt_tokens + generated
        info.update(decoding="greedy", max_new_tokens=config.max_new_tokens)
    return StrategyOutput(predictions=predictions, trainable_params=trainable, total_params=total,
                          predict_tokens=processed,
                          mean_prompt_tokens=prompt_tokens / max(1, len(prompts)), info=info,
                          # the same prompts for more test rows; demos and passages are looked
                          # up by the rows' positions, so it answers rows from the start of test
                          answer=lambda rows: predict_with_prompts(
                              ctx.with_test_rows(rows), model, tokenizer, served(config), demos,
                              passages, calibration_demos).predictions)


def served(config: PromptingConfig) -> PromptingConfig:
    """The config as a server answers one request: the calibration prior is one content-free
    forward per deployment, not per request, so a request does not recompute it."""
    return dataclasses.replace(config, calibrate=False)
