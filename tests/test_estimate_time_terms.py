"""The estimator's time terms beyond FLOPs (advisor.estimate_time): label scoring's repeated KV
cache, greedy decoding's weight and cache reads, the attention square of long prompts, the
trainer's timed passes and validations, the setup by imports; the bandwidth probe beside the
FLOP/s probe; and the held-out check's slices (benchmarks/estimator_runs.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from advisor.estimate import (BUILTIN_SHAPES, REFERENCE_CPU_FLOPS, Machine, Workload,
                              configured_workload, decoding_traffic_s, estimate, lengths_for,
                              label_scoring_traffic_s, profile_for, prompt_attention_flops,
                              setup_seconds, training_extras_s)

CPU = Machine("cpu", REFERENCE_CPU_FLOPS, 24.0, 0.085, "reference")
SMOL = BUILTIN_SHAPES["smollm2-135m"]
ROOT = Path(__file__).resolve().parent.parent


def classification(**changes) -> Workload:
    base = Workload(train_rows=300, test_rows=60, seq_len=120, mean_tokens=80, n_labels=12,
                    label_tokens=5, task="classification", validation_rows=30)
    return dataclasses.replace(base, **changes)


def qa(**changes) -> Workload:
    base = Workload(train_rows=100, test_rows=16, seq_len=300, mean_tokens=250, task="qa",
                    max_new_tokens=16, batch_size=4)
    return dataclasses.replace(base, **changes)


def test_label_scoring_traffic_grows_with_labels_and_prompt_length():
    work = classification()
    base = label_scoring_traffic_s(SMOL, work, 100, 60, CPU)
    assert base > 0
    more_labels = label_scoring_traffic_s(SMOL, dataclasses.replace(work, n_labels=24), 100, 60,
                                          CPU)
    assert more_labels == pytest.approx(2 * base)
    assert label_scoring_traffic_s(SMOL, work, 400, 60, CPU) == pytest.approx(4 * base)
    # one-token labels are read off the prompt's last logits: no cache is repeated
    assert label_scoring_traffic_s(SMOL, dataclasses.replace(work, label_tokens=1), 100, 60,
                                   CPU) == 0.0


def test_label_scoring_time_grows_with_labels_in_the_estimate():
    few, many = (estimate("rag", SMOL, configured_workload("rag", classification(n_labels=n)),
                          CPU) for n in (3, 12))
    assert many.breakdown["predict_s"] > 1.3 * few.breakdown["predict_s"]


def test_decoding_traffic_grows_with_generated_tokens_and_prompt_length():
    profile = profile_for("zero-shot")
    work = qa()
    lengths = lengths_for(profile, work)
    base = decoding_traffic_s(SMOL, work, lengths, 16, CPU)
    assert base > 0
    longer_answers = dataclasses.replace(work, max_new_tokens=32)
    doubled = decoding_traffic_s(SMOL, longer_answers, lengths_for(profile, longer_answers), 16,
                                 CPU)
    assert doubled > 2 * base  # twice the steps, each over a longer cache
    long_prompts = dataclasses.replace(work, mean_tokens=1000, row_tokens=0)
    assert decoding_traffic_s(SMOL, long_prompts, lengths_for(profile, long_prompts), 16,
                              CPU) > base
    # a step reads every weight whatever the batch: fewer, fuller batches read them less often
    wide = dataclasses.replace(work, predict_batch_size=16)
    assert decoding_traffic_s(SMOL, wide, lengths, 16, CPU) < base
    # label scoring generates nothing
    assert decoding_traffic_s(SMOL, classification(), lengths_for(profile, classification()),
                              60, CPU) == 0.0


def test_a_generated_token_costs_far_more_than_a_prompt_token():
    """Measured 2026-12-03: a decoding step at 4 rows costs about one read of the weights,
    ~15x the FLOPs of its 4 tokens."""
    short, long = (estimate("zero-shot", SMOL, configured_workload(
        "zero-shot", qa(), overrides={"*": {"max_new_tokens": str(n)}}), CPU) for n in (8, 40))
    per_generated = (long.breakdown["predict_s"] - short.breakdown["predict_s"]) / (32 * 16)
    per_prompt_token = 2 * SMOL.matmul_params / CPU.flops
    assert per_generated > 10 * per_prompt_token


def test_attention_grows_with_the_square_of_the_prompt():
    assert prompt_attention_flops(SMOL, 1024) == pytest.approx(4 * prompt_attention_flops(SMOL,
                                                                                          512))
    # at 512 tokens it adds ~13 % to the matmuls' 2 x params per token (measured 1.29x vs 1.09x)
    share = prompt_attention_flops(SMOL, 512) / 512 / (2 * SMOL.matmul_params)
    assert 0.08 < share < 0.2


def test_the_trainer_counts_its_timed_passes_and_label_validations():
    profile = profile_for("lora")
    work = configured_workload("lora", classification())
    lengths = lengths_for(profile, work)
    with_budget = training_extras_s(profile, SMOL, work, lengths, CPU)
    no_budget = training_extras_s(profile, SMOL, dataclasses.replace(work, time_budget_s=0),
                                  lengths, CPU)
    assert with_budget > no_budget > 0  # the timed passes, then the validations
    more_rows = training_extras_s(profile, SMOL, dataclasses.replace(work, validation_rows=90),
                                  lengths, CPU)
    assert more_rows > with_budget
    more_labels = training_extras_s(profile, SMOL, dataclasses.replace(work, n_labels=24),
                                    lengths, CPU)
    assert more_labels > with_budget  # classification validates by label scoring
    assert training_extras_s(profile_for("zero-shot"), SMOL, work, lengths, CPU) == 0.0


def test_setup_follows_what_a_candidate_imports():
    llm = setup_seconds(profile_for("zero-shot"), False)
    assert setup_seconds(profile_for("rag"), True) > llm
    assert setup_seconds(profile_for("lora"), False) > llm
    assert setup_seconds(profile_for("lora"), True) > setup_seconds(profile_for("lora"), False)
    assert setup_seconds(profile_for("majority"), False) < 1
    assert setup_seconds(profile_for("knn"), False) > 0


def test_bandwidth_is_measured_once_and_cached_beside_the_flops(tmp_path, monkeypatch):
    from advisor import estimate as est

    monkeypatch.setenv("TUNEWISE_CACHE", str(tmp_path))
    monkeypatch.delenv("TUNEWISE_CPU_FLOPS", raising=False)
    monkeypatch.delenv("TUNEWISE_CPU_BANDWIDTH", raising=False)
    est.cpu_flops()
    measured, source = est.cpu_bandwidth()
    assert measured > 1e8 and source.startswith("measured now")
    again, source = est.cpu_bandwidth()
    assert again == measured and "cached" in source
    data = json.loads((tmp_path / "cpu_throughput.json").read_text())
    assert data["copy_bytes_per_s"] == measured and "effective_flops" in data
    machine = est.this_machine(measure=True)
    assert machine.bytes_per_s == measured
    # none measured (the reference CPU): the FLOP/s over the measured FLOP-per-byte ratio
    reference = est.this_machine(measure=False)
    assert reference.bytes_per_s == pytest.approx(reference.flops / est.CPU_FLOP_PER_BYTE)
    # a GPU: its data sheet's bandwidth x the utilisation a loop of small kernels reaches
    h100 = est.gpu_machine("NVIDIA H100 80GB HBM3", 80)
    assert h100.bytes_per_s == pytest.approx(3350e9 * est.GPU_BANDWIDTH_UTILISATION)


def load_runs_script():
    from tests.conftest import load_benchmark

    return load_benchmark("estimator_runs", "estimator_runs")


def test_held_out_slices_are_deterministic_and_as_described():
    runs = load_runs_script()
    train = [{"text": f"t{i}", "label": ["a", "b"][i % 2], "extra": 1} for i in range(2400)]
    test = [{"text": f"s{i}", "label": "a"} for i in range(600)]
    uci = runs.uci_sentiment(train, test)
    assert len(uci["train.jsonl"]) == 400 and len(uci["test.jsonl"]) == 64
    assert uci["train.jsonl"][1] == {"text": "t6", "label": "a"}  # every 6th, fields kept
    assert runs.uci_sentiment(train, test) == uci

    intents = sorted(runs.BUNDLED_INTENTS) + [f"intent_{i:02d}" for i in range(80)]
    banking = [{"text": f"{label} {k}", "label": label} for k in range(40) for label in intents]
    sliced = runs.banking77_12(banking, banking)
    labels = list(dict.fromkeys(r["label"] for r in sliced["train.jsonl"]))
    assert len(labels) == 12 and not set(labels) & runs.BUNDLED_INTENTS
    assert len(sliced["train.jsonl"]) == 360 and len(sliced["test.jsonl"]) == 72

    questions = [{"id": f"d{i}", "question": f"q{i}", "context": "c", "answer": "a",
                  "context_id": f"p{i // 3}"} for i in range(600)]
    corpus = [{"id": f"d{i}", "text": f"abstract {i}"} for i in range(1000)]
    pubmed = runs.pubmedqa16(questions, questions, corpus)
    assert len(pubmed["train.jsonl"]) == 120 and len(pubmed["test.jsonl"]) == 16
    assert len(pubmed["corpus.jsonl"]) == 152  # the abstracts of 120 train + 32 test questions
    assert set(pubmed["test.jsonl"][0]) == {"question", "context", "answer"}

    paragraphs = [{"id": f"p{i}", "text": f"paragraph {i}"} for i in range(1200)]
    squad = runs.squad_b16(questions, questions, paragraphs)
    assert len(squad["test.jsonl"]) == 16
    assert squad["test.jsonl"][0]["question"] == "q5"  # rows 5, 15, 25: not squad_mini's
    used = {r["context_id"] for r in questions[5::10][:40]}
    assert {d["id"] for d in squad["corpus.jsonl"]} >= used
    assert len(squad["corpus.jsonl"]) == len(used) + 60


def test_each_bench_runs_as_on_2026_12_03(tmp_path):
    runs = load_runs_script()
    cls = runs.bench_command("uci_sentiment", tmp_path, tmp_path / "out")
    assert cls[cls.index("--strategies") + 1] == runs.CLASSIFICATION
    assert "max_steps=6" in cls and "encoder-ft.epochs=1" in cls and "--corpus" not in cls
    assert "--no-forgetting" in cls
    (tmp_path / "corpus.jsonl").write_text("")
    held_out = runs.bench_command("squad_b16", tmp_path, tmp_path / "out")
    assert "max_new_tokens=16" in held_out and "batch_size=4" in held_out
    assert held_out[held_out.index("--out") + 1].endswith("runs/squad_b16")
    fit = runs.bench_command("squad_mini16", tmp_path, tmp_path / "out")
    assert "max_new_tokens=16" not in fit and fit[fit.index("--out") + 1].endswith("fit/squad_mini16")
    assert "few-shot" in fit[fit.index("--strategies") + 1]


def test_the_fit_set_is_the_bundled_samples_line_for_line(tmp_path):
    runs = load_runs_script()
    folder = runs.build_slice("squad_mini16", tmp_path / "unused", tmp_path)
    sample = ROOT / "bench" / "samples" / "squad_mini"
    test_lines = (folder / "test.jsonl").read_text().splitlines()
    assert test_lines == (sample / "test.jsonl").read_text().split("\n")[:16]
    assert (folder / "corpus.jsonl").read_bytes() == (sample / "corpus.jsonl").read_bytes()


def test_deploy_latency_is_timed_as_bench_deploy_times_it():
    from advisor.estimate import deploy_seconds
    from bench.deploy import BUDGET_S, MAX_REQUESTS, MIN_REQUESTS

    # fast requests: a warm-up and MAX_REQUESTS timed ones
    assert deploy_seconds(0.1, 100) == pytest.approx(0.1 * (1 + MAX_REQUESTS))
    # slow ones: at least MIN_REQUESTS after the warm-up, whatever the budget
    assert deploy_seconds(10.0, 100) == pytest.approx(10.0 * (1 + MIN_REQUESTS))
    # in between: requests stop once the budget has passed
    assert BUDGET_S <= deploy_seconds(1.5, 100) < BUDGET_S + 1.5
    assert deploy_seconds(0.1, 3) == pytest.approx(0.1 * 4)  # no more rows than the test split
    assert deploy_seconds(0.0, 100) == 0.0


def test_a_generated_answer_makes_a_slower_request_than_a_label():
    from advisor.estimate import request_seconds

    labels, answers = classification(), qa()
    profile = profile_for("zero-shot")
    label = request_seconds(profile, SMOL, labels, lengths_for(profile, labels), CPU)
    answer = request_seconds(profile, SMOL, answers, lengths_for(profile, answers), CPU)
    assert answer > 2 * label > 0
