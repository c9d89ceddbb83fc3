"""What the advisor's rules read and give: the facts (answers, data profile, hardware), the
effects a rule returns, the reasons a candidate carries, and the trait names the rules move.

    facts = Facts.from_inputs(answers, profile, hardware, params_b=0.135)

Pure data and pure functions: no I/O (advisor.recommend profiles the data and probes the
hardware beforehand).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from advisor.evidence import describe
from strategies import catalogue

# What the rules know about each candidate (family, tasks, prior, traits) is read from the
# strategy catalogue (stdlib data, so ranking imports no strategy). The trait constants are
# live views: an entry registered at run time is moved by the rules that name its traits.
BASELINES = catalogue.TraitNames("baseline")  # always run, for comparison
TRAINS_LLM = catalogue.TraitNames("trains_llm")
ADAPTERS = catalogue.TraitNames("adapter")
PROMPTING = catalogue.TraitNames("prompting")
RETRIEVAL = catalogue.TraitNames("retrieval")


@dataclass(frozen=True)
class Reason:
    rule: str
    text: str
    evidence: str  # the numbers and references behind the rule (advisor.evidence.describe)
    delta: float = 0.0
    sources: tuple[str, ...] = ()  # the evidence ids

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text, "evidence": self.evidence}


@dataclass(frozen=True)
class Effect:
    strategies: tuple[str, ...]
    delta: float
    text: str
    # Candidates to rank with, not below: after every rule's deltas, each of `strategies`
    # is raised to the best score among these (the raise is the reason's delta).
    level_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    evidence: tuple[str, ...]  # ids of advisor.evidence.EVIDENCE
    apply: Callable[["Facts"], list[Effect]]

    @property
    def evidence_text(self) -> str:
        """The numbers and references behind the rule, as a reason shows them."""
        return describe(self.evidence)


@dataclass(frozen=True)
class ProbeScore:
    """A cheap candidate measured on the validation split before the advice (advisor.probes):
    its score on the task's primary metric, the 95% interval, rows scored and seconds.
    Cross-validated on the train rows too (knn, transfer): `value` and `rows` pool the train
    rows (`cv_rows` of them) with the validation rows, and `validation_value` is the
    validation rows' score alone."""

    strategy: str
    value: float
    low: float | None = None
    high: float | None = None
    rows: int = 0
    seconds: float = 0.0
    # "short": a training candidate measured on a short budget (advisor.probes'
    # second stage), a lower bound of its full run; `steps` the optimizer steps it took
    budget: str | None = None
    steps: int | None = None
    cv_rows: int = 0
    validation_value: float | None = None

    @property
    def validation_rows(self) -> int:
        return self.rows - self.cv_rows

    def as_dict(self) -> dict[str, Any]:
        found = {"strategy": self.strategy, "value": round(self.value, 4),
                 "ci": None if self.low is None or self.high is None
                 else [round(self.low, 4), round(self.high, 4)],
                 "rows": self.rows, "seconds": round(self.seconds, 1)}
        if self.budget is not None:
            found.update(budget=self.budget, steps=self.steps)
        if self.cv_rows:
            found.update(cv_rows=self.cv_rows, validation_rows=self.validation_rows,
                         validation_value=None if self.validation_value is None
                         else round(self.validation_value, 4))
        return found


