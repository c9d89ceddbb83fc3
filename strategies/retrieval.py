"""Dense retrieval with sentence-transformers embeddings in a FAISS index.

Inner product on L2-normalised vectors (= cosine similarity). Small collections get an exact
flat index; above `ann_threshold` vectors an approximate one (IVF or HNSW), which is what a
corpus of real size needs. Used by `rag` (passages / neighbours as demonstrations) and `knn`.

    encoder, _ = ctx.load_model(ctx.encoder_name, "sentence-encoder")
    index = build_index(chunks, encoder, ann_threshold=10_000, ann_kind="hnsw")
    scores, ids = search(index, encoder, ["what is ...?"], k=4)   # ids index into chunks
    save_index(index, ctx.work_dir / "index.faiss")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from strategies.base import StrategyError

ANN_KINDS = ("ivf", "hnsw")


@dataclass
class Index:
    """A FAISS index with what built it (the report and info show the kind)."""

    faiss_index: Any
    kind: str  # "flat", "ivf" or "hnsw"
    size: int
    dim: int
    encode_tokens: int = 0  # tokens the encoder read while building it


def encode(encoder, texts: Sequence[str], *, batch_size: int = 32,
           on_batch: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Normalised float32 embeddings [n, dim], in batches so progress can be reported.

    Texts are encoded longest first across the whole input, as sentence-transformers sorts
    them inside one `encode` call, so each batch pads to similar lengths (chunking in the given
    order measured 0.75x the plain call's throughput, benchmarks/rag.py); progress is reported
    every few batches, so the per-call overhead stays small."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    chunk = batch_size * PROGRESS_BATCHES
    chunks = []
    for start in range(0, len(texts), chunk):
        part = [texts[i] for i in order[start:start + chunk]]
        chunks.append(encoder.encode(part, batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False))
        if on_batch is not None:
            on_batch(min(start + chunk, len(texts)), len(texts))
    if not chunks:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
    vectors[order] = np.concatenate(chunks)
    return vectors


def count_tokens(encoder, texts: Sequence[str]) -> int:
    """Tokens the encoder reads for `texts` (truncated at its max length, as encode does)."""
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None:
        return 0
    limit = getattr(encoder, "max_seq_length", None) or 512
    return sum(min(len(ids), limit) for ids in tokenizer(list(texts))["input_ids"])


# Encoder batches between two progress reports.
PROGRESS_BATCHES = 8

# HNSW graph: neighbours per node, and candidates examined while building (FAISS's default 40
# builds a graph that needed efSearch 128 for recall@10 0.965 at 100k; hnswlib's default is
# 200) and per query (recall vs latency; benchmarks/rag.py sweeps it).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 64


def build_index(texts: Sequence[str], encoder, *, ann_threshold: int = 10_000,
                ann_kind: str = "hnsw", seed: int = 0,
                on_batch: Callable[[int, int], None] | None = None) -> Index:
    """Embed `texts` and index them. Flat (exact) below `ann_threshold` vectors, else IVF or HNSW."""
    if not texts:
        raise StrategyError("nothing to index: the collection is empty")
    if ann_kind not in ANN_KINDS:
        raise StrategyError(f"ann_kind={ann_kind!r}: use one of {', '.join(ANN_KINDS)}")
    vectors = encode(encoder, texts, on_batch=on_batch)
    index = index_vectors(vectors, ann_threshold=ann_threshold, ann_kind=ann_kind, seed=seed)
    index.encode_tokens = count_tokens(encoder, texts)
    return index


def index_vectors(vectors: np.ndarray, *, ann_threshold: int = 10_000, ann_kind: str = "hnsw",
                  seed: int = 0) -> Index:
    """Index already normalised vectors (split out so the ANN paths are testable without text)."""
    import faiss

    n, dim = vectors.shape
    if n < ann_threshold:
        kind, index = "flat", faiss.IndexFlatIP(dim)
    elif ann_kind == "hnsw":
        kind = "hnsw"
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        kind = "ivf"
        # ~sqrt(n) lists is the usual rule of thumb; probe enough of them for good recall.
        n_lists = max(1, min(int(math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = max(1, n_lists // 8)
    index.add(vectors)
    return Index(index, kind, n, dim)


def search(index: Index, encoder, queries: Sequence[str], k: int,
           *, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) per query, best first. ids of -1 mean fewer than k were found."""
    vectors = encode(encoder, queries)
    return search_vectors(index, vectors, k, exclude_self=exclude_self)


def search_vectors(index: Index, vectors: np.ndarray, k: int,
                   *, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`exclude_self`: query i is item i of the index (e.g. train rows against themselves);
    drop that hit so a row is never its own neighbour."""
    if k < 1:
        raise StrategyError(f"k must be at least 1, got {k}")
    k_eff = min(index.size, k + (1 if exclude_self else 0))
    scores, ids = index.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), k_eff)
    if exclude_self:
        kept_scores, kept_ids = [], []
        for i, (row_scores, row_ids) in enumerate(zip(scores, ids)):
            keep = row_ids != i
            kept_scores.append(row_scores[keep][:k])
            kept_ids.append(row_ids[keep][:k])
        width = min(len(r) for r in kept_ids)
        scores = np.stack([r[:width] for r in kept_scores])
        ids = np.stack([r[:width] for r in kept_ids])
    return scores, ids


def save_index(index: Index, path: Path) -> Path:
    import faiss

    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index.faiss_index, str(path))
    return path


def load_index(path: Path) -> Any:
    import faiss

    return faiss.read_index(str(path))


def load_index_file(path: Path) -> Index:
    """A saved index as an `Index` (its kind read from the FAISS type), ready for `search`."""
    faiss_index = load_index(path)
    name = type(faiss_index).__name__
    kind = "hnsw" if "HNSW" in name else "ivf" if "IVF" in name else "flat"
    return Index(faiss_index, kind, int(faiss_index.ntotal), int(faiss_index.d))


def chunk_text(text: str, *, chunk_words: int = 120, overlap_words: int = 30) -> list[str]:
    """Split a document into overlapping word windows, so an answer near a boundary is still
    inside one chunk whole."""
    if overlap_words >= chunk_words:
        raise StrategyError(f"chunk overlap ({overlap_words}) must be smaller than the chunk "
                            f"size ({chunk_words})")
    words = text.split()
    if len(words) <= chunk_words:
        return [" ".join(words)] if words else []
    step = chunk_words - overlap_words
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start:start + chunk_words]))
        if start + chunk_words >= len(words):
            break
    return chunks


def chunk_documents(documents: Sequence[dict[str, Any]], *, chunk_words: int = 120,
                    overlap_words: int = 30) -> tuple[list[str], list[str]]:
    """Documents [{"id", "text"}] -> (chunk texts, the id of each chunk's document)."""
    texts, doc_ids = [], []
    for position, document in enumerate(documents):
        doc_id = str(document.get("id", position))
        for chunk in chunk_text(str(document.get("text", "")), chunk_words=chunk_words,
                                overlap_words=overlap_words):
            texts.append(chunk)
            doc_ids.append(doc_id)
    return texts, doc_ids
