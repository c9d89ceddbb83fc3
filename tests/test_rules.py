"""One test per advisor rule: answers -> the expected top strategy or family, and the fits flag.
The rules are pure, so these run in milliseconds without data, models or hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor import rules
from advisor.answers import AnswersError, validate_answers
from advisor.rules import Facts, rank

CPU = {"cuda": False, "memory_gb": 24.0}


def ranking(answers, *, hardware=CPU, params_b=0.135, estimates=None, probe_score=None):
    facts = Facts.from_inputs(validate_answers(answers), None, hardware, params_b=params_b,
                              probe_score=probe_score)
    return rank(facts, estimates)


def top(result, n=1, *, skip_baselines=False):
    names = [c.strategy for c in result.ranked if not (skip_baselines and c.baseline)]
    return names[:n]


def reasons_of(result, strategy):
    return {r.rule for r in next(c for c in result.ranked if c.strategy == strategy).reasons}


def test_every_reason_names_its_rule_and_evidence():
    result = ranking({"task": "classification", "data": {"labeled_examples": 300}})
    for candidate in result.ranked:
        for reason in candidate.as_dict()["reasons"]:
            assert reason["rule"] and reason["text"] and reason["evidence"]
    assert len({rule.id for rule in rules.RULES}) == len(rules.RULES)


def test_few_labels_puts_prompting_first():
    result = ranking({"task": "classification", "data": {"labeled_examples": 20}})
    assert result.ranked[0].family in ("prompting", "rag")
    assert "few-labels" in reasons_of(result, "lora")
    lora = next(c for c in result.ranked if c.strategy == "lora")
    few = next(c for c in result.ranked if c.strategy == "few-shot")
    assert few.score > lora.score


def test_moderate_labels_recommend_lora():
    result = ranking({"task": "generation", "data": {"labeled_examples": 300},
                      "resources": {"gpu_memory_gb": 80}, "goals": {"priority": "quality"}},
                     hardware={"cuda": True, "gpu_memory_gb": 80})
    assert top(result) == ["lora"]
    assert "moderate-labels" in reasons_of(result, "lora")


def test_many_labels_raise_weight_adaptation():
    few = ranking({"task": "classification", "data": {"labeled_examples": 300}})
    many = ranking({"task": "classification", "data": {"labeled_examples": 20000}})
    score = lambda r, s: next(c.score for c in r.ranked if c.strategy == s)  # noqa: E731
    assert score(many, "full") > score(few, "full")
    assert "many-labels" in reasons_of(many, "full")


def test_changing_knowledge_recommends_rag():
    result = ranking({"task": "qa", "data": {"labeled_examples": 300, "knowledge_changes": "weekly",
                                             "corpus": "docs.jsonl"}})
    assert top(result) == ["rag"]
    assert "changing-knowledge" in reasons_of(result, "rag")
    assert "changing-knowledge" in reasons_of(result, "full")


def test_a_corpus_pairs_the_best_trainable_candidate_with_retrieval():
    with_corpus = ranking({"task": "qa", "data": {"labeled_examples": 300,
                                                  "corpus": "docs.jsonl"}})
    names = top(with_corpus, 99)
    best_trainable = next(n for n in names if n in rules.TRAINS_LLM)
    paired = f"{best_trainable}+rag"
    assert names.index(paired) == names.index(best_trainable) + 1  # just below its base
    assert "ft-plus-rag" in reasons_of(with_corpus, paired)
    without = ranking({"task": "qa", "data": {"labeled_examples": 300}})
    assert not any(n.endswith("+rag") for n in top(without, 99))
    classification = ranking({"task": "classification",
                              "data": {"labeled_examples": 300, "corpus": "docs.jsonl"}})
    assert not any(n.endswith("+rag") for n in top(classification, 99))


def test_hallucination_risk_favours_rag():
    low = ranking({"task": "qa", "data": {"labeled_examples": 300}})
    high = ranking({"task": "qa", "data": {"labeled_examples": 300},
                    "goals": {"hallucination_risk": "high"}})
    rag = lambda r: next(c.score for c in r.ranked if c.strategy == "rag")  # noqa: E731
    assert rag(high) > rag(low)
    assert "hallucination-risk" in reasons_of(high, "rag")


def test_preference_pairs_sft_then_dpo():
    result = ranking({"task": "preference", "data": {"has_preference_pairs": True,
                                                     "labeled_examples": 500},
                      "resources": {"gpu_memory_gb": 24}},
                     hardware={"cuda": True, "gpu_memory_gb": 24})
    assert top(result, 2, skip_baselines=True) == ["dpo", "sft-chosen"]
    assert {c["strategy"] for c in result.excluded} >= {"majority", "lora", "knn"}
    assert "preference-pairs" in reasons_of(result, "dpo")


def test_memory_below_16bit_footprint_means_qlora():
    # a 7B model (14 GB in 16-bit) on a 24 GB GPU: under twice the footprint -> QLoRA
    result = ranking({"task": "generation", "data": {"labeled_examples": 2000},
                      "resources": {"gpu_memory_gb": 24}, "model": {"params_b": 7}},
                     hardware={"cuda": True, "gpu_memory_gb": 24})
    assert top(result, skip_baselines=True) == ["qlora"]
    assert "memory-qlora" in reasons_of(result, "qlora")


def test_high_volume_tight_latency_prefers_small_finetuned_model():
    result = ranking({"task": "classification", "data": {"labeled_examples": 400},
                      "goals": {"monthly_requests": 5_000_000, "latency_ms": 100}})
    few = next(c for c in result.ranked if c.strategy == "few-shot")
    lora = next(c for c in result.ranked if c.strategy == "lora")
    assert lora.score > few.score
    assert "latency-volume" in reasons_of(result, "few-shot")
    # a small fine-tuned model or an encoder classifier (knn is one: short inputs, one encoding)
    assert result.ranked[0].strategy in ("lora", "qlora", *rules.ENCODER_CLASSIFIERS)


def test_prompt_tuning_only_for_large_models():
    small = ranking({"task": "generation", "data": {"labeled_examples": 300}}, params_b=0.135)
    large = ranking({"task": "generation", "data": {"labeled_examples": 300},
                     "model": {"params_b": 11}})
    pt = lambda r: next(c.score for c in r.ranked if c.strategy == "prompt-tuning")  # noqa: E731
    assert pt(large) > pt(small)
    assert "prompt-tuning-size" in reasons_of(small, "prompt-tuning")


def test_low_skill_no_gpu_means_prompting_or_rag():
    result = ranking({"task": "qa", "data": {"labeled_examples": 300},
                      "resources": {"cpu_only": True, "skill_level": "low"}})
    assert result.ranked[0].family in ("prompting", "rag")
    assert "low-resources" in reasons_of(result, "full")


def test_style_control_favours_lora():
    result = ranking({"task": "generation", "data": {"labeled_examples": 300},
                      "goals": {"style_control": "high"}})
    assert "style-control" in reasons_of(result, "lora")
    assert top(result) == ["lora"]


def test_domain_vocabulary_and_periodic_retraining():
    result = ranking({"task": "classification", "data": {"labeled_examples": 300,
                                                         "domain_vocabulary": "high"},
                      "goals": {"retraining": "periodic"}})
    assert "domain-vocabulary" in reasons_of(result, "lora")
    assert "periodic-retraining" in reasons_of(result, "lora")
    assert "periodic-retraining" in reasons_of(result, "full")


def test_probe_above_target_moves_finetuning_down():
    answers = {"task": "classification", "data": {"labeled_examples": 300},
               "goals": {"target_metric": 0.8}}
    above = ranking(answers, probe_score=0.9)
    below = ranking(answers, probe_score=0.3)
    assert above.ranked[0].family == "prompting"
    assert "probe" in reasons_of(above, "lora")
    lora = lambda r: next(c.score for c in r.ranked if c.strategy == "lora")  # noqa: E731
    assert lora(above) < lora(below)


def test_candidate_that_cannot_fit_is_flagged_and_not_recommended():
    estimates = {"full": {"peak_memory_gb": 120.0, "time_s": 600.0, "cost_usd": 1.0},
                 "lora": {"peak_memory_gb": 20.0, "time_s": 30000.0, "cost_usd": 9.0},
                 "qlora": {"peak_memory_gb": 12.0, "time_s": 600.0, "cost_usd": 0.5}}
    result = ranking({"task": "generation", "data": {"labeled_examples": 5000},
                      "resources": {"gpu_memory_gb": 24, "budget_usd": 5, "time_budget_hours": 2}},
                     hardware={"cuda": True, "gpu_memory_gb": 24}, estimates=estimates)
    by_name = {c.strategy: c for c in result.ranked}
    assert by_name["full"].fits is False and "24 GB" in by_name["full"].why_not[0]
    assert by_name["lora"].fits is False
    assert any("budget" in why for why in by_name["lora"].why_not)
    assert any("time budget" in why for why in by_name["lora"].why_not)
    assert by_name["qlora"].fits is True
    recommended = result.recommended(3)
    assert "full" not in recommended and "lora" not in recommended and "qlora" in recommended
    # fitting candidates rank above those that cannot fit
    fits = [c.fits for c in result.ranked]
    assert fits == sorted(fits, reverse=True)


def test_baselines_always_recommended():
    result = ranking({"task": "classification", "data": {"labeled_examples": 5000}})
    assert result.recommended(2)[:2] == ["zero-shot", "majority"] or \
        set(result.recommended(2)[:2]) == {"majority", "zero-shot"}
    generation = ranking({"task": "generation"})
    assert "majority" in {e["strategy"] for e in generation.excluded}
    assert "zero-shot" in generation.recommended(1)


def test_answers_validation_messages():
    with pytest.raises(AnswersError, match="did you mean 'labeled_examples'"):
        validate_answers({"data": {"labelled_examples": 3}})
    with pytest.raises(AnswersError, match="choose one of"):
        validate_answers({"goals": {"priority": "speed"}})
    with pytest.raises(AnswersError, match="at most 1"):
        validate_answers({"goals": {"target_metric": 3}})
    assert validate_answers({"resources": {"cpu_only": "yes", "gpu_memory_gb": "24"}}) == \
        {"resources": {"cpu_only": True, "gpu_memory_gb": 24.0}}


# ------------------------------------------------------------------ what the data profile measured

def data_profile(task="classification", classes=0, per_class=0, *, p50=12, p90=30, rows=300,
                 skew=None):
    """A bench.data-shaped profile: 70/10/20 split, word-counted lengths, label counts over
    all rows (`skew`: explicit counts instead of `classes` x `per_class`)."""
    counts = skew or ([per_class] * classes)
    rows = sum(counts) if counts else rows
    train, validation = int(rows * 0.7), int(rows * 0.1)
    profile = {"task": task, "rows": rows, "token_counter": "words",
               "splits": {"train": train, "validation": validation,
                          "test": rows - train - validation},
               "token_length": {"p50": p50, "p90": p90, "p99": p90 * 2, "max": p90 * 3}}
    if counts:
        profile["labels"] = {f"label_{i}": n for i, n in enumerate(counts)}
    return profile


def ranked_for(profile, answers=None):
    facts = Facts.from_inputs(validate_answers(answers or {"resources": {"cpu_only": True}}),
                              profile, CPU, params_b=0.135)
    return rank(facts)


def score_of(result, strategy):
    return next(c.score for c in result.ranked if c.strategy == strategy)


def position(result, strategy):
    return [c.strategy for c in result.ranked].index(strategy)


def test_facts_read_classes_examples_per_class_imbalance_and_lengths():
    facts = Facts.from_inputs({}, data_profile(skew=[200, 100, 20], p50=10, p90=40), CPU)
    assert facts.task == "classification" and facts.classes == 3
    # 80 % of the rows are train + validation: each class's count is scaled by that share
    assert facts.per_class_min == pytest.approx(16) and facts.per_class_median == pytest.approx(80)
    assert facts.imbalance == pytest.approx(10) and facts.majority_share == pytest.approx(200 / 320)
    assert facts.length_p50 == pytest.approx(13) and facts.length_p90 == pytest.approx(52)
    assert Facts.from_inputs({}, None, CPU).classes is None


def test_same_answers_rank_differently_for_different_data():
    two_by_200 = ranked_for(data_profile(classes=2, per_class=200))
    twenty_by_5 = ranked_for(data_profile(classes=20, per_class=5))
    long_generation = ranked_for(data_profile("generation", p50=300, p90=700))
    orders = [tuple(c.strategy for c in r.ranked[:6])
              for r in (two_by_200, twenty_by_5, long_generation)]
    assert len(set(orders)) == 3
    # enough per class: the encoder classifiers rank with LoRA, not below it
    assert "closed-label-set" in reasons_of(two_by_200, "knn")
    for name in ("knn", "transfer", "encoder-ft"):
        assert score_of(two_by_200, name) >= score_of(two_by_200, "lora")
        assert position(two_by_200, name) < position(two_by_200, "lora")
    # five per class: demonstrations and neighbours over training
    assert twenty_by_5.ranked[0].strategy in ("few-shot", "knn")
    assert "few-per-class" in reasons_of(twenty_by_5, "lora")
    assert score_of(twenty_by_5, "knn") > score_of(twenty_by_5, "lora")
    assert score_of(twenty_by_5, "few-shot") > score_of(twenty_by_5, "encoder-ft")
    assert "moderate-labels" not in reasons_of(twenty_by_5, "lora")
    # long generation: the prompts with demonstrations pay for the length
    assert "long-inputs" in reasons_of(long_generation, "few-shot")


def test_long_inputs_take_the_edge_off_the_encoder_classifiers():
    short = ranked_for(data_profile(classes=6, per_class=40, p90=30))
    long = ranked_for(data_profile(classes=6, per_class=40, p50=200, p90=400))
    assert "long-inputs" in reasons_of(long, "transfer")
    assert "closed-label-set" not in reasons_of(long, "transfer")
    assert score_of(long, "transfer") < score_of(long, "lora")
    assert score_of(short, "transfer") >= score_of(short, "lora")


def test_the_binary_break_even_is_later_than_the_multi_class_one():
    binary = ranked_for(data_profile(classes=2, per_class=200))
    multi = ranked_for(data_profile(classes=6, per_class=70))
    assert "label-break-even" in reasons_of(multi, "few-shot")
    assert "label-break-even" not in reasons_of(binary, "few-shot")
    assert score_of(multi, "few-shot") < score_of(binary, "few-shot")


def test_a_skewed_label_set_moves_prompting_down():
    balanced = ranked_for(data_profile(classes=3, per_class=100))
    skewed = ranked_for(data_profile(skew=[240, 40, 20]))
    assert "imbalance" in reasons_of(skewed, "zero-shot")
    assert score_of(skewed, "few-shot") < score_of(balanced, "few-shot")


def test_the_bundled_banking_sample_ranks_knn_and_transfer_with_lora_without_probes():
    from advisor.answers import load_answers
    from bench.data import profile_data

    root = Path(__file__).resolve().parent.parent
    answers = load_answers(root / "advisor" / "samples" / "classification.yaml")
    profile = profile_data(root / "bench" / "samples" / "banking_support")
    facts = Facts.from_inputs(answers, profile, CPU, params_b=0.135)
    assert facts.classes == 6 and facts.per_class_median >= 8
    result = rank(facts)
    for name in ("knn", "transfer"):
        assert score_of(result, name) >= score_of(result, "lora")
        assert position(result, name) < position(result, "lora")
        assert name in result.recommended(3)


def test_every_candidate_over_a_zero_budget_is_ranked_anyway_with_the_cheapest_cost():
    estimates = {"knn": {"peak_memory_gb": 0.7, "time_s": 15.0, "cost_usd": 0.0004},
                 "lora": {"peak_memory_gb": 4.0, "time_s": 180.0, "cost_usd": 0.005},
                 "majority": {"peak_memory_gb": 0.02, "time_s": 0.3, "cost_usd": 0.00001}}
    def ranking_with(budget):
        facts = Facts.from_inputs(validate_answers({
            "task": "classification", "data": {"labeled_examples": 300},
            "resources": {"budget_usd": budget}}), None, CPU, params_b=0.135)
        return rank(facts, estimates, strategies=["majority", "zero-shot", "knn", "lora"])

    result = ranking_with(0)
    assert result.recommended(2)[2:]  # a pick beyond the baselines
    assert any("$0 budget" in note and "knn" in note and "$0.0004" in note
               for note in result.notes)
    assert result.as_dict()["notes"] == result.notes
    # a budget that some candidate meets keeps its meaning
    enough = ranking_with(0.001)
    assert not enough.notes and enough.recommended(5)[2:] == ["knn"]
    assert "notes" not in enough.as_dict()
