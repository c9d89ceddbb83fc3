"""Model shapes for the pre-run estimator (advisor.estimate): sizes only, never weights.

Built-in shapes come from the published config.json of common models, so a 7B estimate needs no
download; any other model's shape is read from its config.json.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError


@dataclass(frozen=True)
class ModelShape:
    """What the estimator needs to know about a model: sizes only, never weights."""

    name: str
    params: int  # all parameters
    layers: int
    hidden_size: int
    vocab_size: int
    intermediate_size: int
    heads: int
    kv_heads: int
    causal_lm: bool = True  # has an output head over the vocabulary
    tied_embeddings: bool = True

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def matmul_params(self) -> int:
        """Parameters touched by a matmul per token: all but the input embedding lookup, plus
        the output head (which re-uses the embedding matrix when tied)."""
        body = self.params - self.embedding_params * (1 if self.tied_embeddings else 2)
        head = self.embedding_params if self.causal_lm else 0
        if not self.causal_lm and not self.tied_embeddings:
            body = self.params - self.embedding_params
        return max(body, 0) + head

    @property
    def linear_params(self) -> int:
        """Weights inside the transformer blocks' linear layers (what NF4 quantises)."""
        head_dim = self.hidden_size // max(self.heads, 1)
        attention = 2 * self.hidden_size**2 + 2 * self.hidden_size * self.kv_heads * head_dim
        mlp = (3 if self.causal_lm else 2) * self.hidden_size * self.intermediate_size
        return self.layers * (attention + mlp)


def _llama_like(name: str, layers: int, hidden: int, intermediate: int, vocab: int, heads: int,
                kv_heads: int, tied: bool) -> ModelShape:
    head_dim = hidden // heads
    per_layer = (2 * hidden * hidden + 2 * hidden * kv_heads * head_dim  # q, o, k, v
                 + 3 * hidden * intermediate + 2 * hidden)  # gated MLP, two norms
    params = layers * per_layer + vocab * hidden * (1 if tied else 2) + hidden
    return ModelShape(name, params, layers, hidden, vocab, intermediate, heads, kv_heads,
                      True, tied)


def _bert_like(name: str, layers: int, hidden: int, intermediate: int, vocab: int,
               heads: int, positions: int = 512) -> ModelShape:
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate + 9 * hidden + intermediate
    params = layers * per_layer + (vocab + positions + 2) * hidden + 2 * hidden + hidden * hidden
    return ModelShape(name, params, layers, hidden, vocab, intermediate, heads, heads,
                      False, False)


# Common shapes, from their published config.json, so a 7B estimate needs no download.
BUILTIN_SHAPES: dict[str, ModelShape] = {
    "smollm2-135m": _llama_like("smollm2-135m", 30, 576, 1536, 49152, 9, 3, True),
    "smollm2-360m": _llama_like("smollm2-360m", 32, 960, 2560, 49152, 15, 5, True),
    "smollm2-1.7b": _llama_like("smollm2-1.7b", 24, 2048, 8192, 49152, 32, 32, True),
    "llama-2-7b": _llama_like("llama-2-7b", 32, 4096, 11008, 32000, 32, 32, False),
    "llama-2-13b": _llama_like("llama-2-13b", 40, 5120, 13824, 32000, 40, 40, False),
    "llama-3-8b": _llama_like("llama-3-8b", 32, 4096, 14336, 128256, 32, 8, False),
    "mistral-7b": _llama_like("mistral-7b", 32, 4096, 14336, 32000, 32, 8, False),
    "tiny-llama": _llama_like("tiny-llama", 2, 64, 128, 49152, 4, 2, True),
    "minilm-l6": _bert_like("minilm-l6", 6, 384, 1536, 30522, 12),
    "tiny-bert": _bert_like("tiny-bert", 2, 64, 128, 30522, 2),
}
_ALIASES = {
    "huggingfacetb/smollm2-135m-instruct": "smollm2-135m",
    "huggingfacetb/smollm2-135m": "smollm2-135m",
    "huggingfacetb/smollm2-360m-instruct": "smollm2-360m",
    "huggingfacetb/smollm2-1.7b-instruct": "smollm2-1.7b",
    "huggingfacetb/smollm2-1.7b": "smollm2-1.7b",
    "meta-llama/llama-2-7b-hf": "llama-2-7b",
    "meta-llama/llama-2-7b-chat-hf": "llama-2-7b",
    "meta-llama/llama-2-13b-hf": "llama-2-13b",
    "meta-llama/meta-llama-3-8b": "llama-3-8b",
    "meta-llama/meta-llama-3-8b-instruct": "llama-3-8b",
    "mistralai/mistral-7b-v0.1": "mistral-7b",
    "mistralai/mistral-7b-instruct-v0.2": "mistral-7b",
    "sentence-transformers/all-minilm-l6-v2": "minilm-l6",
}


