"""`rag`: retrieval-augmented prompting with sentence-transformers embeddings in FAISS.

- qa / generation: the corpus (ctx.data.corpus) is chunked with overlap and indexed; the top-k
  chunks for the question (or instruction) go into the prompt as numbered passages, then greedy
  decoding. Without a corpus the train rows are indexed instead (qa: their contexts; generation:
  instruction -> output pairs), and info says so. For qa the row's own gold context is left out
  by default (`use_context`), so the score measures retrieval, not the dataset's context.
- classification: the labelled train rows are indexed; the k nearest neighbours of each test
  text become its demonstrations, then label scoring as in few-shot. The calibration prior is
  measured without demonstrations: the neighbours' labels are the signal we want to keep.

The index (and the texts it points to) is saved in the candidate's folder: its size is the
artifact a deployment would ship.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.lm_predict import param_counts
from strategies.prompting import (PromptingConfig, load_frozen_lm, predict_with_prompts,
                                  served)
from strategies.retrieval import (Index, build_index, chunk_documents, count_tokens,
                                  load_index_file, save_index, search)

# The artifact folder: the index and the texts it points to (`tunewise export` adds the encoder).
INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"


@dataclass
class RagConfig(PromptingConfig):
    k: int = option(4, help="passages (qa/generation) or neighbours (classification) per "
                    "prompt; more recall, longer prompts", full=6)
    use_context: bool = option(False, help="qa: also put the row's gold context in the prompt "
                               "(off: the answer must come from retrieval)")
    chunk_words: int = option(120, help="words per corpus chunk")
    chunk_overlap: int = option(30, help="words shared by consecutive chunks, so an answer at a "
                                "boundary stays whole in one of them")
    ann_threshold: int = option(10_000, help="vectors above which an approximate index replaces "
                                "the exact flat one")
    ann_kind: str = option("hnsw", help="approximate index type above the threshold",
                           choices=("hnsw", "ivf"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.chunk_overlap < self.chunk_words:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_words")


def collection(ctx: RunContext, config: RagConfig) -> tuple[list[str], list[Any], str]:
    """(texts to index, what each points back to, where they came from)."""
    split = ctx.data
    if split.task == "classification":
        return [row["text"] for row in split.train], list(range(len(split.train))), "train rows"
    if split.corpus:
        texts, doc_ids = chunk_documents(split.corpus, chunk_words=config.chunk_words,
                                         overlap_words=config.chunk_overlap)
        return texts, doc_ids, "corpus"
    if split.task == "qa":
        contexts = sorted({str(r.get("context") or "") for r in split.train} - {""})
        if not contexts:
            raise StrategyError("rag on qa needs a corpus or train rows with a context")
        texts, doc_ids = chunk_documents([{"id": f"train-context-{i}", "text": c}
                                          for i, c in enumerate(contexts)],
                                         chunk_words=config.chunk_words,
                                         overlap_words=config.chunk_overlap)
        return texts, doc_ids, "train contexts (no corpus given)"
    texts = [f"{row['instruction']}\n{row.get('input') or ''}".strip() + f"\n-> {row['output']}"
             for row in split.train]
    return texts, list(range(len(split.train))), "train instruction/output pairs (no corpus given)"


def query_text(task: str, row: dict[str, Any]) -> str:
    if task == "classification":
        return row["text"]
    if task == "qa":
        return row["question"]
    return f"{row['instruction']}\n{row.get('input') or ''}".strip()


def save_rag(index, texts: list[str], sources: list[Any], folder: Path,
             labels: list[str] | None = None) -> Path:
    """The index and the texts it points to (classification: with each train row's label, the
    demonstrations a deployment needs)."""
    save_index(index, folder / INDEX_FILE)
    with open(folder / CHUNKS_FILE, "w", encoding="utf-8") as handle:
        for i, (text, source) in enumerate(zip(texts, sources)):
            entry = {"text": text, "source": source}
            if labels is not None:
                entry["label"] = labels[i]
            handle.write(json.dumps(entry) + "\n")
    return folder


def load_rag(folder: Path) -> tuple[Index, list[dict[str, Any]]]:
    """(index, chunk entries) saved by `save_rag`."""
    with open(folder / CHUNKS_FILE, encoding="utf-8") as handle:
        chunks = [json.loads(line) for line in handle if line.strip()]
    return load_index_file(folder / INDEX_FILE), chunks


def retrieve_and_predict(ctx: RunContext, model, tokenizer, encoder, index, texts: list[str],
                         config: RagConfig) -> tuple[StrategyOutput, list[str], list[list[int]]]:
    """Retrieve for every test row of ctx.data, then prompt the LLM: the harness and
    `tunewise predict` both call this, so an export answers exactly what the run scored.
    Returns (output, the queries, the indexed positions retrieved per row)."""
    split = ctx.data
    queries = [query_text(split.task, row) for row in split.test]
    _, ids = search(index, encoder, queries, k=config.k)
    hits = [[int(j) for j in row if j >= 0] for row in ids]
    if split.task == "classification":
        # Most similar neighbour last: nearest to the question, where it weighs most.
        neighbours = [[split.train[j] for j in reversed(row)] for row in hits]
        output = predict_with_prompts(ctx, model, tokenizer, config,
                                      demos=lambda i, row: neighbours[i])
    else:
        passages = [[texts[j] for j in row] for row in hits]
        output = predict_with_prompts(ctx, model, tokenizer, config,
                                      passages=lambda i, row: passages[i])
    return output, queries, hits


def run(ctx: RunContext, config: RagConfig) -> StrategyOutput:
    split = ctx.data
    ctx.phase("load")
    model, tokenizer = load_frozen_lm(ctx)
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")

    ctx.phase("adapt")  # building the index is this candidate's adaptation
    texts, sources, origin = collection(ctx, config)
    index = build_index(texts, encoder, ann_threshold=config.ann_threshold,
                        ann_kind=config.ann_kind, seed=ctx.seed,
                        on_batch=lambda done, total: ctx.progress("adapt", done, total,
                                                                  message="embedding"))
    artifact = save_rag(index, texts, sources, ctx.work_dir / "rag_index",
                        labels=([str(row["label"]) for row in split.train]
                                if split.task == "classification" else None))

    ctx.phase("predict")
    output, queries, hits = retrieve_and_predict(ctx, model, tokenizer, encoder, index, texts,
                                                 config)
    encoder_params = sum(p.numel() for p in encoder.parameters())
    output.total_params += encoder_params
    output.train_tokens = index.encode_tokens
    output.predict_tokens += count_tokens(encoder, queries)
    output.artifact_path = str(artifact)
    output.info.update(index_kind=index.kind, indexed=len(texts), indexed_from=origin, k=config.k,
                       encoder_params=encoder_params,
                       retrieved_sources=[[sources[j] for j in row] for row in hits])
    trainable, _ = param_counts(model)
    output.trainable_params = trainable
    # a request to a deployed RAG retrieves, then prompts: both are timed
    output.answer = lambda rows: retrieve_and_predict(
        ctx.with_test_rows(rows), model, tokenizer, encoder, index, texts,
        served(config))[0].predictions
    return output


SPEC = StrategySpec(
    name="rag", family="rag", tasks=frozenset({"classification", "generation", "qa"}),
    config_cls=RagConfig, run=run,
    description="FAISS index of sentence embeddings: retrieved passages in the prompt "
                "(qa/generation) or nearest labelled rows as demonstrations (classification)",
)
