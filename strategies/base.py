"""The strategy contract: what a candidate receives and what it returns.

A strategy is one module in `strategies/` exposing `SPEC = StrategySpec(...)`. The harness
(`bench`) builds a `RunContext`, calls `SPEC.run(ctx, config)` in a child process, and does all
the measuring itself: it timestamps the phases the strategy announces with `ctx.phase(...)`,
samples memory, scores `StrategyOutput.predictions` against the test split and prices the run.
Strategies never import `bench` (DESIGN.md's layering): everything they need reaches them here.

Rows are plain dicts with the canonical column names of their task kind. Train and validation
rows carry everything; test rows carry the inputs only (the harness keeps their labels and
scores the predictions itself, bench.split_view):

| task           | train / validation rows    | test rows                      | prediction       |
| -------------- | -------------------------- | ------------------------------ | ---------------- |
| classification | text, label (str)          | text                           | label (str)      |
| generation     | instruction, input, output | instruction, input (may be "") | generated text   |
| qa             | question, context, answer  | question, context (may be "")  | generated answer |
| preference     | prompt, chosen, rejected   | prompt, response_a, response_b | a dict (below)   |

A preference test pair comes as two neutral responses in a seeded, shuffled order: the strategy
scores both (a PreferencePrediction with response_a_logp, response_b_logp) and the harness maps
them back to chosen/rejected.

Counts the harness takes itself: a strategy hands its model to `ctx.count_model(model)` and its
training batches to `ctx.count_train_batch(batch)`; the record then carries the harness's
parameter and token counts. Figures it does not hand over are recorded as reported by the
strategy, and a figure a helper had to estimate is noted with `note_estimate(...)`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Protocol, TypedDict

TaskKind = Literal["classification", "generation", "qa", "preference"]
TASK_KINDS: tuple[str, ...] = ("classification", "generation", "qa", "preference")
Family = Literal["baseline", "prompting", "rag", "transfer", "fine-tuning", "peft", "preference"]
FAMILIES: tuple[str, ...] = (
    "baseline", "prompting", "rag", "transfer", "fine-tuning", "peft", "preference",
)
Preset = Literal["quick", "full"]
PRESETS: tuple[str, ...] = ("quick", "full")
Phase = Literal["load", "adapt", "predict", "save"]


class StrategyError(Exception):
    """A problem the user can fix (bad config value, unsupported model, ...).

    The harness turns it into a `failed` record with this message and no traceback."""


class StrategySkipped(Exception):
    """The candidate cannot run here (e.g. needs CUDA); becomes a `skipped` record with why."""


@dataclass
class TaskSplit:
    """The same rows for every candidate: built once by bench.data, stored with the run."""

    task: TaskKind
    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]
    test: list[dict[str, Any]]
    # classification: every label, in a stable order (sorted unless the user gave an order)
    labels: list[str] = field(default_factory=list)
    # readable verbalisation of each label for prompts ("card_arrival" -> "card arrival")
    label_names: dict[str, str] = field(default_factory=dict)
    # documents for RAG: [{"id": str, "text": str}], or None when the data has no corpus
    corpus: list[dict[str, Any]] | None = None
    # free text describing the task, used in prompts ("Classify the customer's message ...")
    instruction: str | None = None
    # the user turn of every LM prompt, with the row's fields in braces ("Ticket: {text}");
    # None: the built-in layout (strategies.prompts)
    prompt_template: str | None = None


# The two responses of a test pair, in the order shown (chosen first or not: the strategy
# cannot tell), and the prediction keys that score them.
PAIR_FIELDS: tuple[str, str] = ("response_a", "response_b")
PAIR_LOGP_FIELDS: tuple[str, str] = ("response_a_logp", "response_b_logp")
PAIR_REWARD_FIELDS: tuple[str, str] = ("response_a_reward", "response_b_reward")


class PreferencePrediction(TypedDict, total=False):
    """One held-out pair scored by a policy (preference task)."""

    response_a_logp: float  # length-normalised log-probability of the pair's response_a
    response_b_logp: float  # same for response_b (the harness knows which one was chosen)
    response_a_reward: float  # a reward model's score of response_a (instead of the logps)
    response_b_reward: float  # same for response_b
    response: str  # the policy's greedy answer to the prompt (for win rate)
    baseline_response: str  # the base model's greedy answer (win-rate opponent)
    judge_score: float  # judge reward of `response`
    baseline_judge_score: float  # judge reward of `baseline_response`


@dataclass
class Progress:
    """A small progress message from the strategy; the harness forwards it to the display."""

    phase: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""


class ModelLoader(Protocol):
    """Loads a model by name. Implemented by bench.models and handed over in the context.

    kind:
      "causal-lm"         -> (AutoModelForCausalLM, tokenizer)
      "seq-cls"           -> (AutoModelForSequenceClassification with num_labels, tokenizer)
      "encoder"           -> (AutoModel, tokenizer)
      "sentence-encoder"  -> (SentenceTransformer, None)
    quantization: None | "nf4" (bitsandbytes 4-bit NF4, double quantisation)
    dtype: None (float32 on CPU, bf16 on CUDA where supported) | "float32" | "bfloat16" | "float16"
    """

    def __call__(
        self,
        name: str,
        kind: str = "causal-lm",
        *,
        dtype: str | None = None,
        quantization: str | None = None,
        num_labels: int | None = None,
    ) -> tuple[Any, Any]: ...


@dataclass
class RunContext:
    """Everything a strategy may use. Built by the harness inside the child process."""

    data: TaskSplit
    model_name: str  # the base LLM ("smollm2-135m", a hub id, a path, "tiny-llama" in tests)
    encoder_name: str  # the sentence encoder ("minilm-l6", "tiny-bert" in tests)
    load_model: ModelLoader
    device: str  # "cpu" or "cuda"
    seed: int
    work_dir: Path  # this candidate's folder in the run: save artifacts here
    preset: str = "quick"
    on_progress: Callable[[Progress], None] = lambda progress: None
    on_phase: Callable[[str], None] = lambda phase: None
    # free-form options from the CLI that are not part of a config (e.g. --peft-args)
    options: dict[str, Any] = field(default_factory=dict)
    # The harness's own counters (bench.child): see count_model / count_train_batch.
    on_count_model: Callable[[Any, str], None] = lambda model, role: None
    on_train_batch: Callable[[Any], None] = lambda batch: None
    # A race rung (bench.race): it trains on a subset of train and on this share of the full
    # run's training budget; full_train_rows is the whole split's size, which sets that budget
    # (strategies.training_budget.RungShare). 1.0: a full run.
    budget_fraction: float = 1.0
    full_train_rows: int | None = None
    # A race's continuation (bench.race): resume the latest Trainer checkpoint under
    # <resume_from>/trainer/ (the same strategy's previous rung) and train on to
    # budget_fraction of the full run's steps; save_checkpoint: write one at the end of
    # training under <work_dir>/trainer/checkpoint-<step> for the next rung or the final.
    resume_from: str | None = None
    save_checkpoint: bool = False

    def count_model(self, model, role: str = "model") -> None:
        """Hand a model to the harness, which counts its trainable and total parameters.

        Call it once the model is set up the way it trains (adapters attached, frozen parts
        frozen), once per model the candidate uses (`role`: "policy", "judge", "encoder", ...);
        a second call for the same role replaces the first count."""
        self.on_count_model(model, role)

    def count_train_batch(self, batch) -> None:
        """Hand one training batch (a mapping with `attention_mask`, else `input_ids`) to the
        harness, which counts the real tokens in it. Call it for every batch trained on."""
        self.on_train_batch(batch)

    def phase(self, name: str) -> None:
        """Announce a phase ("load", "adapt", "predict", "save"); the harness times each."""
        self.on_phase(name)

    def progress(self, phase: str, step: int = 0, total: int = 0,
                 loss: float | None = None, message: str = "") -> None:
        self.on_progress(Progress(phase, step, total, loss, message))

    def with_test_rows(self, rows: list[dict[str, Any]]) -> "RunContext":
        """This context with `rows` as its test split and no progress or phases: a strategy's
        own predict function, called again on a few rows (StrategyOutput.answer)."""
        return dataclasses.replace(self, data=dataclasses.replace(self.data, test=list(rows)),
                                   on_progress=lambda progress: None,
                                   on_phase=lambda phase: None)


@dataclass
class StrategyOutput:
    """What a strategy returns; the harness turns it into a record."""

    predictions: list[Any]  # one per test row, in test order (see the module table)
    # The next three are the strategy's own figures; the record uses the harness's counts instead
    # where the strategy handed its model / batches over (RunContext.count_model, ...).
    trainable_params: int = 0
    total_params: int = 0
    train_tokens: int = 0  # tokens processed while adapting (all epochs)
    predict_tokens: int = 0  # tokens processed while predicting the test split
    mean_prompt_tokens: float = 0.0  # per served request: prices per-1k-request serving cost
    artifact_path: str | None = None  # file or folder under ctx.work_dir (its size is measured)
    extra_metrics: dict[str, float] = field(default_factory=dict)  # strategy-specific metrics
    info: dict[str, Any] = field(default_factory=dict)  # e.g. optimizer used, judge, trials
    # The adapted candidate answering more test rows the way it answered the test split:
    # answer(rows) -> predictions. The harness calls it on a few test rows, one at a time, for
    # the deployment facts (latency at batch 1, serving memory); None: not measured.
    answer: Callable[[list[dict[str, Any]]], list[Any]] | None = None


# Figures a helper had to estimate instead of count, by StrategyOutput field name. Helpers deep in
# a training loop have no RunContext at hand, so they note it here; the harness takes the notes
# after the strategy returns (one candidate per process) and marks the figure in the record.
_ESTIMATES: dict[str, str] = {}


def note_estimate(figure: str, how: str) -> None:
    """Say that StrategyOutput.<figure> is an estimate, and how it was made."""
    _ESTIMATES[figure] = how


def take_estimates() -> dict[str, str]:
    """The notes so far ({figure: how}), cleared (the harness calls it after each run)."""
    notes = dict(_ESTIMATES)
    _ESTIMATES.clear()
    return notes


@dataclass(frozen=True)
class Requirements:
    cuda: bool = False  # needs a CUDA GPU (else: skipped record with the reason)
    min_memory_mb: int = 0  # rough floor for the default model


@dataclass(frozen=True)
class StrategySpec:
    """A registered candidate. `run(ctx, config) -> StrategyOutput`."""

    name: str
    family: str
    tasks: frozenset[str]
    config_cls: type
    run: Callable[[RunContext, Any], StrategyOutput]
    description: str = ""
    requirements: Requirements = Requirements()
    trainable: bool = False  # adapts weights (eligible for --tune and learning curves)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9+:-]*", self.name):
            raise ValueError(f"strategy name {self.name!r} must be lowercase [a-z0-9+:-]")
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} not in {FAMILIES}")
        unknown = set(self.tasks) - set(TASK_KINDS)
        if unknown:
            raise ValueError(f"{self.name}: unknown task kinds {sorted(unknown)}")

    def make_config(self, preset: str = "quick", overrides: Mapping[str, Any] | None = None):
        return make_config(self.config_cls, preset, overrides)


# ---------------------------------------------------------------------------------------------
# Config dataclasses: fields carry help text and per-preset defaults in their metadata, e.g.
#
#   @dataclass
#   class Config:
#       epochs: float = option(1, help="passes over the train split", full=3)
#       lora_r: int = option(8, help="adapter rank; higher increases accuracy and memory")
#
# `make_config(Config, "full", {"epochs": 2})` applies the preset then the overrides, and
# validates through the dataclass's own __post_init__.
# ---------------------------------------------------------------------------------------------


def option(default: Any, *, help: str, full: Any = dataclasses.MISSING,
           choices: tuple[Any, ...] | None = None) -> Any:
    """A config field with help text and an optional different default for the `full` preset."""
    metadata: dict[str, Any] = {"help": help}
    if full is not dataclasses.MISSING:
        metadata["full"] = full
    if choices is not None:
        metadata["choices"] = choices
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def make_config(config_cls: type, preset: str = "quick",
                overrides: Mapping[str, Any] | None = None) -> Any:
    if preset not in PRESETS:
        raise StrategyError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values: dict[str, Any] = {}
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for f in fields.values():
        if preset == "full" and "full" in f.metadata:
            values[f.name] = f.metadata["full"]
    for key, value in (overrides or {}).items():
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise StrategyError(
                f"unknown option {key!r} for {config_cls.__module__}{hint}; "
                f"options: {', '.join(sorted(fields))}"
            )
        values[key] = _coerce(value, fields[key])
    try:
        config = config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise StrategyError(str(exc)) from None
    for f in fields.values():
        choices = f.metadata.get("choices")
        if choices and getattr(config, f.name) not in choices:
            raise StrategyError(
                f"{f.name}={getattr(config, f.name)!r} is not one of {', '.join(map(str, choices))}"
            )
    return config


def config_help(config_cls: type) -> list[dict[str, Any]]:
    """[{name, default, full, help}] for --help and the TUI."""
    rows = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        rows.append({"name": f.name, "default": default, "full": f.metadata.get("full", default),
                     "help": f.metadata.get("help", "")})
    return rows


def _coerce(value: Any, f: dataclasses.Field) -> Any:
    """CLI overrides arrive as strings; turn them into the field's type."""
    if not isinstance(value, str):
        return value
    default = f.default if f.default is not dataclasses.MISSING else None
    kind = type(default) if default is not None else str
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind in (int, float):
            return kind(value)
        if kind in (list, tuple):
            return [v.strip() for v in value.split(",") if v.strip()]
    except ValueError:
        raise StrategyError(f"{f.name}: cannot read {value!r} as {kind.__name__}") from None
    return value
