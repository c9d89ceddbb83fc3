"""The measured-domain rule: facts in, ranking out. Far-from-pretraining inputs move deep
adaptation up and frozen features down; inputs close to general text do the opposite; mixed or
missing measurements move nothing."""

from __future__ import annotations

import pytest

from advisor.rules import (DEEP_ADAPTATION, FAR_PERPLEXITY_RATIO, FROZEN_FEATURES, Facts,
                           profile_facts, rank)


def facts(ratio=None, similarity=None, reference=0.06, task="classification"):
    return Facts(task=task, labeled_examples=300, cpu_only=False, gpu_memory_gb=24,
                 domain_perplexity_ratio=ratio, domain_similarity=similarity,
                 domain_reference_similarity=reference if similarity is not None else None)


def scores(f: Facts) -> dict[str, float]:
    return {c.strategy: c.score for c in rank(f).ranked}


def domain_reasons(f: Facts) -> dict[str, float]:
    return {c.strategy: r.delta for c in rank(f).ranked for r in c.reasons
            if r.rule == "measured-domain"}


def test_far_data_moves_deep_adaptation_up_and_prompting_down():
    plain = scores(facts(task="generation"))
    far = scores(facts(ratio=3.0, similarity=-0.05, task="generation"))
    for name in ("full", "lora", "qlora", "dora"):
        assert far[name] == pytest.approx(plain[name] + 10)
    for name in ("zero-shot", "few-shot"):
        assert far[name] == pytest.approx(plain[name] - 10)


def test_far_classification_data_no_longer_levels_frozen_encoders_with_fine_tuning():
    # 300 labels: the closed-label-set rule ranks knn/transfer level with the best fine-tuning
    plain = scores(facts())
    assert plain["knn"] == plain["transfer"] == max(plain[n] for n in ("lora", "full"))
    far = scores(facts(ratio=3.0, similarity=-0.05))
    assert far["knn"] < far["lora"] and far["transfer"] < far["lora"]
    assert far["encoder-ft"] >= far["lora"]  # the encoder that trains stays level


def test_the_perplexity_alone_moves_less_than_both_measures_agreeing():
    alone = domain_reasons(facts(ratio=FAR_PERPLEXITY_RATIO, similarity=0.2))
    both = domain_reasons(facts(ratio=FAR_PERPLEXITY_RATIO, similarity=0.0))
    assert 0 < alone["lora"] < both["lora"]
    assert both["knn"] < alone["knn"] < 0


def test_near_data_favours_the_frozen_and_prompting_side():
    plain = scores(facts(task="generation"))
    near = scores(facts(ratio=0.8, similarity=0.15, task="generation"))
    for name in ("zero-shot", "few-shot"):
        assert near[name] == pytest.approx(plain[name] + 6)
    assert near["full"] == pytest.approx(plain["full"] - 4)
    reasons = domain_reasons(facts(ratio=0.8, similarity=0.15))
    assert set(reasons) == set(FROZEN_FEATURES) | {"full"}


@pytest.mark.parametrize("ratio,similarity", [
    (1.2, 0.0),     # between the cut-offs
    (0.8, -0.05),   # the model finds it easy, the encoder far: mixed, no move
    (0.8, None),    # near by perplexity without the encoder's word: no move
    (None, -0.5),   # no perplexity: no move
])
def test_mixed_or_missing_measurements_move_nothing(ratio, similarity):
    assert domain_reasons(facts(ratio=ratio, similarity=similarity)) == {}


def test_preference_tasks_are_left_alone():
    assert domain_reasons(facts(ratio=5.0, similarity=-0.1, task="preference")) == {}


def test_the_reason_states_the_measured_numbers_and_cites_the_evidence():
    result = rank(facts(ratio=2.5, similarity=-0.05))
    reason = next(r for c in result.ranked if c.strategy == "lora" for r in c.reasons
                  if r.rule == "measured-domain")
    assert "2.50x as surprising" in reason.text and "-0.05" in reason.text
    assert reason.sources == ("gururangan-2020", "aharoni-goldberg-2020", "measured-domain")
    assert "arXiv:2004.10964" in reason.evidence and "assumptions" in reason.evidence


def test_profile_facts_read_the_domain_record():
    profile = {"task": "classification", "splits": {"train": 100, "validation": 10, "test": 20},
               "domain": {"perplexity_ratio": 1.8, "similarity_to_reference": -0.04,
                          "reference_self_similarity": 0.06, "model": "smollm2-135m"}}
    found = profile_facts(profile)
    assert found["domain_perplexity_ratio"] == 1.8
    assert found["domain_similarity"] == -0.04 and found["domain_reference_similarity"] == 0.06
    assert "domain_perplexity_ratio" not in profile_facts({"task": "classification"})
    f = Facts.from_inputs({}, profile)
    assert f.domain_perplexity_ratio == 1.8


def test_deep_and_frozen_sets_do_not_overlap():
    assert not set(DEEP_ADAPTATION) & set(FROZEN_FEATURES)
