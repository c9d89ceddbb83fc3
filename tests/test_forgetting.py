"""Forgetting (bench.forgetting): which candidates are probed, the probe's numbers on tiny
models, the harness hook, the record, the CLI switch. The real-model cost is measured in
test_forgetting_cost_on_smollm2 (integration)."""

from __future__ import annotations

import json
import os

import pytest

from bench.forgetting import (change_interval, measure_forgetting, perplexity_of, trains_llm,
                              wants_forgetting)
from bench.models import load_model

TEXTS = ["The river flows through the old town and into the sea.",
         "In 1905 the railway reached the valley, and the village grew quickly.",
         "Bees collect nectar from flowers and turn it into honey.",
         "The committee met twice a year to review the budget."]


def _job(strategy: str, **options) -> dict:
    return {"strategy": strategy, "options": options, "eval_split": "test"}


@pytest.mark.parametrize("name", ["lora", "qlora", "dora", "ia3", "prompt-tuning", "full",
                                  "freeze", "peft:loha", "sft-chosen", "dpo", "rlhf",
                                  "reward-model"])
def test_every_candidate_that_trains_the_llm_is_probed(name):
    assert trains_llm(name)
    assert wants_forgetting(_job(name))


@pytest.mark.parametrize("name", ["majority", "zero-shot", "few-shot", "rag", "knn", "transfer",
                                  "encoder-ft", "setfit", "no-such-strategy"])
def test_candidates_that_leave_the_llm_untouched_are_not(name):
    assert not trains_llm(name)


def test_no_forgetting_and_tuning_trials_turn_the_probe_off():
    assert not wants_forgetting(_job("lora", forgetting=False))
    assert not wants_forgetting({**_job("lora"), "eval_split": "validation"})


def test_perplexity_and_the_paired_interval():
    base = [(10.0, 5), (20.0, 10), (6.0, 2)]
    assert perplexity_of(base) == pytest.approx(2.718281828 ** (36 / 17))
    assert change_interval(base, base) == (0.0, 0.0)
    worse = [(s + 0.5 * c, c) for s, c in base]  # every token 0.5 nats less likely
    low, high = change_interval(base, worse)
    assert low == pytest.approx(high) == pytest.approx(2.718281828 ** 0.5 - 1, rel=1e-6)
    mixed = [(14.0, 5), (19.0, 10), (6.0, 2)]
    low, high = change_interval(base, mixed)
    assert low < perplexity_of(mixed) / perplexity_of(base) - 1 < high


def _save_lora(folder, *, identity: bool):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_model("tiny-llama")
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=identity)  # False: random B, the outputs change
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def _counting_loader(calls: list):
    def loader(name, kind="causal-lm", **kwargs):
        calls.append((name, kind))
        return load_model(name, kind, **kwargs)
    return loader


def test_an_adapter_that_changes_the_model_changes_its_perplexity(tmp_path):
    changed = _save_lora(tmp_path / "changed", identity=False)
    calls: list = []
    record = measure_forgetting(tmp_path, "tiny-llama", changed, _counting_loader(calls),
                                texts=TEXTS)
    assert record["texts"] == 4 and record["tokens"] > 20
    assert record["change"] != 0
    assert record["change"] == pytest.approx(record["perplexity"] / record["base_perplexity"] - 1,
                                             abs=1e-4)
    assert record["interval"][0] <= record["change"] <= record["interval"][1]
    assert len(calls) == 2  # the adapter's base, then the untouched base (cached after)
    cached = json.loads((tmp_path / "forgetting_base.json").read_text())
    assert [key.rsplit("|", 1)[0] for key in cached] == ["tiny-llama|none|cpu"]

    same = _save_lora(tmp_path / "identity", identity=True)  # LoRA starts as a no-op
    again = measure_forgetting(tmp_path, "tiny-llama", same, _counting_loader(calls), texts=TEXTS)
    assert len(calls) == 3  # only the adapter's base: the base scores came from the run folder
    assert again["change"] == pytest.approx(0.0, abs=1e-5)
    assert again["base_perplexity"] == record["base_perplexity"]


