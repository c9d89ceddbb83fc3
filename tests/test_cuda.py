"""The CUDA paths, on the tiny random Llama: QLoRA's NF4 base on the GPU with bf16 compute and
the paged 8-bit AdamW, bf16 autocast for the other trainers, DPO, and a harness run whose record
measures the GPU's peak memory.

Marked `cuda` and skipped where torch sees no GPU: CI has none, so these run on a lent GPU
machine (`bash benchmarks/gpu_check.sh`), and what they found is written up in
benchmarks/RESULTS.md with its date."""

from __future__ import annotations

import functools
import math

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

from strategies import registry  # noqa: E402
from strategies.base import StrategySkipped  # noqa: E402
from tests.conftest import make_context, tiny_split  # noqa: E402
from tests.test_conformance import (_cases, _check_counts, _check_prediction_types,  # noqa: E402
                                    _fast_config, _spec_or_skip)

# A few steps with no validation-driven stopping: the paths, not the quality.
FAST = {"max_steps": 3, "batch_size": 4, "eval_every": 0, "patience": 0, "epochs": 10}


def cuda_context(task: str, work_dir, **options):
    """make_context's RunContext with the GPU as device and a loader that puts models there, as
    bench.child builds it for a `--device cuda` run."""
    from bench.models import load_model

    ctx = make_context(task, work_dir, **options)
    ctx.device = "cuda"
    ctx.load_model = functools.partial(load_model, device="cuda")
    return ctx


def _run(name: str, ctx, overrides=FAST):
    spec = registry.get(name)
    return spec.run(ctx, spec.make_config("quick", overrides))


def test_nf4_loading_puts_the_quantised_base_on_the_gpu_with_bf16_compute():
    from bench.models import load_model

    model, _ = load_model("tiny-llama", "causal-lm", quantization="nf4", device="cuda")
    import bitsandbytes as bnb

    quantised = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quantised, "no Linear4bit layer: the model did not load in 4-bit"
    assert all(m.weight.device.type == "cuda" for m in quantised)
    assert {m.weight.quant_state.dtype for m in quantised} == {torch.bfloat16}
    assert all(m.compute_dtype == torch.bfloat16 for m in quantised)


def test_qlora_trains_on_the_gpu_with_the_paged_8bit_optimizer(tmp_path):
    torch.cuda.reset_peak_memory_stats()
    ctx = cuda_context("classification", tmp_path / "qlora")
    output = _run("qlora", ctx)
    assert output.info["optimizer"] == "paged_adamw_8bit"
    assert output.info["precision"] == "bf16"
    assert output.info["device"] == "cuda" and output.info["quantization"] == "nf4"
    assert output.info["method"]["compute_dtype"] == "bfloat16"
    assert output.info["steps"] == FAST["max_steps"]
    assert all(math.isfinite(p["loss"]) for p in output.info["train_curve"])
    assert len(output.predictions) == len(ctx.data.test)
    assert set(output.predictions) <= set(ctx.data.labels)
    assert torch.cuda.max_memory_allocated() > 0


@pytest.mark.parametrize("name", ["lora", "full", "dora", "freeze", "prompt-tuning"])
def test_trainers_autocast_in_bf16_on_the_gpu(name, tmp_path):
    ctx = cuda_context("classification", tmp_path / name)
    output = _run(name, ctx)
    assert output.info["precision"] == "bf16"
    assert output.info["trainable_dtype"] == "float32"  # mixed precision, not pure bf16
    assert output.info["optimizer"] == "adamw_torch"
    assert output.info["steps"] == FAST["max_steps"]
    assert all(math.isfinite(p["loss"]) for p in output.info["train_curve"])
    assert len(output.predictions) == len(ctx.data.test)


