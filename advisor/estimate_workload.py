"""How much work a candidate does, for the pre-run estimator (advisor.estimate): rows, lengths,
passes, and the candidate's own settings read from its config class under the preset and `--set`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from bench.errors import TunewiseError
from strategies import catalogue
from strategies.profile import Profile
from strategies.training_config import TrainingConfig


@dataclass(frozen=True)
class Workload:
    """How much work a candidate does: rows, lengths and passes."""

    train_rows: int = 200
    test_rows: int = 100
    seq_len: int = 128  # tokens per example (prompt + answer)
    batch_size: int = 8
    epochs: float = 1.0
    n_labels: int = 0  # classification: every label is scored after each prompt
    corpus_docs: int = 0
    # The strategy's own settings; configured_workload() reads them from its config class.
    shots: int = 6  # few-shot demonstrations per prompt
    retrieved: int = 4  # RAG passages per prompt
    lora_r: int = 8  # adapter rank (LoRA, LoHa, AdaLoRA's initial rank)
    lora_dropout: float = 0.05  # the LoRA candidates' default
    target_modules: tuple[str, ...] = ("all-linear",)  # the layers a LoRA/LoHa adapter wraps
    virtual_tokens: int = 20  # prompt and prefix tuning
    # Mean tokens per prompt (time scales with the mean; memory with the longest batch,
    # seq_len); 0 = seq_len.
    mean_tokens: int = 0
    max_steps: int | None = None  # the preset's cap on optimizer steps (quick: 300)
    # the training budget's floor (strategies.training_budget: a small train split gets more
    # passes to reach it) and its time bound on training + validations (0: none)
    min_steps: int = 0
    time_budget_s: float = 0.0
    # A race rung (strategies.training_budget.RungShare): a candidate that trains through
    # strategies.training gets budget_fraction of the steps the full split of full_train_rows
    # rows would get (at least RUNG_MIN_STEPS, at most the full run's) and of the time bound.
    # 1.0: a full run; configured_workload() sets it to 1.0 for the others (their budgets
    # follow their own rows).
    budget_fraction: float = 1.0
    full_train_rows: int = 0
    # A racer whose rungs continue (bench.race_rules.continues): every job of it trains an
    # increment of one schedule, the full run's steps after the time bound
    # (strategies.training_budget.continuing_budget), from the share of it the previous rung
    # reached (`continues_from`; 0.0: none, this job times and plans the schedule) to
    # budget_fraction of it (1.0: the final, to its end); None: not a continuing job. The
    # estimator (advisor.estimate.continuing_workload) sets `planned_rows`, the rows its steps see.
    continues_from: float | None = None
    planned_rows: float | None = None
    continuing_bound_s: float = 0.0  # its time guard: its share of the schedule's time (0: none)
    validation_rows: int = 0  # evaluated every `eval_every` steps while training
    eval_every: int = 10  # 0: auto, about ten validations over the run (training_budget)
    # What the run reads beyond its rows (advisor.estimate_lengths turns these into lengths).
    task: str = ""  # classification, generation, qa or preference ("": unknown)
    row_tokens: int = 0  # a row of typical length alone, without the template (0: mean_tokens)
    longest_row_tokens: int = 0  # the longest row alone (0: seq_len)
    # The rows' length percentiles p50, p90, p99 and max, alone (bench.data's profile): the
    # longest of the rows a phase meets (longest_of) sets its memory.
    row_percentiles: tuple[int, ...] = ()
    label_tokens: int = 0  # classification: tokens of the longest label (0: LABEL_TOKENS)
    corpus_doc_words: tuple[int, ...] = ()  # words of each corpus document: its chunks
    chunk_words: int = 120  # rag / +rag: words per corpus chunk, and the overlap between them
    chunk_overlap: int = 30
    max_length: int = 0  # the trainer's truncation of a training sequence (0: none)
    max_prompt_tokens: int = 0  # prompting: prompts are cut beyond this (0: none)
    predict_batch_size: int = 0  # prompts per forward pass when predicting (0: batch_size)
    max_new_tokens: int = 32  # generation / qa: tokens generated per row, at most

    @property
    def tokens_per_row(self) -> int:
        return self.mean_tokens or self.seq_len

    @property
    def is_rung(self) -> bool:
        return 0 < self.budget_fraction < 1 and self.full_train_rows > 0

    @property
    def trained_rows(self) -> float:
        """Rows through the model while training: epochs, raised to min_steps, capped by the
        preset's steps; a rung's share of the full split's (training_budget.rung_steps); a
        continuing job's planned increment."""
        if self.planned_rows is not None:
            return self.planned_rows
        if self.is_rung:
            from strategies.training_budget import RUNG_MIN_STEPS

            full = replace(self, train_rows=max(self.full_train_rows, self.train_rows),
                           budget_fraction=1.0).trained_rows
            return min(full, max(RUNG_MIN_STEPS * self.batch_size, self.budget_fraction * full))
        rows = max(self.train_rows * self.epochs, self.min_steps * self.batch_size)
        if self.max_steps:
            rows = min(rows, self.max_steps * self.batch_size)
        return rows

    @property
    def time_bound_s(self) -> float:
        """The trainer's time bound on training + validations (0: none); a rung's share; a
        continuing job's guard (continuing_bound_s: its steps were fitted with the schedule)."""
        if self.continues_from is not None:
            return self.continuing_bound_s
        return self.time_budget_s * (self.budget_fraction if self.is_rung else 1.0)

    def longest_of(self, rows: float) -> int:
        """Tokens of the longest row, alone, among `rows` rows drawn from the data: about its
        (1 - 1/rows) quantile, interpolated between the profile's percentiles on a log scale
        (p50, p90, p99, and the max at 1 - 1/all rows); the longest row without percentiles."""
        if len(self.row_percentiles) < 4 or rows <= 1:
            return self.longest_row_tokens or self.seq_len
        every = self.train_rows + self.validation_rows + self.test_rows
        points = [(math.log10(2), self.row_percentiles[0]), (1.0, self.row_percentiles[1]),
                  (2.0, self.row_percentiles[2]),
                  (max(math.log10(max(every, 2)), 2.0 + 1e-9), self.row_percentiles[3])]
        x = math.log10(rows)
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x <= x1:
                share = min(max((x - x0) / (x1 - x0), 0.0), 1.0)
                return int(round(y0 + share * (y1 - y0)))
        return int(points[-1][1])

    @property
    def trained_steps(self) -> int:
        """Optimizer steps over trained_rows (the last batch may be short)."""
        return math.ceil(self.trained_rows / max(self.batch_size, 1))

    @property
    def evaluated_rows(self) -> float:
        """Validation rows forwarded by the periodic evaluations during training. A race rung
        has none: the race scores it once, at its end (its prediction of the validation rows)."""
        if not self.validation_rows or self.is_rung:
            return 0.0
        from strategies.training_budget import auto_eval_every

        steps = self.trained_steps
        every = self.eval_every or auto_eval_every(steps)
        return max(1, steps // every) * self.validation_rows


# Label scoring: the prompt once (its KV cache is shared), then every label's few tokens.
LABEL_TOKENS = 4
# Chat template + task instruction around each row; classification adds the label list.
TEMPLATE_TOKENS = 40


def profile_for(strategy: str) -> Profile:
    """The strategy's estimator profile from the catalogue (`lora+rag` and `peft:<type>`
    derive theirs from their base)."""
    entry = catalogue.entry(strategy)
    if entry is None or entry.profile is None:
        with_profile = [n for n in catalogue.names() if catalogue.entry(n).profile]
        what = "unknown strategy" if entry is None else "no estimate profile for strategy"
        raise TunewiseError(f"{what} {strategy!r}; estimated: {', '.join(with_profile)}, "
                            "peft:<type>, <trainable>+rag")
    return entry.profile


# Config fields the estimator reads, by the names the strategies' configs give them (the
# first one a config has wins: AdaLoRA starts at init_r and prunes down from there).
CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "lora_r": ("r", "lora_r", "init_r"),
    "lora_dropout": ("dropout", "lora_dropout"),
    "batch_size": ("batch_size",),
    "epochs": ("epochs", "max_epochs"),
    "max_steps": ("max_steps",),
    "min_steps": ("min_steps",),
    "time_budget_s": ("time_budget_s",),
    "eval_every": ("eval_every",),
    "target_modules": ("target_modules",),
    "virtual_tokens": ("num_virtual_tokens",),
    "chunk_words": ("chunk_words",),
    "chunk_overlap": ("chunk_overlap",),
    "max_length": ("max_length",),
    "max_prompt_tokens": ("max_prompt_tokens",),
    "predict_batch_size": ("predict_batch_size",),
    "max_new_tokens": ("max_new_tokens",),
}


