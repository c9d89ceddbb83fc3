"""`<trainable>+rag` (e.g. `lora+rag`): a fine-tuned LM that answers with retrieved passages.

Fine-tuning and retrieval are sometimes cumulative (Ovadia et al. 2023; Balaguer et al. 2024 —
see EVIDENCE.md), so for generation and qa with a corpus any trainable candidate can be run with
the `rag` candidate's FAISS retrieval in front of it. The passages are retrieved for the train
and validation rows too and put in the training prompts, as at prediction time (the RAFT
recipe): a model trained without passages would see an unfamiliar prompt at test time.

    tunewise bench --data qa.jsonl --corpus docs/ --strategies rag,lora,lora+rag

The config is the base candidate's plus the retrieval settings (`k`, chunking, `use_context`);
`--set lora+rag.k=2` sets one of them. The index is saved inside the candidate's artifact, so
the artifact size counts what a deployment ships. Without a corpus the candidate is skipped:
the rows' own contexts are what plain fine-tuning already sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from strategies import catalogue
from strategies.base import (RunContext, StrategyError, StrategyOutput, StrategySkipped,
                             StrategySpec, option)
from strategies.catalogue import RAG_SUFFIX as SUFFIX
from strategies.catalogue import RAG_TASKS
from strategies.prompts import PASSAGES_KEY


@dataclass
class RetrievalSettings:
    """The `rag` candidate's retrieval settings, mixed into the base candidate's config."""

    k: int = option(4, help="retrieved passages per prompt (train and test rows alike)")
    use_context: bool = option(False, help="qa: also keep the row's gold context in the prompt "
                               "(off: the answer must come from retrieval, as in `rag`)")
    chunk_words: int = option(120, help="words per corpus chunk")
    chunk_overlap: int = option(30, help="words shared by consecutive chunks")

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.chunk_overlap < self.chunk_words:
            raise ValueError("chunk_overlap must be >= 0 and smaller than chunk_words")


@lru_cache(maxsize=None)
def spec_for(base_spec: StrategySpec) -> StrategySpec:
    """The `<base>+rag` spec; the base must be a trainable LM candidate."""
    base = base_spec.name
    if not base_spec.trainable or not (base_spec.tasks & RAG_TASKS):
        trainable = [n for n in catalogue.names() if catalogue.entry(n).trainable
                     and catalogue.entry(n).tasks & RAG_TASKS]
        raise StrategyError(f"'{base}{SUFFIX}': only a trainable generation/qa candidate takes "
                            f"{SUFFIX} (the `rag` candidate is retrieval with the frozen LM). "
                            f"Trainable: {', '.join(trainable)}")
    config_cls = dataclasses.make_dataclass(
        f"{base_spec.config_cls.__name__}WithRetrieval", [],
        bases=(RetrievalSettings, base_spec.config_cls))
    return StrategySpec(
        name=base + SUFFIX, family=base_spec.family, tasks=base_spec.tasks & RAG_TASKS,
        config_cls=config_cls, run=lambda ctx, config: run(ctx, config, base_spec),
        description=f"{base} fine-tuned and predicting with retrieved passages in the prompt "
                    "(FT + RAG)",
        requirements=base_spec.requirements, trainable=True)


def run(ctx: RunContext, config, base_spec: StrategySpec) -> StrategyOutput:
    from strategies.rag import query_text
    from strategies.retrieval import (build_index, chunk_documents, count_tokens, save_index,
                                      search)

    split = ctx.data
    if split.task not in RAG_TASKS:
        raise StrategyError(f"{base_spec.name}{SUFFIX} supports generation and qa, "
                            f"not {split.task!r}")
    if not split.corpus:
        raise StrategySkipped("no corpus to retrieve from (pass --corpus); plain "
                              f"{base_spec.name} already sees the rows' own contexts")
    ctx.phase("load")
    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    ctx.count_model(encoder, "retriever encoder")  # beside the LM that run_finetune hands over

    ctx.phase("adapt")  # the index and the training rows' passages are part of adapting
    texts, doc_ids = chunk_documents(split.corpus, chunk_words=config.chunk_words,
                                     overlap_words=config.chunk_overlap)
    index = build_index(texts, encoder, seed=ctx.seed)

    def with_passages(rows, queries):
        if not rows:
            return [], []
        _, ids = search(index, encoder, queries, k=config.k)
        hits = [[int(j) for j in row if j >= 0] for row in ids]
        out = []
        for row, row_hits in zip(rows, hits):
            row = {**row, PASSAGES_KEY: [texts[j] for j in row_hits]}
            if split.task == "qa" and not config.use_context:
                row.pop("context", None)
            out.append(row)
        return out, hits

    def queries_of(rows):
        return [query_text(split.task, row) for row in rows]

    train, _ = with_passages(split.train, queries_of(split.train))
    validation, _ = with_passages(split.validation, queries_of(split.validation))
    ctx.phase("predict")  # serving pays for the test rows' retrieval
    test_queries = queries_of(split.test)
    test, test_hits = with_passages(split.test, test_queries)

    augmented = dataclasses.replace(ctx, data=dataclasses.replace(
        split, train=train, validation=validation, test=test))
    output = base_spec.run(augmented, config)

    if output.artifact_path:  # ship the index with the adapter (or model)
        folder = Path(output.artifact_path) / "rag_index"
        save_index(index, folder / "index.faiss")
        (folder / "chunks.txt").write_text("\n\x1e\n".join(texts), encoding="utf-8")
    encoder_params = sum(p.numel() for p in encoder.parameters())
    output.total_params += encoder_params
    output.train_tokens += index.encode_tokens
    output.predict_tokens += count_tokens(encoder, test_queries)
    output.info.update(retrieval={
        "k": config.k, "index_kind": index.kind, "indexed_chunks": len(texts),
        "use_context": config.use_context, "encoder": ctx.encoder_name,
        "encoder_params": encoder_params,
        "retrieved_sources": [[doc_ids[j] for j in row] for row in test_hits]})
    if output.answer is not None:  # a served request retrieves, then the trained LM answers
        trained_answer = output.answer
        output.answer = lambda rows: trained_answer(with_passages(rows, queries_of(rows))[0])
    return output
