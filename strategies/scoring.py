"""Label scoring by log-likelihood: the one way every LM candidate classifies.

Prompting, RAG-as-demonstrations and every fine-tuned LM predict a label by scoring each label's
tokens after the prompt and taking the best, so a difference between candidates is the method's,
not the scoring's. Exact (no parsing of free text) and much faster than generation.

    scores = label_logprobs(model, tokenizer, prompts, ["positive", "negative"])
    # scores.sum_logp[i, j] = log P(label_j tokens | prompt_i), scores.n_tokens[j]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass
class LabelScores:
    sum_logp: np.ndarray  # [n_prompts, n_labels] summed log-probabilities of the label tokens
    n_tokens: np.ndarray  # [n_labels] tokens per label
    prompt_tokens: int  # tokens of all prompts processed (for tokens/s and serving cost)

    def mean_logp(self) -> np.ndarray:
        """Per-token log-probabilities: removes the bias towards short labels."""
        return self.sum_logp / self.n_tokens[None, :]


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[list[int]]:
    """Each label as the tokens the model would emit after the assistant turn starts."""
    ids = [tokenizer(label, add_special_tokens=False)["input_ids"] for label in labels]
    empty = [label for label, tokens in zip(labels, ids) if not tokens]
    if empty:
        raise ValueError(f"labels with no tokens: {empty}")
    return ids


def label_logprobs(model, tokenizer, prompts: Sequence[str], labels: Sequence[str], *,
                   batch_size: int = 8, max_prompt_tokens: int = 1024,
                   on_batch=None) -> LabelScores:
    """Score every label after every prompt.

    No free text is generated or parsed. Each prompt runs through the model once; its key/value
    cache is then shared by all labels, which only add their own few tokens (the prompt is by
    far the longest part, so this is ~n_labels times less work than scoring each (prompt,
    label) pair in full). Models whose cache cannot be shared this way (prompt-learning PEFT
    adapters with virtual tokens, caches other than DynamicCache) fall back to one full pass
    over every (prompt, label) pair.
    """
    import torch

    label_ids = label_token_ids(tokenizer, labels)
    n_labels = len(label_ids)
    max_label = max(len(ids) for ids in label_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device

    # Label continuation block [n_labels, max_label], right-padded, with its mask.
    label_block = torch.full((n_labels, max_label), pad_id, dtype=torch.long)
    label_mask = torch.zeros((n_labels, max_label), dtype=torch.long)
    for j, ids in enumerate(label_ids):
        label_block[j, : len(ids)] = torch.tensor(ids)
        label_mask[j, : len(ids)] = 1

    scores = np.zeros((len(prompts), n_labels), dtype=np.float64)
    encoded_all = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_prompt_tokens:]
                   for p in prompts]
    prompt_tokens = sum(len(ids) for ids in encoded_all)
    # Batches of similar lengths pad less: score the prompts longest first, rows back in place.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded_all[i]))
    score_batch = _score_batch_shared if _can_share_cache(model) else _score_batch
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            rows = order[start : start + batch_size]
            scores[rows] = score_batch(model, [encoded_all[i] for i in rows], label_block,
                                       label_mask, pad_id, device)
            if on_batch is not None:
                on_batch(min(start + batch_size, len(prompts)), len(prompts))
    if was_training:
        model.train()
    n_tokens = np.array([len(ids) for ids in label_ids], dtype=np.float64)
    return LabelScores(scores, n_tokens, prompt_tokens)


def _can_share_cache(model) -> bool:
    """Prompt-learning PEFT adapters (prompt/prefix tuning) inject virtual tokens on every
    forward call, so a reused cache would see them twice: score those pairs in full."""
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict):
        active = peft_config.get(getattr(model, "active_adapter", "default"))
        if active is not None and getattr(active, "is_prompt_learning", False):
            return False
    return True


def _left_pad(encoded, pad_id):
    import torch

    width = max(len(ids) for ids in encoded)
    prompt_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        prompt_ids[i, width - len(ids):] = torch.tensor(ids)
        prompt_mask[i, width - len(ids):] = 1
    return prompt_ids, prompt_mask


def _forward_arguments(model) -> tuple[str, set[str]]:
    """The cache keyword of this model's forward (transformers 5 renamed `past_key_values` to
    `cache`) and the names it accepts. PEFT wrappers pass keywords through to the base model."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    accepts = set(inspect.signature(base.forward).parameters)
    return ("cache" if "cache" in accepts else "past_key_values"), accepts


# Rows of (prompt, label) pairs per label forward pass: bounds the repeated cache's memory
# when there are many labels (e.g. 77 intents x 8 prompts).
MAX_PAIR_ROWS = 64


