"""What a fine-tuning candidate leaves behind: its parameter counts, the saved adapter or full
model with a manifest, and loading it back (`tunewise predict`, `tunewise export`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from strategies.base import StrategyError, TaskSplit
from strategies.training_config import TrainingConfig

ARTIFACT_MANIFEST = "tunewise_artifact.json"


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total): peft's own count for peft models (it counts 4-bit weights by their
    unpacked size), the same convention for plain models."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = total = 0
    for p in model.parameters():
        n = p.numel()
        if p.__class__.__name__ == "Params4bit":
            n *= 2  # packed two 4-bit values per byte, as peft counts them
        total += n
        if p.requires_grad:
            trainable += n
    return trainable, total


# --------------------------------------------------------------------------------- artifact


def save_artifact(model, tokenizer, work_dir: Path, *, strategy: str, base_model: str,
                  split: TaskSplit, quantization: str | None, config: TrainingConfig) -> Path:
    """The adapter (peft models) or the full model, with the tokenizer and a manifest that
    `load_artifact` and `tunewise export` read."""
    is_adapter = hasattr(model, "peft_config")
    folder = Path(work_dir) / ("adapter" if is_adapter else "model")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    manifest = {
        "strategy": strategy,
        "kind": "adapter" if is_adapter else "full",
        "base_model": base_model,
        "quantization": quantization,
        "task": split.task,
        "labels": list(split.labels),
        "label_names": dict(split.label_names),
        "instruction": split.instruction,
        "config": dataclasses.asdict(config),
    }
    (folder / ARTIFACT_MANIFEST).write_text(json.dumps(manifest, indent=2))
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / ARTIFACT_MANIFEST
    if not path.exists():
        raise StrategyError(f"{folder} is not a tunewise artifact (no {ARTIFACT_MANIFEST})")
    return json.loads(path.read_text())


def load_artifact(folder: Path, load_model, *, device: str = "cpu"):
    """(model, tokenizer) from a saved artifact: the base model plus the adapter, or the full
    model. `load_model` is the harness's loader (bench.models.load_model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = read_manifest(folder)
    if manifest["kind"] == "full":
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if device != "cpu":
            model.to(device)
        return model, tokenizer
    from peft import PeftModel

    base, tokenizer = load_model(manifest["base_model"], "causal-lm",
                                 quantization=manifest.get("quantization"))
    drop_stale_gguf_quantization(base)
    if device != "cpu" and not manifest.get("quantization"):
        base.to(device)
    return PeftModel.from_pretrained(base, str(folder)), tokenizer


def drop_stale_gguf_quantization(model) -> None:
    """A model converted from GGUF keeps `quantization_config: {quant_method: gguf}` in its
    config although transformers dequantised its weights to float on load; the Trainer then
    refuses to train it ("GGUF does not support training"). The weights are plain tensors, so
    the stale marker is removed (and not written into saved artifacts)."""
    quant = getattr(model.config, "quantization_config", None)
    method = quant.get("quant_method") if isinstance(quant, dict) else getattr(quant, "quant_method", None)
    if str(getattr(method, "value", method)).lower() != "gguf":
        return
    del model.config.quantization_config
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    model.is_quantized = False
