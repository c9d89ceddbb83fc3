"""What a candidate's run reads, for the pre-run estimator (advisor.estimate): the length of its
training sequences and prompts (demonstrations, retrieved passages, the truncation its config
applies), the texts it embeds into a retrieval index and the queries it encodes.

Memory follows the longest sequence a run meets (a batch is padded to its longest row, label
scoring runs the longest prompts first, and a training run passes over every row); time follows
the mean. The constants below were fitted on the bundled samples only (bench/samples, SmolLM2's
tokenizer, prompts rendered by strategies.prompts, 2026-12-03): banking_support (classification),
squad_mini (qa with a corpus), self_instruct_mini (generation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from advisor.estimate_workload import LABEL_TOKENS, TEMPLATE_TOKENS, Workload
from strategies.profile import Profile

# Tokens a demonstration adds beyond its own row: the user/assistant turn markers and the
# "Text: " prefix (few-shot k 6 on the bundled samples: 9.5 banking_support, 15.0 squad_mini,
# 13.2 self_instruct_mini per demonstration).
DEMO_TURN_TOKENS = 12
# SmolLM2 tokens per word of a corpus chunk (squad_mini's 181 chunks of 120 words: 1.367).
CORPUS_TOKENS_PER_WORD = 1.37
# A qa prompt with retrieved passages and no gold context: template, question and the passages'
# numbering beside the passages themselves (squad_mini, 4 passages: mean 77, max 86 tokens).
QA_BESIDE_PASSAGES = 80
# A qa query for retrieval is the question alone (squad_mini: 13.6 tokens on average).
QA_QUESTION_TOKENS = 14
# sentence-transformers' all-MiniLM-L6-v2 truncates at 256 tokens (its max_seq_length) and
# strategies.retrieval.encode runs 32 texts per batch.
ENCODER_MAX_TOKENS = 256
ENCODE_BATCH = 32
# An encoder adds [CLS] and [SEP] to every text.
ENCODER_SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class Lengths:
    """Tokens per sequence in each phase of a run, and the retrieval work beside it."""

    train_longest: int = 0  # the longest training sequence (memory)
    train_mean: float = 0.0  # mean tokens per training row (time)
    prompt_longest: int = 0  # the longest prompt (or text) at prediction (memory)
    prompt_mean: float = 0.0  # mean tokens per prompt (time)
    generated: int = 0  # tokens generated per row (0: label scoring or an encoder)
    index_texts: int = 0  # texts embedded into the retrieval index (chunks or train rows)
    index_tokens: float = 0.0  # encoder tokens read to build the index
    index_longest: int = 0  # the longest text embedded (encoder memory)
    queries: int = 0  # rows whose query the encoder reads for retrieval
    query_tokens: float = 0.0  # encoder tokens per query


def chunk_count(words: int, chunk_words: int, overlap: int) -> int:
    """Chunks strategies.retrieval.chunk_text makes of a document of `words` words."""
    if words <= 0:
        return 0
    if words <= chunk_words:
        return 1
    return math.ceil((words - chunk_words) / (chunk_words - overlap)) + 1


def corpus_chunks(work: Workload) -> tuple[int, float]:
    """(chunks, their words in all) of the corpus at the candidate's chunk size; without the
    documents' word counts, every document is taken as one full chunk."""
    if not work.corpus_doc_words:
        return work.corpus_docs, float(work.corpus_docs * work.chunk_words)
    step = work.chunk_words - work.chunk_overlap
    chunks = words = 0
    for doc in work.corpus_doc_words:
        count = chunk_count(doc, work.chunk_words, work.chunk_overlap)
        chunks += count
        # every chunk but the last is full; the last holds what is left after the others
        words += (count - 1) * work.chunk_words + (doc - (count - 1) * step if count else 0)
    return chunks, float(words)


def uses_corpus(work: Workload) -> bool:
    """rag and `+rag` index the corpus for qa and generation (classification: the train rows)."""
    return work.task in ("qa", "generation") and work.corpus_docs > 0


def row_tokens(work: Workload) -> tuple[float, int]:
    """(mean, longest) tokens of a row alone, without the prompt template; a workload built
    without a data profile has only the templated lengths, which stand in."""
    mean = work.row_tokens or work.tokens_per_row
    longest = work.longest_row_tokens or work.seq_len
    return float(mean), int(longest)


def longest_row(work: Workload, rows: float, template: bool = True) -> int:
    """Tokens of the longest of `rows` rows a phase meets (in its prompt template), from the
    data's length percentiles; the workload's seq_len when it has none."""
    if not work.row_percentiles:
        return work.seq_len
    extra = TEMPLATE_TOKENS + work.n_labels * LABEL_TOKENS if template else 0
    return work.longest_of(rows) + extra


def demonstrations(work: Workload, count: int) -> float:
    """Tokens of `count` demonstrations (rows of typical length in their chat turns)."""
    mean, _ = row_tokens(work)
    return count * (mean + DEMO_TURN_TOKENS)


