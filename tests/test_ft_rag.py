"""`<trainable>+rag`: fine-tuning with retrieved passages in the prompt (FT + RAG), on tiny models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from strategies import registry
from strategies.base import StrategyError, StrategySkipped
from strategies.prompts import PASSAGES_KEY, prompt_for
from tests.conftest import make_context, tiny_split
from tests.test_conformance import _check_counts, _check_prediction_types

FAST = {"max_new_tokens": 4, "epochs": 1, "max_steps": 2, "k": 2}


def test_names_resolve_through_the_registry():
    assert registry.is_known("lora+rag") and registry.is_known("peft:vera+rag")
    assert not registry.is_known("nonsense+rag")
    assert registry.family_of("full+rag") == "fine-tuning"
    assert registry.target_of("lora+rag") is None  # the child resolves it by name
    spec = registry.get("lora+rag")
    assert spec.trainable and spec.tasks == {"generation", "qa"}
    config = spec.make_config("full", {"k": 3, "r": 4})
    assert (config.k, config.r, config.epochs) == (3, 4, 5.0)  # base preset + retrieval option
    with pytest.raises(StrategyError, match="k must be"):
        spec.make_config("quick", {"k": 0})


def test_only_trainable_candidates_take_the_suffix():
    with pytest.raises(StrategyError, match="only a trainable"):
        registry.get("zero-shot+rag")
    with pytest.raises(StrategyError, match="unknown strategy"):
        registry.get("lorra+rag")


def test_the_prompt_carries_the_rows_passages():
    split = tiny_split("qa")
    row = {**split.test[0], PASSAGES_KEY: ["Madrid is the capital of Spain."]}
    from bench.models import load_model

    _, tokenizer = load_model("tiny-llama", "causal-lm")
    with_passages = prompt_for(tokenizer, split, row)
    assert "Retrieved passages" in with_passages and "[1] Madrid" in with_passages
    assert "Retrieved passages" not in prompt_for(tokenizer, split, split.test[0])


def test_lora_rag_trains_and_predicts_with_retrieved_passages(tmp_path):
    spec = registry.get("lora+rag")
    split = tiny_split("qa")
    phases: list[str] = []
    ctx = make_context("qa", tmp_path / "lora+rag", split=split)
    ctx.on_phase = phases.append
    output = spec.run(ctx, spec.make_config("quick", FAST))

    assert len(output.predictions) == len(split.test)
    _check_prediction_types("qa", output.predictions, split)
    _check_counts(spec, output)
    assert set(phases) <= {"load", "adapt", "predict", "save"} and "adapt" in phases
    retrieval = output.info["retrieval"]
    assert retrieval["k"] == 2 and retrieval["indexed_chunks"] == len(split.corpus)
    corpus_ids = {doc["id"] for doc in split.corpus}
    assert all(len(hits) == 2 and set(hits) <= corpus_ids
               for hits in retrieval["retrieved_sources"])
    artifact = Path(output.artifact_path)
    assert (artifact / "rag_index" / "index.faiss").stat().st_size > 0
    assert (artifact / "adapter_config.json").exists()  # the adapter is still peft-loadable


def test_retrieved_rows_reach_training_without_the_gold_context(tmp_path, monkeypatch):
    """The training and test rows handed to the base candidate carry passages, and (qa,
    use_context off) no gold context: the answer must come from retrieval."""
    import strategies.ft_rag as ft_rag

    captured = {}

    def fake_base_run(ctx, config):
        captured["split"] = ctx.data
        from strategies.base import StrategyOutput
        return StrategyOutput(predictions=[""] * len(ctx.data.test), total_params=1)

    base = dataclasses.replace(registry.get("lora"), run=fake_base_run)
    split = tiny_split("qa")
    ctx = make_context("qa", tmp_path / "c", split=split)
    config = registry.get("lora+rag").make_config("quick", {"k": 1})
    ft_rag.run(ctx, config, base)

    seen = captured["split"]
    for rows in (seen.train, seen.validation, seen.test):
        assert rows and all(len(r[PASSAGES_KEY]) == 1 and "context" not in r for r in rows)
    # The user's split is untouched: metrics are computed on the original rows.
    assert all(PASSAGES_KEY not in r and "context" in r for r in split.train)


def test_without_a_corpus_it_is_skipped_with_the_reason(tmp_path):
    ctx = make_context("generation", tmp_path / "c")  # the tiny generation split has no corpus
    spec = registry.get("lora+rag")
    with pytest.raises(StrategySkipped, match="no corpus"):
        spec.run(ctx, spec.make_config("quick", FAST))