# Decoders whose published shape stands in for a model known only by its size (model.params_b
# without model.base): one Llama-style family per size, so a "7B" is Llama-2-7B's shape.
REFERENCE_SHAPES = ("smollm2-135m", "smollm2-360m", "smollm2-1.7b", "llama-2-7b", "llama-2-13b")
REFERENCE_TOLERANCE = 1.5  # the nearest reference may be this many times larger or smaller


def reference_shape(params_b: float) -> ModelShape:
    """The reference decoder nearest in size to `params_b` billion parameters, or a
    TunewiseError when none is within REFERENCE_TOLERANCE (its estimates would be off by more)."""
    if not params_b or params_b <= 0:
        raise TunewiseError(f"model.params_b must be a positive number of billions (got "
                            f"{params_b!r})")
    shapes = [BUILTIN_SHAPES[name] for name in REFERENCE_SHAPES]
    nearest = min(shapes, key=lambda shape: abs(math.log(shape.params / (params_b * 1e9))))
    ratio = max(nearest.params / (params_b * 1e9), params_b * 1e9 / nearest.params)
    if ratio > REFERENCE_TOLERANCE:
        sizes = ", ".join(f"{s.name} ({s.params / 1e9:.2g}B)" for s in shapes)
        raise TunewiseError(f"no reference model shape within {REFERENCE_TOLERANCE:g}x of "
                            f"{params_b:g}B parameters (references: {sizes}); name the model in "
                            "model.base, or give its config.json to `tunewise estimate`")
    return nearest


def builtin_shape(name: str) -> ModelShape | None:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return BUILTIN_SHAPES.get(key)


def shape_from_config(config: dict[str, Any], name: str = "custom") -> ModelShape:
    """A shape from a Hugging Face config.json dict (Llama/Mistral/Qwen-style or BERT-style)."""
    try:
        hidden = int(config.get("hidden_size") or config["d_model"])
        layers = int(config.get("num_hidden_layers") or config["num_layers"])
        vocab = int(config["vocab_size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TunewiseError(f"model config {name!r} lacks {exc}: need hidden_size, "
                            "num_hidden_layers and vocab_size") from None
    heads = int(config.get("num_attention_heads") or max(hidden // 64, 1))
    kv_heads = int(config.get("num_key_value_heads") or heads)
    intermediate = int(config.get("intermediate_size") or 4 * hidden)
    model_type = str(config.get("model_type", "")).lower()
    if model_type in ("bert", "roberta", "distilbert", "xlm-roberta", "deberta", "deberta-v2",
                      "electra", "mpnet"):
        return _bert_like(name, layers, hidden, intermediate, vocab, heads,
                          int(config.get("max_position_embeddings") or 512))
    tied = bool(config.get("tie_word_embeddings", False))
    return _llama_like(name, layers, hidden, intermediate, vocab, heads, kv_heads, tied)


def shape_for(model: str, config_path: str | os.PathLike | None = None) -> ModelShape:
    """The shape of `model`: a config.json given, a built-in shape, a local folder's config.json,
    or (bundled or cached models only) bench.models.model_info, which imports transformers."""
    if config_path is not None:
        return shape_from_config(_read_config(Path(config_path)), model)
    shape = builtin_shape(model)
    if shape is not None:
        return shape
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        return shape_from_config(_read_config(folder / "config.json"), folder.name)
    from bench.models import check_model_name

    check_model_name(model, known=known_model_names())  # a misspelt name: the closest one
    return _shape_from_model_info(model)


def known_model_names() -> list[str]:
    """The model names the advisor knows without a download: the bundled models (they run)
    and the built-in shapes (estimated only)."""
    from bench.models import BUNDLED

    return list(dict.fromkeys([*BUNDLED, *BUILTIN_SHAPES]))


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TunewiseError(f"cannot read model config {path}: {exc}") from None


def _shape_from_model_info(model: str) -> ModelShape:
    from bench.models import model_info

    info = model_info(model)
    causal = "CausalLM" in str(info.get("architecture", "")) or info.get("has_chat_template")
    hidden = info["hidden_size"]
    return ModelShape(model, int(info["params"]), int(info["layers"]), int(hidden),
                      int(info["vocab_size"]), int(info.get("intermediate_size") or 4 * hidden),
                      int(info.get("num_attention_heads") or 1),
                      int(info.get("num_key_value_heads") or info.get("num_attention_heads") or 1),
                      bool(causal), True)
