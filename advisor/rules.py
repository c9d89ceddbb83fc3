"""The advisor's rules: data plus pure functions, from answers to ranked candidates with reasons.

    facts = Facts.from_inputs(answers, profile, hardware, params_b=0.135)
    ranking = rank(facts, estimates={"lora": {...}, ...})
    ranking.ranked[0].strategy, ranking.ranked[0].reasons, ranking.excluded

No I/O here: estimates are computed beforehand (advisor.recommend) and passed in, so every rule
is a function of its inputs and trivial to test. Each rule is a `Rule` with an id, the ids of
the evidence behind it (advisor.evidence: the numbers, their setting and the reference) and a
function `facts -> [Effect]`; an effect moves a set of strategies' scores, or levels them with
others, and says why. Candidates start from a prior that encodes the consensus "prompt first,
then PEFT, then heavier methods"; the rules move them from there, reading the answers and what
the data profile measured (classes, examples per class, imbalance, input lengths).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

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
    probe_score: float | None = None  # zero-shot score on a validation slice (--probe)
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
                    probe_score: float | None = None) -> "Facts":
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
            probe_score=probe_score,
            **profile_facts(profile),
        )

    @property
    def model_16bit_gb(self) -> float | None:
        return self.params_b * 2 if self.params_b else None


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


# --------------------------------------------------------------------------- the rules
# Each function reads facts and returns effects; the Rule beside it carries the evidence.

# Classifiers built on a sentence encoder (frozen or briefly fine-tuned), cheap to train and
# serve; the default encoder (all-MiniLM-L6-v2) reads at most ENCODER_MAX_TOKENS word pieces.
ENCODER_CLASSIFIERS = ("knn", "transfer", "encoder-ft", "setfit")
ENCODER_MAX_TOKENS = 256
# SetFit's smallest training setting (8 per class) already matched far larger models: from
# there on, an encoder classifier is a contender (median over the classes, so one rare class
# does not decide).
ENOUGH_PER_CLASS = 8
# Pecher et al. 2025: specialised models break even with in-context learning at ~100 labels on
# multi-class sets (binary sets needed up to 5,000).
BREAK_EVEN_LABELS = 100
# A class holding over half the rows, twice the smallest or more: the majority baseline
# already scores above 0.5 accuracy.
MAJORITY_SHARE = 0.5
SKEW_RATIO = 2.0
FEW_SHOT_DEMONSTRATIONS = 4  # the few-shot candidate's default k


def _closed_set_known(f: Facts) -> bool:
    return f.task == "classification" and f.per_class_median is not None


def _prompt_first(f: Facts) -> list[Effect]:
    return [Effect(PROMPTING, +5, "Start with prompting; move on only when evaluation shows it "
                                  "falls short.")]


def _few_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or n >= 50 or f.task == "preference":
        return []
    return [Effect(PROMPTING + RETRIEVAL, +15, f"Only {n} labelled examples: prompting with "
                   "demonstrations comes first."),
            Effect(TRAINS_LLM + ("encoder-ft",), -20, f"{n} labelled examples are too few to "
                   "fine-tune reliably (PEFT only overtakes in-context learning from ~50-100).")]


def _moderate_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or not 50 <= n <= 1000 or f.task == "preference":
        return []
    if _closed_set_known(f) and f.per_class_median < ENOUGH_PER_CLASS:
        return []  # spread over many classes these are few per class: few-per-class decides
    return [Effect(("lora", "qlora"), +15, f"{n} labelled examples: enough for LoRA/QLoRA to "
                   "beat k-shot prompting with far shorter prompts; benchmark both, with seeds."),
            Effect(("full",), -5, "With a few hundred examples full fine-tuning is no better "
                   "than LoRA and forgets more.")]


def _closed_label_set(f: Facts) -> list[Effect]:
    """Rule 15: a closed label set with enough examples per class puts the encoder classifiers
    level with the best LLM fine-tuning candidate: no study shows the small decoder ahead, and
    the ones that compare find the encoder as good at a fraction of the cost."""
    if f.task != "classification" or _long_inputs(f):
        return []
    if f.per_class_median is not None:
        if f.per_class_median < ENOUGH_PER_CLASS:
            return []
        rarest = (f"; the rarest has ~{f.per_class_min:g}" if f.per_class_min is not None
                  and f.per_class_min < ENOUGH_PER_CLASS else "")
        why = (f"{f.classes} classes with a median of ~{f.per_class_median:g} labelled examples "
               f"each{rarest}")
    elif f.labeled_examples is not None and f.labeled_examples >= 50:
        why = f"A closed label set with {f.labeled_examples} labelled examples"
    else:
        return []
    # far from pretraining (measured-domain), frozen features are not levelled up: only the
    # classifiers that train the encoder
    levelled = (("encoder-ft", "setfit") if _far_domain(f) else ENCODER_CLASSIFIERS)
    return [Effect(levelled, 0, f"{why}: a sentence encoder with a nearest-neighbour "
                   f"or linear head matched far larger fine-tuned models from {ENOUGH_PER_CLASS} "
                   "examples per class, at a small fraction of the cost; ranked level with the "
                   "best LLM fine-tuning candidate, for a measurement to decide.",
                   level_with=TRAINS_LLM)]


def _few_per_class(f: Facts) -> list[Effect]:
    if not _closed_set_known(f) or f.per_class_median >= ENOUGH_PER_CLASS:
        return []
    why = (f"{f.classes} classes with a median of ~{f.per_class_median:g} labelled examples "
           "each")
    return [Effect(("few-shot", "knn", "transfer", "setfit"), +12, f"{why}: demonstrations in "
                   "the prompt, nearest neighbours or a linear head on sentence embeddings use "
                   "every example without training a large model on a handful."),
            Effect(TRAINS_LLM + ("encoder-ft",), -15, f"{why}: too few per class to fine-tune "
                   f"a model reliably (full fine-tuning of RoBERTa-large scored 43 at "
                   f"{ENOUGH_PER_CLASS} per class, where few-shot methods reached 58-63).")]


def _long_inputs(f: Facts) -> bool:
    return f.length_p90 is not None and f.length_p90 > ENCODER_MAX_TOKENS


def _long_input_rule(f: Facts) -> list[Effect]:
    if not _long_inputs(f) or f.task == "preference":
        return []
    p90 = f"{f.length_p90:.0f}"
    effects = [Effect(("few-shot",), -8, f"One row in ten is over ~{p90} tokens: "
                      f"{FEW_SHOT_DEMONSTRATIONS} demonstrations of this length multiply every "
                      "prompt, its time and its cost per request.")]
    if f.task == "classification":
        effects.append(Effect(ENCODER_CLASSIFIERS, -15, f"One row in ten is over ~{p90} tokens, "
                              f"beyond the {ENCODER_MAX_TOKENS} the sentence encoder reads: the "
                              "encoder classifiers see only the start of long rows and lose "
                              "their edge."))
    return effects


def _break_even(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if f.task != "classification" or n is None or n < BREAK_EVEN_LABELS:
        return []
    if f.classes == 2:
        return []  # binary sets needed up to 5,000 labels to break even: no move
    return [Effect(("few-shot", "zero-shot"), -8, f"{n} labelled examples"
                   f"{f' over {f.classes} classes' if f.classes else ''}: trained classifiers "
                   f"break even with in-context learning at ~{BREAK_EVEN_LABELS} labels on "
                   "multi-class sets, and zero-shot prompting can fall below the majority "
                   "baseline.")]


def _imbalance(f: Facts) -> list[Effect]:
    if f.task != "classification" or f.majority_share is None or \
            f.majority_share <= MAJORITY_SHARE or (f.imbalance or 1) < SKEW_RATIO:
        return []
    return [Effect(PROMPTING, -8, f"The largest class holds {f.majority_share:.0%} of the rows "
                   f"(largest / smallest {f.imbalance:g}x): the majority baseline already "
                   f"scores {f.majority_share:.2f}, and prompting often falls below it on "
                   "skewed label sets; compare macro F1, not only accuracy.")]


def _many_labels(f: Facts) -> list[Effect]:
    n = f.labeled_examples
    if n is None or n <= 1000 or f.task == "preference":
        return []
    return [Effect(("lora", "qlora", "full", "encoder-ft", "dora"), +15, f"{n} labelled "
                   "examples: adapting the weights pays off, and the data can show it."),
            Effect(("few-shot",), -5, "A few demonstrations use little of this much data.")]


def _changing_knowledge(f: Facts) -> list[Effect]:
    changes = f.knowledge_changes in ("monthly", "weekly", "daily")
    if not (changes or f.has_corpus) or f.task == "preference":
        return []
    why = (f"The knowledge changes {f.knowledge_changes}" if changes else
           "A document corpus is available")
    effects = [Effect(("rag",), +25 if changes else +15, f"{why}: retrieve it at answer time "
                      "rather than train it into the weights.")]
    if changes:
        effects.append(Effect(TRAINS_LLM, -10, "Facts trained into weights go stale and need "
                              "retraining at every change; fine-tuning learns new facts poorly."))
    return effects


def _hallucination(f: Facts) -> list[Effect]:
    if f.hallucination_risk != "high" or f.task == "preference":
        return []
    return [Effect(("rag",), +10, "Wrong answers are costly: ground them in retrieved documents."),
            Effect(("full",), -5, "Fine-tuning on new knowledge increases hallucination.")]


def _preference(f: Facts) -> list[Effect]:
    if not f.has_preference_pairs:
        return []
    return [Effect(("sft-chosen",), +20, "Preference pairs: first SFT on the chosen answers..."),
            Effect(("dpo",), +25, "...then DPO on the pairs: as good as or better than PPO-based "
                   "RLHF and much simpler to run."),
            Effect(("rlhf",), -5, "RLHF (reward model + online RL) is the heaviest option; try "
                   "it only if DPO falls short."),
            Effect(("reward-model",), +5, "A reward model measures preference accuracy and "
                   "judges outputs; needed for RLHF.")]


def _memory(f: Facts) -> list[Effect]:
    gb, need = f.gpu_memory_gb, f.model_16bit_gb
    if gb is None or need is None:
        return []
    if gb < 2 * need:
        return [Effect(("qlora",), +20, f"{gb:g} GB of GPU memory is under twice the model's "
                       f"16-bit weights ({need:.1f} GB): QLoRA (4-bit NF4) fits and matches "
                       "16-bit quality."),
                Effect(("full", "lora", "dora"), -10, f"16-bit training of a {need:.1f} GB model "
                       f"is tight in {gb:g} GB.")]
    return []


def _latency_volume(f: Facts) -> list[Effect]:
    high_volume = (f.monthly_requests or 0) >= 1_000_000
    tight = f.latency_ms is not None and f.latency_ms <= 300
    if not (high_volume or tight or f.priority == "latency"):
        return []
    why = "; ".join(x for x in [f"{f.monthly_requests:,} requests a month" if high_volume else "",
                                f"latency limit {f.latency_ms:g} ms" if tight else "",
                                "latency is the priority" if f.priority == "latency" else ""] if x)
    return [Effect(("lora", "qlora", "encoder-ft", "full", "knn", "transfer", "setfit"), +12,
                   f"{why}: a small fine-tuned model or an encoder classifier answers with "
                   "short inputs, far cheaper per request than long prompts."),
            Effect(("few-shot", "rag"), -10, f"{why}: long demonstration or retrieval prompts "
                   "cost time and money on every request.")]


def _prompt_tuning_size(f: Facts) -> list[Effect]:
    if f.params_b is None or f.params_b >= 10:
        return []
    return [Effect(("prompt-tuning",), -20, f"Prompt tuning matches fine-tuning only at ~10B+ "
                   f"parameters; this model has {f.params_b:.2g}B."),
            Effect(("prefix-tuning",), -10, "Prefix tuning trailed LoRA badly with ~100 "
                   "examples (its own paper found it strong in low data: measure it).")]


def _low_resources(f: Facts) -> list[Effect]:
    low_skill = f.skill_level == "low"
    tiny_budget = f.budget_usd is not None and f.budget_usd < 5
    if not (low_skill or f.cpu_only or tiny_budget):
        return []
    why = ", ".join(x for x in ["little ML engineering experience" if low_skill else "",
                                "no GPU" if f.cpu_only else "",
                                f"a ${f.budget_usd:g} budget" if tiny_budget else ""] if x)
    effects = [Effect(PROMPTING + RETRIEVAL, +15 if low_skill else +10, f"With {why}, prompting "
                      "and retrieval are the practical first candidates.")]
    if low_skill:
        effects.append(Effect(TRAINS_LLM, -10, f"With {why}, training and serving a fine-tuned "
                              "LLM is harder to get right and to operate."))
    effects.append(Effect(("full", "rlhf"), -10, f"With {why}, the heaviest training is slow "
                          "or hard to operate."))
    if f.cpu_only and not low_skill and (f.params_b or 0) <= 0.5:
        effects.append(Effect(("lora", "qlora", "encoder-ft", "transfer"), +5, "The model is "
                              "small enough that adapter training on the CPU takes minutes."))
    return effects


def _style(f: Facts) -> list[Effect]:
    if f.style_control != "high" or f.task == "classification":
        return []
    return [Effect(("lora", "qlora", "sft-chosen"), +10, "Strict output style or format: LoRA "
                   "teaches it reliably, more than instructions alone.")]


def _domain(f: Facts) -> list[Effect]:
    if f.domain_vocabulary != "high":
        return []
    return [Effect(("lora", "qlora", "full", "encoder-ft"), +8, "Specialised vocabulary: adapting "
                   "the weights to the domain adds a few points, cumulative with RAG.")]


# Assumptions, no study gives these cut-offs: inputs the base model finds 1.5x as surprising
# per token as general text of the same length are far from its pretraining; at or under 1x
# (and no further from the general passages than they are from one another) they are near.
# On the data measured here (smollm2-135m) real sets ranged 0.44-1.82, random characters 18.7.
FAR_PERPLEXITY_RATIO = 1.5
NEAR_PERPLEXITY_RATIO = 1.0
DEEP_ADAPTATION = ("full", "lora", "qlora", "dora", "encoder-ft")
FROZEN_FEATURES = ("knn", "transfer", "zero-shot", "few-shot")


def _far_domain(f: Facts) -> bool:
    return f.domain_perplexity_ratio is not None and \
        f.domain_perplexity_ratio >= FAR_PERPLEXITY_RATIO


def _measured_domain(f: Facts) -> list[Effect]:
    """Far-from-pretraining inputs favour adapting the weights over frozen features and
    prompting; inputs close to general text favour the frozen and prompting side."""
    ratio = f.domain_perplexity_ratio
    if ratio is None or f.task == "preference":
        return []
    encoder_far = (f.domain_similarity is not None and f.domain_reference_similarity is not None
                   and f.domain_similarity < f.domain_reference_similarity)
    similarity = ("" if f.domain_similarity is None else
                  f"; the encoder's cosine to general text is {f.domain_similarity:.2f}, "
                  f"general text's own {f.domain_reference_similarity:.2f}")
    measured = f"The base model finds the inputs {ratio:.2f}x as surprising as general text"
    if _far_domain(f):
        delta = 10 if encoder_far else 6
        return [Effect(DEEP_ADAPTATION, +delta, f"{measured}{similarity}: far from its "
                       "pretraining, so adapting the weights (full, LoRA with a higher rank, "
                       "encoder fine-tuning) has more to gain than frozen features."),
                Effect(FROZEN_FEATURES, -delta, f"{measured}: frozen features and prompts "
                       "carry what the model learnt in pretraining, which fits these inputs "
                       "less.")]
    if ratio <= NEAR_PERPLEXITY_RATIO and not encoder_far and f.domain_similarity is not None:
        return [Effect(FROZEN_FEATURES, +6, f"{measured}{similarity}: close to its "
                       "pretraining, so frozen features and prompting start from a good fit."),
                Effect(("full",), -4, f"{measured}: little for the deepest (and costliest) "
                       "adaptation to fix.")]
    return []


def _retraining(f: Facts) -> list[Effect]:
    if f.retraining != "periodic":
        return []
    return [Effect(ADAPTERS, +4, "Periodic retraining: adapters are small to retrain, store and "
                   "swap, and forget less of the base model."),
            Effect(("full",), -5, "Periodic full fine-tuning multiplies compute and storage.")]


def _probe(f: Facts) -> list[Effect]:
    if f.probe_score is None or f.target_metric is None:
        return []
    if f.probe_score >= f.target_metric:
        return [Effect(TRAINS_LLM + ("encoder-ft",), -20, f"The base model already scores "
                       f"{f.probe_score:.3f} zero-shot, above the {f.target_metric:g} target: "
                       "fine-tuning is not needed first."),
                Effect(PROMPTING, +10, f"Zero-shot already meets the target ({f.probe_score:.3f} "
                       f">= {f.target_metric:g}).")]
    return [Effect(TRAINS_LLM[:5], +5, f"The base model scores {f.probe_score:.3f} zero-shot, "
                   f"below the {f.target_metric:g} target: adaptation is needed.")]


RULES: tuple[Rule, ...] = (
    Rule("prompt-first", ("vendor-guides",), _prompt_first),
    Rule("few-labels", ("liu-2022-tfew", "hu-2021-low-data", "vendor-guides"), _few_labels),
    Rule("moderate-labels", ("hu-2021-lora", "kirstain-2021", "mosbach-2023"), _moderate_labels),
    Rule("many-labels", ("hu-2021-low-data", "lora-land-2024"), _many_labels),
    Rule("closed-label-set", ("setfit-2022", "bucher-martini-2024", "measured-banking"),
         _closed_label_set),
    Rule("few-per-class", ("setfit-2022", "fastfit-2024", "vendor-guides"), _few_per_class),
    Rule("long-inputs", ("minilm-context", "liu-2022-tfew"), _long_input_rule),
    Rule("label-break-even", ("pecher-2025", "bucher-martini-2024", "li-flanigan-2023"),
         _break_even),
    Rule("imbalance", ("bucher-martini-2024", "li-flanigan-2023"), _imbalance),
    Rule("changing-knowledge", ("ovadia-2023", "soudani-2024"), _changing_knowledge),
    Rule("hallucination-risk", ("gekhman-2024", "ovadia-2023"), _hallucination),
    Rule("preference-pairs", ("rafailov-2023-dpo", "vendor-guides", "ouyang-2022"), _preference),
    Rule("memory-qlora", ("dettmers-2023-qlora", "biderman-2024"), _memory),
    Rule("latency-volume", ("liu-2022-tfew", "lora-land-2024", "setfit-2022"), _latency_volume),
    Rule("prompt-tuning-size", ("lester-2021", "hu-2021-low-data", "li-liang-2021"),
         _prompt_tuning_size),
    Rule("low-resources", ("vendor-guides", "cpu-training-cost"), _low_resources),
    Rule("style-control", ("lora-land-2024", "hu-2021-lora"), _style),
    Rule("domain-vocabulary", ("balaguer-2024",), _domain),
    Rule("measured-domain", ("gururangan-2020", "aharoni-goldberg-2020", "measured-domain"),
         _measured_domain),
    Rule("periodic-retraining", ("hu-2021-lora", "biderman-2024"), _retraining),
    Rule("probe", ("vendor-guides", "mosbach-2023"), _probe),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}


# --------------------------------------------------------------------------- ranking

@dataclass
class Candidate:
    strategy: str
    family: str
    score: float
    reasons: list[Reason] = field(default_factory=list)
    estimate: dict[str, float] | None = None
    fits: bool = True
    why_not: list[str] = field(default_factory=list)  # why it does not fit
    baseline: bool = False

    def as_dict(self) -> dict[str, Any]:
        reasons = [r.as_dict() for r in self.reasons]
        reasons += [{"rule": "fits", "text": why, "evidence": ESTIMATE_EVIDENCE}
                    for why in self.why_not]
        return {"strategy": self.strategy, "family": self.family, "score": round(self.score, 1),
                "reasons": reasons,
                "estimate": self.estimate or {"peak_memory_gb": None, "time_s": None,
                                              "cost_usd": None},
                "fits": self.fits}


ESTIMATE_EVIDENCE = ("pre-run estimate from the model's shape: memory from weights, gradients, "
                     "optimizer state and activations, time from FLOPs over this machine's "
                     "measured throughput (advisor/estimate.py)")


@dataclass
class Ranking:
    ranked: list[Candidate]
    excluded: list[dict[str, str]]
    notes: list[str] = field(default_factory=list)  # what the ranking had to set aside, and why

    def as_dict(self) -> dict[str, Any]:
        found = {"ranked": [c.as_dict() for c in self.ranked], "excluded": self.excluded}
        if self.notes:
            found["notes"] = list(self.notes)
        return found

    def recommended(self, top: int = 3) -> list[str]:
        """The baselines plus the best `top` fitting candidates: what a run does by default."""
        picked = [c.strategy for c in self.ranked if c.baseline]
        others = [c.strategy for c in self.ranked if c.fits and not c.baseline]
        return picked + others[:top]


def applicable(strategy: str, task: str | None) -> str | None:
    """None if the strategy can serve the task, else why not."""
    entry = catalogue.entry(strategy)
    if entry is None:
        return "unknown strategy"
    if task is not None and task not in entry.tasks:
        return f"does not support {task} (supports {', '.join(sorted(entry.tasks))})"
    return None


def fit_problems(facts: Facts, estimate: dict[str, float] | None) -> list[str]:
    """Why a candidate's estimate exceeds the stated memory, budget or time (empty: it fits)."""
    if not estimate:
        return []
    problems = []
    memory = estimate.get("peak_memory_gb")
    limit = facts.gpu_memory_gb if facts.gpu_memory_gb is not None else facts.memory_gb
    where = "GPU memory" if facts.gpu_memory_gb is not None else "RAM"
    if memory is not None and limit is not None and memory > limit:
        problems.append(f"needs ~{memory:.1f} GB peak memory, more than the {limit:g} GB of {where}")
    cost = estimate.get("cost_usd")
    if cost is not None and facts.budget_usd is not None and cost > facts.budget_usd:
        problems.append(f"costs ~${cost:.2f}, over the ${facts.budget_usd:g} budget")
    seconds = estimate.get("time_s")
    if (seconds is not None and facts.time_budget_hours is not None
            and seconds > facts.time_budget_hours * 3600):
        problems.append(f"takes ~{seconds / 3600:.1f} h, over the {facts.time_budget_hours:g} h "
                        "time budget")
    return problems