def _score_batch_shared(model, encoded, label_block, label_mask, pad_id, device) -> np.ndarray:
    """[b, n_labels] summed label log-probs: one pass over the prompts, then the labels'
    tokens on top of the prompts' cache, a chunk of labels at a time."""
    import torch
    from transformers import DynamicCache

    b, n_labels, max_label = len(encoded), label_block.shape[0], label_block.shape[1]
    prompt_ids, prompt_mask = _left_pad(encoded, pad_id)
    prompt_positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    cache_arg, accepts = _forward_arguments(model)
    # Only the last position's logits are needed from the prompt pass: skip the vocabulary
    # projection everywhere else where the model allows it.
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in accepts else {}
    out = model(input_ids=prompt_ids.to(device), attention_mask=prompt_mask.to(device),
                position_ids=prompt_positions.to(device), use_cache=True, **last_only)
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if not isinstance(cache, DynamicCache):
        return _score_batch(model, encoded, label_block, label_mask, pad_id, device)
    # The prompt's last logits predict every label's first token.
    first_logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [b, vocab]
    layers = [tuple(t for t in layer if t is not None) for layer in cache]
    lengths = prompt_mask.sum(-1)  # real prompt tokens per row: where the labels start

    result = torch.zeros((b, n_labels))
    chunk = max(1, MAX_PAIR_ROWS // b)
    for lo in range(0, n_labels, chunk):
        labels = label_block[lo:lo + chunk]
        masks = label_mask[lo:lo + chunk]
        n = labels.shape[0]
        # rows are (prompt i, label j) in i-major order
        targets = labels.repeat(b, 1).to(device)
        target_mask = masks.repeat(b, 1).to(device).float()
        token_logp = torch.zeros((b * n, max_label), device=device)
        token_logp[:, 0] = first_logp.repeat_interleave(n, 0).gather(
            -1, targets[:, :1]).squeeze(-1)
        if max_label > 1:
            repeated = DynamicCache(ddp_cache_data=[
                tuple(t.repeat_interleave(n, 0) if t.dim() > 0 else t for t in layer)
                for layer in layers])
            inputs = labels[:, :-1].repeat(b, 1)
            mask = torch.cat([prompt_mask.repeat_interleave(n, 0),
                              masks[:, :-1].repeat(b, 1)], dim=1)
            positions = lengths.repeat_interleave(n, 0)[:, None] + torch.arange(max_label - 1)
            logits = model(input_ids=inputs.to(device), attention_mask=mask.to(device),
                           position_ids=positions.to(device), use_cache=True,
                           **{cache_arg: repeated}).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            token_logp[:, 1:] = logp.gather(-1, targets[:, 1:].unsqueeze(-1)).squeeze(-1)
        result[:, lo:lo + n] = (token_logp * target_mask).sum(-1).view(b, n).cpu()
    return result.numpy()


def _score_batch(model, encoded, label_block, label_mask, pad_id, device) -> np.ndarray:
    """[b, n_labels] summed label log-probs for one batch of tokenised prompts.

    Every (prompt, label) pair is one row: prompt left-padded so all prompts end at the same
    position, label tokens after it. Left padding keeps the prompt's last position fixed, which
    is what makes the label positions line up across rows.
    """
    import torch

    b, n_labels, max_label = len(encoded), label_block.shape[0], label_block.shape[1]
    width = max(len(ids) for ids in encoded)
    prompt_ids = torch.full((b, width), pad_id, dtype=torch.long)
    prompt_mask = torch.zeros((b, width), dtype=torch.long)
    for i, ids in enumerate(encoded):
        prompt_ids[i, width - len(ids):] = torch.tensor(ids)
        prompt_mask[i, width - len(ids):] = 1

    # Repeat each prompt once per label: rows are (prompt i, label j) in i-major order.
    ids = torch.cat([prompt_ids.repeat_interleave(n_labels, 0), label_block.repeat(b, 1)], dim=1)
    mask = torch.cat([prompt_mask.repeat_interleave(n_labels, 0), label_mask.repeat(b, 1)], dim=1)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device),
                   position_ids=position_ids.to(device)).logits.float()
    # The token at position width + t is predicted by the logits at width + t - 1.
    label_logits = logits[:, width - 1 : width - 1 + max_label]
    logp = torch.log_softmax(label_logits, dim=-1)
    targets = label_block.repeat(b, 1).to(device)
    token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    token_logp = token_logp * label_mask.repeat(b, 1).to(device)
    return token_logp.sum(-1).view(b, n_labels).cpu().numpy()


def calibrated_predictions(scores: np.ndarray, content_free: np.ndarray | None) -> np.ndarray:
    """Contextual calibration (Zhao et al. 2021): subtract the label log-prior measured on a
    content-free input ("N/A") before the argmax. `scores` [n, L], `content_free` [L]."""
    if content_free is None:
        return scores.argmax(axis=1)
    prior = content_free - np.logaddexp.reduce(content_free)
    return (scores - prior[None, :]).argmax(axis=1)
