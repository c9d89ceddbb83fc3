"""`knn`: the majority label of the k nearest train rows in sentence-embedding space.

No LLM at all: a strong, cheap baseline whenever similar wordings share a label. Votes are
weighted by cosine similarity when `weighted` (ties then rarely happen); unweighted ties go to
the nearest neighbour's label among the tied ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.retrieval import build_index, count_tokens, save_index, search


@dataclass
class KnnConfig:
    k: int = option(7, help="neighbours that vote; small k follows noise, large k the majority")
    weighted: bool = option(True, help="weight each vote by its cosine similarity")
    ann_threshold: int = option(10_000, help="vectors above which an approximate index is used")
    ann_kind: str = option("hnsw", help="approximate index type", choices=("hnsw", "ivf"))

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


def vote(neighbour_labels: Sequence[str], similarities: Sequence[float], weighted: bool) -> str:
    """Label with the most (weighted) votes; among tied labels, the one seen first (nearest)."""
    totals: dict[str, float] = defaultdict(float)
    for label, similarity in zip(neighbour_labels, similarities):
        totals[label] += float(similarity) if weighted else 1.0
    best = max(totals.values())
    return next(label for label in neighbour_labels if totals[label] == best)


def run(ctx: RunContext, config: KnnConfig) -> StrategyOutput:
    split = ctx.data
    if not split.train:
        raise StrategyError("knn needs labelled train rows; the train split is empty")
    ctx.phase("load")
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    ctx.phase("adapt")
    texts = [row["text"] for row in split.train]
    index = build_index(texts, encoder, ann_threshold=config.ann_threshold,
                        ann_kind=config.ann_kind, seed=ctx.seed,
                        on_batch=lambda done, total: ctx.progress("adapt", done, total))
    artifact = save_index(index, ctx.work_dir / "knn_index.faiss")
    ctx.phase("predict")
    queries = [row["text"] for row in split.test]
    scores, ids = search(index, encoder, queries, k=config.k)
    predictions = []
    for row_scores, row_ids in zip(scores, ids):
        found = [(s, int(j)) for s, j in zip(row_scores, row_ids) if j >= 0]
        predictions.append(vote([str(split.train[j]["label"]) for _, j in found],
                                [s for s, _ in found], config.weighted))
    ctx.progress("predict", len(predictions), len(predictions))
    return StrategyOutput(
        predictions=predictions, trainable_params=0,
        total_params=sum(p.numel() for p in encoder.parameters()),
        train_tokens=index.encode_tokens, predict_tokens=count_tokens(encoder, queries),
        mean_prompt_tokens=count_tokens(encoder, queries) / max(1, len(queries)),
        artifact_path=str(artifact),
        info={"index_kind": index.kind, "indexed": index.size, "k": config.k,
              "weighted": config.weighted})


SPEC = StrategySpec(
    name="knn", family="rag", tasks=frozenset({"classification"}), config_cls=KnnConfig, run=run,
    description="majority label of the k nearest train rows (sentence embeddings, FAISS)",
)
