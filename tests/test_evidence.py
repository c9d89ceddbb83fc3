"""The evidence behind the advisor's rules lives in the repository: every cited id resolves, every
entry carries numbers and a reference a reader can follow, and what a user reads beside a reason
is those numbers and that reference, never a file outside the project."""

from __future__ import annotations

import re

import pytest

from advisor import rules
from advisor.answers import validate_answers
from advisor.evidence import EVIDENCE, Evidence, Reference, UnknownEvidence, describe, lookup
from advisor.rules import Facts, Rule, rank

CPU = {"cuda": False, "memory_gb": 24.0}
CITED = {
    **{rule.id: rule.evidence for rule in rules.RULES},
    "baseline": rules.BASELINE_EVIDENCE,
    "ft-plus-rag": rules.FT_RAG_EVIDENCE,
    "measured": rules.MEASURED_EVIDENCE,  # and chance-to-beat: the probes (rules.measured)
}


@pytest.mark.parametrize("rule_id", sorted(CITED))
def test_every_cited_evidence_id_exists(rule_id):
    ids = CITED[rule_id]
    assert isinstance(ids, tuple) and ids, f"{rule_id} cites no evidence"
    missing = [i for i in ids if i not in EVIDENCE]
    assert not missing, f"rule {rule_id} cites unknown evidence {missing}"


@pytest.mark.parametrize("entry_id", sorted(EVIDENCE))
def test_every_entry_has_a_claim_numbers_and_a_reference(entry_id):
    entry = EVIDENCE[entry_id]
    assert isinstance(entry, Evidence) and entry.id == entry_id
    assert len(entry.claim) > 30 and len(entry.numbers) > 30
    if entry.quantified:
        assert re.search(r"\d", entry.numbers), "the numbers must hold numbers"
    ref = entry.reference
    assert isinstance(ref, Reference) and ref.authors and ref.title and ref.where
    assert ref.year is None or 2010 <= ref.year <= 2030
    for text in (entry.claim, entry.numbers, ref.full()):
        assert ".md" not in text, "the product cites nothing outside the repository"


def test_papers_name_an_arxiv_id_or_a_venue():
    for entry in EVIDENCE.values():
        if entry.reference.year is not None:  # a published paper, not docs or our measurement
            assert re.search(r"arXiv:\d{4}\.\d{4,5}", entry.reference.where), entry.id


def test_every_entry_is_cited_by_a_rule_or_kept_for_the_probes_and_the_race():
    cited = {i for ids in CITED.values() for i in ids}
    kept_for_measurement = {"jamieson-2016", "li-2017-hyperband"}  # successive halving
    assert set(EVIDENCE) - cited <= kept_for_measurement


def test_an_unknown_id_is_an_error_that_names_it():
    with pytest.raises(UnknownEvidence, match="no-such-paper"):
        lookup(["setfit-2022", "no-such-paper"])
    bogus = Rule("bogus", ("no-such-paper",), lambda f: [rules.Effect(("lora",), 1, "x")])
    with pytest.raises(UnknownEvidence, match="no-such-paper"):
        rank(Facts(task="classification"), rules=[bogus])


def test_reasons_show_the_numbers_and_the_reference():
    facts = Facts.from_inputs(validate_answers({"task": "classification",
                                                "data": {"labeled_examples": 300}}), None, CPU,
                              params_b=0.135)
    knn = next(c for c in rank(facts).ranked if c.strategy == "knn")
    closed = next(r for r in knn.reasons if r.rule == "closed-label-set")
    assert closed.sources == ("setfit-2022", "bucher-martini-2024", "measured-banking")
    assert closed.evidence == describe(closed.sources)
    # SetFit's 8-per-class numbers, and where to find the paper
    assert "62.3" in closed.evidence and "43.0" in closed.evidence
    assert "Tunstall et al. 2022" in closed.evidence and "arXiv:2209.11055" in closed.evidence
    for candidate in rank(facts).ranked:
        for reason in candidate.as_dict()["reasons"]:
            assert "EVIDENCE.md" not in reason["evidence"] and "DESIGN.md" not in reason["evidence"]
