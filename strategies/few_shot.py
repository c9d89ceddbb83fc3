"""`few-shot`: k demonstrations from train, as prior chat turns, then the same prediction as
zero-shot. Classification demonstrations are balanced across labels (round-robin over the
labels in a seeded random order), so the prompt does not teach a label prior; their order is
shuffled so no label always sits last (recency bias). The same demonstrations serve every test
row, as a deployed few-shot prompt would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from strategies.base import RunContext, StrategyError, StrategyOutput, StrategySpec, option
from strategies.prompting import PromptingConfig, load_frozen_lm, predict_with_prompts


@dataclass
class FewShotConfig(PromptingConfig):
    k: int = option(6, help="demonstrations per prompt; more help until the prompt gets long "
                    "(and every request costs more)", full=12)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


def balanced_demos(rows: Sequence[dict[str, Any]], labels: Sequence[str], k: int,
                   seed: int) -> list[dict[str, Any]]:
    """k rows taking turns across labels (each label's rows in seeded random order), shuffled."""
    rng = random.Random(seed)
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for row in rows:
        by_label.setdefault(str(row["label"]), []).append(row)
    for pool in by_label.values():
        rng.shuffle(pool)
    label_order = [label for label in by_label if by_label[label]]
    rng.shuffle(label_order)
    demos: list[dict[str, Any]] = []
    while len(demos) < k and any(by_label[label] for label in label_order):
        for label in label_order:
            if by_label[label] and len(demos) < k:
                demos.append(by_label[label].pop())
    rng.shuffle(demos)
    return demos


def random_demos(rows: Sequence[dict[str, Any]], k: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return rng.sample(list(rows), min(k, len(rows)))


def choose_demos(ctx: RunContext, k: int) -> list[dict[str, Any]]:
    if not ctx.data.train:
        raise StrategyError("few-shot needs train rows to take demonstrations from")
    if ctx.data.task == "classification":
        return balanced_demos(ctx.data.train, ctx.data.labels, k, ctx.seed)
    return random_demos(ctx.data.train, k, ctx.seed)


def run(ctx: RunContext, config: FewShotConfig) -> StrategyOutput:
    ctx.phase("load")
    model, tokenizer = load_frozen_lm(ctx)
    ctx.phase("adapt")  # choosing demonstrations is the whole adaptation
    demos = choose_demos(ctx, config.k)
    ctx.phase("predict")
    output = predict_with_prompts(ctx, model, tokenizer, config, demos=lambda i, row: demos,
                                  calibration_demos=demos)
    output.info["demonstrations"] = len(demos)
    return output


SPEC = StrategySpec(
    name="few-shot", family="prompting", tasks=frozenset({"classification", "generation", "qa"}),
    config_cls=FewShotConfig, run=run,
    description="k train examples (balanced across labels, seeded) as chat turns before the input",
)