def test_a_full_model_is_loaded_as_saved_and_a_classifier_is_skipped(tmp_path):
    model, tokenizer = load_model("tiny-llama")
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    record = measure_forgetting(tmp_path, "tiny-llama", tmp_path / "model", load_model,
                                texts=TEXTS)
    assert record["change"] == pytest.approx(0.0, abs=1e-5)  # the untouched weights

    classifier, tokenizer = load_model("tiny-llama", "seq-cls", num_labels=2)
    classifier.save_pretrained(tmp_path / "reward_model")
    skipped = measure_forgetting(tmp_path, "tiny-llama", tmp_path / "reward_model", load_model,
                                 texts=TEXTS)
    assert "ForSequenceClassification" in skipped["skipped"]
    assert "no artifact" in measure_forgetting(tmp_path, "tiny-llama", None, load_model)["skipped"]


def test_the_harness_probes_a_trained_candidate_and_keeps_its_time_apart(tmp_path):
    """LoRA and zero-shot through the real harness on tiny models: only LoRA is probed, the
    probe's seconds are not in its time, and the record validates."""
    from bench.runner import run_benchmark
    from bench.schema import validate_record
    from fake_strategies import fake_plan, write_binary_data

    data = write_binary_data(tmp_path)
    plan = fake_plan(data, tmp_path, ["zero-shot", "lora"],
                     overrides={"lora": {"max_steps": 2, "eval_every": 0}})
    result = run_benchmark(plan)
    records = {r["strategy"]: r for r in result.records}
    lora = records["lora"]
    assert lora["status"] == "ok", lora["error"]
    assert validate_record(lora) == []
    forgetting = lora["forgetting"]
    assert forgetting["texts"] == 32 and forgetting["base_perplexity"] > 0
    assert forgetting["seconds"] > 0
    # the total excludes the probe: the phases and the harness's start-up fit inside it
    assert lora["time_s"]["total"] >= sum(lora["info"]["phases_s"].values())
    assert lora["info"]["harness_overhead_s"] < forgetting["seconds"] + 60
    assert "forgetting" not in records["zero-shot"]
    assert (result.run_dir / "forgetting_base.json").exists()


def test_no_forgetting_on_the_command_line_reaches_the_children():
    import argparse

    from advisor.bench_cli import add_arguments, plan_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "x.csv", "--strategies", "lora", "--no-forgetting"])
    assert plan_from_args(args).options["forgetting"] is False
    args = parser.parse_args(["--data", "x.csv", "--strategies", "lora"])
    assert "forgetting" not in plan_from_args(args).options


PROBE_COST_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from peft import LoraConfig, get_peft_model
from bench.forgetting import measure_forgetting
from bench.models import load_model
folder = Path(sys.argv[1])
model, _ = load_model("smollm2-135m")
get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj", "v_proj"],
                                 init_lora_weights=False)).save_pretrained(folder / "a")
del model
load = os.getloadavg()[0]
started = time.perf_counter()
first = measure_forgetting(folder, "smollm2-135m", folder / "a", load_model)
first_s = time.perf_counter() - started
started = time.perf_counter()
second = measure_forgetting(folder, "smollm2-135m", folder / "a", load_model)
second_s = time.perf_counter() - started
print(json.dumps({"first": first, "first_s": first_s, "second": second, "second_s": second_s,
                  "load": max(load, os.getloadavg()[0])}))
"""


@pytest.mark.integration
def test_forgetting_cost_on_smollm2(tmp_path):
    """The probe's cost per candidate with the bundled SmolLM2-135M: a LoRA adapter put back on
    its base and scored, plus the base scored once (the first candidate of a run pays both).
    In a fresh process with PASSIVE OpenMP waiting, as bench.child runs it. Budget: 60 s on 2
    cores, scaled by how oversubscribed the machine is right now."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", PROBE_COST_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, check=True, cwd=root)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    first, second = result["first"], result["second"]
    print(f"\nforgetting probe on smollm2-135m: first candidate {result['first_s']:.1f} s (base "
          f"scored too), later candidates {result['second_s']:.1f} s; load average "
          f"{result['load']:.1f} on {os.cpu_count()} cores; base perplexity "
          f"{first['base_perplexity']:.2f}")
    assert 5 < first["base_perplexity"] < 100  # the base model reads Wikipedia reasonably
    assert first["change"] > 0.01  # a random adapter makes general text harder
    assert second["perplexity"] == first["perplexity"]
    oversubscribed = max(1.0, result["load"] / (os.cpu_count() or 1))
    assert result["second_s"] < 60 * oversubscribed
