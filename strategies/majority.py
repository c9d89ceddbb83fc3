"""`majority`: predict the most frequent train label for every test row.

The floor of every classification comparison: a candidate that cannot beat it has learned
nothing from the text. Ties go to the label listed first in the split.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec


@dataclass
class MajorityConfig:
    """No options: the baseline has nothing to tune."""


def most_frequent_label(labels: list[str], order: list[str]) -> str:
    counts = Counter(labels)
    return max(order or counts, key=lambda label: (counts[label], -order.index(label)
                                                   if label in order else 0))


def run(ctx: RunContext, config: MajorityConfig) -> StrategyOutput:
    ctx.phase("adapt")
    train_labels = [str(row["label"]) for row in ctx.data.train]
    if not train_labels:
        raise StrategyError("majority needs labelled train rows; the train split is empty")
    label = most_frequent_label(train_labels, list(ctx.data.labels))
    ctx.phase("predict")
    predictions = [label for _ in ctx.data.test]
    ctx.progress("predict", len(predictions), len(predictions))
    return StrategyOutput(predictions=predictions, info={"majority_label": label,
                                                         "train_share": train_labels.count(label)
                                                         / len(train_labels)})


SPEC = StrategySpec(
    name="majority", family="baseline", tasks=frozenset({"classification"}),
    config_cls=MajorityConfig, run=run,
    description="most frequent train label; the floor any classifier must beat",
)
