"""`tunewise export` of every candidate that has a model, and `tunewise predict` with an export.

One harness run on tiny random models (tiny-bert encoder, tiny-llama LLM) feeds every test: each
export must answer the run's own test inputs exactly as the harness's predictions file says.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from advisor.cli import main
from bench import journal
from bench.export import EXPORT_MANIFEST, hub_id, load_hint
from bench.runner import BenchPlan, run_benchmark
from fake_strategies import write_jsonl

TOPICS = {"card": "my card has not arrived yet", "refund": "I want my money back for the order",
          "pin": "I forgot the pin code of my account"}
CANDIDATES = ["majority", "zero-shot", "knn", "transfer", "encoder-ft", "rag", "lora"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    train = [{"text": f"{sentence} (message {i})", "label": label}
             for i in range(12) for label, sentence in TOPICS.items()]
    test = [{"text": f"{sentence}, case {i * 7}", "label": label}
            for i in range(4) for label, sentence in TOPICS.items()]
    plan = BenchPlan(data=str(write_jsonl(folder / "train.jsonl", train)),
                     test=str(write_jsonl(folder / "test.jsonl", test)), strategies=CANDIDATES,
                     out=str(folder / "runs"), model="tiny-llama", encoder="tiny-bert",
                     # encoder-ft trained enough that its predictions differ between rows, so
                     # equal predictions mean the same model, not the same constant (the tiny
                     # LLM's LoRA answers one label whatever it is trained for in seconds)
                     overrides={"encoder-ft": {"epochs": 10, "learning_rate": 1e-3,
                                               "batch_size": 4, "patience": 10},
                                "lora": {"max_steps": 2}},
                     command="pytest")
    result = run_benchmark(plan)
    statuses = {r["strategy"]: r["status"] for r in result.records}
    assert statuses == {name: "ok" for name in CANDIDATES}, [r["error"] for r in result.records]
    return Path(result.run_dir)


def harness_predictions(run_dir: Path, strategy: str) -> list:
    path = run_dir / "predictions" / f"{journal.safe_name(strategy)}.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [row["prediction"] for row in sorted(rows, key=lambda r: r["index"])]


def write_test_inputs_csv(run_dir: Path, path: Path, column: str = "text") -> Path:
    """The run's own test inputs, as a user would hand them in (no label column)."""
    test = journal.read_json(run_dir / journal.SPLIT)["test"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([column])
        writer.writerows([row["text"]] for row in test)
    return path


def predict(export: Path, inputs: Path, tmp_path: Path, *extra: str) -> list:
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", str(export), "--input", str(inputs), "--output", str(out),
                 *extra]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["index"] for row in rows] == list(range(len(rows)))
    return [row["prediction"] for row in rows]


@pytest.mark.parametrize("strategy", ["knn", "transfer", "encoder-ft"])
def test_export_predicts_what_the_harness_scored(run_dir, strategy, tmp_path):
    out = tmp_path / strategy
    assert main(["export", str(run_dir), strategy, str(out)]) == 0
    manifest = json.loads((out / EXPORT_MANIFEST).read_text())
    run_manifest = journal.read_json(run_dir / journal.MANIFEST)
    assert manifest["strategy"] == strategy and manifest["task"] == "classification"
    assert manifest["run_id"] == run_manifest["run_id"] == run_dir.name
    assert manifest["data_hash"] == run_manifest["data"]["hash"] and manifest["data_hash"]
    assert manifest["labels"] == sorted(TOPICS)
    assert manifest["encoder_name"] == "tiny-bert"
    assert Path(manifest["encoder"]).is_dir()  # a test model: its folder, not an alias
    assert (out / "README.md").read_text().count(manifest["encoder"]) >= 1

    inputs = write_test_inputs_csv(run_dir, tmp_path / "new.csv")
    expected = harness_predictions(run_dir, strategy)
    assert len(expected) == len(TOPICS) * 4 and len(set(expected)) > 1
    assert predict(out, inputs, tmp_path) == expected


