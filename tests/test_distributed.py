"""bench.distributed: the plan chosen for N GPUs, and a real 2-process DDP launch on CPU (gloo).

What needs GPUs is not tested here: NCCL, FSDP sharding, QLoRA per-rank 4-bit loading and the
per-GPU CUDA peaks (the CPU run checks the same code path with CUDA peaks absent).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.distributed import (TRAINER_ARGS_ENV, DistributedPlan, RankMeasure, combine_measures,
                               launch, measured_summary, plan_for, visible_gpu_count)


def test_one_gpu_or_no_training_stays_one_process():
    assert plan_for("lora", 1) is None
    assert plan_for("lora", 0) is None
    assert plan_for("zero-shot", 8) is None  # nothing to train
    assert plan_for("rag", 4) is None


def test_adapters_get_ddp_and_full_fine_tuning_gets_fsdp():
    assert plan_for("lora", 4) == DistributedPlan(4, "ddp", "nccl")
    assert plan_for("qlora", 2) == DistributedPlan(2, "ddp", "nccl", quantized=True)
    assert plan_for("peft:oft", 2).mode == "ddp"
    assert plan_for("dpo", 2).mode == "ddp"
    full = plan_for("full", 8)
    assert full.mode == "fsdp" and full.world_size == 8
    args = full.trainer_arguments()
    assert args["fsdp"] == "full_shard auto_wrap"
    assert args["fsdp_config"]["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert json.loads(full.environment()[TRAINER_ARGS_ENV]) == args
    assert plan_for("lora", 2).trainer_arguments() == {"ddp_backend": "nccl",
                                                       "ddp_find_unused_parameters": False}


def test_trainer_arguments_are_fields_of_the_installed_transformers():
    import dataclasses

    from transformers import TrainingArguments

    # Building TrainingArguments with fsdp needs a process group, so check the names only.
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    for plan in (plan_for("lora", 2), plan_for("full", 2)):
        assert set(plan.trainer_arguments()) <= names


def test_visible_gpus_follow_cuda_visible_devices():
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": "0,1,3"}) == 3
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_gpu_count({"CUDA_VISIBLE_DEVICES": "-1"}) == 0
    assert visible_gpu_count({}, device_count=lambda: 4) == 4


def test_measures_combine_per_gpu_peaks_and_total_throughput():
    combined = combine_measures([RankMeasure(1, 10.0, 5000, 900.0, 30000.0),
                                 RankMeasure(0, 8.0, 5000, 1000.0, 31000.5)])
    assert combined["peak_cuda_mb_per_gpu"] == [31000.5, 30000.0]
    assert combined["peak_cuda_mb"] == 31000.5
    assert combined["tokens_per_s"] == 1000.0  # all tokens over the slowest rank
    assert combined["world_size"] == 2


def ddp_train_tiny_llama(seed: int) -> tuple[list[float], int]:
    """One rank: the Trainer on a tiny random Llama with the plan's arguments from the
    environment, as the training code receives them; each rank sees different rows."""
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2, max_position_embeddings=32))
    rows = [{"input_ids": [(i * 7 + j) % 64 for j in range(8)],
             "labels": [(i * 7 + j) % 64 for j in range(8)]} for i in range(16)]
    args = TrainingArguments(output_dir=os.path.join(os.environ["TUNEWISE_TEST_OUT"],
                                                     os.environ["RANK"]),
                             use_cpu=True, per_device_train_batch_size=4, max_steps=2,
                             learning_rate=0.1, report_to="none", save_strategy="no",
                             disable_tqdm=True, seed=seed,
                             **json.loads(os.environ[TRAINER_ARGS_ENV]))
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows))
    trainer.train()
    assert torch.distributed.is_initialized() and torch.distributed.get_world_size() == 2
    weights = [float(p.detach().sum()) for p in model.parameters()]
    tokens = 2 * 4 * 8  # steps x batch x length on this rank
    return weights, tokens


@pytest.mark.timeout(240)
def test_ddp_on_cpu_with_gloo_keeps_two_ranks_in_step(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEWISE_TEST_OUT", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    results = launch(ddp_train_tiny_llama, (0,), plan_for("lora", 2, backend="gloo"))
    assert sorted(results) == [0, 1]
    # Gradients were all-reduced: both replicas hold the same weights after training...
    assert results[0].value[0] == pytest.approx(results[1].value[0])
    assert results[0].value[0] == results[1].value[0]
    summary = measured_summary(results)
    assert summary["world_size"] == 2 and summary["train_tokens"] == 128
    assert summary["peak_cuda_mb"] is None and min(summary["peak_rss_mb_per_rank"]) > 50
    assert summary["tokens_per_s"] > 0


def test_the_training_code_reads_the_variable_the_launcher_sets():
    from strategies import training

    assert training.TRAINER_ARGS_ENV == TRAINER_ARGS_ENV


def test_the_child_plans_from_its_visible_gpus_or_the_cpu_ranks_hook():
    from bench.distributed import plan_for_child

    assert plan_for_child("lora", True, "cuda", {"CUDA_VISIBLE_DEVICES": "0,1"}) == \
        DistributedPlan(2, "ddp", "nccl")
    assert plan_for_child("full", True, "cuda", {"CUDA_VISIBLE_DEVICES": "2,3,4"}).mode == "fsdp"
    assert plan_for_child("lora", True, "cuda", {"CUDA_VISIBLE_DEVICES": "0"}) is None
    assert plan_for_child("lora", True, "cpu", {}) is None
    assert plan_for_child("lora+rag", True, "cpu", {"TUNEWISE_CPU_RANKS": "2"}) == \
        DistributedPlan(2, "ddp", "gloo")
    assert plan_for_child("zero-shot", False, "cuda", {"CUDA_VISIBLE_DEVICES": "0,1"}) is None


def test_gpus_are_handed_out_in_groups_of_gpus_per_candidate():
    from bench.runner import LocalExecutor

    assert LocalExecutor(gpus=[0, 1, 2, 3], per_candidate=2).gpus == ["0,1", "2,3"]
    assert LocalExecutor(gpus=[0, 1, 2], per_candidate=2).gpus == ["0,1"]
    assert LocalExecutor(gpus=[0, 1]).gpus == ["0", "1"]


@pytest.mark.timeout(900)
def test_a_lora_candidate_trains_across_two_ranks_through_the_harness(tmp_path, monkeypatch):
    """The real path of `tunewise bench --gpus-per-candidate 2`, on CPU: the child launches two
    gloo ranks, each runs the strategy with the DDP arguments, rank 0's record comes back with
    both ranks' measurements."""
    from bench import journal
    from bench.runner import BenchPlan, run_benchmark
    from tests.fake_strategies import write_binary_data

    monkeypatch.setenv("TUNEWISE_CPU_RANKS", "2")
    data = write_binary_data(tmp_path)
    plan = BenchPlan(data=data["data"], test=data["test"], strategies=["lora"], model="tiny-llama",
                     out=str(tmp_path / "runs"),
                     overrides={"lora": {"max_steps": 2, "eval_every": 0, "batch_size": 2}})
    result = run_benchmark(plan)
    (record,) = result.records
    assert record["status"] == "ok", record.get("error")
    dist = record["info"]["distributed"]
    assert (dist["world_size"], dist["mode"], dist["backend"]) == (2, "ddp", "gloo")
    assert dist["wrapped_as"] == "ddp"  # the Trainer really ran DistributedDataParallel
    assert len(dist["peak_rss_mb_per_rank"]) == 2 and min(dist["peak_rss_mb_per_rank"]) > 50
    assert record["info"]["steps"] == 2 and dist["train_tokens"] > 0 and record["tokens_per_s"]
    # Each rank's harness counted its own batches; their sum is the candidate's tokens, and it
    # agrees with the trainer's own count gathered over the ranks (else strategy_reported).
    assert record["info"]["reported_by"]["train_tokens"] == "harness"
    assert record["info"]["train_tokens"] == dist["train_tokens"] == sum(
        rank["tokens"] for rank in dist["per_rank"])
    assert "strategy_reported" not in record["info"]
    log = journal.log_path(result.run_dir, "lora").read_text()
    assert "rank 0 of 2" in log and "rank 1 of 2" in log
    artifact = Path(result.run_dir) / record["info"]["artifact_path"]
    assert (artifact / "adapter_config.json").exists() and record["artifact_mb"] > 0
    assert not (artifact.parent / "rank1").exists()  # the other rank's copy is removed


def test_child_and_distributed_import_no_circle():
    """bench.child uses bench.distributed; distributed must not reach back into child."""
    import ast

    source = (Path(__file__).resolve().parent.parent / "bench" / "distributed.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Import) for alias in node.names}
    assert "bench.child" not in imported
    assert "bench.peak_memory" in imported  # the shared peak readings live there
