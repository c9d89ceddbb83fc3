"""Sweeps (bench.sweeps): --tune, --learning-curve and multi-task, through the real harness.

Tuning and multi-task run the real `lora` strategy on the tiny random Llama (a few optimizer
steps); the learning curve uses a trainable test double defined here that reports which train
rows it saw, so nesting and stratification are checked on the rows themselves.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import journal, sweeps
from bench.errors import TunewiseError
from bench.runner import BenchPlan, run_benchmark
from bench.schema import validate_record
from fake_strategies import write_jsonl
from strategies.base import RunContext, StrategyOutput, StrategySpec, option

LABELS = ("negative", "positive")


# ----------------------------------------------------------------------- a trainable test double


@dataclass
class EchoConfig:
    learning_rate: float = option(1e-3, help="searched by --tune (unused)")


def run_echo(ctx: RunContext, config: EchoConfig) -> StrategyOutput:
    """Predicts its train split's most common label; tells which train rows it saw."""
    ctx.phase("adapt")
    majority = Counter(r["label"] for r in ctx.data.train).most_common(1)[0][0]
    ctx.phase("predict")
    return StrategyOutput(predictions=[majority] * len(ctx.data.test), trainable_params=1,
                          total_params=1,
                          info={"train_texts": [r["text"] for r in ctx.data.train]})


SPEC_ECHO = StrategySpec("fake-trained-echo", "peft", frozenset({"classification"}), EchoConfig,
                         run_echo, trainable=True)


def run_prompt_constant(ctx: RunContext, config: EchoConfig) -> StrategyOutput:
    ctx.phase("predict")
    return StrategyOutput(predictions=["negative"] * len(ctx.data.test))


SPEC_PROMPT = StrategySpec("fake-prompt-constant", "prompting", frozenset({"classification"}),
                           EchoConfig, run_prompt_constant)


@pytest.fixture(autouse=True)
def fakes():
    from strategies import registry

    for name, attr, family in (("fake-trained-echo", "SPEC_ECHO", "peft"),
                               ("fake-prompt-constant", "SPEC_PROMPT", "prompting")):
        if name not in registry.names():
            registry.register(name, f"test_sweeps:{attr}", family)


# ----------------------------------------------------------------------- data


def _dataset(folder: Path, prefix: str, labels=LABELS, train_rows=40) -> dict:
    """Distinct rows, labels in a 3:1 ratio in train (so stratification is visible)."""
    folder.mkdir(parents=True, exist_ok=True)
    train = [{"text": f"{prefix} train message {i} about item {i * 7}",
              "label": labels[0] if i % 4 else labels[1]} for i in range(train_rows)]
    test = [{"text": f"{prefix} test message {i} on thing {i * 11}",
             "label": labels[i % 2]} for i in range(8)]
    return {"data": str(write_jsonl(folder / "train.jsonl", train)),
            "test": str(write_jsonl(folder / "test.jsonl", test))}


def _plan(data, tmp_path, strategies, **kwargs) -> BenchPlan:
    return BenchPlan(data=data["data"], test=data["test"], strategies=strategies,
                     out=str(tmp_path / "runs"), model="tiny-llama", encoder="tiny-bert",
                     command="pytest", **kwargs)


TINY_LORA = {"lora": {"max_steps": 2, "eval_every": 0, "predict_batch_size": 8}}


# ----------------------------------------------------------------------- tuning


def test_tune_records_every_trial_and_refits_the_best_config(tmp_path):
    data = _dataset(tmp_path / "data", "a", train_rows=24)
    result = run_benchmark(_plan(data, tmp_path, ["lora"], tune=2, overrides=TINY_LORA))
    assert [r["strategy"] for r in result.records] == ["lora"]  # trials are not records
    record = result.records[0]
    assert record["status"] == "ok", record["error"]
    validate_record(record)
    trials, tuning = record["info"]["trials"], record["info"]["tuning"]
    assert len(trials) == 2 and all(t["status"] == "ok" for t in trials)
    assert {"learning_rate", "epochs", "batch_size", "r", "alpha"} == set(trials[0]["params"])
    assert "max_steps" not in trials[0]["params"]  # fixed by --set: not searched
    best = max(trials, key=lambda t: t["value"])
    assert tuning["best_params"] == trials[tuning["best_trial"]]["params"]
    assert tuning["best_validation_value"] == best["value"]
    for key, value in tuning["best_params"].items():  # the refit ran with the winner's config
        assert record["config"][key] == value
    assert record["config"]["max_steps"] == 2
    # trials were scored on validation (its rows), the refit on test
    run_dir = result.run_dir
    split = journal.read_json(run_dir / journal.SPLIT)
    trial_rows = journal.read_records(run_dir, "predictions/lora@trial0.jsonl")
    assert [r["input"] for r in trial_rows] == [r["text"] for r in split["validation"]]
    assert record["metrics_ci"]["accuracy"]  # tested on test, with its interval
    assert (run_dir / "logs" / "lora@trial1.log").exists()


