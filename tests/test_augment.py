"""--augment paraphrase[:N] (bench.augment): parsing, the filter, generation on the tiny model,
the cache, and the run: only train grows, labels kept, the records say what was added."""

from __future__ import annotations

import json

import pytest

from bench import augment
from bench.augment import (augment_split, augmented_rows, keep_paraphrase, parse_augment)
from bench.errors import TunewiseError


def test_parse_augment():
    assert parse_augment("paraphrase") == {"method": "paraphrase", "per_row": 2}
    assert parse_augment("paraphrase:3") == {"method": "paraphrase", "per_row": 3}
    for bad, message in (("backtranslate", "unknown method"), ("paraphrase:x", "whole number"),
                         ("paraphrase:0", "between 1 and"), ("paraphrase:11", "between 1 and")):
        with pytest.raises(TunewiseError, match=message):
            parse_augment(bad)


def test_the_filter_keeps_rewordings_and_drops_copies_answers_and_drift():
    source = "Where is my new card?"
    assert keep_paraphrase(source, "Where can I find my new card?", [])
    assert not keep_paraphrase(source, "where is my new card", [])  # a copy
    assert not keep_paraphrase(source, "Your card is at the front desk.", [])  # an answer
    assert not keep_paraphrase(source, "Where can I find my new card?",
                               ["Where can I find my new card?"])  # twice
    assert not keep_paraphrase(source, "Card?", [])  # far shorter
    assert not keep_paraphrase(source, " ".join(["Where is it?"] * 8), [])  # far longer
    assert not keep_paraphrase(source, "", [])
    assert keep_paraphrase("I lost my card.", "My card is lost.", [])


def test_augmented_rows_keep_every_other_field():
    rows = [{"text": "a b c", "label": "x"}, {"text": "d e f", "label": "y"}]
    assert augmented_rows(rows, "text", [["a c b"], ["f e d", "e d f"]]) == [
        {"text": "a c b", "label": "x"}, {"text": "f e d", "label": "y"},
        {"text": "e d f", "label": "y"}]


def _split():
    from conftest import tiny_split

    return tiny_split("classification")


def test_generation_on_the_tiny_model_then_the_cache(tmp_path):
    """The tiny random model writes noise the filter mostly drops: what matters here is the
    plumbing (train only, labels kept, facts true) and that a rerun reads the cache."""
    split = _split()
    validation, test, train = list(split.validation), list(split.test), list(split.train)
    facts = augment_split(split, parse_augment("paraphrase:2"), "tiny-llama", cache=tmp_path)
    assert split.validation == validation and split.test == test
    assert split.train[:len(train)] == train
    added = split.train[len(train):]
    assert facts["rows_before"] == len(train) and facts["rows_added"] == len(added)
    assert facts["asked"] == 2 * len(train) and facts["cached"] is False
    assert facts["generator"] == "tiny-llama" and facts["field"] == "text"
    sources = {row["text"]: row["label"] for row in train}
    assert all(row["text"] not in sources and row["label"] in split.labels for row in added)
    stored = json.loads((tmp_path / facts["cache"].split("/")[-1]).read_text())
    assert len(stored["paraphrases"]) == len(train)

    def no_model(*args, **kwargs):
        raise AssertionError("a cached augmentation must not load the model")

    again = _split()
    facts_again = augment_split(again, parse_augment("paraphrase:2"), "tiny-llama",
                                cache=tmp_path, load_model=no_model)
    assert facts_again["cached"] is True and facts_again["seconds"] == 0.0
    assert again.train == split.train
    # another request is another cache entry
    other = augment_split(_split(), parse_augment("paraphrase:1"), "tiny-llama", cache=tmp_path)
    assert other["cached"] is False and other["cache"] != facts["cache"]


def test_preference_data_is_refused():
    from conftest import tiny_split

    with pytest.raises(TunewiseError, match="not preference"):
        augment_split(tiny_split("preference"), parse_augment("paraphrase"), "tiny-llama")


