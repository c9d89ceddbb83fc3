"""`knn`: the majority label of the k nearest train rows in sentence-embedding space.

No LLM at all: a strong, cheap baseline whenever similar wordings share a label. Votes are
weighted by cosine similarity when `weighted` (ties then rarely happen); unweighted ties go to
the nearest neighbour's label among the tied ones. With `cv_folds` > 0 each train row is also
predicted from its k nearest other train rows (leave-one-out, strategies.cross_validation).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.cross_validation import cv_info, cv_positions
from strategies.retrieval import (Index, count_tokens, encode, index_vectors, load_index_file,
                                  save_index, search)

# The artifact: the index and the label of each indexed train row, in index order (what a
# deployment needs besides the encoder; `tunewise export` adds the encoder).
INDEX_FILE = "index.faiss"
LABELS_FILE = "train_labels.json"


@dataclass
class KnnConfig:
    k: int = option(7, help="neighbours that vote; small k follows noise, large k the majority")
    weighted: bool = option(True, help="weight each vote by its cosine similarity")
    ann_threshold: int = option(10_000, help="vectors above which an approximate index is used")
    ann_kind: str = option("hnsw", help="approximate index type", choices=("hnsw", "ivf"))
    cv_folds: int = option(0, help="> 0: also score leave-one-out accuracy on the train rows "
                           "(info.cv; any number switches it on); the advisor's probes set it")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if self.cv_folds < 0:
            raise ValueError(f"cv_folds must not be negative, got {self.cv_folds}")


def vote(neighbour_labels: Sequence[str], similarities: Sequence[float], weighted: bool) -> str:
    """Label with the most (weighted) votes; among tied labels, the one seen first (nearest)."""
    totals: dict[str, float] = defaultdict(float)
    for label, similarity in zip(neighbour_labels, similarities):
        totals[label] += float(similarity) if weighted else 1.0
    best = max(totals.values())
    return next(label for label in neighbour_labels if totals[label] == best)


def predict_texts(index: Index, encoder, train_labels: Sequence[str], texts: Sequence[str],
                  config: KnnConfig) -> list[str]:
    """The vote of each text's k nearest indexed rows: the harness and `tunewise predict`
    both call this, so an export answers exactly what the run scored."""
    scores, ids = search(index, encoder, texts, k=config.k)
    return votes(scores, ids, train_labels, config)


def votes(scores, ids, train_labels: Sequence[str], config: KnnConfig,
          own: Sequence[int] | None = None) -> list[str]:
    """The vote of each row's first k hits (scores and index ids, best first). `own`: each
    row's own index id, left out of its hits (leave-one-out)."""
    predictions = []
    for row, (row_scores, row_ids) in enumerate(zip(scores, ids)):
        skip = own[row] if own is not None else -1
        found = [(s, int(j)) for s, j in zip(row_scores, row_ids) if j >= 0 and j != skip]
        found = found[:config.k]
        predictions.append(vote([str(train_labels[j]) for _, j in found],
                                [s for s, _ in found], config.weighted))
    return predictions


def leave_one_out(index: Index, vectors: np.ndarray, train_labels: Sequence[str],
                  config: KnnConfig, seed: int) -> dict | None:
    """info.cv: each train row (a seeded sample of them on large data) voted on by its k
    nearest OTHER train rows, with the same k and voting as the test rows get. None with
    fewer than two train rows (a row's only neighbour would be itself)."""
    if index.size < 2:
        return None
    positions = cv_positions(index.size, seed)
    # k + 1 hits: the row itself is (nearly always) the first, and is dropped by `own`
    scores, ids = index.faiss_index.search(np.ascontiguousarray(vectors[positions]),
                                           min(config.k + 1, index.size))
    predictions = votes(scores, ids, train_labels, config, own=positions)
    return cv_info(predictions, [train_labels[p] for p in positions], "leave-one-out")


def save_knn(index: Index, train_labels: Sequence[str], folder: Path) -> Path:
    save_index(index, folder / INDEX_FILE)
    (folder / LABELS_FILE).write_text(json.dumps(list(train_labels)), encoding="utf-8")
    return folder


def load_knn(folder: Path) -> tuple[Index, list[str]]:
    """(index, train labels) saved by `save_knn`."""
    index = load_index_file(folder / INDEX_FILE)
    labels = json.loads((folder / LABELS_FILE).read_text(encoding="utf-8"))
    return index, labels


def run(ctx: RunContext, config: KnnConfig) -> StrategyOutput:
    split = ctx.data
    if not split.train:
        raise StrategyError("knn needs labelled train rows; the train split is empty")
    ctx.phase("load")
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    ctx.phase("adapt")
    texts = [row["text"] for row in split.train]
    # encoded here rather than in build_index: leave-one-out reuses the train vectors
    vectors = encode(encoder, texts,
                     on_batch=lambda done, total: ctx.progress("adapt", done, total))
    index = index_vectors(vectors, ann_threshold=config.ann_threshold,
                          ann_kind=config.ann_kind, seed=ctx.seed)
    index.encode_tokens = count_tokens(encoder, texts)
    train_labels = [str(row["label"]) for row in split.train]
    artifact = save_knn(index, train_labels, ctx.work_dir / "knn_index")
    info = {"index_kind": index.kind, "indexed": index.size, "k": config.k,
            "weighted": config.weighted}
    if config.cv_folds > 0:
        info["cv"] = leave_one_out(index, vectors, train_labels, config, ctx.seed)
    ctx.phase("predict")
    queries = [row["text"] for row in split.test]
    predictions = predict_texts(index, encoder, train_labels, queries, config)
    ctx.progress("predict", len(predictions), len(predictions))
    return StrategyOutput(
        predictions=predictions, trainable_params=0,
        total_params=sum(p.numel() for p in encoder.parameters()),
        train_tokens=index.encode_tokens, predict_tokens=count_tokens(encoder, queries),
        mean_prompt_tokens=count_tokens(encoder, queries) / max(1, len(queries)),
        artifact_path=str(artifact), info=info,
        answer=lambda rows: predict_texts(index, encoder, train_labels,
                                          [row["text"] for row in rows], config))


SPEC = StrategySpec(
    name="knn", family="rag", tasks=frozenset({"classification"}), config_cls=KnnConfig, run=run,
    description="majority label of the k nearest train rows (sentence embeddings, FAISS)",
)