@pytest.mark.parametrize("name", ["lora", "qlora", "full"])
def test_the_loss_falls_on_a_fixed_batch_on_the_gpu(name, tmp_path):
    """Training on the GPU learns: bf16 autocast (and for QLoRA the NF4 base and the paged 8-bit
    optimizer) lower the loss on the batch it trains on, as on the CPU."""
    from bench.models import load_model
    from strategies.training import TrainPlan, encode_rows, target_loss, train
    from strategies.training_loop import choose_optimizer

    split = tiny_split("classification")
    spec = registry.get(name)
    config = spec.make_config("quick", {**FAST, "max_steps": 8, "batch_size": 8})
    quantization = "nf4" if name == "qlora" else None
    model, tokenizer = load_model("tiny-llama", "causal-lm", quantization=quantization,
                                  device="cuda")
    module = __import__(registry.target_of(name).split(":")[0], fromlist=["build"])
    model, _ = module.build(model, config, TrainPlan(total_steps=8, device="cuda", seed=0,
                                                     train_rows=len(split.train)))
    batch = encode_rows(tokenizer, split, split.train, config.max_length)
    before = target_loss(model, batch)
    result = train(model, tokenizer, split, split.train, [], config, device="cuda", seed=0,
                   output_dir=tmp_path / "trainer",
                   optimizer=choose_optimizer("cuda", paged_8bit_on_cuda=name == "qlora"))
    after = target_loss(model, batch)
    assert result.steps == 8
    assert after < before - 1e-3, f"{name}: loss {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", ["dpo", "rlhf"])
def test_preference_trainers_run_on_the_gpu(name, tmp_path):
    overrides = {"max_steps": 2, "judge_steps": 2, "max_new_tokens": 4, "batch_size": 2}
    if name == "rlhf":
        overrides.update(reward_steps=1, num_generations=2, prompts_per_step=1)
    torch.cuda.reset_peak_memory_stats()
    ctx = cuda_context("preference", tmp_path / name)
    phases: list[str] = []
    ctx.on_phase = phases.append
    output = _run(name, ctx, overrides)
    assert len(output.predictions) == len(ctx.data.test)
    assert {"load", "adapt", "predict"} <= set(phases)
    assert torch.cuda.max_memory_allocated() > 0  # the policy trained where it was loaded


def test_a_cuda_run_records_the_gpu_peak_memory_and_its_hardware(data, tmp_path):
    """The harness end to end on `--device cuda`: each candidate's child measures the GPU's peak
    (torch.cuda.max_memory_allocated) into its record, beside the GPU it ran on."""
    from bench.runner import run_benchmark
    from bench.schema import validate_record
    from fake_strategies import fake_plan

    result = run_benchmark(fake_plan(data, tmp_path, ["lora", "qlora"], device="cuda",
                                     overrides={"*": {"max_steps": 2}}))
    for record in result.records:
        assert record["status"] == "ok", (record["strategy"], record.get("error"))
        assert validate_record(record) == []
        assert record["peak_memory_mb"]["cuda"] > 0
        assert record["hardware"]["device"] == "cuda" and record["hardware"]["gpu"]
        assert record["info"]["precision"] == "bf16"
    by_name = {r["strategy"]: r for r in result.records}
    assert by_name["qlora"]["info"]["optimizer"] == "paged_adamw_8bit"
    assert by_name["lora"]["info"]["optimizer"] == "adamw_torch"


@pytest.mark.parametrize("name,task", _cases())
def test_every_strategy_runs_on_the_gpu(name, task, tmp_path):
    """The conformance matrix (tests/test_conformance.py) with the GPU as device: every
    strategy's tensors meet its model on the GPU, and what it returns is as valid as on CPU."""
    spec = _spec_or_skip(name)
    split = tiny_split(task)
    ctx = cuda_context(task, tmp_path / name, split=split)
    try:
        output = spec.run(ctx, _fast_config(spec))
    except StrategySkipped as skipped:
        pytest.skip(f"{name} skipped itself: {skipped}")
    assert len(output.predictions) == len(split.test)
    _check_prediction_types(task, output.predictions, split)
    _check_counts(spec, output)
