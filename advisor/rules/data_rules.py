"""The rules that read the data: how many labelled examples, how many per class, how long the
inputs, how skewed the labels, how far from general text, what the zero-shot probe scored.

Each function reads facts and returns effects; the Rule beside it (DATA_RULES) carries the
evidence (advisor.evidence). advisor.rules.rulebook puts every rule in its order.
"""

from __future__ import annotations

from advisor.rules.base import PROMPTING, RETRIEVAL, TRAINS_LLM, Effect, Facts, Rule

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


DATA_RULES: tuple[Rule, ...] = (
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
    Rule("measured-domain", ("gururangan-2020", "aharoni-goldberg-2020", "measured-domain"),
         _measured_domain),
    Rule("probe", ("vendor-guides", "mosbach-2023"), _probe),
)
