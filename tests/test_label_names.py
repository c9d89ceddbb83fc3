"""--label-names FILE (issue 15, item 8 d): read and checked by bench.data, used by every LM
candidate's prompts, recorded; bad files are messages with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main
from bench.data import DataError, load_task_data
from bench.data.label_names import names_for_labels, read_label_names
from bench.data.messages import Report
from strategies.prompts import classification_prompt, label_texts

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


def _write(tmp_path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def opaque_data(tmp_path) -> Path:
    """A classification file whose labels are opaque codes."""
    rows = [{"text": f"what does {w} stand for", "label": "ABBR"} for w in
            ("NASA", "BBC", "UN", "EU", "NATO", "FBI", "CIA", "WHO")]
    rows += [{"text": f"who wrote {w}", "label": "HUM"} for w in
             ("Hamlet", "Faust", "Ulysses", "Emma", "Dracula", "Beloved", "Walden", "Ivanhoe")]
    rows += [{"text": f"where is {w}", "label": "LOC"} for w in
             ("Paris", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Accra", "Perth")]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------------------ reading


def test_json_and_csv_files_give_the_same_names(tmp_path):
    from_json = read_label_names(_write(tmp_path, "n.json", json.dumps(
        {"ABBR": "abbreviation", "HUM": " a  person "})))
    from_csv = read_label_names(_write(tmp_path, "n.csv",
                                       "label,description\nABBR,abbreviation\nHUM,a person\n"))
    no_header = read_label_names(_write(tmp_path, "h.csv", "ABBR,abbreviation\nHUM,a person\n"))
    tsv = read_label_names(_write(tmp_path, "n.tsv", "ABBR\tabbreviation\nHUM\ta person\n"))
    assert from_json == from_csv == no_header == tsv == {"ABBR": "abbreviation", "HUM": "a person"}


@pytest.mark.parametrize("name, text, message", [
    ("n.json", "{oops", "not valid JSON"),
    ("n.json", '["ABBR", "HUM"]', "expected a JSON object"),
    ("n.json", '{"ABBR": 3}', "must both be text"),
    ("n.json", '{"ABBR": "  "}', "empty description"),
    ("n.json", "{}", "no labels"),
    ("n.csv", "ABBR,abbreviation,extra\n", "expected two"),
    ("n.csv", "ABBR,abbreviation\nABBR,again\n", "described twice"),
    ("n.yaml", "ABBR: abbreviation\n", "expected a .json file"),
])
def test_a_bad_file_is_a_data_error_naming_it(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(DataError, match=message) as caught:
        read_label_names(path)
    assert str(path) in str(caught.value) and "--label-names" in str(caught.value)


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_label_names(tmp_path / "nope.json")


def test_unknown_labels_and_names_alike_are_refused_and_missing_ones_warned():
    with pytest.raises(DataError, match=r"'ENTY' not among the data's labels \('ABBR', 'HUM'\)"):
        names_for_labels({"ENTY": "entity"}, ["ABBR", "HUM"], "n.json")
    with pytest.raises(DataError, match="would both read"):
        names_for_labels({"ABBR": "person", "HUM": "Person"}, ["ABBR", "HUM"], "n.json")
    report = Report()
    names = names_for_labels({"ABBR": "abbreviation"}, ["ABBR", "card_arrival"], "n.json", report)
    assert names == {"ABBR": "abbreviation", "card_arrival": "card arrival"}
    assert any("leaves out 'card_arrival'" in w for w in report.warnings)


# ------------------------------------------------------------------------------ data and prompts


def test_the_data_layer_puts_the_descriptions_in_the_split_and_the_profile(tmp_path, opaque_data):
    names = _write(tmp_path, "n.json", json.dumps(
        {"ABBR": "abbreviation", "HUM": "a person", "LOC": "a place"}))
    plain = load_task_data(opaque_data)
    named = load_task_data(opaque_data, label_names=names)
    assert plain.split.label_names == {"ABBR": "ABBR", "HUM": "HUM", "LOC": "LOC"}
    assert named.split.label_names == {"ABBR": "abbreviation", "HUM": "a person", "LOC": "a place"}
    assert named.profile["label_names_file"] == str(names)
    assert "label_names_file" not in plain.profile
    # the labels, and so the predictions, stay the data's own
    assert named.split.labels == plain.split.labels == ["ABBR", "HUM", "LOC"]
    assert named.split.train == plain.split.train


def test_every_lm_prompt_lists_and_scores_the_descriptions(tmp_path, opaque_data):
    from bench.models import load_model
    from strategies.training_data import encode_example

    names = _write(tmp_path, "n.json", json.dumps({"ABBR": "abbreviation", "HUM": "a person",
                                                   "LOC": "a place"}))
    split = load_task_data(opaque_data, label_names=names).split
    _, tokenizer = load_model("tiny-llama", "causal-lm")
    prompt = classification_prompt(tokenizer, split, "who wrote Emma", demos=split.train[:2])
    assert "abbreviation, a person, a place" in prompt  # the instruction lists them
    assert label_texts(split) == ["abbreviation", "a person", "a place"]  # scored
    # a fine-tuned LM learns to emit the description
    row = next(r for r in split.train if r["label"] == "LOC")
    encoded = encode_example(tokenizer, split, row, 256)
    target = [t for t, lab in zip(encoded["input_ids"], encoded["labels"]) if lab != -100]
    assert tokenizer.decode(target, skip_special_tokens=True).strip() == "a place"


def test_label_names_are_for_classification(tmp_path):
    names = _write(tmp_path, "n.json", '{"a": "b"}')
    with pytest.raises(DataError, match="for classification data"):
        load_task_data(SAMPLE.parent / "self_instruct_mini", label_names=names)


def test_the_option_key_is_the_same_on_both_sides_of_the_layering():
    from bench.plan import LABEL_NAMES_OPTION as bench_side
    from strategies.prompts import LABEL_NAMES_OPTION as strategy_side

    assert bench_side == strategy_side


def test_a_candidates_record_says_which_names_its_prompts_used(tmp_path):
    from strategies import registry
    from tests.conftest import make_context

    ctx = make_context("classification", tmp_path / "z", label_names_file="names.json")
    output = registry.get("zero-shot").run(ctx, registry.get("zero-shot").make_config("quick"))
    assert output.info["label_names"] == {"file": "names.json",
                                          "names": {"negative": "negative",
                                                    "positive": "positive"}}
    plain = make_context("classification", tmp_path / "p")
    assert "label_names" not in registry.get("zero-shot").run(
        plain, registry.get("zero-shot").make_config("quick")).info


# ------------------------------------------------------------------------------ command lines


def test_bench_takes_label_names_and_records_them(tmp_path, opaque_data, capsys):
    names = _write(tmp_path, "n.csv", "ABBR,abbreviation\nHUM,a person\nLOC,a place\n")
    code = main(["bench", "--data", str(opaque_data), "--strategies", "zero-shot",
                 "--model", "tiny-llama", "--encoder", "tiny-bert", "--no-report", "--plain",
                 "--out", str(tmp_path / "runs"), "--label-names", str(names)])
    assert code == 0, capsys.readouterr().err
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["plan"]["label_names"] == str(names)
    assert manifest["profile"]["label_names"]["LOC"] == "a place"
    record = json.loads((run_dir / "results.jsonl").read_text().splitlines()[0])
    assert record["info"]["label_names"]["names"] == {"ABBR": "abbreviation", "HUM": "a person",
                                                      "LOC": "a place"}


@pytest.mark.parametrize("content, message", [
    ('{"ENTY": "entity"}', "not among the data's labels"),
    ("{oops", "not valid JSON"),
])
def test_bench_refuses_a_bad_label_names_file_with_exit_2(tmp_path, opaque_data, capsys,
                                                          content, message):
    names = _write(tmp_path, "n.json", content)
    code = main(["bench", "--data", str(opaque_data), "--strategies", "majority",
                 "--no-report", "--out", str(tmp_path / "runs"), "--label-names", str(names)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_advise_refuses_a_bad_label_names_file_with_exit_2(tmp_path, opaque_data, capsys):
    unknown = _write(tmp_path, "n.json", '{"ENTY": "entity"}')
    code = main(["advise", "--data", str(opaque_data), "--json", "--no-measure", "--no-domain",
                 "--label-names", str(unknown)])
    err = capsys.readouterr().err
    assert code == 2 and "not among the data's labels" in err and "Traceback" not in err
    code = main(["advise", "--data", str(opaque_data), "--json", "--no-measure", "--no-domain",
                 "--label-names", str(tmp_path / "missing.csv")])
    assert code == 2 and "no such file" in capsys.readouterr().err
