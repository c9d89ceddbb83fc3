"""Token lengths of the rows: counted with the model's tokenizer when it is at hand (never its
weights), else as words; rows past the context or far past the median are warned of."""

from __future__ import annotations

import json
import math
from array import array
from pathlib import Path
from typing import Any

from bench.data.messages import Report, plural

# Rows longer than this many tokens get a warning when no tokenizer tells the real context.
DEFAULT_CONTEXT_TOKENS = 4096


def _row_text(row: dict[str, Any]) -> str:
    return "\n".join(str(v) for k, v in row.items() if k != "answers")


def load_tokenizer(model_name: str | None, report: Report):
    """A tokenizer for length counts, never model weights; None -> a cheap word count."""
    if not model_name:
        return None
    try:
        from bench import models

        bundled_dirs = {"smollm2-135m": models.cache_dir() / "smollm2-135m-instruct",
                        "tiny-llama": models.cache_dir() / "tiny-llama",
                        "tiny-bert": models.cache_dir() / "tiny-bert"}
        if model_name in bundled_dirs:
            path = bundled_dirs[model_name]  # only once converted: converting loads weights
            if not (path / "tokenizer_config.json").exists():
                raise FileNotFoundError(path)
        elif model_name == "minilm-l6":
            path = models.minilm_dir()
        else:
            path = models.resolve(model_name).path
        return _FastLengthTokenizer.load(Path(path))
    except Exception as exc:  # any failure only costs precision: fall back to word counts
        report.note(f"tokenizer of {model_name!r} not available ({type(exc).__name__}): "
                    f"lengths are word/punctuation counts")
        return None


class _FastLengthTokenizer:
    """Counts tokens with the `tokenizers` library straight from a model's tokenizer.json.

    transformers' AutoTokenizer gives the same ids but importing transformers costs the parent
    process seconds per run (measured: 6 s vs 0.07 s at load 3), and counting is all the parent
    needs a tokenizer for. Models without a tokenizer.json fall back to AutoTokenizer."""

    def __init__(self, encode_batch, model_max_length: int | None):
        self._encode_batch = encode_batch
        self.model_max_length = model_max_length

    @classmethod
    def load(cls, path: Path) -> "_FastLengthTokenizer":
        config_file = path / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
        max_length = config.get("model_max_length")
        if (path / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            fast = Tokenizer.from_file(str(path / "tokenizer.json"))
            return cls(lambda texts: [e.ids for e in fast.encode_batch(texts,
                                                                       add_special_tokens=False)],
                       max_length)
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        return cls(lambda texts: slow(texts, add_special_tokens=False)["input_ids"],
                   slow.model_max_length)

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict[str, list]:
        return {"input_ids": self._encode_batch(texts)}


def _token_lengths(rows: list[dict[str, Any]], tokenizer) -> array:
    """Tokens (or whitespace words) per row, in chunks so the text is never copied whole."""
    if tokenizer is None:
        return array("q", (len(_row_text(row).split()) for row in rows))
    lengths = array("q")
    for start in range(0, len(rows), 2048):
        texts = [_row_text(row) for row in rows[start:start + 2048]]
        lengths.extend(len(ids) for ids in
                       tokenizer(texts, add_special_tokens=False)["input_ids"])
    return lengths


def _percentile(sorted_values, q: float) -> int:
    """The nearest-rank percentile: a length that some row really has."""
    if not len(sorted_values):
        return 0
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return int(sorted_values[index])


def check_lengths(rows: list[dict[str, Any]], tokenizer, report: Report) -> dict[str, int]:
    lengths = _token_lengths(rows, tokenizer)
    import numpy as np

    ordered = np.sort(np.frombuffer(lengths, dtype=np.int64) if len(lengths) else
                      np.zeros(0, dtype=np.int64))
    stats = {"p50": _percentile(ordered, 50), "p90": _percentile(ordered, 90),
             "p99": _percentile(ordered, 99), "max": int(ordered[-1]) if len(ordered) else 0}
    unit = "tokens" if tokenizer is not None else "tokens (word estimate)"
    context = getattr(tokenizer, "model_max_length", None) if tokenizer is not None else None
    if not context or context > 1_000_000:  # tokenizers without a limit report a huge number
        context = DEFAULT_CONTEXT_TOKENS
    too_long = sum(n > context for n in lengths)
    if too_long:
        report.warn(f"{plural(too_long, 'row')} longer than {context} {unit}, the model's context: "
                    f"they will be truncated")
    outlier_limit = max(10 * stats["p50"], 256)
    outliers = sum(n > outlier_limit for n in lengths)
    if outliers and len(lengths) >= 20:
        report.warn(f"{plural(outliers, 'row')} over {outlier_limit} {unit} (10x the median of "
                    f"{stats['p50']}); the longest has {stats['max']}: they dominate time and "
                    f"memory")
    return stats
