"""`tunewise advise`: the JSON shape of DESIGN.md, the sample answers, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "advisor" / "samples"


def advise_json(capsys, *args) -> dict:
    code = main(["advise", *args, "--json", "--no-measure", "--no-domain", "--no-probe"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def check_shape(result: dict) -> None:
    assert set(result) - {"notes"} == {"ranked", "excluded"}
    for item in result["ranked"]:
        assert set(item) == {"strategy", "family", "score", "reasons", "estimate", "fits"}
        assert isinstance(item["fits"], bool) and 0 <= item["score"] <= 100
        assert set(item["estimate"]) == {"peak_memory_gb", "time_s", "cost_usd"}
        for reason in item["reasons"]:
            assert set(reason) == {"rule", "text", "evidence"}
    for item in result["excluded"]:
        assert set(item) == {"strategy", "why"}


def test_classification_sample(capsys):
    result = advise_json(capsys, "--answers", str(SAMPLES / "classification.yaml"))
    check_shape(result)
    ranked = [r["strategy"] for r in result["ranked"]]
    # 6 intents with ~40 labelled rows each: the encoder classifiers rank with LoRA, not below
    assert ranked.index("knn") < ranked.index("lora")
    assert ranked.index("transfer") < ranked.index("lora")
    assert ranked[0] in ("knn", "transfer", "encoder-ft", "lora")
    assert {"majority", "zero-shot"} <= set(ranked)
    assert {e["strategy"] for e in result["excluded"]} == {"sft-chosen", "dpo", "reward-model",
                                                           "rlhf"}
    for item in result["ranked"]:
        assert item["estimate"]["peak_memory_gb"] is not None


def test_qa_sample_puts_rag_first(capsys):
    result = advise_json(capsys, "--answers", str(SAMPLES / "qa.yaml"))
    check_shape(result)
    assert result["ranked"][0]["strategy"] == "rag"
    assert result["ranked"][0]["reasons"][0]["rule"] == "changing-knowledge"


def test_answers_without_data_and_the_table(capsys, tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("task: preference\nresources: {gpu_memory_gb: 24}\n")
    result = advise_json(capsys, "--answers", str(answers))
    check_shape(result)
    assert [r["strategy"] for r in result["ranked"][:2]] == ["dpo", "sft-chosen"]
    assert main(["advise", "--answers", str(answers), "--no-measure", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "dpo" in out and "recommended run:" in out


@pytest.mark.parametrize("text, message", [
    ("data: {labelled_examples: 3}", "did you mean 'labeled_examples'"),
    ("goals: {priority: speed}", "choose one of"),
    ("task: [1, 2", "not valid YAML"),
    ("- just a list", "expected a mapping"),
    ("model: {base: smolm2}", "model.base: unknown model 'smolm2' (did you mean 'smollm2-135m'?)"),
    ("model: {base: mistrl-7b}", "did you mean 'mistral-7b'"),
])
def test_bad_answers_are_messages_not_tracebacks(capsys, tmp_path, text, message):
    answers = tmp_path / "bad.yaml"
    answers.write_text(text)
    assert main(["advise", "--answers", str(answers), "--json"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_answers_file_and_missing_data(capsys, tmp_path):
    assert main(["advise", "--answers", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read answers file" in capsys.readouterr().err
    assert main(["advise", "--data", str(tmp_path / "missing.csv"), "--json"]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_the_table_shows_the_data_facts_and_the_evidence_behind_the_top_pick(capsys):
    assert main(["advise", "--answers", str(SAMPLES / "classification.yaml"),
                 "--no-measure", "--no-domain", "--no-probe"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "6 classes, ~40 labelled examples per class" in out
    assert "why knn" in out and "closed-label-set: 6 classes" in out
    # the numbers and the reference, not a file name
    assert "SetFit 62.3 vs RoBERTa-large fine-tuning 43.0" in out
    assert "Tunstall et al. 2022 (arXiv:2209.11055)" in out
    assert "EVIDENCE.md" not in out and "DESIGN.md" not in out


def recommend_for(answers, profile=None, preset="quick"):
    from advisor.answers import validate_answers
    from advisor.recommend import recommend

    return recommend(validate_answers(answers), profile=profile, measure=False, preset=preset,
                     hardware={"cuda": False, "memory_gb": 64.0, "cores": 2})


def test_a_stated_size_without_a_model_name_is_estimated_with_a_shape_of_that_size():
    seven = recommend_for({"task": "generation", "data": {"labeled_examples": 500},
                           "model": {"params_b": 7}})
    assert seven.shape == "llama-2-7b" and seven.facts.params_b == 7
    assert any("llama-2-7b's published shape" in note for note in seven.notes)
    lora = next(c for c in seven.ranking.ranked if c.strategy == "lora")
    assert lora.estimate["peak_memory_gb"] > 25  # 6.7B fp32 weights alone are 25 GB
    small = recommend_for({"task": "generation", "data": {"labeled_examples": 500}})
    small_lora = next(c for c in small.ranking.ranked if c.strategy == "lora")
    assert small.shape is None and small_lora.estimate["peak_memory_gb"] < 10
    # no reference near 70B: no LLM estimates, and a note that says why
    huge = recommend_for({"task": "generation", "model": {"params_b": 70}})
    assert any("no reference model shape" in note for note in huge.notes)
    assert next(c for c in huge.ranking.ranked if c.strategy == "lora").estimate is None


def test_a_stated_size_far_from_the_named_model_is_noted():
    result = recommend_for({"task": "generation", "model": {"base": "smollm2-135m",
                                                             "params_b": 7}})
    assert any("the rules use 7B" in note for note in result.notes)


def test_advise_applies_the_presets_step_cap_as_bench_does():
    from advisor.estimate import (configured_workload, estimate, preset_max_steps, shape_for,
                                  this_machine, workload_from_profile)

    profile = {"task": "classification", "rows": 4000, "token_counter": "words",
               "splits": {"train": 2800, "validation": 400, "test": 800},
               "token_length": {"p50": 20, "p90": 40}, "labels": {"a": 2000, "b": 2000}}
    quick = recommend_for({}, profile, preset="quick")
    full = recommend_for({}, profile, preset="full")
    lora = lambda r: next(c for c in r.ranking.ranked if c.strategy == "lora")  # noqa: E731
    assert quick.workload.max_steps == preset_max_steps("quick") == 300
    assert full.workload.max_steps is None
    assert lora(quick).estimate["time_s"] < lora(full).estimate["time_s"] / 3
    # the same numbers `tunewise bench` attaches to its records for this preset
    machine = this_machine({"cuda": False, "memory_gb": 64.0}, cpu_only=True, measure=False)
    work = workload_from_profile(profile, max_steps=preset_max_steps("quick"))
    bench_side = estimate("lora", shape_for("smollm2-135m"), configured_workload("lora", work),
                          machine, shape_for("minilm-l6")).as_dict()
    assert lora(quick).estimate == bench_side


def test_a_zero_budget_still_recommends_and_says_what_the_cheapest_costs(capsys, tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("task: classification\ndata: {labeled_examples: 300}\n"
                       "resources: {budget_usd: 0, cpu_only: true}\n")
    result = advise_json(capsys, "--answers", str(answers))
    check_shape(result)
    assert result["notes"] and "$0 budget" in result["notes"][0]
    assert "the cheapest" in result["notes"][0]
    assert any(r["fits"] and r["family"] != "baseline" for r in result["ranked"])


def test_model_base_takes_known_names_shapes_hub_ids_and_folders(tmp_path, monkeypatch):
    from advisor.answers import AnswersError, validate_answers

    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()  # a local folder, named without any "/"
    for base in ("smollm2-135m", "mistral-7b", "meta-llama/Llama-2-7b-hf", "my-model"):
        assert validate_answers({"model": {"base": base}})["model"]["base"] == base
    with pytest.raises(AnswersError, match="did you mean 'llama-3-8b'"):
        validate_answers({"model": {"base": "lama-3-8b"}}, "a.yaml")
