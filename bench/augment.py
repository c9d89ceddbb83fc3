"""Data augmentation: paraphrases of the train inputs, written by a language model, cached.

    tunewise bench --data tickets.csv --strategies lora --augment paraphrase:2

    from bench.augment import augment_split, parse_augment
    facts = augment_split(split, parse_augment("paraphrase:2"), "smollm2-135m")
    # split.train now holds each row plus up to 2 paraphrases of its input, label kept

`paraphrase[:N]` asks the base model of the run (the bundled SmolLM2-135M-Instruct unless
--model names another) for N paraphrases of each train row's input (the text to classify, the
instruction, the question), by sampling from a few-shot prompt of hand-written sentence pairs,
and adds them as new train rows with the row's label / output / answer unchanged. Ovadia et al.
2023 ("Fine-Tuning or Retrieval?") found paraphrase augmentation lifts knowledge injection;
whether it helps a task is measured, not assumed (README: a run with and without).

Only the train split is augmented, after the split is made: validation and test rows (and
their paraphrases) never enter training, so the early stopping and the scores stay honest.
Every candidate of the run sees the same augmented train split (it is written into split.json).

A small model writes poor paraphrases: some answer the question instead of rewording it, some
drift. The filter keeps a paraphrase only when it is one line, not a copy of its source or of
another kept one, within a third to three times its source's length in words, not cut off at
the token limit, and still a question when its source was; the record says how many were kept.

Cached per train rows, request and generator under $TUNEWISE_CACHE/augment (default
~/.cache/tunewise/augment), so a rerun on the same data reads the rows back instead of
generating them. The facts go to plan.options["augmentation"] and from there into every
record (bench.schema.Augmentation).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.errors import TunewiseError

# Generation runs in the driver process, which bench.child's setting does not reach: without
# PASSIVE waiting, OpenMP threads spin and a shared machine runs torch several times slower
# (see bench/child.py). Set here, before torch loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

METHODS = ("paraphrase",)
DEFAULT_PER_ROW = 2
MAX_PER_ROW = 10
BATCH_SIZE = 8  # sources per generate() call (each gives per_row sequences)
MAX_NEW_TOKENS = 64
PROMPT_VERSION = 1  # part of the cache key: a new prompt or filter makes new rows
# The field a paraphrase rewrites, per task kind; the other fields are copied unchanged.
INPUT_FIELD = {"classification": "text", "generation": "instruction", "qa": "question"}
# Hand-written pairs (this project's own text) that show the model what a paraphrase is:
# statements stay statements, questions stay questions, the meaning is kept.
SHOTS = (
    ("The weather is nice today, so I will go for a walk.",
     "It is a lovely day, so I am going out for a walk."),
    ("Can you tell me where the nearest train station is?",
     "Where is the closest train station, please?"),
    ("My laptop stopped working after the update.",
     "Since the update, my laptop does not work anymore."),
    ("How long does it take to get a reply from the office?",
     "When can I expect the office to answer me?"),
)


def parse_augment(text: str) -> dict[str, Any]:
    """`paraphrase` or `paraphrase:N` -> {"method": "paraphrase", "per_row": N}."""
    method, _, count = text.strip().partition(":")
    if method not in METHODS:
        raise TunewiseError(f"--augment {text!r}: unknown method {method!r}; use "
                            f"{' or '.join(METHODS)}[:N], e.g. paraphrase:2")
    try:
        per_row = int(count) if count else DEFAULT_PER_ROW
    except ValueError:
        raise TunewiseError(f"--augment {text!r}: N must be a whole number, e.g. "
                            "paraphrase:2") from None
    if not 1 <= per_row <= MAX_PER_ROW:
        raise TunewiseError(f"--augment {text!r}: N must be between 1 and {MAX_PER_ROW}")
    return {"method": method, "per_row": per_row}


def cache_root() -> Path:
    root = Path(os.environ.get("TUNEWISE_CACHE", Path.home() / ".cache" / "tunewise"))
    return root / "augment"


# --------------------------------------------------------------------------- generating


def few_shot_prompt(source: str) -> str:
    shots = "".join(f"Sentence: {a}\nSame meaning, other words: {b}\n\n" for a, b in SHOTS)
    return f"{shots}Sentence: {source}\nSame meaning, other words:"


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def keep_paraphrase(source: str, candidate: str, kept: Sequence[str]) -> bool:
    """The filter of the module docstring (truncation is checked by the caller)."""
    if not candidate or "\n" in candidate:
        return False
    words, source_words = _words(candidate), _words(source)
    if not words or words == source_words or any(words == _words(k) for k in kept):
        return False
    if not len(source_words) / 3 <= len(words) <= 3 * max(len(source_words), 1):
        return False
    return not source.rstrip().endswith("?") or candidate.rstrip().endswith("?")


def paraphrase_texts(texts: Sequence[str], per_row: int, model, tokenizer, *, seed: int = 0,
                     batch_size: int = BATCH_SIZE,
                     on_batch: Callable[[int, int], None] = lambda done, total: None
                     ) -> list[list[str]]:
    """Up to `per_row` kept paraphrases of each text (sampled, temperature 0.7, top-p 0.9).
    A text with a line break is not paraphrased (the prompt is one line per sentence)."""
    import torch

    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the last real token
    results: list[list[str]] = [[] for _ in texts]
    todo = [i for i, text in enumerate(texts) if text.strip() and "\n" not in text.strip()]
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            torch.manual_seed(seed + start)  # the same rows for the same data, batch by batch
            batch = tokenizer([few_shot_prompt(texts[i].strip()) for i in chunk],
                              return_tensors="pt", padding=True).to(model.device)
            with torch.inference_mode():
                out = model.generate(**batch, do_sample=True, temperature=0.7, top_p=0.9,
                                     max_new_tokens=MAX_NEW_TOKENS, num_return_sequences=per_row,
                                     stop_strings=["\n"], tokenizer=tokenizer,
                                     pad_token_id=tokenizer.pad_token_id)
            new = out[:, batch["input_ids"].shape[1]:]
            for row, ids in enumerate(new):
                source = texts[chunk[row // per_row]].strip()
                text = tokenizer.decode(ids, skip_special_tokens=True)
                ended = "\n" in text or int((ids != tokenizer.pad_token_id).sum()) < MAX_NEW_TOKENS
                candidate = text.split("\n")[0].strip().strip('"').strip()
                kept = results[chunk[row // per_row]]
                if ended and keep_paraphrase(source, candidate, kept):
                    kept.append(candidate)
            on_batch(min(start + batch_size, len(todo)), len(todo))
    finally:
        tokenizer.padding_side = side
    return results


def augmented_rows(rows: Sequence[dict[str, Any]], field: str,
                   paraphrases: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """The new rows: a copy of each source row with its input replaced by a paraphrase."""
    return [{**row, field: text} for row, texts in zip(rows, paraphrases) for text in texts]


# --------------------------------------------------------------------------- cache


def cache_key(rows: Sequence[dict[str, Any]], field: str, request: dict[str, Any],
              generator: str) -> str:
    """Same train rows, same request, same generator -> same key (and the same rows)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"field": field, "request": request, "generator": generator,
                              "version": PROMPT_VERSION}, sort_keys=True).encode())
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    return digest.hexdigest()[:20]


