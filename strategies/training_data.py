"""Training data for the fine-tuning candidates: prompt -> target sequences with the loss on
the target tokens only, and the mean target loss of a model on such sequences."""

from __future__ import annotations

from typing import Any, Sequence

from strategies.base import TaskSplit
from strategies.prompts import prompt_for, target_text


def encode_example(tokenizer, split: TaskSplit, row: dict[str, Any], max_length: int
                   ) -> dict[str, list[int]]:
    """One training sequence: prompt tokens (no loss) + target tokens + EOS (loss).

    Prompt and target are tokenised separately, exactly as label scoring and generation see
    them, so training and prediction agree token for token. EOS is appended explicitly and
    its label kept: SmolLM2's pad token *is* its EOS, so masking "padding" by token id would
    silently stop the model learning to end its answer; padding is masked by position in the
    collator instead.
    """
    prompt_ids = tokenizer(prompt_for(tokenizer, split, row), add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target_text(split, row), add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        target_ids = target_ids + [tokenizer.eos_token_id]
    target_ids = target_ids[: max(1, max_length // 2)]  # a long target may use half the window
    prompt_ids = prompt_ids[-(max_length - len(target_ids)):]  # the prompt's end matters most
    return {"input_ids": prompt_ids + target_ids,
            "labels": [-100] * len(prompt_ids) + target_ids}


def encode_rows(tokenizer, split: TaskSplit, rows: Sequence[dict[str, Any]], max_length: int):
    return [encode_example(tokenizer, split, row, max_length) for row in rows]


def pad_batch(batch: Sequence[dict[str, list[int]]]):
    """Encoded examples as right-padded tensors: input ids, labels (-100 on padding, never
    scored) and the attention mask."""
    import torch

    width = max(len(e["input_ids"]) for e in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e["input_ids"])
        ids[i, :n], labels[i, :n], mask[i, :n] = (
            torch.tensor(e["input_ids"]), torch.tensor(e["labels"]), 1)
    return ids, labels, mask


def target_loss(model, encoded: Sequence[dict[str, list[int]]], batch_size: int = 8) -> float:
    """Mean cross-entropy over the target tokens of `encoded` (the quantity training lowers)."""
    import torch

    device = next(model.parameters()).device
    total_loss, total_tokens = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), batch_size):
            ids, labels, mask = pad_batch(encoded[start : start + batch_size])
            width = ids.size(1)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
            logits = logits[:, -width:]  # prompt tuning prepends virtual tokens' positions
            shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(
                shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1),
                ignore_index=-100, reduction="sum")
            total_loss += float(loss)
            total_tokens += int((shift_labels != -100).sum())
    if was_training:
        model.train()
    return total_loss / max(1, total_tokens)
