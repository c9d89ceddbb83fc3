"""The record schema: one line of `results.jsonl` per candidate (DESIGN.md, fixed for scripts).

Reports, the advisor and user scripts read these records and nothing else.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

SCHEMA_VERSION = 1

Status = Literal["ok", "failed", "skipped", "timeout"]
STATUSES = ("ok", "failed", "skipped", "timeout")

# Primary metric per task kind, and whether higher is better for every metric we report.
PRIMARY_METRIC = {
    "classification": "accuracy",
    "generation": "rouge_l",
    "qa": "token_f1",
    "preference": "preference_accuracy",
}
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "macro_f1": True,
    "precision": True,
    "recall": True,
    "exact_match": True,
    "token_f1": True,
    "rouge_l": True,
    "preference_accuracy": True,
    "win_rate": True,
    "reward_accuracy": True,
    # resources: lower is better
    "peak_memory_mb": False,
    "time_s": False,
    "cost_usd": False,
    "artifact_mb": False,
    "trainable_params": False,
    "tokens_per_s": True,
}


class PeakMemory(TypedDict):
    cpu_rss: float  # MB, high-water mark of the candidate's child process (RSS)
    cuda: float | None  # MB, torch.cuda.max_memory_allocated, None without CUDA


class TimeBreakdown(TypedDict, total=False):
    load: float  # seconds loading models (before adapting)
    adapt: float  # seconds adapting (training, indexing, fitting); 0 for pure prompting
    predict: float  # seconds predicting the test split
    # wall time of the whole candidate, child start to finish, less the measurements that run
    # after its work (the forgetting probe, the deployment latency: their own seconds)
    total: float


class Cost(TypedDict):
    adapt: float  # USD to adapt, at the price row of `hardware.price_row`
    predict: float  # USD to predict the test split
    per_1k_requests: float  # USD per 1,000 served requests, from measured per-request latency


class Forgetting(TypedDict, total=False):
    """A trained LLM's general-text probe (bench.forgetting); or only `skipped` / `error`."""

    probe: str  # what was scored: the bundled general paragraphs, by perplexity
    texts: int  # paragraphs scored
    tokens: int  # tokens predicted over them
    base_perplexity: float  # the untouched base model (scored once per run)
    perplexity: float  # the candidate's saved artifact on the same text
    change: float  # perplexity / base_perplexity - 1: > 0 means general text got harder
    interval: list[float]  # [low, high], 95% paired bootstrap of `change` over the texts
    quantization: str | None  # "nf4": a QLoRA adapter, compared with the NF4 base
    seconds: float  # the probe's wall time, not counted in time_s
    change_per_seed: list[float]  # with --seeds > 1
    skipped: str  # why no probe could be scored (e.g. a reward model has no LM head)
    error: str  # the probe broke; the candidate's own results stand


class Augmentation(TypedDict, total=False):
    """--augment (bench.augment): what was added to the train split before any candidate ran."""

    method: str  # "paraphrase"
    per_row: int  # paraphrases asked per train row
    generator: str  # the model that wrote them, or the rule set's name
    rows_before: int  # train rows as split
    rows_added: int  # distinct new rows kept
    cache: str  # the cache file the rows came from (reruns read it)
    cached: bool  # True when this run read them from the cache
    seconds: float  # generation time (0 when cached)


class Record(TypedDict, total=False):
    schema_version: int  # SCHEMA_VERSION
    run_id: str  # the run folder's name
    strategy: str  # CLI name, e.g. "lora"
    family: str  # baseline | prompting | rag | transfer | fine-tuning | peft | preference
    task: str  # classification | generation | qa | preference
    status: Status  # ok | failed | skipped | timeout
    error: str | None  # what went wrong (last lines of the child's error), or why skipped
    primary_metric: str  # name of the metric the ranking uses
    metrics: dict[str, float]  # name -> value (mean over seeds when --seeds > 1)
    metrics_ci: dict[str, list[float]]  # name -> [low, high], 95% bootstrap over test rows
    metrics_std: dict[str, float]  # name -> std over seeds (only with --seeds > 1)
    seeds: list[int]  # the seeds run; one entry per repeat
    peak_memory_mb: PeakMemory
    time_s: TimeBreakdown
    tokens_per_s: float | None  # (train + predict tokens) / (adapt + predict seconds)
    trainable_params: int
    total_params: int
    artifact_mb: float  # size on disk of the saved adapter / model / index, MB
    cost_usd: Cost
    cost_projected: bool  # True when priced with --price-as another hardware row
    hardware: dict[str, Any]  # cpu, cores, memory_gb, gpu, price_row, price_per_hour
    seed: int  # the first seed
    config: dict[str, Any]  # the strategy's config after preset and overrides
    samples: list[dict[str, Any]]  # a few test rows with prediction, reference, correct
    confusion_matrix: dict[str, Any]  # classification: {"labels": [...], "matrix": [[...]]}
    degenerate: bool  # predictions collapsed to one answer (bench.metrics.degenerate_predictions)
    degenerate_why: str  # what collapsed, when degenerate
    # classification: one row per class, [{label, precision, recall, f1, support, predicted}]
    per_class: list[dict[str, Any]]
    info: dict[str, Any]  # strategy-specific facts (optimizer used, judge, trials, ...)
    estimate: dict[str, float] | None  # advisor's pre-run estimate when one was made
    log: str  # path of this candidate's log, relative to the run folder
    predictions: str  # path of predictions/<strategy>.jsonl (every test row), relative
    # The base LLM an LLM candidate ran on (absent for encoder-only and model-free ones); with
    # several models (--model a,b) `variant` names the candidate in the run: "lora@SmolLM2-135M".
    model: str
    variant: str
    # The prompt LM candidates were given: {instruction, instruction_source: user|default,
    # template (None: the built-in layout)}.
    prompt: dict[str, Any]
    # Deployment facts measured after evaluation (bench.deploy): {p50_ms, p95_ms, requests,
    # batch_size: 1, serving_mb, memory_kind, measure_s}, or {error} when not measured.
    deploy: dict[str, Any]
    # absent for a candidate; "stage" for a once-per-run model the candidates share (bench.stages:
    # the preference win-rate judge), journalled in stages.jsonl, measured and priced, not scored
    kind: str
    forgetting: Forgetting  # trained LLMs only (bench.forgetting), unless --no-forgetting
    augmentation: Augmentation  # only with --augment: the rows added to the train split


REQUIRED_KEYS = (
    "schema_version", "run_id", "strategy", "family", "task", "status", "error",
    "primary_metric", "metrics", "peak_memory_mb", "time_s", "tokens_per_s",
    "trainable_params", "total_params", "artifact_mb", "cost_usd", "hardware", "seed", "config",
)


def validate_record(record: dict[str, Any]) -> list[str]:
    """Problems with a record, [] when it follows the schema."""
    problems = [f"missing key {key!r}" for key in REQUIRED_KEYS if key not in record]
    if record.get("status") not in STATUSES:
        problems.append(f"status {record.get('status')!r} not in {STATUSES}")
    if record.get("status") == "ok" and record.get("kind") != "stage" and \
            record.get("primary_metric") not in record.get("metrics", {}):
        problems.append("status ok but the primary metric has no value")
    if record.get("status") in ("failed", "skipped", "timeout") and not record.get("error"):
        problems.append(f"status {record.get('status')} needs an error text")
    for key in ("peak_memory_mb", "time_s", "cost_usd"):
        if key in record and not isinstance(record[key], dict):
            problems.append(f"{key} must be an object")
    return problems