def passages(work: Workload) -> tuple[float, int]:
    """(mean, longest) tokens of the retrieved passages in one prompt."""
    if uses_corpus(work):
        chunks, words = corpus_chunks(work)
        mean_chunk = words / max(chunks, 1) * CORPUS_TOKENS_PER_WORD
        longest_chunk = work.chunk_words * CORPUS_TOKENS_PER_WORD
        if work.corpus_doc_words:  # no chunk is longer than the longest document
            longest_chunk = min(longest_chunk, max(work.corpus_doc_words) * CORPUS_TOKENS_PER_WORD)
        return work.retrieved * mean_chunk, int(work.retrieved * longest_chunk)
    # classification: the nearest train rows are the demonstrations; they resemble the query,
    # so the longest prompts (those memory follows) carry rows as long as the longest query
    _, longest = row_tokens(work)
    longest = work.longest_of(work.test_rows) if work.row_percentiles else longest
    return (demonstrations(work, work.retrieved),
            int(work.retrieved * (longest + DEMO_TURN_TOKENS)))


def llm_lengths(profile: Profile, work: Workload, retrieval: bool) -> Lengths:
    """A causal LM's prompts (and training sequences): the row in its template, plus the
    demonstrations of few-shot or the passages (or neighbours) of rag and `+rag`."""
    trained = profile.train in ("full", "adapter")
    mean = float(work.tokens_per_row)
    # Prediction runs the longest test rows (label scoring sorts them first). Training pads
    # each batch to its own longest row, and its peak follows a typical batch's: the 6-step
    # LoRA runs on the bundled banking_support peaked as batches of ~80 tokens would, not at
    # the longest of the 48 rows drawn (the heap's slack absorbs the rarer longer batches).
    seen = work.batch_size if trained else work.test_rows
    longest = longest_row(work, seen)
    if profile.inference == "few-shot":
        mean += demonstrations(work, work.shots)
        longest += int(demonstrations(work, work.shots))
    elif retrieval:
        extra_mean, extra_longest = passages(work)
        if uses_corpus(work) and work.task == "qa":  # the question replaces the gold context
            mean = longest = QA_BESIDE_PASSAGES
        mean += extra_mean
        longest += extra_longest
    cap = (work.max_length if trained else work.max_prompt_tokens) or longest
    generated = work.max_new_tokens if work.task in ("qa", "generation") else 0
    found = Lengths(prompt_longest=min(longest, cap), prompt_mean=min(mean, cap),
                    generated=generated)
    if trained:
        found = _with(found, train_longest=min(longest, cap), train_mean=min(mean, cap))
    if retrieval:
        found = _with(found, **retrieval_work(profile, work))
    return found


def retrieval_work(profile: Profile, work: Workload) -> dict:
    """The index the run builds and the queries it encodes: rag encodes the test rows' queries;
    `+rag` also the train and validation rows' (their passages go into training)."""
    mean_row, _ = row_tokens(work)
    if uses_corpus(work):
        chunks, words = corpus_chunks(work)
        texts, tokens = chunks, words * CORPUS_TOKENS_PER_WORD
        longest = int(min(work.chunk_words * CORPUS_TOKENS_PER_WORD, ENCODER_MAX_TOKENS))
    else:
        texts, tokens = work.train_rows, work.train_rows * mean_row
        longest = min(longest_row(work, work.train_rows, template=False), ENCODER_MAX_TOKENS)
    queries = work.test_rows
    if profile.train in ("full", "adapter"):
        queries += work.train_rows + work.validation_rows
    query = QA_QUESTION_TOKENS if work.task == "qa" else mean_row
    return {"index_texts": texts, "index_tokens": tokens + texts * ENCODER_SPECIAL_TOKENS,
            "index_longest": longest + ENCODER_SPECIAL_TOKENS, "queries": queries,
            "query_tokens": query + ENCODER_SPECIAL_TOKENS}


def encoder_lengths(profile: Profile, work: Workload) -> Lengths:
    """A sentence encoder reads each row's text alone, cut at its limit: encoder-ft's
    max_length, else the encoder's own; knn indexes the train rows and queries the test rows."""
    mean_row, _ = row_tokens(work)
    cap = work.max_length or ENCODER_MAX_TOKENS
    mean = min(mean_row + ENCODER_SPECIAL_TOKENS, cap)
    # every train row is encoded (an index, a head's features, or each epoch of encoder-ft)
    longest = min(longest_row(work, work.train_rows, template=False) + ENCODER_SPECIAL_TOKENS,
                  cap)
    found = Lengths(prompt_longest=longest, prompt_mean=mean)
    if profile.train:
        found = _with(found, train_longest=longest, train_mean=mean)
    if profile.inference == "encode" and profile.train is None:  # knn: an index of train rows
        found = _with(found, index_texts=work.train_rows, index_tokens=work.train_rows * mean,
                      index_longest=longest, queries=work.test_rows, query_tokens=mean)
    return found


def lengths_for(profile: Profile, work: Workload, retrieval: bool = False) -> Lengths:
    """The lengths of a candidate's run; `retrieval`: rag, or a `<trainable>+rag` candidate."""
    if profile.model == "none":
        return Lengths()
    if profile.model == "encoder":
        return encoder_lengths(profile, work)
    return llm_lengths(profile, work, retrieval or profile.inference == "rag")


def _with(found: Lengths, **changes) -> Lengths:
    return replace(found, **changes)