def test_a_run_trains_on_the_augmented_split_and_records_it(tmp_path, monkeypatch):
    """Through prepare_run: split.json's train holds the paraphrase rows with their source's
    label, validation and test are those of a run without --augment, and the records say
    what was added. The paraphraser is replaced by a rule here (the tiny model writes noise)."""
    from bench.plan import prepare_run
    from bench.runner import run_benchmark
    from fake_strategies import fake_plan, register_fakes, write_binary_data

    register_fakes()
    monkeypatch.setattr(augment, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(augment, "paraphrase_texts",
                        lambda texts, per_row, *a, **k: [[f"{t} please"] for t in texts])
    data = write_binary_data(tmp_path)
    plain_dir, _ = prepare_run(fake_plan(data, tmp_path / "plain", ["fake-noop"]))
    plan = fake_plan(data, tmp_path, ["fake-noop"],
                     options={"augment": parse_augment("paraphrase:1")})
    result = run_benchmark(plan)
    plain = json.loads((plain_dir / "split.json").read_text())
    split = json.loads((result.run_dir / "split.json").read_text())
    assert split["validation"] == plain["validation"] and split["test"] == plain["test"]
    assert split["train"][:len(plain["train"])] == plain["train"]
    added = split["train"][len(plain["train"]):]
    assert added == [{**row, "text": row["text"] + " please"} for row in plain["train"]]
    record = result.records[0]
    assert record["augmentation"]["rows_added"] == len(plain["train"])
    assert record["augmentation"]["rows_before"] == len(plain["train"])
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["split"]["sizes"]["train"] == 2 * len(plain["train"])


def test_augment_on_the_command_line():
    import argparse

    from advisor.bench_cli import add_arguments, plan_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--data", "x.csv", "--augment", "paraphrase:3"])
    assert plan_from_args(args).options["augment"] == {"method": "paraphrase", "per_row": 3}
    with pytest.raises(TunewiseError, match="unknown method"):
        plan_from_args(parser.parse_args(["--data", "x.csv", "--augment", "synonyms"]))


def test_the_reproduce_command_keeps_augment_and_no_forgetting():
    import dataclasses
    import shlex

    from advisor import bench_cli
    from advisor.cli import command_parser
    from bench.runner import BenchPlan
    from reports.reproduce import reproduce_command

    request = {"method": "paraphrase", "per_row": 3}
    plan = BenchPlan(data="train.csv", strategies=["lora"],
                     options={"forgetting": False, "augment": request,
                              "augmentation": {"rows_added": 10}})  # the facts of the run
    command = reproduce_command({"plan": dataclasses.asdict(plan), "strategies": ["lora"]}, [])
    assert "--no-forgetting" in command["text"] and "--augment paraphrase:3" in command["text"]
    parser, _, rest = command_parser(shlex.split(command["text"])[1:])
    again = bench_cli.plan_from_args(parser.parse_args(rest))
    assert again.options == {"forgetting": False, "augment": request}


@pytest.mark.parametrize("task, field, kept", [("generation", "instruction", ("input", "output")),
                                               ("qa", "question", ("context", "answer"))])
def test_generation_and_qa_rows_paraphrase_their_input_and_keep_the_answer(
        task, field, kept, tmp_path, monkeypatch):
    from conftest import tiny_split

    monkeypatch.setattr(augment, "paraphrase_texts",
                        lambda texts, per_row, *a, **k: [[f"Please: {t}"] * 1 for t in texts])
    split = tiny_split(task)
    train = list(split.train)
    facts = augment_split(split, parse_augment("paraphrase:1"), "tiny-llama", cache=tmp_path)
    assert facts["field"] == field and facts["rows_added"] == len(train)
    for source, new in zip(train, split.train[len(train):]):
        assert new[field] == f"Please: {source[field]}"
        assert all(new[key] == source[key] for key in kept)
