"""Every rule of the advisor, in the order the ranking applies them: a reason of equal weight
is listed in this order, and the levelling effects (advisor.rules.ranking) are applied in it.

    from advisor.rules.rulebook import RULES, RULES_BY_ID
"""

from __future__ import annotations

from advisor.rules.base import Rule
from advisor.rules.data_rules import DATA_RULES
from advisor.rules.setting_rules import SETTING_RULES

RULE_ORDER = (
    "prompt-first",
    "few-labels",
    "moderate-labels",
    "many-labels",
    "closed-label-set",
    "few-per-class",
    "long-inputs",
    "label-break-even",
    "imbalance",
    "changing-knowledge",
    "hallucination-risk",
    "preference-pairs",
    "memory-qlora",
    "latency-volume",
    "prompt-tuning-size",
    "low-resources",
    "style-control",
    "domain-vocabulary",
    "measured-domain",
    "periodic-retraining",
    "probe",
)
_BY_ID = {rule.id: rule for rule in (*DATA_RULES, *SETTING_RULES)}
RULES: tuple[Rule, ...] = tuple(_BY_ID[rule_id] for rule_id in RULE_ORDER)
RULES_BY_ID = {rule.id: rule for rule in RULES}
