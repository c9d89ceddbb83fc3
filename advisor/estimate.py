"""Pre-run estimates of peak memory, time and cost for a candidate, from the model's shape alone.

    from advisor.estimate import estimate, shape_for, this_machine
    shape = shape_for("mistral-7b")                      # built in: no download, no torch
    est = estimate("qlora", shape, Workload(train_rows=1000, seq_len=512, batch_size=4),
                   machine=gpu_machine(gpu_memory_gb=24))
    est.peak_memory_gb, est.time_s, est.cost_usd, est.breakdown

Formulas (all stated so that a user can check them; bytes per parameter b_w of the weights):
- weights: params x b_w (fp32 4 on CPU, bf16 2 on GPU); NF4 (QLoRA) stores the linear layers at
  ~0.52 B/param (4 bits + double-quantised constants, Dettmers et al. 2023) and keeps the
  embeddings in the compute dtype. SmolLM2-135M: 55 MB + 113 MB = 168 MB, measured 166 MB.
- gradients: one per trained parameter, in fp32 (4 B) for adapters and on CPU, b_w otherwise.
- optimizer: AdamW keeps two fp32 moments (8 B per trained parameter); mixed-precision full
  fine-tuning on a GPU adds fp32 master weights (4 B) -> the familiar ~16 B/param.
- activations, per layer: seq x batch x hidden x 34 bytes in 16-bit (Korthikanti et al. 2022,
  "Reducing Activation Recomputation in Large Transformer Models", eq. 1 without recomputation;
  its 5 x heads x seq / hidden term for the stored attention scores is dropped because
  PyTorch's scaled_dot_product_attention, the transformers default, does not keep them),
  doubled in fp32; plus the logits, seq x batch x vocab x 4 B x 2
  (the fp32 logits and their gradient) for causal LMs. Frozen-base PEFT keeps the same
  activations because the backward pass still runs through them (Biderman et al. 2024 measured
  only ~15-40 % less peak memory for LoRA at equal batch).
- time: FLOPs over the machine's effective FLOP/s. Training ~6 x params x tokens (full: forward
  2 + backward 4), ~4 x for a frozen base with adapters (no weight gradients), inference 2 x
  (Kaplan et al. 2020). `params` here are the matmul parameters: embeddings are a lookup, but a
  causal LM's output head is a matmul (tied or not).
- cost: time x price per hour of the hardware (bench/prices.toml when present).
Calibrated on this project's 2-core CPU (DESIGN.md): see tests/test_estimate.py.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError

GB = 1024**3


# --------------------------------------------------------------------------- model shapes


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
    return _shape_from_model_info(model)


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


# --------------------------------------------------------------------------- the machine

# Peak dense bf16 tensor-core TFLOP/s (vendor data sheets) and an assumed model FLOPs
# utilisation: ~35 % is typical of Hugging Face training loops at small batch.
GPU_PEAK_TFLOPS: dict[str, float] = {
    "h200": 989.0, "h100": 989.0, "a100": 312.0, "a10": 125.0, "l40": 181.0, "l4": 121.0,
    "4090": 165.0, "3090": 71.0, "v100": 125.0, "t4": 65.0,
}
GPU_MFU = 0.35
DEFAULT_GPU = "a10"  # when only the memory is known (a 24 GB card)

# Effective FLOP/s of transformer work on the CPU = measured matmul FLOP/s x this efficiency.
# The measured runs of DESIGN.md imply ~1.3e11 FLOP/s effective on this project's 2-core CPU.
CPU_EFFICIENCY = 0.9
REFERENCE_CPU_FLOPS = 1.3e11  # the 2-core CPU of DESIGN.md's measurements (see the tests)

# $/hour, used when bench/prices.toml is absent (rough 2026 on-demand cloud list prices).
DEFAULT_PRICES: dict[str, float] = {
    "cpu": 0.10, "h200": 4.50, "h100": 3.50, "a100": 2.00, "a10": 1.00, "l40": 1.50,
    "l4": 0.80, "4090": 0.70, "3090": 0.40, "v100": 1.20, "t4": 0.40,
}


@dataclass(frozen=True)
class Machine:
    """Where a candidate would run: effective FLOP/s, memory limit and price."""

    kind: str  # "cpu" or a GPU key of GPU_PEAK_TFLOPS
    flops: float  # effective FLOP/s for transformer training/inference
    memory_gb: float | None  # the limit a candidate must fit (GPU memory, or RAM on CPU)
    price_per_hour: float
    source: str = ""  # how `flops` was obtained, shown to the user

    @property
    def cuda(self) -> bool:
        return self.kind != "cpu"


def gpu_key(gpu_name: str | None) -> str:
    text = (gpu_name or "").lower()
    for key in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True):
        if key in text:
            return key
    return DEFAULT_GPU


def prices() -> dict[str, float]:
    """$/hour per hardware key: bench/prices.toml (the harness's table, user-editable) over
    the built-in defaults."""
    table = dict(DEFAULT_PRICES)
    path = Path(__file__).resolve().parent.parent / "bench" / "prices.toml"
    if path.is_file():
        import tomllib

        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            return table
        cpu = data.get("cpu")
        table.update(_flatten_prices(data))
        if isinstance(cpu, dict) and isinstance(cpu.get("usd_per_core_hour"), (int, float)):
            # priced per core, like a cloud vCPU: scale to this machine's cores
            table["cpu"] = float(cpu["usd_per_core_hour"]) * (os.cpu_count() or 1)
    return table


def _flatten_prices(data: dict[str, Any]) -> dict[str, float]:
    """Rows `[name] usd_per_hour = 1.0` (optionally `match = "A100"`) or `name = 1.0`, keyed by
    the GPU they name; rows that name no known hardware (e.g. `laptop`) are left out."""
    found: dict[str, float] = {}
    for key, value in data.items():
        per_hour = value if isinstance(value, (int, float)) else (
            value.get("usd_per_hour") if isinstance(value, dict) else None)
        if not isinstance(per_hour, (int, float)):
            continue
        name = str(value.get("match", key)) if isinstance(value, dict) else key
        known = next((g for g in sorted(GPU_PEAK_TFLOPS, key=len, reverse=True)
                      if g in name.lower()), None)
        if key.lower() == "cpu":
            found["cpu"] = float(per_hour)
        elif known:
            found[known] = float(per_hour)
    return found


def gpu_machine(gpu_name: str | None = None, gpu_memory_gb: float | None = None) -> Machine:
    key = gpu_key(gpu_name)
    return Machine(key, GPU_PEAK_TFLOPS[key] * 1e12 * GPU_MFU, gpu_memory_gb,
                   prices().get(key, DEFAULT_PRICES[DEFAULT_GPU]),
                   f"{key} peak {GPU_PEAK_TFLOPS[key]:.0f} TFLOP/s x MFU {GPU_MFU}")


def throughput_cache() -> Path:
    root = Path(os.environ.get("TUNEWISE_CACHE", Path.home() / ".cache" / "tunewise"))
    return root / "cpu_throughput.json"


def measure_cpu_matmul_flops(repeats: int = 20) -> float:
    """Best-of-N FLOP/s of a model-shaped fp32 matmul (1024 tokens x 576 -> 1536, SmolLM2's
    MLP). Best-of because the machine may be shared: we want what it can do, not its worst."""
    import torch

    a, b = torch.randn(1024, 576), torch.randn(576, 1536)
    a @ b  # warm up the kernels
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 1024 * 576 * 1536 / max(time.perf_counter() - start, 1e-9))
    return best


def cpu_flops(refresh: bool = False) -> tuple[float, str]:
    """Effective CPU FLOP/s and where the number came from: $TUNEWISE_CPU_FLOPS, the cache, or
    a fresh measurement (a second, then cached for this machine's core count)."""
    if os.environ.get("TUNEWISE_CPU_FLOPS"):
        return float(os.environ["TUNEWISE_CPU_FLOPS"]), "$TUNEWISE_CPU_FLOPS"
    cache, cores = throughput_cache(), os.cpu_count() or 1
    if cache.is_file() and not refresh:
        try:
            data = json.loads(cache.read_text())
            if data.get("cores") == cores:
                return float(data["effective_flops"]), (
                    f"measured {data['measured_at']} at load {data.get('load_average', '?')}, "
                    f"cached in {cache}")
        except (OSError, ValueError, KeyError):
            pass
    matmul = measure_cpu_matmul_flops()
    # A shared machine measures slow: keep the load beside the number so the user can judge
    # it (`tunewise estimate` shows it; delete the cache file or set $TUNEWISE_CPU_FLOPS).
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    data = {"cores": cores, "matmul_flops": matmul, "efficiency": CPU_EFFICIENCY,
            "effective_flops": matmul * CPU_EFFICIENCY, "load_average": round(load, 1),
            "measured_at": time.strftime("%Y-%m-%d")}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(data, indent=1))
    except OSError:
        pass  # a read-only home: measure again next time
    return data["effective_flops"], f"measured now at load {data['load_average']}"


def this_machine(hardware: dict[str, Any] | None = None, *, gpu_memory_gb: float | None = None,
                 cpu_only: bool = False, measure: bool = True) -> Machine:
    """The machine described by a bench.hardware.probe() dict and the user's answers.
    `measure=False` uses the reference CPU instead of measuring (pure, for tests and snapshots)."""
    hardware = hardware or {}
    memory = gpu_memory_gb if gpu_memory_gb is not None else hardware.get("gpu_memory_gb")
    if not cpu_only and (hardware.get("cuda") or gpu_memory_gb):
        return gpu_machine(hardware.get("gpu"), memory)
    flops, source = (cpu_flops() if measure else (REFERENCE_CPU_FLOPS, "reference 2-core CPU"))
    return Machine("cpu", flops, hardware.get("memory_gb"), prices()["cpu"], source)


# --------------------------------------------------------------------------- workloads

@dataclass(frozen=True)
class Workload:
    """How much work a candidate does: rows, lengths and passes."""

    train_rows: int = 200
    test_rows: int = 100
    seq_len: int = 128  # tokens per example (prompt + answer)
    batch_size: int = 8
    epochs: float = 1.0
    n_labels: int = 0  # classification: every label is scored after each prompt
    corpus_docs: int = 0
    shots: int = 4  # few-shot demonstrations per prompt
    retrieved: int = 3  # RAG passages per prompt
    lora_r: int = 8
    lora_dropout: float = 0.05  # the LoRA candidates' default
    # Mean tokens per prompt (time scales with the mean; memory with the longest batch,
    # seq_len); 0 = seq_len.
    mean_tokens: int = 0
    max_steps: int | None = None  # the preset's cap on optimizer steps (quick: 30)
    validation_rows: int = 0  # evaluated every `eval_every` steps while training
    eval_every: int = 10

    @property
    def tokens_per_row(self) -> int:
        return self.mean_tokens or self.seq_len

    @property
    def trained_rows(self) -> float:
        """Rows through the model while training: epochs, capped by the preset's steps."""
        rows = self.train_rows * self.epochs
        if self.max_steps:
            rows = min(rows, self.max_steps * self.batch_size)
        return rows

    @property
    def evaluated_rows(self) -> float:
        """Validation rows forwarded by the periodic evaluations during training."""
        if not self.validation_rows or not self.eval_every:
            return 0.0
        steps = math.ceil(self.trained_rows / self.batch_size)
        return (steps // self.eval_every) * self.validation_rows


@dataclass
class Estimate:
    strategy: str
    peak_memory_gb: float
    time_s: float
    cost_usd: float
    breakdown: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        """The advise JSON's `estimate` object."""
        return {"peak_memory_gb": round(self.peak_memory_gb, 3), "time_s": round(self.time_s, 1),
                "cost_usd": round(self.cost_usd, 4)}


# How each strategy uses its models. `train`: None (no training), "full", "adapter" (frozen
# base, small trained part), "head" (frozen encoder + small head). `model`: "llm" or "encoder".
# `lora_inputs`: a LoRA-style adapter beside the linear layers. `quantized`: NF4 base weights.
# `checkpointing`: activations recomputed in the backward pass
# (QLoRA's prepare_model_for_kbit_training turns it on). `time_factor`: extra cost over the
# plain FLOP count (DoRA recomputes weight norms each step; DPO runs policy and reference on
# chosen and rejected).
@dataclass(frozen=True)
class Profile:
    model: str = "llm"
    train: str | None = None
    quantized: bool = False
    checkpointing: bool = False
    lora_inputs: bool = False  # LoRA-style adapters on linear layers (their dropout costs memory)
    dora: bool = False  # DoRA keeps each adapted layer's outputs for its magnitude's gradient
    # Sequences in one training forward when the strategy does not use the workload's batch
    # (preference trainers: 4 pairs per step; DPO and the reward model run chosen and rejected)
    train_sequences: int | None = None
    inference: str = "prompt"  # "prompt" | "few-shot" | "rag" | "encode" | "none" | "generate"
    time_factor: float = 1.0
    trained_fraction: float | None = None  # for "freeze": share of layers unfrozen


STRATEGY_PROFILES: dict[str, Profile] = {
    "majority": Profile(model="none", inference="none"),
    "zero-shot": Profile(),
    "few-shot": Profile(inference="few-shot"),
    "rag": Profile(inference="rag"),
    "knn": Profile(model="encoder", inference="encode"),
    "transfer": Profile(model="encoder", train="head", inference="encode"),
    "encoder-ft": Profile(model="encoder", train="full", inference="encode"),
    # SetFit: the whole encoder trains on sentence pairs (two texts per row of a step)
    "setfit": Profile(model="encoder", train="full", inference="encode", time_factor=2.0),
    "full": Profile(train="full"),
    "freeze": Profile(train="full", trained_fraction=0.25),
    "lora": Profile(train="adapter", lora_inputs=True),
    "qlora": Profile(train="adapter", quantized=True, checkpointing=True, lora_inputs=True),
    "dora": Profile(train="adapter", time_factor=1.3, lora_inputs=True, dora=True),
    "prompt-tuning": Profile(train="adapter"),
    "prefix-tuning": Profile(train="adapter"),
    "ia3": Profile(train="adapter"),
    "loha": Profile(train="adapter", time_factor=1.2),
    "adalora": Profile(train="adapter", time_factor=1.2, lora_inputs=True),
    "sft-chosen": Profile(train="adapter", inference="generate", lora_inputs=True,
                          train_sequences=4),
    # chosen + rejected through the policy (trained) and the reference (adapter disabled)
    "dpo": Profile(train="adapter", inference="generate", time_factor=3.0, lora_inputs=True,
                   train_sequences=8),
    "reward-model": Profile(train="adapter", inference="generate", time_factor=2.0,
                            lora_inputs=True, train_sequences=8),
    # online RL: sampling completions dominates; ~4x DPO's work is a rough, stated guess
    "rlhf": Profile(train="adapter", inference="generate", time_factor=12.0, lora_inputs=True,
                    train_sequences=8),
}
# Fixed costs the FLOP count misses: interpreter + torch + transformers in the process (~0.6 GB
# RSS measured here; the harness measured 518 MB for `majority`), and the child process start,
# imports and model load (~10 s on an idle 2-core CPU; far more when the machine is shared).
CPU_RUNTIME_GB = 0.6
SETUP_S = 10.0
# A candidate without a model (majority) never imports torch: its process is the interpreter
# and the harness's child (measured on the idle demo runs of 2026-11-27: 23 MB RSS, 0.2 s).
NO_MODEL_RUNTIME_GB = 0.023
NO_MODEL_SETUP_S = 0.3
# Training on a CPU, measured with benchmarks/train_memory.py (SmolLM2-135M, batch 8 x 112
# tokens, idle 2-core EPYC, 2026-11-27): full fine-tuning 8.46 s per step, i.e. 0.88 of the
# FLOP/s that cpu_flops() reports; LoRA 8.90 s, no faster than full: the frozen base
# saves the weight gradients' FLOPs, but the adapters' many small matmuls and their dropout cost
# as much again on a CPU, so an adapter step counts 6.3 FLOPs per parameter and token, not 4.
CPU_TRAIN_EFFICIENCY = 0.88
CPU_ADAPTER_TRAIN_MULT = 6.3
# The Trainer's fixed costs in the adapt phase: dataset preparation, the first step's
# allocations, the best-weights copy (22-32 s beyond the step time in the idle demo runs of
# 2026-11-27; the estimate takes the lower end).
CPU_TRAINER_SETUP_S = 20.0
# glibc's heap on a CPU: freed activation blocks stay in the process, so the peak RSS of a
# training step is this much above the tensors alive at its peak (measured with
# benchmarks/train_memory.py, SmolLM2-135M, batch 8 x 112 tokens, LoRA with and without
# dropout: 1.37-1.52; 2026-11-27).
CPU_ALLOCATOR_SLACK = 1.5
# NF4 weights are dequantised before every matmul. On a CPU (bitsandbytes' CPU backend, float32
# compute) that makes QLoRA 2.5x slower than LoRA, training and prediction alike (measured on
# SmolLM2-135M, idle 2-core EPYC, 2026-11-27: 18.8 vs 7.4 s per step at batch 8; session 2's
# prediction 329 vs 142 s). On a GPU the dequantisation is fused and cheap; the extra time is
# gradient checkpointing's second forward pass (the adapter's train multiplier goes from 4 to 6).
QUANTIZED_CPU_SLOWDOWN = 2.5
# Label scoring: the prompt once (its KV cache is shared), then every label's few tokens.
LABEL_TOKENS = 4
# Chat template + task instruction around each row; classification adds the label list.
TEMPLATE_TOKENS = 40


def profile_for(strategy: str) -> Profile:
    if strategy.endswith("+rag"):  # FT + RAG: the base candidate plus a small encoder
        return profile_for(strategy[: -len("+rag")])
    if strategy.startswith("peft:"):
        return Profile(train="adapter")
    if strategy not in STRATEGY_PROFILES:
        raise TunewiseError(f"no estimate profile for strategy {strategy!r}; known: "
                            f"{', '.join(STRATEGY_PROFILES)}")
    return STRATEGY_PROFILES[strategy]


def lora_params(shape: ModelShape, r: int) -> int:
    """LoRA on every linear layer of every block: r x (in + out) per matrix."""
    head_dim = shape.hidden_size // max(shape.heads, 1)
    kv = shape.kv_heads * head_dim
    h, i = shape.hidden_size, shape.intermediate_size
    per_layer = r * (2 * (h + h) + 2 * (h + kv) + 3 * (h + i))
    return shape.layers * per_layer


def weight_bytes(shape: ModelShape, bytes_per_param: float, quantized: bool) -> float:
    if not quantized:
        return shape.params * bytes_per_param
    # NF4: 4 bits + double-quantised absmax constants (0.127 bit) + the fp32 per-block scale
    # overhead measured by bitsandbytes ~ 0.52 B/param; embeddings stay in the compute dtype.
    rest = shape.params - shape.linear_params
    return shape.linear_params * 0.52 + rest * bytes_per_param


def activation_bytes(shape: ModelShape, seq_len: int, batch_size: int,
                     bytes_per_value: float, checkpointing: bool = False,
                     lora_dropout: bool = False, dora: bool = False) -> float:
    """What the backward pass keeps, plus the logits.

    Decoder (Llama-style, gated MLP): per token and layer, counted from what autograd saves in
    transformers' Llama code: the two RMSNorms' inputs and outputs (4h), attention's query, the
    key and value repeated to every head, its output and the o_proj input copy (5h), the gated
    MLP's gate, activation, up and product (4 x intermediate). LoRA with dropout keeps each
    adapted linear layer's dropped-out input and its mask (1.25 x (6h + intermediate)); DoRA
    also keeps each adapted layer's base output and LoRA output for its magnitude's gradient
    (2 x (3h + 2 kv + 2 x intermediate)).
    Encoders: Korthikanti et al. 2022 eq. 1 (34 sbh bytes in 16-bit) scaled to the dtype.
    The loss keeps the fp32 logits, their log-softmax and both gradients at the peak (4 copies).
    With gradient checkpointing only each layer's input is kept, plus one layer's activations
    while it is recomputed."""
    s, b, h = seq_len, batch_size, shape.hidden_size
    if shape.causal_lm:
        values = 9 * h + 4 * shape.intermediate_size
        if lora_dropout:
            values += 1.25 * (6 * h + shape.intermediate_size)
        if dora:
            kv = shape.kv_heads * (h // max(shape.heads, 1))
            values += 2 * (3 * h + 2 * kv + 2 * shape.intermediate_size)
        per_layer = s * b * values * bytes_per_value
        logits = s * b * shape.vocab_size * 4 * 4
    else:
        per_layer = s * b * h * 34 * (bytes_per_value / 2)
        logits = 0
    if checkpointing:
        return shape.layers * s * b * h * bytes_per_value + per_layer + logits
    return shape.layers * per_layer + logits


def inference_activation_bytes(shape: ModelShape, seq_len: int, batch_size: int,
                               bytes_per_value: float) -> float:
    """Without gradients only one layer's activations live at a time, plus the KV cache of every
    layer and the fp32 logits over the vocabulary (label scoring keeps them all)."""
    s, b, h = seq_len, batch_size, shape.hidden_size
    one_layer = s * b * h * 34 * (bytes_per_value / 2)
    kv_dim = shape.kv_heads * (h // max(shape.heads, 1))
    kv_cache = 2 * shape.layers * s * b * kv_dim * bytes_per_value if shape.causal_lm else 0
    logits = s * b * shape.vocab_size * 4 if shape.causal_lm else 0
    return one_layer + kv_cache + logits


def training_memory(shape: ModelShape, profile: Profile, work: Workload,
                    machine: Machine) -> dict[str, float]:
    b_w = 2.0 if machine.cuda else 4.0
    weights = weight_bytes(shape, b_w, profile.quantized)
    if profile.train == "full":
        trained = shape.params * (profile.trained_fraction or 1.0)
        grads = trained * b_w
        optimizer = trained * (8 + (4 if machine.cuda else 0))  # Adam moments (+ master copy)
    elif profile.train == "adapter":
        trained = lora_params(shape, work.lora_r)
        grads, optimizer = trained * 4.0, trained * 8.0
    else:  # "head": a logistic-regression head on frozen embeddings
        trained, grads, optimizer = shape.hidden_size * max(work.n_labels, 2), 0.0, 0.0
    sequences = profile.train_sequences or work.batch_size
    activations = (activation_bytes(shape, work.seq_len, sequences, b_w, profile.checkpointing,
                                    profile.lora_inputs and work.lora_dropout > 0, profile.dora)
                   if profile.train in ("full", "adapter") else 0.0)
    if not machine.cuda:
        activations *= CPU_ALLOCATOR_SLACK
    # Early stopping keeps a float32 copy of the trained weights at the best validation loss.
    best_copy = trained * 4.0 if profile.train in ("full", "adapter") else 0.0
    return {"weights": weights, "gradients": grads, "optimizer": optimizer + best_copy,
            "activations": activations, "trained_params": trained}


def inference_tokens(profile: Profile, work: Workload) -> tuple[float, int]:
    """(tokens through the model to predict the test split, prompt length per request)."""
    prompt = work.seq_len
    if profile.inference == "few-shot":
        prompt = work.seq_len * (1 + work.shots)
    elif profile.inference == "rag":
        prompt = work.seq_len * (1 + work.retrieved)
    if profile.inference == "none":
        return 0.0, 0
    mean_prompt = prompt * work.tokens_per_row / work.seq_len
    if work.n_labels:  # label scoring: the prompt once, then each label's tokens
        per_row = mean_prompt + work.n_labels * LABEL_TOKENS
    else:  # generation: the prompt, then about as many answer tokens again
        per_row = 2 * mean_prompt
    return float(work.test_rows * per_row), prompt


def estimate(strategy: str, shape: ModelShape, work: Workload, machine: Machine,
             encoder: ModelShape | None = None) -> Estimate:
    """Peak memory, time and cost of one candidate, with the breakdown behind each."""
    profile = profile_for(strategy)
    if profile.model == "none":
        return Estimate(strategy, NO_MODEL_RUNTIME_GB if not machine.cuda else 0.0,
                        NO_MODEL_SETUP_S, NO_MODEL_SETUP_S / 3600 * machine.price_per_hour,
                        {"note": "counts labels; no model", "setup_s": NO_MODEL_SETUP_S})
    model = (encoder or BUILTIN_SHAPES["minilm-l6"]) if profile.model == "encoder" else shape
    b_w = 2.0 if machine.cuda else 4.0

    train_tokens = work.trained_rows * work.tokens_per_row if profile.train else 0.0
    if profile.train == "head":
        train_tokens = work.train_rows * work.tokens_per_row  # one encoding pass over train
    # the periodic validation-loss evaluations: forward passes only
    eval_tokens = (work.evaluated_rows * work.tokens_per_row
                   if profile.train in ("full", "adapter") else 0.0)
    predict_tokens, prompt_len = inference_tokens(profile, work)
    if profile.inference == "rag":  # the corpus is embedded once by the encoder
        enc = encoder or BUILTIN_SHAPES["minilm-l6"]
        index_flops = 2 * enc.matmul_params * work.corpus_docs * work.seq_len
    else:
        index_flops = 0.0
    if profile.model == "encoder" and profile.train is None:  # knn: encode train too
        train_tokens, train_mult = work.train_rows * work.tokens_per_row, 2
    else:
        train_mult = train_multiplier(profile, machine)
    if profile.train == "full" and profile.trained_fraction:
        # frozen bottom layers need no backward at all; top layers get the full 6x
        train_mult = 2 + 4 * profile.trained_fraction
    train_slowdown, predict_slowdown = quantized_slowdown(profile, machine)
    train_flops = (train_mult * model.matmul_params * train_tokens * profile.time_factor
                   + 2 * model.matmul_params * eval_tokens)
    predict_flops = 2 * model.matmul_params * predict_tokens + index_flops
    adapt_s = train_flops * train_slowdown / (machine.flops * train_efficiency(profile, machine))
    if profile.train in ("full", "adapter") and not machine.cuda:
        adapt_s += CPU_TRAINER_SETUP_S
    predict_s = predict_flops * predict_slowdown / machine.flops
    total_s = SETUP_S + adapt_s + predict_s

    if profile.train in ("full", "adapter", "head"):
        parts = training_memory(model, profile, work, machine)
    else:
        parts = {"weights": weight_bytes(model, b_w, False), "gradients": 0.0, "optimizer": 0.0,
                 "activations": inference_activation_bytes(model, prompt_len, work.batch_size,
                                                           b_w),
                 "trained_params": 0}
    if profile.inference == "rag":  # the retriever's encoder sits beside the LLM
        parts["weights"] += weight_bytes(encoder or BUILTIN_SHAPES["minilm-l6"], b_w, False)
    runtime = 0.0 if machine.cuda else CPU_RUNTIME_GB * GB
    peak = (parts["weights"] + parts["gradients"] + parts["optimizer"] + parts["activations"]
            + runtime) / GB
    cost = total_s / 3600 * machine.price_per_hour
    breakdown = {
        "model": model.name, "machine": machine.kind, "flops_per_s": machine.flops,
        "flops_source": machine.source, "train_flops": train_flops, "predict_flops": predict_flops,
        "adapt_s": round(adapt_s, 2), "predict_s": round(predict_s, 2), "setup_s": SETUP_S,
        "quantized_slowdown": [train_slowdown, predict_slowdown],
        "weights_gb": round(parts["weights"] / GB, 3),
        "gradients_gb": round(parts["gradients"] / GB, 3),
        "optimizer_gb": round(parts["optimizer"] / GB, 3),
        "activations_gb": round(parts["activations"] / GB, 3),
        "runtime_gb": round(runtime / GB, 3), "trained_params": int(parts["trained_params"]),
        "prompt_tokens_per_request": prompt_len, "price_per_hour": machine.price_per_hour,
    }
    return Estimate(strategy, peak, total_s, cost, breakdown)


def train_multiplier(profile: Profile, machine: Machine) -> float:
    """FLOPs per parameter and token of one training step (forward 2, backward 2 or 4)."""
    if profile.train == "adapter" and not machine.cuda:
        return CPU_ADAPTER_TRAIN_MULT
    return {"full": 6, "adapter": 4, "head": 2, None: 2}[profile.train]


def train_efficiency(profile: Profile, machine: Machine) -> float:
    """Share of the measured matmul FLOP/s a training step reaches."""
    return CPU_TRAIN_EFFICIENCY if profile.train in ("full", "adapter") and not machine.cuda else 1.0


def quantized_slowdown(profile: Profile, machine: Machine) -> tuple[float, float]:
    """(training, prediction) time multipliers of NF4 weights over the plain FLOP count."""
    if not profile.quantized:
        return 1.0, 1.0
    if not machine.cuda:  # measured with checkpointing included
        return QUANTIZED_CPU_SLOWDOWN, QUANTIZED_CPU_SLOWDOWN
    return (1.5 if profile.checkpointing else 1.0), 1.0


def step_time_s(strategy: str, shape: ModelShape, tokens: int, machine: Machine) -> float:
    """Seconds for one training step (or one forward pass for untrained strategies) over
    `tokens` tokens: the unit the calibration runs measured."""
    profile = profile_for(strategy)
    slowdown = quantized_slowdown(profile, machine)[0 if profile.train else 1]
    flops = machine.flops * train_efficiency(profile, machine)
    return (train_multiplier(profile, machine) * shape.matmul_params * tokens
            * profile.time_factor * slowdown / flops)


def preset_max_steps(preset: str) -> int | None:
    """The optimizer-step cap the fine-tuning candidates use under a preset (quick: 30)."""
    from strategies.base import make_config
    from strategies.training import TrainingConfig

    steps = make_config(TrainingConfig, preset).max_steps
    return steps if steps > 0 else None


def workload_from_profile(profile: dict[str, Any] | None, *, epochs: float = 1.0,
                          batch_size: int = 8, max_steps: int | None = None) -> Workload:
    """Rows, lengths and labels as bench.data's profile reports them (`splits`, `token_length`,
    `labels`, `corpus_docs`); a default-sized workload where the profile is missing."""
    profile = profile or {}
    splits = profile.get("splits") or {}
    rows = int(profile.get("rows") or 200)
    train = int(splits.get("train") or rows * 0.7)
    test = int(splits.get("test") or max(rows - train, 1))
    lengths = profile.get("token_length") or {}
    labels = profile.get("labels") or {}
    n_labels = len(labels) if isinstance(labels, dict) else 0
    # Word counts (no tokenizer was at hand) undercount tokens by ~1.3x.
    per_word = 1.3 if profile.get("token_counter", "words") == "words" else 1.0
    # The chat template and instruction wrap every row; classification lists the labels in it.
    template = TEMPLATE_TOKENS + n_labels * LABEL_TOKENS
    longest = (lengths.get("p90") or lengths.get("p50") or 96) * per_word  # a full batch
    typical = (lengths.get("p50") or lengths.get("p90") or 96) * per_word
    return Workload(train_rows=train, test_rows=test,
                    seq_len=int(min(max(longest + template, 32), 2048)),
                    mean_tokens=int(min(max(typical + template, 16), 2048)),
                    batch_size=batch_size, epochs=epochs, n_labels=n_labels,
                    corpus_docs=int(profile.get("corpus_docs") or 0), max_steps=max_steps,
                    validation_rows=int(splits.get("validation") or 0))


def fmt_bytes_gb(value: float) -> str:
    return f"{value * 1024:.0f} MB" if value < 1 else f"{value:.1f} GB"


def fmt_seconds(value: float) -> str:
    if value < 90:
        return f"{value:.0f} s"
    if value < 5400:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def to_json(est: Estimate) -> dict[str, Any]:
    return {**asdict(est), **est.as_dict()}


def fits_machine(est: Estimate, machine: Machine) -> bool:
    return machine.memory_gb is None or est.peak_memory_gb <= machine.memory_gb


