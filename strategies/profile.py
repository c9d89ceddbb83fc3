"""How a candidate uses its models, as the pre-run estimator (advisor.estimate) needs to know it.

Stdlib only: the strategy catalogue carries one `Profile` per candidate, and it is read by the
advisor and the TUI without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """`model`: "llm", "encoder" or "none". `train`: None (no training), "full", "adapter"
    (frozen base, small trained part), "head" (frozen encoder + small head).
    `adapter`: which trained part an "adapter" candidate adds (its parameter count):
    "lora" (low-rank pairs on every linear layer), "loha" (Hadamard product of two low-rank
    pairs, on the configured target modules), "ia3" (learned rescaling vectors), "prompt"
    (virtual token embeddings) or "prefix" (key/value prefixes at every layer).
    `lora_inputs`: a LoRA-style adapter beside the linear layers (its dropout costs memory).
    `quantized`: NF4 base weights. `checkpointing`: activations recomputed in the backward
    pass (QLoRA's prepare_model_for_kbit_training turns it on). `time_factor`: extra cost over
    the plain FLOP count (DoRA recomputes weight norms each step; DPO runs policy and
    reference on chosen and rejected)."""

    model: str = "llm"
    train: str | None = None
    adapter: str = "lora"
    quantized: bool = False
    checkpointing: bool = False
    lora_inputs: bool = False
    dora: bool = False  # DoRA keeps each adapted layer's outputs for its magnitude's gradient
    # Sequences in one training forward per example of the batch: preference trainers that
    # run the chosen and the rejected response (DPO, the reward model) put 2 through.
    sequences_per_example: int = 1
    inference: str = "prompt"  # "prompt" | "few-shot" | "rag" | "encode" | "none" | "generate"
    time_factor: float = 1.0
    trained_fraction: float | None = None  # for "freeze": share of layers unfrozen