def rank(facts: Facts, estimates: dict[str, dict[str, float]] | None = None,
         strategies: Iterable[str] | None = None, rules: Iterable[Rule] = RULES) -> Ranking:
    """Score every candidate for the task, attach reasons and estimates, check fits, and sort:
    fitting candidates first, then by score (ties keep the registry's order)."""
    estimates = estimates or {}
    names = list(strategies) if strategies is not None else catalogue.names()
    candidates: dict[str, Candidate] = {}
    excluded: list[dict[str, str]] = []
    for name in names:
        why = applicable(name, facts.task)
        if why:
            excluded.append({"strategy": name, "why": why})
            continue
        entry = catalogue.entry(name)
        candidates[name] = Candidate(name, entry.family, entry.prior,
                                     baseline=name in BASELINES)
    levels: list[tuple[Rule, Effect]] = []
    for rule in rules:
        for effect in rule.apply(facts):
            if effect.level_with:
                levels.append((rule, effect))  # once every delta is in
            for name in effect.strategies:
                if name in candidates and not effect.level_with:
                    candidates[name].score += effect.delta
                    candidates[name].reasons.append(Reason(rule.id, effect.text,
                                                           rule.evidence_text, effect.delta,
                                                           rule.evidence))
    for rule, effect in levels:
        _level(candidates, rule, effect)
    for candidate in candidates.values():
        if candidate.baseline:
            candidate.reasons.append(Reason("baseline", "Always run for comparison: a "
                                            "recommendation is only as honest as its baseline, "
                                            "and prompting can fall below the majority vote.",
                                            describe(BASELINE_EVIDENCE), 0.0,
                                            BASELINE_EVIDENCE))
        candidate.score = max(0.0, min(100.0, candidate.score))
        candidate.estimate = estimates.get(candidate.strategy)
        candidate.why_not = fit_problems(facts, candidate.estimate)
        candidate.fits = not candidate.why_not
        # the strongest reasons first, so a table's first line says the most
        candidate.reasons.sort(key=lambda r: -abs(r.delta))
    notes = _rank_despite_budget(facts, list(candidates.values()))
    order = {name: i for i, name in enumerate(names)}
    ranked = sorted(candidates.values(),
                    key=lambda c: (not c.fits, -c.score, order[c.strategy]))
    # with the budget set aside above, the FT + RAG pair is judged the same way
    pairing = ft_rag_candidate(replace(facts, budget_usd=None) if notes else facts, ranked,
                               estimates)
    if pairing is not None:
        order[pairing.strategy] = len(order)
        ranked = sorted([*ranked, pairing],
                        key=lambda c: (not c.fits, -c.score, order[c.strategy]))
    return Ranking(ranked, excluded, notes)