def strategy_config(strategy: str, preset: str = "quick",
                    overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """The config the strategy would run with: its config class's defaults under `preset`,
    then `--set` overrides ({"*": {...}, strategy: {...}}, as bench.runner applies them: a
    "*" key only where the config has that field). Strategy modules import no torch."""
    import dataclasses

    from strategies import registry
    from strategies.base import StrategyError

    try:
        spec = registry.get(strategy)
        fields = {f.name for f in dataclasses.fields(spec.config_cls)}
        overrides = overrides or {}
        merged = {k: v for k, v in overrides.get("*", {}).items() if k in fields}
        merged.update(overrides.get(strategy, {}))
        return spec.make_config(preset, merged)
    except StrategyError as exc:
        raise TunewiseError(f"{strategy}: {exc}") from None
    except ImportError as exc:  # a plugin whose module is not importable here
        raise TunewiseError(f"{strategy}: cannot read its config: {exc}") from None


def configured_workload(strategy: str, work: Workload, preset: str = "quick",
                        overrides: dict[str, dict[str, Any]] | None = None) -> Workload:
    """`work` with the settings the strategy's config gives it (demonstrations, passages,
    adapter rank, batch, epochs, step cap...), so the estimate is of the run `bench` makes."""
    profile = profile_for(strategy)
    config = strategy_config(strategy, preset, overrides)
    found: dict[str, Any] = {}
    for setting, names in CONFIG_FIELDS.items():
        name = next((n for n in names if hasattr(config, n)), None)
        if name is not None:
            found[setting] = getattr(config, name)
    if "max_steps" in found:
        found["max_steps"] = found["max_steps"] if found["max_steps"] > 0 else None
    elif "epochs" in found:  # epochs alone set the budget (encoder-ft): no step cap
        found["max_steps"] = None
    if not isinstance(config, TrainingConfig):
        found["budget_fraction"] = 1.0  # only strategies.training honours a rung's share
        found["continues_from"] = None  # ... and resumes a rung
    if "target_modules" in found:
        found["target_modules"] = tuple(found["target_modules"])
    if hasattr(config, "k") and profile.inference == "few-shot":
        found["shots"] = config.k
    elif hasattr(config, "k") and (profile.inference == "rag" or catalogue.rag_base(strategy)):
        found["retrieved"] = config.k  # rag's passages, or those of `<trainable>+rag`
    return replace(work, **found)


def preset_max_steps(preset: str) -> int | None:
    """The optimizer-step cap the fine-tuning candidates use under a preset (quick: 300)."""
    from strategies.base import make_config
    from strategies.training import TrainingConfig

    steps = make_config(TrainingConfig, preset).max_steps
    return steps if steps > 0 else None


def workload_from_profile(profile: dict[str, Any] | None, *, epochs: float = 1.0,
                          batch_size: int = 8, max_steps: int | None = None) -> Workload:
    """Rows, lengths and labels as bench.data's profile reports them (`splits`, `token_length`,
    `labels`, `corpus_docs`, the corpus's path under `sources`); a default-sized workload where
    the profile is missing. Memory follows the longest row (`max`: a run passes over every
    row), time the typical one."""
    profile = profile or {}
    splits = profile.get("splits") or {}
    rows = int(profile.get("rows") or 200)
    train = int(splits.get("train") or rows * 0.7)
    test = int(splits.get("test") or max(rows - train, 1))
    lengths = profile.get("token_length") or {}
    labels = profile.get("labels") or {}
    n_labels = len(labels) if isinstance(labels, dict) else 0
    # Word counts (no tokenizer was at hand) undercount tokens by ~1.3x.
    per_word = 1.3 if profile.get("token_counter", "words") == "words" else 1.0
    # The chat template and instruction wrap every row; classification lists the labels in it.
    template = TEMPLATE_TOKENS + n_labels * LABEL_TOKENS
    longest = (lengths.get("max") or lengths.get("p99") or lengths.get("p90") or 96) * per_word
    typical = (lengths.get("p50") or lengths.get("p90") or 96) * per_word
    # The mean of a long-tailed length distribution lies above its median: a demonstration or
    # a query is taken halfway between p50 and p90.
    mean_row = (typical + (lengths.get("p90") or lengths.get("p50") or 96) * per_word) / 2
    return Workload(train_rows=train, test_rows=test,
                    seq_len=int(min(max(longest + template, 32), 2048)),
                    mean_tokens=int(min(max(typical + template, 16), 2048)),
                    batch_size=batch_size, epochs=epochs, n_labels=n_labels,
                    corpus_docs=int(profile.get("corpus_docs") or 0), max_steps=max_steps,
                    validation_rows=int(splits.get("validation") or 0),
                    task=str(profile.get("task") or ""), row_tokens=int(mean_row),
                    longest_row_tokens=int(min(longest, 2048)),
                    row_percentiles=tuple(int(min((lengths.get(k) or 0) * per_word, 2048))
                                          for k in ("p50", "p90", "p99", "max"))
                    if all(lengths.get(k) for k in ("p50", "p90", "p99", "max")) else (),
                    label_tokens=longest_label_tokens(profile),
                    corpus_doc_words=corpus_doc_words(profile))


def longest_label_tokens(profile: dict[str, Any]) -> int:
    """Tokens of the longest label name, about one per word (SmolLM2: "positive" 1 token,
    "lost or stolen card" 4, "transfer not received by recipient" 5); 0 when unknown."""
    names = profile.get("label_names") or {}
    if not isinstance(names, dict) or not names:
        return 0
    return max(max(len(str(name).replace("_", " ").split()), 1) for name in names.values())


def corpus_doc_words(profile: dict[str, Any]) -> tuple[int, ...]:
    """Words of each document of the profile's corpus (its chunks follow from them), read with
    bench.data's corpus reader; () when the profile names no corpus or it cannot be read."""
    path = (profile.get("sources") or {}).get("corpus")
    if not path or not profile.get("corpus_docs"):
        return ()
    return _document_words(str(path))


@lru_cache(maxsize=8)
def _document_words(path: str) -> tuple[int, ...]:
    from pathlib import Path

    from bench.data.corpus import load_corpus
    from bench.data.messages import DataError, Report

    try:
        documents, _ = load_corpus(Path(path), Report())
    except (DataError, OSError):
        return ()
    return tuple(len(str(doc.get("text", "")).split()) for doc in documents)
