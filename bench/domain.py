"""Domain similarity, measured: how far a dataset's inputs lie from general English text, as
the base model and the sentence encoder see them.

    from bench.data import load_task_data
    from bench.domain import measure_domain, measure_texts
    loaded = load_task_data("tickets.csv")
    loaded.profile["domain"] = measure_domain(loaded.split)      # smollm2-135m + minilm-l6
    measure_texts(["any text", ...], "tiny-llama", "tiny-bert")  # the same on given texts

Two views, each beside the same measure on a general reference (bench/reference: 32 English
Wikipedia paragraphs from SQuAD, CC BY-SA 4.0, see SOURCE.txt there):
- perplexity: the base model's perplexity (exp of the mean token negative log-likelihood) on a
  seeded sample of the train inputs, and on the reference passages cut to the sample's median
  length in tokens. Cutting matters: a short query has a higher per-token perplexity than a long
  paragraph only because its first tokens have no context, so equal lengths make the ratio
  compare the text, not its length. The ratio user / reference is what compares across models
  (each model has its own scale).
- similarity: the sentence encoder's mean cosine between each input and the centroid of the
  reference passages, beside the reference passages' own mean cosine to the centroid of the
  others (leave-one-out): how close general text is to itself, the yardstick for the first.

The record (`profile["domain"]`, what `tunewise data check --domain` shows):
{model, perplexity, reference_perplexity, perplexity_ratio, encoder, similarity_to_reference,
 reference_self_similarity, reference_tokens, rows, seconds}.
torch and the models load here only: the plain data check never imports this module.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.errors import TunewiseError
from bench.models import DEFAULT_ENCODER, DEFAULT_LLM

REFERENCE_PATH = Path(__file__).resolve().parent / "reference" / "general_passages.jsonl"
SAMPLE_ROWS = 32  # inputs measured: enough for a stable mean, a few seconds on 2 cores
MAX_TOKENS = 128  # each input is cut to this many tokens (time grows with it)
MIN_TOKENS = 8  # the reference is never cut shorter than this
BATCH_SIZE = 8


def load_reference(path: Path = REFERENCE_PATH) -> list[str]:
    """The bundled general reference passages."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def input_text(row: dict[str, Any], task: str) -> str:
    """What the model reads of a row: the text to classify, the instruction and its input, the
    passage and question, the prompt (a preference row without one: its chosen answer)."""
    if task == "classification":
        parts = [row.get("text")]
    elif task == "generation":
        parts = [row.get("instruction"), row.get("input")]
    elif task == "qa":
        parts = [row.get("context"), row.get("question")]
    else:
        parts = [row.get("prompt") or row.get("chosen")]
    return "\n".join(str(p).strip() for p in parts if p is not None and str(p).strip())


def sample_inputs(split, rows: int = SAMPLE_ROWS, seed: int = 0) -> list[str]:
    """A seeded sample of up to `rows` non-empty inputs from the train split."""
    texts = [t for t in (input_text(row, split.task) for row in split.train) if t]
    if len(texts) <= rows:
        return texts
    return random.Random(seed).sample(texts, rows)


def text_nlls(model, tokenizer, texts: Sequence[str], *, max_tokens: int,
              batch_size: int = BATCH_SIZE) -> list[tuple[float, int]]:
    """(summed negative log-likelihood, predicted tokens) of each text, cut to `max_tokens`.
    Per text, so the interval can resample texts."""
    import torch
    import torch.nn.functional as F

    side = tokenizer.padding_side
    tokenizer.padding_side = "right"  # positions count from the first real token
    scores: list[tuple[float, int]] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt",
                                  padding=True, truncation=True, max_length=max_tokens)
                batch = batch.to(model.device)
                logits = model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"]).logits
                # prompt tuning prepends virtual tokens: score the text's own positions only
                logits = logits[:, -batch["input_ids"].size(1):]
                labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)[:, 1:]
                nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), labels,
                                      ignore_index=-100, reduction="none")
                counts = (labels != -100).sum(dim=1)
                scores += [(float(s), int(c)) for s, c in zip(nll.sum(dim=1), counts)]
    finally:
        tokenizer.padding_side = side
    return scores