@dataclass
class Facts:
    """Answers, data profile and hardware merged into what the rules read."""

    task: str | None = None
    labeled_examples: int | None = None
    has_labels: bool = True
    has_preference_pairs: bool = False
    has_corpus: bool = False
    knowledge_changes: str = "never"
    domain_vocabulary: str = "low"
    gpu_memory_gb: float | None = None
    cpu_only: bool = True
    memory_gb: float | None = None  # RAM, the limit on a CPU-only machine
    budget_usd: float | None = None
    time_budget_hours: float | None = None
    skill_level: str = "moderate"
    target_metric: float | None = None
    priority: str = "balanced"
    latency_ms: float | None = None
    monthly_requests: int | None = None
    hallucination_risk: str = "medium"
    style_control: str = "medium"
    retraining: str = "one_off"
    params_b: float | None = None  # base model size, billions
    probe_score: float | None = None  # zero-shot score on a validation slice (the probes)
    # what the probes measured on the validation split (advisor.probes), by strategy
    probes: dict[str, ProbeScore] = field(default_factory=dict)
    probe_metric: str | None = None
    # What the data profile measured (None when there is no profile, or not classification)
    classes: int | None = None
    per_class_min: float | None = None  # labelled (train + validation) rows of the rarest class
    per_class_median: float | None = None
    imbalance: float | None = None  # rows of the largest class / rows of the smallest
    majority_share: float | None = None  # share of all rows in the largest class
    length_p50: float | None = None  # tokens per row (word counts x 1.3 without a tokenizer)
    length_p90: float | None = None
    # What `--domain` measured (bench.domain): the base model's perplexity on the inputs over its
    # perplexity on general text; the encoder's mean cosine of the inputs to the general
    # passages' centroid, and the general passages' own (their spread)
    domain_perplexity_ratio: float | None = None
    domain_similarity: float | None = None
    domain_reference_similarity: float | None = None

    @classmethod
    def from_inputs(cls, answers: dict[str, Any], profile: dict[str, Any] | None = None,
                    hardware: dict[str, Any] | None = None, *, params_b: float | None = None,
                    probe_score: float | None = None,
                    probes: dict[str, ProbeScore] | None = None,
                    probe_metric: str | None = None) -> "Facts":
        from advisor.questions import get

        profile, hardware = profile or {}, hardware or {}
        task = get(answers, "task") or profile.get("task")
        labeled = get(answers, "data.labeled_examples")
        if labeled is None:
            labeled = labeled_rows(profile)
        pairs = get(answers, "data.has_preference_pairs")
        corpus = get(answers, "data.corpus") or profile.get("has_corpus")
        gpu = get(answers, "resources.gpu_memory_gb")
        cpu_only = bool(get(answers, "resources.cpu_only", False))
        if gpu is None and not cpu_only and hardware.get("cuda"):
            gpu = hardware.get("gpu_memory_gb")
        return cls(
            task=task,
            labeled_examples=int(labeled) if isinstance(labeled, (int, float)) else None,
            has_labels=bool(get(answers, "data.has_labels", True)),
            has_preference_pairs=bool(pairs if pairs is not None else task == "preference"),
            has_corpus=bool(corpus),
            knowledge_changes=get(answers, "data.knowledge_changes", "never"),
            domain_vocabulary=get(answers, "data.domain_vocabulary", "low"),
            gpu_memory_gb=None if cpu_only else gpu,
            cpu_only=cpu_only or gpu is None,
            memory_gb=hardware.get("memory_gb"),
            budget_usd=get(answers, "resources.budget_usd"),
            time_budget_hours=get(answers, "resources.time_budget_hours"),
            skill_level=get(answers, "resources.skill_level", "moderate"),
            target_metric=get(answers, "goals.target_metric"),
            priority=get(answers, "goals.priority", "balanced"),
            latency_ms=get(answers, "goals.latency_ms"),
            monthly_requests=get(answers, "goals.monthly_requests"),
            hallucination_risk=get(answers, "goals.hallucination_risk", "medium"),
            style_control=get(answers, "goals.style_control", "medium"),
            retraining=get(answers, "goals.retraining", "one_off"),
            params_b=get(answers, "model.params_b", params_b),
            probe_score=probe_score if probe_score is not None else _zero_shot(probes),
            probes=dict(probes or {}),
            probe_metric=probe_metric,
            **profile_facts(profile),
        )

    @property
    def model_16bit_gb(self) -> float | None:
        return self.params_b * 2 if self.params_b else None


def _zero_shot(probes: dict[str, ProbeScore] | None) -> float | None:
    """The zero-shot probe's score: what the `probe` rule compares with the target."""
    found = (probes or {}).get("zero-shot")
    return found.value if found is not None else None


def labeled_rows(profile: dict[str, Any]) -> int | None:
    """Rows the user can learn from: train + validation of the profile's split (the test rows
    are held out for measuring)."""
    splits = profile.get("splits") or {}
    if splits.get("train") is not None:
        return int(splits["train"]) + int(splits.get("validation") or 0)
    rows = profile.get("rows")
    return int(rows) if isinstance(rows, int) else None


# Words undercount tokens: without a tokenizer the profile counts words (as advisor.estimate).
TOKENS_PER_WORD = 1.3


def profile_facts(profile: dict[str, Any]) -> dict[str, Any]:
    """Classes, examples per class, imbalance and input lengths from bench.data's profile.
    The profile counts labels over every row; the rows a candidate learns from are train +
    validation, so each class's count is scaled by that share."""
    found: dict[str, Any] = {}
    lengths = profile.get("token_length") or {}
    per_token = TOKENS_PER_WORD if profile.get("token_counter", "words") == "words" else 1.0
    for key in ("p50", "p90"):
        if isinstance(lengths.get(key), (int, float)):
            found[f"length_{key}"] = round(lengths[key] * per_token, 1)
    counts = [n for n in (profile.get("labels") or {}).values() if isinstance(n, int) and n > 0]
    if len(counts) >= 2:
        total = sum(counts)
        learnable = labeled_rows(profile)
        share = min(learnable / total, 1.0) if learnable and total else 1.0
        found.update(classes=len(counts), per_class_min=round(min(counts) * share, 1),
                     per_class_median=round(statistics.median(counts) * share, 1),
                     imbalance=round(max(counts) / min(counts), 2),
                     majority_share=round(max(counts) / total, 3))
    found.update(domain_facts(profile))
    return found


def domain_facts(profile: dict[str, Any]) -> dict[str, float]:
    """The domain measurement of the profile (`tunewise data check --domain`), if it has one."""
    domain = profile.get("domain") or {}
    keys = {"perplexity_ratio": "domain_perplexity_ratio",
            "similarity_to_reference": "domain_similarity",
            "reference_self_similarity": "domain_reference_similarity"}
    return {fact: float(domain[key]) for key, fact in keys.items()
            if isinstance(domain.get(key), (int, float))}