def test_search_space_is_data_filtered_by_the_config_and_by_set():
    from strategies import registry

    lora = registry.get("lora")
    assert set(sweeps.search_space(lora)) == {"learning_rate", "epochs", "batch_size", "r",
                                              "alpha"}
    assert sweeps.search_space(lora)["learning_rate"] == ("log", 1e-4, 3e-3)  # peft's range
    assert sweeps.search_space(registry.get("full"))["learning_rate"] == ("log", 1e-5, 3e-4)
    assert "r" not in sweeps.search_space(lora, fixed={"r": "4"})
    assert "r" not in sweeps.search_space(registry.get("ia3"))  # no such field there


# ----------------------------------------------------------------------- learning curves


def test_learning_curve_one_record_per_size_on_nested_stratified_subsets(tmp_path):
    data = _dataset(tmp_path / "data", "a")
    result = run_benchmark(_plan(data, tmp_path, ["fake-trained-echo", "fake-prompt-constant"],
                                 learning_curve=[8, 16]))
    split = journal.read_json(result.run_dir / journal.SPLIT)
    curve = [r for r in result.records if isinstance(r["info"].get("learning_curve"), dict)]
    main = [r for r in result.records if r not in curve]
    assert sorted(r["strategy"] for r in main) == ["fake-prompt-constant", "fake-trained-echo"]
    assert sorted((r["strategy"], r["info"]["train_rows"]) for r in curve) == [
        ("fake-prompt-constant", 8), ("fake-prompt-constant", 16),
        ("fake-trained-echo", 8), ("fake-trained-echo", 16)]
    for record in curve:
        validate_record(record)
        assert record["info"]["learning_curve"]["train_rows"] == record["info"]["train_rows"]
    seen = {r["info"]["train_rows"]: r["info"]["train_texts"] for r in curve
            if r["strategy"] == "fake-trained-echo"}
    assert len(seen[8]) == 8 and len(seen[16]) == 16
    assert set(seen[8]) < set(seen[16])  # nested
    label_of = {r["text"]: r["label"] for r in split["train"]}
    full = Counter(label_of.values())
    for size, texts in seen.items():  # stratified: the train split's label ratio, kept
        counts = Counter(label_of[t] for t in texts)
        assert counts["negative"] == round(size * full["negative"] / len(split["train"]))
    assert set(seen[16]) <= set(label_of)  # drawn from train, never from test
    # the report reads these as curve points, not as candidates of the main table
    from reports.run_data import split_curve_records

    assert len(split_curve_records(result.records)[1]) == 4


def test_nested_subsets_are_seeded_and_stratified():
    labels = ["a"] * 30 + ["b"] * 10
    first = sweeps.nested_subsets(40, labels, [4, 20], seed=3)
    assert first == sweeps.nested_subsets(40, labels, [4, 20], seed=3)
    assert first != sweeps.nested_subsets(40, labels, [4, 20], seed=4)
    assert set(first[4]) < set(first[20])
    assert Counter(labels[i] for i in first[20]) == {"a": 15, "b": 5}
    assert Counter(labels[i] for i in first[4]) == {"a": 3, "b": 1}


def test_crossover_names_the_size_where_fine_tuning_overtakes_prompting():
    def point(strategy, family, rows, value):
        return {"strategy": strategy, "family": family, "status": "ok",
                "primary_metric": "accuracy", "metrics": {"accuracy": value},
                "info": {"learning_curve": {"train_rows": rows}, "train_rows": rows}}

    records = [point("few-shot", "prompting", 16, 0.5), point("lora", "peft", 16, 0.3),
               point("few-shot", "prompting", 64, 0.55), point("lora", "peft", 64, 0.7)]
    message = sweeps.crossover_message(records)
    assert "lora overtakes few-shot from 64 train rows" in message
    assert "no intervals recorded" in message
    records[3]["metrics_ci"] = {"accuracy": [0.6, 0.8]}
    records[2]["metrics_ci"] = {"accuracy": [0.45, 0.65]}
    assert "not shown to differ" in sweeps.crossover_message(records)
    records[2]["metrics_ci"] = {"accuracy": [0.45, 0.58]}
    assert "intervals apart" in sweeps.crossover_message(records)
    full_run = {"strategy": "lora", "family": "peft", "status": "ok", "info": {},
                "primary_metric": "accuracy", "metrics": {"accuracy": 0.9}}
    assert "  lora: 16 rows 0.300 → 64 rows 0.700 → all 0.900" in sweeps.curve_lines(
        records + [full_run])
    assert "no fine-tuned candidate" in sweeps.crossover_message(records[:1] + records[1:2])
    assert sweeps.crossover_message(records[1::2]) is None  # no prompting candidate