BASELINE_EVIDENCE = ("li-flanigan-2023", "bucher-martini-2024")


def _level(candidates: dict[str, Candidate], rule: Rule, effect: Effect) -> None:
    """Raise each of the effect's candidates to the best score among `level_with` (ties keep
    the registry's order, which lists the cheaper candidates first)."""
    peers = [candidates[n].score for n in effect.level_with if n in candidates]
    if not peers:
        return
    for name in effect.strategies:
        candidate = candidates.get(name)
        if candidate is None or name in effect.level_with:
            continue
        raise_by = max(max(peers) - candidate.score, 0.0)
        candidate.score += raise_by
        candidate.reasons.append(Reason(rule.id, effect.text, rule.evidence_text, raise_by,
                                        rule.evidence))


def _rank_despite_budget(facts: Facts, candidates: list[Candidate]) -> list[str]:
    """A budget that every candidate beyond the baselines breaks would leave no pick: rank them
    as if there were no budget instead, and say so with what the cheapest one costs."""
    contenders = [c for c in candidates if not c.baseline]
    if facts.budget_usd is None or not contenders or any(c.fits for c in contenders):
        return []
    unbudgeted = replace(facts, budget_usd=None)
    problems = {id(c): fit_problems(unbudgeted, c.estimate) for c in candidates}
    if not any(not problems[id(c)] for c in contenders):
        return []  # memory or time rule them out anyway: the budget is not what blocks them
    for candidate in candidates:
        candidate.why_not = problems[id(candidate)]
        candidate.fits = not candidate.why_not
    priced = [c for c in contenders if c.fits and (c.estimate or {}).get("cost_usd") is not None]
    cheapest = min(priced, key=lambda c: c.estimate["cost_usd"], default=None)
    costs = (f"; the cheapest, {cheapest.strategy}, costs ~${cheapest.estimate['cost_usd']:.4f}"
             if cheapest else "")
    return [f"no candidate beyond the baselines fits the ${facts.budget_usd:g} budget, so they "
            f"are ranked as if there were none{costs}"]


