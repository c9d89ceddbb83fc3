"""`tunewise advise`: the JSON shape of DESIGN.md, the sample answers, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "advisor" / "samples"


def advise_json(capsys, *args) -> dict:
    code = main(["advise", *args, "--json", "--no-measure"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def check_shape(result: dict) -> None:
    assert set(result) == {"ranked", "excluded"}
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
    assert ranked[0] in ("lora", "qlora", "encoder-ft")  # 240 labels, high volume, 200 ms
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
    assert main(["advise", "--answers", str(answers), "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "dpo" in out and "recommended run:" in out


@pytest.mark.parametrize("text, message", [
    ("data: {labelled_examples: 3}", "did you mean 'labeled_examples'"),
    ("goals: {priority: speed}", "choose one of"),
    ("task: [1, 2", "not valid YAML"),
    ("- just a list", "expected a mapping"),
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


def test_probe_scores_the_base_model_on_a_validation_slice(tmp_path):
    """--probe runs zero-shot through the harness (tiny random model: seconds of compute, the
    rest is the child process start)."""
    from advisor.advise_cli import probe_zero_shot
    from advisor.answers import load_answers

    answers = load_answers(SAMPLES / "classification.yaml")
    answers["model"]["base"] = "tiny-llama"
    score = probe_zero_shot(answers, str(tmp_path))
    assert score is not None and 0.0 <= score <= 1.0
