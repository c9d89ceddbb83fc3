"""A candidate that draws a tqdm bar, as transformers does while loading weights: tqdm then
holds a multiprocessing lock (a named semaphore) in the child process."""

from __future__ import annotations

from strategies.base import RunContext, StrategyOutput, StrategySpec
from fake_strategies import FakeConfig, _constant_predictions  # noqa: F401


def run_with_bar(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    from tqdm import tqdm

    for _ in tqdm(range(3), desc="loading"):
        pass
    return StrategyOutput(predictions=_constant_predictions(ctx, config))


SPEC = StrategySpec(name="fake-tqdm", family="baseline", tasks=frozenset({"classification"}),
                    config_cls=FakeConfig, run=run_with_bar, description="draws a tqdm bar")