FT_RAG_EVIDENCE = ("balaguer-2024", "ovadia-2023")  # cumulative in one study, not in the other


def ft_rag_candidate(facts: Facts, ranked: list[Candidate],
                     estimates: dict[str, dict[str, float]]) -> Candidate | None:
    """With a corpus, generation/qa: the best fitting trainable candidate again with retrieval
    (`lora+rag`), just below it. The gains of FT and RAG add up in some studies, not in others,
    so the pair is worth measuring, not assuming."""
    if not facts.has_corpus or facts.task not in ("generation", "qa"):
        return None
    base = next((c for c in ranked if c.fits and c.strategy in TRAINS_LLM), None)
    if base is None:
        return None
    name = f"{base.strategy}+rag"
    paired = Candidate(name, base.family, max(0.0, base.score - 1.0),
                       reasons=[Reason("ft-plus-rag", f"A corpus is available and {base.strategy} "
                                       "is the best trainable candidate: measure it with "
                                       "retrieved passages in the prompt too (FT + RAG).",
                                       describe(FT_RAG_EVIDENCE), 0.0, FT_RAG_EVIDENCE),
                                *base.reasons],
                       estimate=estimates.get(name) or base.estimate)
    paired.why_not = fit_problems(facts, paired.estimate)
    paired.fits = not paired.why_not
    return paired
