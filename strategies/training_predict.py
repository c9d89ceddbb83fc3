"""Prediction with a fine-tuned LM: label log-likelihood for classification (the prompting
candidates' scoring), batched greedy decoding for generation and qa."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from strategies.base import StrategyError, TaskSplit
from strategies.prompts import label_texts, prompt_for
from strategies.training_config import TrainingConfig


@dataclass
class Predictions:
    values: list[Any]
    predict_tokens: int
    mean_prompt_tokens: float


def predict(model, tokenizer, split: TaskSplit, rows: Sequence[dict[str, Any]],
            config: TrainingConfig, on_batch: Callable[[int, int], None] = lambda d, t: None
            ) -> Predictions:
    if split.task == "classification":
        return predict_labels(model, tokenizer, split, rows, config, on_batch)
    if split.task in ("generation", "qa"):
        return predict_generations(model, tokenizer, split, rows, config, on_batch)
    raise StrategyError(f"fine-tuning candidates do not predict task kind {split.task!r}")


def predict_labels(model, tokenizer, split, rows, config, on_batch) -> Predictions:
    """Label log-likelihood, the same prompt and scoring as the prompting candidates."""
    from strategies.scoring import label_logprobs

    prompts = [prompt_for(tokenizer, split, row) for row in rows]
    scores = label_logprobs(model, tokenizer, prompts, label_texts(split),
                            batch_size=config.predict_batch_size,
                            max_prompt_tokens=config.max_length, on_batch=on_batch)
    ranked = scores.mean_logp() if config.label_score == "mean" else scores.sum_logp
    values = [split.labels[j] for j in ranked.argmax(axis=1)]
    return Predictions(values, scores.prompt_tokens, scores.prompt_tokens / max(1, len(rows)))


def encode_prompts(tokenizer, prompts: Sequence[str], max_tokens: int):
    """Prompts as left-padded tensors, each cut to its LAST `max_tokens` tokens, as training
    cuts them (strategies.training_data.encode_example): a long context loses its start, and the
    question and the assistant turn at its end stay. The tokenizer's own truncation would cut
    the end instead, and the model would go on writing the context (measured on PubMedQA:
    LoRA token F1 0.027 with abstracts longer than 256 tokens)."""
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_tokens:] for p in prompts]
    return tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")


def predict_generations(model, tokenizer, split, rows, config, on_batch) -> Predictions:
    """Greedy decoding in batches, prompts left-padded so every answer starts at one column."""
    import torch

    device = next(model.parameters()).device
    prompts = [prompt_for(tokenizer, split, row) for row in rows]
    values: list[str] = []
    prompt_tokens = generated_tokens = 0
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(prompts), config.predict_batch_size):
            batch = prompts[start : start + config.predict_batch_size]
            encoded = encode_prompts(tokenizer, batch, config.max_length)
            prompt_tokens += int(encoded["attention_mask"].sum())
            with torch.inference_mode():
                output = model.generate(
                    input_ids=encoded["input_ids"].to(device),
                    attention_mask=encoded["attention_mask"].to(device),
                    max_new_tokens=config.max_new_tokens, do_sample=False,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            new_tokens = output[:, encoded["input_ids"].shape[1]:]
            for seq in new_tokens:
                seq = seq.tolist()
                if tokenizer.eos_token_id in seq:
                    seq = seq[: seq.index(tokenizer.eos_token_id)]
                generated_tokens += len(seq) + 1
                values.append(tokenizer.decode(seq, skip_special_tokens=True).strip())
            on_batch(min(start + len(batch), len(prompts)), len(prompts))
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return Predictions(values, prompt_tokens + generated_tokens,
                       prompt_tokens / max(1, len(rows)))