def _read_cache(path: Path) -> list[list[str]] | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))["paraphrases"]
    except (OSError, ValueError, KeyError):
        return None  # a broken cache file is regenerated, not trusted


def _write_cache(path: Path, paraphrases: list[list[str]], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps({**meta, "paraphrases": paraphrases}, ensure_ascii=False),
                         encoding="utf-8")
    os.replace(temporary, path)


# --------------------------------------------------------------------------- the split


def augment_split(split, request: dict[str, Any], model_name: str, *,
                  load_model: Callable | None = None, cache: Path | None = None,
                  seed: int = 0) -> dict[str, Any]:
    """Add the paraphrase rows to split.train (in place); return the facts for the records."""
    field = INPUT_FIELD.get(split.task)
    if field is None:
        raise TunewiseError(f"--augment paraphrase supports "
                            f"{', '.join(INPUT_FIELD)} tasks, not {split.task}")
    rows = list(split.train)
    texts = [str(row.get(field) or "") for row in rows]
    path = (cache or cache_root()) / f"{cache_key(rows, field, request, model_name)}.json"
    started = time.perf_counter()
    paraphrases = _read_cache(path)
    cached = paraphrases is not None and len(paraphrases) == len(rows)
    if not cached:
        if load_model is None:
            from bench.models import load_model
        with _quiet_loading():  # the run's own display owns the terminal
            model, tokenizer = load_model(model_name, "causal-lm")
        model.eval()
        paraphrases = paraphrase_texts(texts, request["per_row"], model, tokenizer, seed=seed)
        _write_cache(path, paraphrases, {"generator": model_name, "request": request,
                                         "field": field})
    added = augmented_rows(rows, field, paraphrases)
    split.train = rows + added
    return {"method": request["method"], "per_row": request["per_row"],
            "generator": model_name, "field": field, "rows_before": len(rows),
            "rows_added": len(added), "asked": len(rows) * request["per_row"],
            "cache": str(path), "cached": cached,
            "seconds": 0.0 if cached else round(time.perf_counter() - started, 2)}


@contextlib.contextmanager
def _quiet_loading():
    """No "Loading weights" bars from transformers while the generator loads."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def augment_loaded(plan, loaded, model: str) -> None:
    """bench.plan's hook, after the split and before split.json is written: augment the train
    split when the plan asks (--augment), and note the facts in plan.options["augmentation"]
    (the manifest keeps them; every job carries them into its record). `model` writes the
    paraphrases: the first base model when several run (--model a,b)."""
    request = plan.options.get("augment")
    if not request:
        return
    plan.options["augmentation"] = augment_split(loaded.split, request, model, seed=plan.seed)
