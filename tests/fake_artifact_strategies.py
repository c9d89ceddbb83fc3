"""A test double that saves its artifact the way the real strategies do.

The fine-tuning, encoder, kNN and RAG candidates return `str(ctx.work_dir / "adapter")` (a path
built on the work folder, not one relative to it). Kept apart from fake_strategies.py; the
spawned child imports it by its "fake_artifact_strategies:SPEC" target.
"""

from __future__ import annotations

from strategies.base import RunContext, StrategyOutput, StrategySpec

from fake_strategies import ALL_TASKS, FakeConfig, _constant_predictions

ARTIFACT_BYTES = 3 * 2**20 + 2**19  # 3.5 MB over two files
NAME = "fake-workdir-artifact"


def run(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("predict")
    predictions = _constant_predictions(ctx, config)
    ctx.phase("save")
    folder = ctx.work_dir / "adapter"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(b"\1" * 3 * 2**20)
    (folder / "adapter_config.json").write_bytes(b" " * 2**19)
    return StrategyOutput(predictions=predictions, artifact_path=str(folder))


SPEC = StrategySpec(name=NAME, family="baseline", tasks=ALL_TASKS, config_cls=FakeConfig, run=run,
                    description="test double: saves a 3.5 MB folder under ctx.work_dir")


def register() -> None:
    from strategies import registry

    if NAME not in registry.names():
        registry.register(NAME, "fake_artifact_strategies:SPEC", "baseline")