def test_rag_export_predicts_what_the_harness_scored(run_dir, tmp_path):
    out = tmp_path / "rag"
    assert main(["export", str(run_dir), "rag", str(out)]) == 0
    manifest = json.loads((out / EXPORT_MANIFEST).read_text())
    assert manifest["kind"] == "rag" and manifest["base_model_name"] == "tiny-llama"
    assert manifest["base_model"] == hub_id("tiny-llama") and manifest["config"]["k"] == 4
    assert (out / "index.faiss").exists() and (out / "encoder" / "modules.json").exists()
    inputs = write_test_inputs_csv(run_dir, tmp_path / "new.csv")
    assert predict(out, inputs, tmp_path) == harness_predictions(run_dir, "rag")


def test_predict_finds_a_synonym_column_in_jsonl(run_dir, tmp_path):
    out = tmp_path / "knn"
    assert main(["export", str(run_dir), "knn", str(out)]) == 0
    test = journal.read_json(run_dir / journal.SPLIT)["test"]
    inputs = write_jsonl(tmp_path / "new.jsonl", [{"id": i, "message": row["text"]}
                                                 for i, row in enumerate(test)])
    assert predict(out, inputs, tmp_path) == harness_predictions(run_dir, "knn")


def test_lora_adapter_export_loads_with_peft_and_predicts_the_same(run_dir, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    assert main(["export", str(run_dir), "lora", str(out)]) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / EXPORT_MANIFEST).read_text())
    assert manifest["kind"] == "adapter" and manifest["base_model_name"] == "tiny-llama"
    base_path = manifest["base_model"]
    assert Path(base_path).is_dir() and base_path in printed  # a loadable id, not the alias
    assert "from_pretrained('tiny-llama')" not in printed
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), str(out))
    assert any("lora_A" in name for name, _ in model.named_parameters())

    inputs = write_test_inputs_csv(run_dir, tmp_path / "new.csv")
    assert predict(out, inputs, tmp_path) == harness_predictions(run_dir, "lora")


def test_bundled_names_become_hub_ids_in_load_hints(tmp_path):
    assert hub_id("smollm2-135m") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_id("minilm-l6") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    hint = load_hint({"kind": "adapter", "base_model": hub_id("smollm2-135m"),
                      "base_model_note": "converted"}, tmp_path)
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in hint and "smollm2-135m" not in hint


def test_candidates_without_a_model_exit_2_with_a_reason(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "majority", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "majority has no model to export" in err and "Traceback" not in err
    assert main(["export", str(run_dir), "zero-shot", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert "base model itself; its id is" in err and hub_id("tiny-llama") in err
    assert not (tmp_path / "m").exists() and not (tmp_path / "z").exists()


def test_export_and_predict_errors_are_messages(run_dir, tmp_path, capsys):
    assert main(["export", str(run_dir), "full", str(tmp_path / "r")]) == 2
    assert "not a candidate of the run" in capsys.readouterr().err
    failed = tmp_path / "failed-run"
    shutil.copytree(run_dir, failed)
    records = journal.read_records(failed)
    (failed / journal.RESULTS).write_text("".join(
        json.dumps({**r, "status": "failed"} if r["strategy"] == "knn" else r) + "\n"
        for r in records))
    assert main(["export", str(failed), "knn", str(tmp_path / "k")]) == 2
    assert "knn did not finish" in capsys.readouterr().err

    assert main(["predict", str(tmp_path), "--input", str(tmp_path / "x.csv")]) == 2
    assert "not a tunewise export" in capsys.readouterr().err

    out = tmp_path / "transfer"
    assert main(["export", str(run_dir), "transfer", str(out)]) == 0
    wrong = write_jsonl(tmp_path / "wrong.jsonl", [{"body": "hello"}])
    assert main(["predict", str(out), "--input", str(wrong)]) == 2
    assert "has no text column" in capsys.readouterr().err
    assert main(["predict", str(out), "--input", str(wrong), "--text-col", "nope"]) == 2
    assert "has no column 'nope'" in capsys.readouterr().err
