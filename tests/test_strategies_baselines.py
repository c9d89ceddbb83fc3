"""Unit tests of the non-training and light-training candidates and their shared pieces.

Retrieval logic is tested with a keyword encoder (deterministic, separable by construction);
the real MiniLM encoder and SmolLM2 appear only in tests marked `integration`.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from strategies import registry
from strategies.base import StrategyError, TaskSplit
from strategies.few_shot import balanced_demos
from strategies.knn import vote
from strategies.majority import most_frequent_label
from strategies.retrieval import (build_index, chunk_documents, chunk_text, index_vectors,
                                  search, search_vectors)
from tests.conftest import make_context, tiny_split

# --------------------------------------------------------------------------- a toy encoder

TOPICS = ["card", "transfer", "refund", "pin"]


class KeywordEncoder:
    """A stand-in SentenceTransformer: one axis per topic word, plus a little seeded noise, so
    texts about the same topic are near each other and a linear head can separate them."""

    def __init__(self):
        import torch

        self._weights = torch.nn.Linear(len(TOPICS) + 2, 1)  # so parameters() counts something
        self.tokenizer = None

    def parameters(self):
        return self._weights.parameters()

    def get_sentence_embedding_dimension(self):
        return len(TOPICS) + 2

    def encode(self, texts, normalize_embeddings=True, **kwargs):
        vectors = []
        for text in texts:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            v = np.array([float(t in text) for t in TOPICS] + list(rng.normal(0, 0.1, 2)))
            vectors.append(v / np.linalg.norm(v))
        return np.array(vectors, dtype=np.float32)


def keyword_loader(name, kind="causal-lm", **kwargs):
    if kind == "sentence-encoder":
        return KeywordEncoder(), None
    from bench.models import load_model

    return load_model(name, kind, **kwargs)


def toy_split() -> TaskSplit:
    def rows(topic, n, offset=0):
        return [{"text": f"question {i + offset} about my {topic}", "label": topic}
                for i in range(n)]

    train = [r for t in TOPICS for r in rows(t, 6)]
    test = [r for t in TOPICS for r in rows(t, 3, offset=100)]
    # An imbalanced train set so the majority baseline is clearly below the others.
    train += rows("card", 10, offset=50)
    return TaskSplit("classification", train=train, validation=rows("pin", 1, 200) +
                     rows("card", 1, 200), test=test, labels=sorted(TOPICS))


def toy_context(tmp_path, **kwargs):
    ctx = make_context("classification", tmp_path, split=toy_split(), **kwargs)
    ctx.load_model = keyword_loader
    return ctx


def accuracy(predictions, rows):
    return sum(p == r["label"] for p, r in zip(predictions, rows)) / len(rows)


def run(name, ctx, **overrides):
    spec = registry.get(name)
    return spec.run(ctx, spec.make_config("quick", overrides))


# --------------------------------------------------------------------------- majority


def test_majority_predicts_most_frequent_train_label(tmp_path):
    output = run("majority", toy_context(tmp_path))
    assert set(output.predictions) == {"card"}
    assert accuracy(output.predictions, toy_split().test) == 0.25


def test_majority_ties_go_to_the_first_listed_label():
    assert most_frequent_label(["b", "a", "b", "a"], ["a", "b"]) == "a"


# --------------------------------------------------------------------------- few-shot demos


def test_few_shot_demos_are_balanced_and_seeded():
    rows = [{"text": f"t{i}", "label": label} for i, label in
            enumerate(["a"] * 20 + ["b"] * 5 + ["c"] * 2)]
    demos = balanced_demos(rows, ["a", "b", "c"], k=7, seed=3)
    counts = Counter(d["label"] for d in demos)
    assert len(demos) == 7 and max(counts.values()) - min(counts.values()) <= 1, counts
    assert demos == balanced_demos(rows, ["a", "b", "c"], k=7, seed=3)
    assert demos != balanced_demos(rows, ["a", "b", "c"], k=7, seed=4)
    # A rare label runs out: the remaining slots go to the others, still taking turns.
    counts = Counter(d["label"] for d in balanced_demos(rows, ["a", "b", "c"], k=12, seed=0))
    assert counts == {"c": 2, "a": 5, "b": 5}


def test_few_shot_prompt_contains_the_demos(tmp_path):
    ctx = make_context("classification", tmp_path)
    output = run("few-shot", ctx, k=4)
    assert output.info["demonstrations"] == 4
    zero = run("zero-shot", make_context("classification", tmp_path / "z"))
    assert output.mean_prompt_tokens > zero.mean_prompt_tokens  # demos make prompts longer


# --------------------------------------------------------------------------- zero-shot


def test_zero_shot_calibration_and_scoring_are_options(tmp_path):
    on = run("zero-shot", make_context("classification", tmp_path / "a"))
    off = run("zero-shot", make_context("classification", tmp_path / "b"), calibrate=False,
              scoring="sum")
    assert on.info == {"calibrated": True, "scoring": "mean"}
    assert off.info == {"calibrated": False, "scoring": "sum"}
    assert on.trainable_params == 0 and on.total_params > 0
    with pytest.raises(StrategyError, match="scoring"):
        registry.get("zero-shot").make_config("quick", {"scoring": "max"})


def test_calibration_changes_predictions_of_a_biased_model(tmp_path):
    """On the random tiny model one label dominates; calibration must spread the predictions."""
    ctx = make_context("classification", tmp_path / "raw")
    ctx.data.test = ctx.data.train  # 8 rows, both labels
    raw = run("zero-shot", ctx, calibrate=False)
    ctx_cal = make_context("classification", tmp_path / "cal", split=ctx.data)
    calibrated = run("zero-shot", ctx_cal, calibrate=True)
    assert raw.predictions != calibrated.predictions


# --------------------------------------------------------------------------- retrieval


def test_chunks_overlap_and_cover_the_document():
    words = [f"w{i}" for i in range(50)]
    chunks = chunk_text(" ".join(words), chunk_words=20, overlap_words=5)
    assert [c.split()[0] for c in chunks] == ["w0", "w15", "w30"]
    assert chunks[-1].split()[-1] == "w49"
    assert chunks[0].split()[-5:] == chunks[1].split()[:5]
    texts, ids = chunk_documents([{"id": "a", "text": " ".join(words)}, {"id": "b", "text": "x"}],
                                 chunk_words=20, overlap_words=5)
    assert ids == ["a", "a", "a", "b"] and texts[-1] == "x"
    with pytest.raises(StrategyError):
        chunk_text("a b", chunk_words=5, overlap_words=5)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_every_index_kind_finds_each_vector_itself(kind):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    threshold = 10_000 if kind == "flat" else 100
    index = index_vectors(vectors, ann_threshold=threshold, ann_kind=kind if kind != "flat" else "hnsw")
    assert index.kind == kind
    _, ids = search_vectors(index, vectors[:50], k=1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.9  # approximate indexes may miss a few
    _, ids = search_vectors(index, vectors[:20], k=3, exclude_self=True)
    assert ids.shape == (20, 3) and not (ids == np.arange(20)[:, None]).any()


def test_encode_sorts_by_length_for_batching_and_returns_rows_in_input_order():
    from strategies.retrieval import encode

    class LengthEncoder:  # embeds a text as its length: rows must come back where they were
        batches = []

        def encode(self, batch, **_):
            self.batches.append([len(t) for t in batch])
            return np.array([[float(len(t)), 1.0] for t in batch])

    lengths = [3, 9, 1, 7, 5, 12, 2, 8, 4, 6]
    encoder = LengthEncoder()
    vectors = encode(encoder, ["a" * n for n in lengths], batch_size=1)  # 8 texts per call
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]
    assert vectors[:, 0].tolist() == lengths
    # longest first across the whole input: similar lengths share a batch
    assert encoder.batches == [[12, 9, 8, 7, 6, 5, 4, 3], [2, 1]]


def test_keyword_retrieval_finds_same_topic():
    encoder = KeywordEncoder()
    texts = ["my card is late", "a transfer failed", "refund please", "reset my pin"]
    index = build_index(texts, encoder)
    _, ids = search(index, encoder, ["where is the card", "pin blocked"], k=1)
    assert ids[:, 0].tolist() == [0, 3]
    with pytest.raises(StrategyError, match="empty"):
        build_index([], encoder)


# --------------------------------------------------------------------------- knn / transfer / rag


def test_knn_vote_weighting_and_ties():
    assert vote(["a", "b", "b"], [0.9, 0.5, 0.5], weighted=False) == "b"
    assert vote(["a", "b", "b"], [0.9, 0.4, 0.4], weighted=True) == "a"
    assert vote(["a", "b"], [0.9, 0.8], weighted=False) == "a"  # tie: nearest wins


@pytest.mark.parametrize("name", ["knn", "transfer"])
def test_embedding_classifiers_separate_a_separable_set(name, tmp_path):
    split = toy_split()
    output = run(name, toy_context(tmp_path))
    assert accuracy(output.predictions, split.test) == 1.0
    assert Path(output.artifact_path).stat().st_size > 0
    assert output.total_params >= output.trainable_params >= 0
    assert output.predictions == registry.get(name).run(
        toy_context(tmp_path / "again"), registry.get(name).make_config()).predictions  # seeded


def test_transfer_picks_c_on_validation(tmp_path):
    output = run("transfer", toy_context(tmp_path), c_values=[0.01, 100.0])
    assert output.info["C"] in (0.01, 100.0) and output.info["validation_accuracy"] is not None
    assert output.trainable_params == len(TOPICS) * (len(TOPICS) + 2) + len(TOPICS)


# --------------------------------------------------------------------------- cross-validation


@pytest.mark.parametrize("name", ["knn", "transfer"])
def test_cross_validation_is_off_unless_asked(name, tmp_path):
    assert "cv" not in run(name, toy_context(tmp_path)).info


@pytest.mark.parametrize("name, method", [("knn", "leave-one-out"),
                                          ("transfer", "stratified 5-fold")])
def test_a_separable_set_cross_validates_to_one(name, method, tmp_path):
    output = run(name, toy_context(tmp_path), cv_folds=5)
    rows = len(toy_split().train)
    assert output.info["cv"] == {"metric": "accuracy", "rows": rows, "correct": rows,
                                 "method": method}


def mislabelled_split() -> TaskSplit:
    """The toy split with two card rows of train labelled pin: validation (one clean pin row,
    one clean card row) cannot see them; predicted out of fold, they are the two wrong rows."""
    split = toy_split()
    for row in [r for r in split.train if r["label"] == "card"][:2]:
        row["label"] = "pin"
    return split


@pytest.mark.parametrize("name", ["knn", "transfer"])
def test_cross_validation_sees_what_a_small_validation_split_cannot(name, tmp_path):
    ctx = make_context("classification", tmp_path, split=mislabelled_split())
    ctx.load_model = keyword_loader
    output = run(name, ctx, cv_folds=5)
    rows = len(ctx.data.train)
    validation = ctx.data.validation
    on_validation = accuracy(registry.get(name).run(
        ctx.with_test_rows(validation), registry.get(name).make_config()).predictions,
        validation)
    assert on_validation == 1.0
    assert output.info["cv"]["rows"] == rows and output.info["cv"]["correct"] == rows - 2


def test_leave_one_out_leaves_the_row_itself_out():
    """Four unit vectors 10 degrees apart, labels alternating: every row's nearest other row
    has the other label. With itself among its neighbours (k=1) each row would be right."""
    from strategies.knn import KnnConfig, leave_one_out, votes

    angles = np.radians([0, 10, 20, 30])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = ["a", "b", "a", "b"]
    index = index_vectors(vectors)
    config = KnnConfig(k=1, weighted=False)
    scores, ids = index.faiss_index.search(vectors, 1)
    assert votes(scores, ids, labels, config) == labels  # resubstitution: all right
    assert leave_one_out(index, vectors, labels, config, seed=0) == {
        "metric": "accuracy", "rows": 4, "correct": 0, "method": "leave-one-out"}
    # k=3: rows 0 and 3 see b, a, b / a, b, a -> wrong; rows 1 and 2 see a, a, b / b, b, a -> wrong
    assert leave_one_out(index, vectors, labels, KnnConfig(k=3, weighted=False), 0)["correct"] == 0
    assert leave_one_out(index_vectors(vectors[:1]), vectors[:1], ["a"], config, 0) is None


def test_transfer_folds_follow_the_rarest_label():
    from sklearn.linear_model import LogisticRegression

    from strategies.transfer import cross_validate

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1, 0.1, (12, 3)), rng.normal(-1, 0.1, (3, 3))])
    y = ["big"] * 12 + ["small"] * 3
    cv = cross_validate(LogisticRegression(), x, y, folds=5, seed=0)
    assert cv == {"metric": "accuracy", "rows": 15, "correct": 15, "method": "stratified 3-fold"}
    # one label of a single row: a fold's head would see one label only, so no CV
    assert cross_validate(LogisticRegression(), x[:13], y[:13], folds=5, seed=0) is None


def test_cross_validation_predicts_a_seeded_sample_of_large_train_splits():
    from strategies.cross_validation import CV_MAX_ROWS, cv_positions

    assert cv_positions(10, seed=0) == list(range(10))
    picked = cv_positions(50_000, seed=0)
    assert len(picked) == CV_MAX_ROWS == len(set(picked)) and picked == sorted(picked)
    assert picked == cv_positions(50_000, seed=0) != cv_positions(50_000, seed=1)
    assert max(picked) > 40_000


def test_rag_classification_uses_nearest_rows_as_demos(tmp_path):
    ctx = toy_context(tmp_path)
    output = run("rag", ctx, k=3)
    split = toy_split()
    for row, sources in zip(split.test, output.info["retrieved_sources"]):
        assert {split.train[j]["label"] for j in sources} == {row["label"]}
    assert (Path(output.artifact_path) / "index.faiss").exists()
    chunks = (Path(output.artifact_path) / "chunks.jsonl").read_text().splitlines()
    assert len(chunks) == len(split.train)


def test_rag_without_corpus_indexes_train_contexts(tmp_path):
    split = tiny_split("qa")
    split.corpus = None
    ctx = make_context("qa", tmp_path, split=split)
    output = run("rag", ctx, k=1, max_new_tokens=2)
    assert output.info["indexed_from"].startswith("train contexts")
    assert output.info["indexed"] == 2


def test_strategies_refuse_bad_options():
    with pytest.raises(StrategyError, match="k must be"):
        registry.get("knn").make_config("quick", {"k": 0})
    with pytest.raises(StrategyError, match="did you mean"):
        registry.get("rag").make_config("quick", {"chunk_word": 10})


# --------------------------------------------------------------------------- integration


@pytest.mark.integration
def test_rag_retrieves_the_right_document_with_minilm(tmp_path):
    split = tiny_split("qa")
    ctx = make_context("qa", tmp_path, encoder_name="minilm-l6", split=split)
    output = run("rag", ctx, k=1, max_new_tokens=2)
    expected = {"Spain": "d3", "Italy": "d4"}
    for row, sources in zip(split.test, output.info["retrieved_sources"]):
        country = row["question"].rsplit(" ", 1)[-1].rstrip("?")
        assert sources == [expected[country]]


def banking_split() -> TaskSplit:
    """The bundled classification sample, split by bench.data as the harness does."""
    from bench.data import SAMPLES as DATA_SAMPLES, load_task_data

    return load_task_data(DATA_SAMPLES["classification"]).split


@pytest.mark.integration
def test_knn_and_transfer_beat_majority_on_banking(tmp_path):
    from sklearn.metrics import accuracy_score

    split = banking_split()
    assert len(split.labels) == 6
    gold = [r["label"] for r in split.test]
    scores = {}
    for name in ("majority", "knn", "transfer"):
        ctx = make_context("classification", tmp_path / name, encoder_name="minilm-l6",
                           split=split)
        scores[name] = accuracy_score(gold, run(name, ctx).predictions)
    print("banking_support accuracy:", scores)
    assert scores["knn"] > scores["majority"] + 0.2
    assert scores["transfer"] > scores["majority"] + 0.2
