"""Forgetting, measured: what a trained candidate lost of the base model's general ability.

    from bench.forgetting import measure_forgetting, wants_forgetting
    if wants_forgetting(job):                                   # a trained LLM, not turned off
        payload["forgetting"] = measure_forgetting(job, payload["artifact_path"], loader)

The probe is the base model's perplexity on general English text: the 32 bundled Wikipedia
paragraphs of bench/reference (CC BY-SA 4.0, see SOURCE.txt there; the same text the domain
measurement compares against), each cut to PROBE_TOKENS tokens. The saved artifact (the adapter
on its base, or the full model) is loaded back and scored on them, beside the untouched base
model, scored once per run and cached in the run folder. A model that forgot general language
predicts that text worse, so its perplexity rises; the record keeps both perplexities, the
relative change and a 95% bootstrap interval of the change over the 32 paragraphs (paired: the
same paragraphs resampled for both models). Perplexity of held-out general text is the cheapest
such probe; Biderman et al. 2024 ("LoRA Learns Less and Forgets Less") measure forgetting on
downstream benchmarks instead, which this does not replace.

Which candidates: those that change the LLM's weights or add an adapter to it, read from the
catalogue (the `trains_llm` trait; preference trainers, which train a LoRA policy on the LLM,
by their family). A reward model's artifact is a sequence classifier with no language-model
head: its record says so instead of a number. `--no-forgetting` (options["forgetting"] False)
turns the probe off. One measurement path: bench.child calls `measure_in_child` after the
candidate's own evaluation, never a strategy.

The record's `forgetting` (bench.schema.Forgetting):
{probe, texts, tokens, base_perplexity, perplexity, change, interval, seconds}
or {skipped: why} / {error: what went wrong}. `change` = perplexity / base_perplexity - 1
(+0.10: the adapted model is 10% more perplexed by general text than the base).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from bench.domain import load_reference, text_nlls

PROBE_NAME = "general_passages"  # bench/reference/general_passages.jsonl
PROBE_TOKENS = 64  # each paragraph is cut to this many tokens: the time budget (README)
BATCH_SIZE = 8
BOOTSTRAP_RESAMPLES = 1000
BASE_CACHE = "forgetting_base.json"  # in the run folder: the base model's scores, once per run
ADAPTER_CONFIG = "adapter_config.json"


def trains_llm(strategy: str) -> bool:
    """Does this candidate change the LLM's weights or add an adapter to it (catalogue facts)?"""
    from strategies import catalogue

    entry = catalogue.entry(strategy)
    if entry is None:
        return False
    return "trains_llm" in entry.traits or (entry.family == "preference" and entry.trainable)


def wants_forgetting(job: dict[str, Any]) -> bool:
    """Measure this job? A trained LLM, not turned off with --no-forgetting, and not a tuning
    trial (a trial's score only picks a config; the refit candidate is measured)."""
    return (job["options"].get("forgetting", True) is not False
            and job.get("eval_split", "test") == "test"
            and trains_llm(job["strategy"]))


# --------------------------------------------------------------------------- scoring


def perplexity_of(scores: Sequence[tuple[float, int]]) -> float:
    """exp of the mean token NLL over all texts (every token weighs the same)."""
    tokens = sum(c for _, c in scores)
    return math.exp(sum(s for s, _ in scores) / tokens) if tokens else float("nan")


def change_interval(base: Sequence[tuple[float, int]], adapted: Sequence[tuple[float, int]],
                    *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
                    ) -> tuple[float, float]:
    """95% paired bootstrap interval of perplexity(adapted) / perplexity(base) - 1, resampling
    the probe's texts (the same texts for both models in each resample)."""
    import numpy as np

    base_nll = np.array([s for s, _ in base])
    adapted_nll = np.array([s for s, _ in adapted])
    tokens = np.array([c for _, c in base])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base_nll), size=(resamples, len(base_nll)))
    n = tokens[picks].sum(axis=1)
    changes = np.exp((adapted_nll[picks].sum(axis=1) - base_nll[picks].sum(axis=1)) / n) - 1
    low, high = np.percentile(changes, [2.5, 97.5])
    return float(low), float(high)


# --------------------------------------------------------------------------- models