def token_nll(model, tokenizer, texts: Sequence[str], *, max_tokens: int,
              batch_size: int = BATCH_SIZE) -> tuple[float, int]:
    """Summed negative log-likelihood of every predicted token of `texts` (each cut to
    `max_tokens`), and how many tokens were predicted. Summed, not averaged per batch, so every
    token weighs the same whatever batch it fell in."""
    scores = text_nlls(model, tokenizer, texts, max_tokens=max_tokens, batch_size=batch_size)
    return sum(s for s, _ in scores), sum(c for _, c in scores)


def perplexity(model, tokenizer, texts: Sequence[str], *, max_tokens: int,
               batch_size: int = BATCH_SIZE) -> float:
    total, count = token_nll(model, tokenizer, texts, max_tokens=max_tokens,
                             batch_size=batch_size)
    if count == 0:
        raise TunewiseError("no token to measure perplexity on: every input is a single token "
                            "or empty")
    return math.exp(total / count)


def median_tokens(tokenizer, texts: Sequence[str], max_tokens: int) -> int:
    """The sample's median length in tokens, within [MIN_TOKENS, max_tokens]: the length the
    reference passages are cut to."""
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                             max_length=max_tokens)["input_ids"]]
    return int(min(max(statistics.median(lengths), MIN_TOKENS), max_tokens))


def centroid_similarities(texts_embedded, reference_embedded) -> tuple[float, float]:
    """(mean cosine of each text to the reference centroid, mean cosine of each reference
    passage to the centroid of the others). Rows are unit vectors."""
    import numpy as np

    reference = np.asarray(reference_embedded, dtype=np.float64)
    texts = np.asarray(texts_embedded, dtype=np.float64)
    total = reference.sum(axis=0)
    centroid = total / np.linalg.norm(total)
    to_reference = float(np.mean(texts @ centroid))
    others = total[None, :] - reference  # leave-one-out: a passage is not its own yardstick
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    self_similarity = float(np.mean(np.sum(reference * others, axis=1)))
    return to_reference, self_similarity


def measure_texts(texts: Sequence[str], model_name: str = DEFAULT_LLM,
                  encoder_name: str = DEFAULT_ENCODER, *, max_tokens: int = MAX_TOKENS,
                  batch_size: int = BATCH_SIZE, reference: Sequence[str] | None = None,
                  load_model: Callable | None = None) -> dict[str, Any]:
    """The domain record for these texts (see the module docstring)."""
    started = time.perf_counter()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise TunewiseError("no input text to measure the domain on")
    if load_model is None:
        from bench.models import load_model
    reference = list(reference) if reference is not None else load_reference()

    model, tokenizer = load_model(model_name, "causal-lm")
    model.eval()
    user = perplexity(model, tokenizer, texts, max_tokens=max_tokens, batch_size=batch_size)
    cut = median_tokens(tokenizer, texts, max_tokens)
    general = perplexity(model, tokenizer, reference, max_tokens=cut, batch_size=batch_size)
    del model

    encoder, _ = load_model(encoder_name, "sentence-encoder")
    embed = dict(normalize_embeddings=True, convert_to_numpy=True, batch_size=32,
                 show_progress_bar=False)
    to_reference, self_similarity = centroid_similarities(encoder.encode(list(texts), **embed),
                                                          encoder.encode(reference, **embed))
    return {
        "model": model_name,
        "perplexity": round(user, 2),
        "reference_perplexity": round(general, 2),
        "perplexity_ratio": round(user / general, 3),
        "encoder": encoder_name,
        "similarity_to_reference": round(to_reference, 3),
        "reference_self_similarity": round(self_similarity, 3),
        "reference_tokens": cut,
        "rows": len(texts),
        "seconds": round(time.perf_counter() - started, 2),
    }


def measure_domain(split, model_name: str = DEFAULT_LLM, encoder_name: str = DEFAULT_ENCODER,
                   *, rows: int = SAMPLE_ROWS, seed: int = 0, max_tokens: int = MAX_TOKENS,
                   batch_size: int = BATCH_SIZE, load_model: Callable | None = None
                   ) -> dict[str, Any]:
    """The domain record of a TaskSplit: `measure_texts` on a seeded sample of its train inputs."""
    return measure_texts(sample_inputs(split, rows, seed), model_name, encoder_name,
                         max_tokens=max_tokens, batch_size=batch_size, load_model=load_model)
