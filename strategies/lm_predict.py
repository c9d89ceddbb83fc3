"""Prediction with a causal LM, shared by every LM candidate (prompting, RAG, fine-tuned LMs).

- classification: label log-likelihood scoring (strategies.scoring) with optional contextual
  calibration, per-token (mean) or summed label scores;
- generation/qa: batched greedy decoding with left padding.

    labels, tokens = predict_labels(ctx, model, tokenizer, prompts, calibration_prompt=cf)
    texts, tokens = generate_texts(ctx, model, tokenizer, prompts, max_new_tokens=32)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from strategies.base import RunContext, StrategyError
from strategies.prompts import label_texts
from strategies.scoring import calibrated_predictions, label_logprobs

SCORINGS = ("mean", "sum")


@dataclass
class LabelPredictions:
    labels: list[str]  # one predicted label per prompt (from split.labels)
    prompt_tokens: int  # tokens of the scored prompts (calibration prompt excluded)
    scores: np.ndarray  # [n_prompts, n_labels] the scores the argmax was taken over
    label_tokens: int  # label tokens scored per prompt (all labels together)

    @property
    def processed_tokens(self) -> int:
        """Every token that went through the model: prompts plus each label after each."""
        return self.prompt_tokens + self.label_tokens * len(self.labels)


def param_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters; a frozen model has 0 trainable ones."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def freeze(model) -> None:
    """Prompting adapts nothing: mark every weight frozen so the counts say so."""
    for p in model.parameters():
        p.requires_grad_(False)


def predict_labels(ctx: RunContext, model, tokenizer, prompts: Sequence[str], *,
                   calibration_prompt: str | None = None, scoring: str = "mean",
                   batch_size: int = 8, max_prompt_tokens: int = 1024) -> LabelPredictions:
    """Score every label of ctx.data after each prompt and take the best.

    `calibration_prompt` is the same prompt with a content-free input ("N/A"): its label scores
    are the model's prior, divided out before the argmax (Zhao et al. 2021).
    """
    if scoring not in SCORINGS:
        raise StrategyError(f"scoring={scoring!r}: use one of {', '.join(SCORINGS)}")
    labels = label_texts(ctx.data)

    def on_batch(done: int, total: int) -> None:
        ctx.progress("predict", done, total)

    scores = label_logprobs(model, tokenizer, prompts, labels, batch_size=batch_size,
                            max_prompt_tokens=max_prompt_tokens, on_batch=on_batch)
    matrix = scores.mean_logp() if scoring == "mean" else scores.sum_logp
    prior = None
    if calibration_prompt is not None:
        content_free = label_logprobs(model, tokenizer, [calibration_prompt], labels,
                                      max_prompt_tokens=max_prompt_tokens)
        prior = (content_free.mean_logp() if scoring == "mean" else content_free.sum_logp)[0]
    best = calibrated_predictions(matrix, prior)
    return LabelPredictions([ctx.data.labels[i] for i in best], scores.prompt_tokens, matrix,
                            int(scores.n_tokens.sum()))


def generate_texts(ctx: RunContext, model, tokenizer, prompts: Sequence[str], *,
                   max_new_tokens: int = 64, batch_size: int = 8,
                   max_prompt_tokens: int = 1024) -> tuple[list[str], int, int]:
    """Greedy decoding, batched with left padding (so every prompt ends at the same column).

    Returns (texts, prompt_tokens, generated_tokens)."""
    import torch

    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _stop_token_ids(model, tokenizer)
    texts: list[str] = []
    prompt_tokens = generated_tokens = 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            encoded = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
                       for p in prompts[start:start + batch_size]]
            width = max(len(ids) for ids in encoded)
            input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for i, ids in enumerate(encoded):
                input_ids[i, width - len(ids):] = torch.tensor(ids)
                mask[i, width - len(ids):] = 1
            output = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                    max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=pad_id, eos_token_id=eos_ids)
            new_tokens = output[:, width:].cpu()
            for row in new_tokens:
                row = _until_stop(row.tolist(), eos_ids)
                generated_tokens += len(row)
                texts.append(tokenizer.decode(row, skip_special_tokens=True).strip())
            prompt_tokens += sum(len(ids) for ids in encoded)
            ctx.progress("predict", min(start + batch_size, len(prompts)), len(prompts))
    if was_training:
        model.train()
    return texts, prompt_tokens, generated_tokens


def _stop_token_ids(model, tokenizer) -> list[int]:
    """EOS of the tokenizer and of the generation config (chat models end turns with their own)."""
    ids = set()
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return sorted(ids)


def _until_stop(tokens: list[int], stop_ids: Sequence[int]) -> list[int]:
    for i, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:i]
    return tokens