def load_adapted(artifact: str | Path, base_model: str, load_model: Callable, device: str,
                 quantization: str | None = None):
    """(model, tokenizer) of a saved artifact, or (None, why) when it is no causal LM.

    An adapter folder (peft's adapter_config.json) is put back on the base model the harness
    loads; a full model folder is loaded as it was saved."""
    folder = Path(artifact)
    if (folder / ADAPTER_CONFIG).exists():
        from peft import PeftModel

        base, tokenizer = load_model(base_model, "causal-lm", quantization=quantization)
        return PeftModel.from_pretrained(base, str(folder)), tokenizer
    config = folder / "config.json"
    if not config.exists():
        return None, f"its artifact ({folder.name}) is neither an adapter nor a model folder"
    architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
    if not any(name.endswith("ForCausalLM") for name in architectures):
        kind = ", ".join(architectures) or "no architecture"
        return None, (f"its model is a {kind}, not a language model: it has no next-token "
                      "head to score general text with")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True)
    if device != "cpu":
        model.to(device)
    return model, AutoTokenizer.from_pretrained(folder)


def artifact_quantization(artifact: str | Path) -> str | None:
    """The quantization the candidate trained its adapter on ("nf4" for QLoRA), from the
    manifest strategies.training writes beside it; the base is scored the same way."""
    manifest = Path(artifact) / "tunewise_artifact.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text(encoding="utf-8")).get("quantization")


def _score(model, tokenizer, texts: Sequence[str]) -> list[tuple[float, int]]:
    model.eval()
    return text_nlls(model, tokenizer, texts, max_tokens=PROBE_TOKENS, batch_size=BATCH_SIZE)


def base_scores(run_dir: str | Path, model_name: str, load_model: Callable, device: str,
                quantization: str | None, texts: Sequence[str]) -> list[tuple[float, int]]:
    """The untouched base model's per-text scores, computed once per run and cached in the run
    folder (per model, quantization and device: a QLoRA adapter is compared with the NF4 base)."""
    path = Path(run_dir) / BASE_CACHE
    probe = hashlib.sha256(json.dumps([PROBE_TOKENS, *texts]).encode()).hexdigest()[:12]
    key = f"{model_name}|{quantization or 'none'}|{device}|{probe}"
    cached = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if key in cached:
        return [tuple(pair) for pair in cached[key]]
    model, tokenizer = load_model(model_name, "causal-lm", quantization=quantization)
    scores = _score(model, tokenizer, texts)
    del model
    cached = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    cached[key] = scores
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(cached), encoding="utf-8")
    os.replace(temporary, path)  # another candidate reading it sees the old or the new file
    return scores


# --------------------------------------------------------------------------- the record


def measure_forgetting(run_dir: str | Path, model_name: str, artifact: str | Path | None,
                       load_model: Callable, device: str = "cpu",
                       texts: Sequence[str] | None = None) -> dict[str, Any]:
    """The record's `forgetting` for a candidate whose artifact is at `artifact`."""
    started = time.perf_counter()
    if not artifact or not Path(artifact).exists():
        return {"skipped": "the candidate saved no artifact to load back"}
    texts = list(texts) if texts is not None else load_reference()
    quantization = artifact_quantization(artifact)
    model, tokenizer_or_why = load_adapted(artifact, model_name, load_model, device, quantization)
    if model is None:
        return {"skipped": tokenizer_or_why}
    adapted = _score(model, tokenizer_or_why, texts)
    del model
    base = base_scores(run_dir, model_name, load_model, device, quantization, texts)
    base_ppl, adapted_ppl = perplexity_of(base), perplexity_of(adapted)
    low, high = change_interval(base, adapted)
    return {
        "probe": f"{PROBE_NAME} ({len(texts)} Wikipedia paragraphs, perplexity)",
        "texts": len(texts),
        "tokens": sum(c for _, c in base),
        "base_perplexity": round(base_ppl, 4),
        "perplexity": round(adapted_ppl, 4),
        "change": round(adapted_ppl / base_ppl - 1, 5),
        "interval": [round(low, 5), round(high, 5)],
        "quantization": quantization,
        "seconds": round(time.perf_counter() - started, 2),
    }


def measure_in_child(job: dict[str, Any], payload: dict[str, Any], load_model: Callable,
                     on_progress: Callable[[str], None] = lambda message: None) -> None:
    """bench.child's hook, after the candidate's evaluation: adds payload["forgetting"] when
    the job wants it. A probe that breaks never fails the candidate: its record says why."""
    if not wants_forgetting(job):
        return
    on_progress("general-text probe")
    started = time.perf_counter()
    try:
        payload["forgetting"] = measure_forgetting(job["run_dir"], job["model"],
                                                   payload.get("artifact_path"), load_model,
                                                   job["device"])
    except Exception as exc:  # noqa: BLE001 - the candidate's own results must survive
        payload["forgetting"] = {"error": f"{type(exc).__name__}: {exc}".strip(),
                                 "seconds": round(time.perf_counter() - started, 2)}
