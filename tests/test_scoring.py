"""Label scoring must equal the log-probabilities computed one sequence at a time."""

import numpy as np
import torch

from bench.models import load_model
from strategies.scoring import calibrated_predictions, label_logprobs


def slow_logp(model, tokenizer, prompt, label):
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    label_ids = tokenizer(label, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids + label_ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    return sum(logp[len(prompt_ids) - 1 + t, tok].item() for t, tok in enumerate(label_ids))


def test_batched_label_scoring_matches_one_at_a_time():
    model, tokenizer = load_model("tiny-llama")
    prompts = ["hello world, this is a longer prompt", "a", "short one"]
    labels = ["positive", "negative sentiment", "x"]
    scores = label_logprobs(model, tokenizer, prompts, labels, batch_size=2)
    expected = np.array([[slow_logp(model, tokenizer, p, l) for l in labels] for p in prompts])
    np.testing.assert_allclose(scores.sum_logp, expected, rtol=1e-4, atol=1e-4)
    assert scores.n_tokens.tolist() == [
        len(tokenizer(l, add_special_tokens=False)["input_ids"]) for l in labels]


def test_contextual_calibration_removes_a_constant_label_prior():
    # Label 0 is favoured by a constant offset everywhere; calibration on the content-free
    # scores (the same offset) recovers the true argmax.
    true = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])
    biased = true + np.array([5.0, 0.0])
    assert calibrated_predictions(biased, None).tolist() == [0, 0, 0]
    assert calibrated_predictions(biased, np.array([5.0, 0.0])).tolist() == [1, 0, 1]


def test_shared_prompt_cache_equals_full_pairs():
    """The KV-cache-sharing path and the one-pass-per-pair path give the same scores,
    including labels of different lengths and more labels than one chunk holds."""
    from strategies import scoring

    model, tokenizer = load_model("tiny-llama")
    prompts = ["first prompt, a little longer than the others", "b", "third"]
    labels = ["alpha", "beta gamma delta", "x", "card not arrived yet", "e"]
    shared = label_logprobs(model, tokenizer, prompts, labels, batch_size=3)
    original = scoring.MAX_PAIR_ROWS
    scoring.MAX_PAIR_ROWS = 4  # 3 prompts per batch: one label per chunk
    try:
        chunked = label_logprobs(model, tokenizer, prompts, labels, batch_size=3)
    finally:
        scoring.MAX_PAIR_ROWS = original
    label_ids = scoring.label_token_ids(tokenizer, labels)
    block = torch.zeros((len(labels), max(map(len, label_ids))), dtype=torch.long)
    mask = torch.zeros_like(block)
    for j, ids in enumerate(label_ids):
        block[j, :len(ids)] = torch.tensor(ids)
        mask[j, :len(ids)] = 1
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    with torch.no_grad():
        full = scoring._score_batch(model, encoded, block, mask, tokenizer.pad_token_id, "cpu")
    np.testing.assert_allclose(shared.sum_logp, full, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(chunked.sum_logp, full, rtol=1e-4, atol=1e-4)
