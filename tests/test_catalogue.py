"""The strategy catalogue is the one table of candidates: each entry agrees with its module's
SPEC, every other table (registry, advisor rules, estimator, multi-GPU plan, sweep families) is
derived from it, and a new strategy needs only its module and one entry."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from strategies import catalogue, registry
from strategies.base import RunContext, StrategyOutput, StrategySpec, option
from strategies.profile import Profile

BUILT_IN = catalogue.names()
# Trainers that always run as one process, even with several GPUs visible.
SINGLE_PROCESS_TRAINERS = {"setfit"}


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_entry_matches_its_modules_spec(name):
    entry = catalogue.entry(name)
    spec = registry.get(name)  # imports entry.target
    assert (spec.name, spec.family, spec.tasks, spec.trainable) == (
        entry.name, entry.family, entry.tasks, entry.trainable)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_entry_has_an_estimate_profile_and_consistent_traits(name):
    from advisor.estimate import profile_for

    entry = catalogue.entry(name)
    assert profile_for(name) is entry.profile is not None
    assert 0 <= entry.prior <= 100
    # only what trains shards; full-parameter training shards with FSDP, adapters with DDP;
    # a trainer not wired for several GPUs (setfit) says so by having no sharding
    if entry.shards is not None:
        assert entry.trainable
    if entry.profile.train == "full" and entry.shards is not None:
        assert entry.shards == "fsdp"
    if entry.profile.train == "full" and entry.shards is None:
        assert name in SINGLE_PROCESS_TRAINERS
    if entry.profile.train == "adapter":
        assert entry.shards == "ddp"
    if "adapter" in entry.traits:
        assert "trains_llm" in entry.traits and entry.profile.train == "adapter"
    if "trains_llm" in entry.traits:
        assert entry.trainable and entry.profile.model == "llm"
    if entry.traits & {"prompting", "retrieval", "baseline"}:
        assert not entry.trainable


def test_derived_names_take_their_base_entry():
    lora_rag = catalogue.entry("lora+rag")
    assert lora_rag.family == "peft" and lora_rag.tasks == {"generation", "qa"}
    assert lora_rag.profile == catalogue.entry("lora").profile and lora_rag.shards == "ddp"
    assert catalogue.entry("full+rag").shards == "fsdp"
    oft = catalogue.entry("peft:oft")
    assert oft.family == "peft" and oft.trainable and oft.profile.train == "adapter"
    assert catalogue.entry("nope") is None and catalogue.entry("nope+rag") is None
    assert catalogue.entry("peft:") is None


def test_the_other_tables_are_the_catalogues():
    from advisor import rules
    from bench import sweeps

    assert list(rules.BASELINES) == ["majority", "zero-shot"]
    assert list(rules.PROMPTING) == ["zero-shot", "few-shot"]
    assert list(rules.RETRIEVAL) == ["rag", "knn"]
    assert set(rules.ADAPTERS) < set(rules.TRAINS_LLM)
    assert {"full", "freeze", "lora", "qlora"} <= set(rules.TRAINS_LLM)
    assert "encoder-ft" not in rules.TRAINS_LLM  # it trains an encoder, not the LLM
    assert sweeps.PROMPTING_FAMILIES == ("prompting", "rag")
    assert set(sweeps.TRAINED_FAMILIES) == {"transfer", "fine-tuning", "peft"}


def test_the_catalogue_imports_nothing_heavy():
    code = ("import sys, strategies.catalogue, strategies.registry, advisor.rules; "
            "print(sorted(m for m in ('torch', 'numpy', 'faiss', 'trl', 'transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# ----------------------------------------------------------------- adding a strategy

@dataclass
class WideAdapterConfig:
    r: int = option(64, help="adapter rank")
    epochs: float = option(1.0, help="passes")
    max_steps: int = option(30, help="step cap", full=-1)
    batch_size: int = option(8, help="rows per step")


def _run(ctx: RunContext, config: WideAdapterConfig) -> StrategyOutput:
    return StrategyOutput(predictions=[ctx.data.labels[0]] * len(ctx.data.test))


SPEC_WIDE = StrategySpec("wide-adapter", "peft", frozenset({"classification", "generation"}),
                         WideAdapterConfig, _run, trainable=True)


@pytest.fixture
def wide_adapter():
    saved = catalogue.snapshot()
    registry.register("wide-adapter", "test_catalogue:SPEC_WIDE", "peft",
                      tasks={"classification", "generation"}, trainable=True,
                      profile=Profile(train="adapter", lora_inputs=True), prior=61,
                      traits=frozenset({"trains_llm", "adapter"}))
    yield "wide-adapter"
    catalogue.restore(saved)
    registry.get.cache_clear()


def test_one_entry_is_all_a_new_strategy_needs(wide_adapter):
    from advisor import rules
    from advisor.estimate import BUILTIN_SHAPES, REFERENCE_CPU_FLOPS, Machine, Workload
    from advisor.recommend import candidate_names, estimates_for
    from bench.distributed import plan_for

    # the registry: listed last, resolved, imported from its module
    assert registry.names()[-1] == wide_adapter and registry.is_known(wide_adapter)
    assert registry.get(wide_adapter) is SPEC_WIDE
    assert registry.family_of(wide_adapter) == "peft"
    # the advisor: ranked with its prior and tasks, moved by the rules that name its traits
    assert wide_adapter in candidate_names()
    facts = rules.Facts(task="classification", labeled_examples=20)
    ranked = {c.strategy: c for c in rules.rank(facts).ranked}
    wide = ranked[wide_adapter]
    assert wide.family == "peft"
    assert "few-labels" in {r.rule for r in wide.reasons}  # a TRAINS_LLM rule reached it
    assert wide.score == pytest.approx(61 + sum(r.delta for r in wide.reasons))
    preference = rules.rank(rules.Facts(task="preference"))
    assert {"strategy": wide_adapter, "why": "does not support preference (supports "
            "classification, generation)"} in preference.excluded
    # the estimator: its profile, and its own config's rank (64, not LoRA's 8)
    smol = BUILTIN_SHAPES["smollm2-135m"]
    machine = Machine("cpu", REFERENCE_CPU_FLOPS, 24.0, 0.1)
    found = estimates_for([wide_adapter, "lora"], smol, Workload(), machine, None)
    assert set(found) == {wide_adapter, "lora"}
    from advisor.estimate import configured_workload, estimate

    wide_est = estimate(wide_adapter, smol, configured_workload(wide_adapter, Workload()),
                        machine)
    lora_est = estimate("lora", smol, configured_workload("lora", Workload()), machine)
    assert wide_est.breakdown["trained_params"] == 8 * lora_est.breakdown["trained_params"]
    # the multi-GPU plan: it shards as its entry says
    assert plan_for(wide_adapter, 2).mode == "ddp"


def test_register_refuses_duplicates_and_inconsistent_entries(wide_adapter):
    with pytest.raises(ValueError, match="already registered"):
        registry.register("lora", "strategies.lora:SPEC", "peft")
    with pytest.raises(ValueError, match="lowercase"):
        registry.register("Shouty", "x:SPEC", "peft")
    with pytest.raises(ValueError, match="shards"):
        registry.register("odd", "x:SPEC", "peft", trainable=False, shards="fsdp")
    with pytest.raises(ValueError, match="unknown traits"):
        registry.register("odd", "x:SPEC", "peft", traits=frozenset({"magic"}))


def test_a_plugin_without_a_profile_is_ranked_not_estimated(wide_adapter):
    from advisor.estimate import BUILTIN_SHAPES, Machine, Workload
    from advisor.recommend import estimates_for

    registry.register("no-profile", "test_catalogue:SPEC_WIDE", "peft")
    found = estimates_for(["no-profile", "lora"], BUILTIN_SHAPES["smollm2-135m"], Workload(),
                          Machine("cpu", 1e11, None, 0.1), None)
    assert list(found) == ["lora"]