# ----------------------------------------------------------------------- multi-task


def test_multitask_trains_once_and_scores_on_each_dataset(tmp_path):
    a = _dataset(tmp_path / "alpha", "alpha")
    b = _dataset(tmp_path / "beta", "beta", labels=("billing", "shipping"))
    b_train = str(Path(b["data"]).parent)  # a folder with train.jsonl + test.jsonl
    plan = _plan(a, tmp_path, ["lora"], more_data=[b_train], overrides=TINY_LORA,
                 max_train_rows=16)
    result = run_benchmark(plan)
    assert all(r["status"] == "ok" for r in result.records), [r["error"] for r in result.records]
    by = {(r["info"]["multitask"]["mode"], r["info"]["multitask"]["scored_on"]): r
          for r in result.records}
    assert set(by) == {("single-task", "alpha"), ("single-task", "beta"),
                       ("multi-task", "alpha"), ("multi-task", "beta")}
    for record in result.records:
        validate_record(record)
        assert record["strategy"] == "lora"
        assert record["info"]["multitask"]["datasets"] == ["alpha", "beta"]
    joint_a, joint_b = by[("multi-task", "alpha")], by[("multi-task", "beta")]
    assert joint_a["info"]["multitask"]["trained_on"] == ["alpha", "beta"]
    # one joint training run: the same process measurements in both of its records
    assert joint_a["time_s"] == joint_b["time_s"]
    assert joint_a["info"]["train_tokens"] == joint_b["info"]["train_tokens"]
    assert joint_a["info"]["train_tokens"] > by[("single-task", "alpha")]["info"]["train_tokens"]
    assert len(list((result.run_dir / "logs").glob("lora@multitask*.log"))) == 1
    # each dataset's records are scored on its own test rows, tagged in the joint run
    assert joint_b["confusion_matrix"]["labels"][:2] == ["billing", "shipping"]
    assert all(s["input"].startswith("[beta] ") for s in joint_b["samples"])
    assert all(s["reference"] in ("billing", "shipping") for s in joint_b["samples"])
    mixed = journal.read_json(result.run_dir / sweeps.MULTITASK_SPLIT)
    assert len(mixed["train"]) == 32 and set(mixed["labels"]) == {*LABELS, "billing", "shipping"}


def test_mix_splits_tags_rows_and_marks_each_test_part():
    one = {"task": "qa", "train": [{"question": "q1", "answer": "a"}], "validation": [],
           "test": [{"question": "q2", "answer": "b"}], "labels": [], "label_names": {}}
    two = {**one, "test": [{"question": "q3", "answer": "c"}, {"question": "q4", "answer": "d"}]}
    mixed, parts = sweeps.mix_splits([("one", one), ("two", two)])
    assert [r["question"] for r in mixed["test"]] == ["[one] q2", "[two] q3", "[two] q4"]
    assert [(p["name"], p["start"], p["end"]) for p in parts] == [("one", 0, 1), ("two", 1, 3)]


# ----------------------------------------------------------------------- CLI validation


def _cli(args: list[str]) -> int:
    from advisor.cli import main

    return main(["bench", *args])


@pytest.mark.parametrize("flags, message", [
    (["--learning-curve", "16,abc"], "sizes must be positive whole numbers"),
    (["--learning-curve", "0,8"], "sizes must be positive whole numbers"),
    (["--learning-curve", "8,8"], "listed twice"),
    (["--tune", "-1", "--strategies", "lora"], "at least 1"),
    (["--tune", "2", "--strategies", "majority,zero-shot"], "needs a trainable candidate"),
    (["--data", "again.csv", "--strategies", "knn"], "needs a trainable candidate"),
])
def test_bad_sweep_flags_exit_2_with_a_message(tmp_path, capsys, flags, message):
    data = _dataset(tmp_path / "data", "a")
    code = _cli(["--data", data["data"], "--out", str(tmp_path / "runs"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing ran, no run folder


def test_learning_curve_sizes_all_above_train_is_a_clear_error(tmp_path):
    data = _dataset(tmp_path / "data", "a", train_rows=12)
    with pytest.raises(TunewiseError, match="choose smaller sizes"):
        run_benchmark(_plan(data, tmp_path, ["fake-trained-echo"], learning_curve=[64]))


def test_second_data_flag_goes_to_more_data():
    from advisor import bench_cli

    parser = argparse.ArgumentParser()
    bench_cli.add_arguments(parser)
    args = parser.parse_args(["--data", "a.csv", "--data", "b.csv", "--data", "c.csv",
                              "--strategies", "lora", "--learning-curve", "64,16"])
    plan = bench_cli.plan_from_args(args)
    assert (plan.data, plan.more_data, plan.learning_curve) == ("a.csv", ["b.csv", "c.csv"],
                                                                 [16, 64])
