"""The advisor's rules: data plus pure functions, from answers to ranked candidates with reasons.

    from advisor.rules import Facts, rank
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

The modules, by theme:
- base: Facts (what the rules read), Effect, Reason, Rule, the trait names;
- data_rules: the rules that read the data (labels, classes, lengths, imbalance, domain);
- setting_rules: the rules that read the answers about the setting (knowledge, risk,
  preference pairs, memory, latency, resources, style, retraining);
- rulebook: every rule in the order the ranking applies them;
- measured: the probes' measurements as facts (a probed candidate is expected to score what it
  measured; an unprobed one by its chance to beat the best probe and its cost to find out);
- ranking: rank(), Candidate, Ranking, the fit checks and the FT + RAG pairing.
This package re-exports their public names, so `from advisor.rules import X` reads as before.
"""

from advisor.rules.base import (ADAPTERS, BASELINES, PROMPTING, RETRIEVAL, TOKENS_PER_WORD,
                                TRAINS_LLM, Effect, Facts, ProbeScore, Reason, Rule,
                                domain_facts, labeled_rows, profile_facts)
from advisor.rules.data_rules import (BREAK_EVEN_LABELS, DEEP_ADAPTATION, ENCODER_CLASSIFIERS,
                                      ENCODER_MAX_TOKENS, ENOUGH_PER_CLASS,
                                      FAR_PERPLEXITY_RATIO, FEW_SHOT_DEMONSTRATIONS,
                                      FROZEN_FEATURES, MAJORITY_SHARE, NEAR_PERPLEXITY_RATIO,
                                      SKEW_RATIO)
from advisor.rules.measured import MEASURED_EVIDENCE, Expectation, expectations
from advisor.rules.ranking import (BASELINE_EVIDENCE, ESTIMATE_EVIDENCE, FT_RAG_EVIDENCE,
                                   Candidate, Ranking, applicable, fit_problems,
                                   ft_rag_candidate, rank)
from advisor.rules.rulebook import RULE_ORDER, RULES, RULES_BY_ID

__all__ = [
    "ADAPTERS", "BASELINES", "PROMPTING", "RETRIEVAL", "TOKENS_PER_WORD", "TRAINS_LLM",
    "Effect", "Facts", "ProbeScore", "Reason", "Rule", "domain_facts", "labeled_rows",
    "profile_facts",
    "BREAK_EVEN_LABELS", "DEEP_ADAPTATION", "ENCODER_CLASSIFIERS", "ENCODER_MAX_TOKENS",
    "ENOUGH_PER_CLASS", "FAR_PERPLEXITY_RATIO", "FEW_SHOT_DEMONSTRATIONS", "FROZEN_FEATURES",
    "MAJORITY_SHARE", "NEAR_PERPLEXITY_RATIO", "SKEW_RATIO",
    "BASELINE_EVIDENCE", "ESTIMATE_EVIDENCE", "FT_RAG_EVIDENCE", "Candidate", "Ranking",
    "applicable", "fit_problems", "ft_rag_candidate", "rank",
    "MEASURED_EVIDENCE", "Expectation", "expectations",
    "RULE_ORDER", "RULES", "RULES_BY_ID",
]
