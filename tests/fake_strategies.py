"""Strategies that misbehave on purpose, for the harness tests.

Registered at test time with `register_fakes()`; the spawned child imports them by their
"fake_strategies:SPEC_..." target, which is how the runner handles any run-time registration.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from strategies.base import (RunContext, StrategyError, StrategyOutput, StrategySkipped,
                             StrategySpec, option)

ALL_TASKS = frozenset({"classification", "generation", "qa", "preference"})


@dataclass
class FakeConfig:
    label: str = option("", help="the constant prediction; empty: the first label")
    sleep_s: float = option(0.0, help="seconds to sleep before predicting")
    hog_mb: int = option(0, help="MB to allocate and touch before predicting")


def _constant_predictions(ctx: RunContext, config: FakeConfig) -> list:
    task = ctx.data.task
    if task == "classification":
        label = config.label or ctx.data.labels[0]
        return [label for _ in ctx.data.test]
    if task == "preference":  # always prefers the response shown first
        return [{"response_a_logp": -1.0, "response_b_logp": -2.0} for _ in ctx.data.test]
    return [config.label or "constant" for _ in ctx.data.test]


def run_constant(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("load")
    ctx.phase("adapt")
    for step in range(1, 4):
        ctx.progress("adapt", step, 3, loss=1.0 / step)
    if config.sleep_s:
        time.sleep(config.sleep_s)
    ctx.phase("predict")
    predictions = _constant_predictions(ctx, config)
    artifact = ctx.work_dir / "artifact.bin"
    artifact.write_bytes(b"\0" * 2**20)  # exactly 1 MB: artifact size is checked
    print("fake-constant printed this to stdout")
    return StrategyOutput(predictions=predictions, trainable_params=10, total_params=100,
                          train_tokens=300, predict_tokens=100, mean_prompt_tokens=25.0,
                          artifact_path="artifact.bin", extra_metrics={"fake_score": 0.5},
                          info={"seed_seen": ctx.seed,
                                "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})


def run_noop(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Does nothing measurable: the harness's own overhead is what remains."""
    return StrategyOutput(predictions=_constant_predictions(ctx, config),
                          info={"visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})


def run_crash(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("adapt")
    raise RuntimeError("deliberate crash inside the strategy")


def run_user_error(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    raise StrategyError("lora_r must be positive (got -1)")


def run_gpu_oom(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Raises PyTorch's CUDA out-of-memory error with its real text, as a GPU run that asked
    for too much would (torch defines the exception on CPU builds too)."""
    import torch

    ctx.phase("adapt")
    raise torch.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.68 GiB "
        "of which 1.06 GiB is free. Including non-PyTorch memory, this process has 22.61 GiB "
        "memory in use. If reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.")


def run_skip(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    raise StrategySkipped("needs a CUDA GPU; none is available here")


def run_sleep(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("adapt")
    time.sleep(max(config.sleep_s, 60.0))
    return run_noop(ctx, config)


def run_sigkill(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("adapt")
    print("about to be killed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return run_noop(ctx, config)  # never reached


def run_hog(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    ctx.phase("adapt")
    chunks = []
    for _ in range(config.hog_mb or 2000):
        chunks.append(bytearray(2**20))  # zero-filled pages are touched: RSS grows
        chunks[-1][::4096] = b"\1" * len(chunks[-1][::4096])
        time.sleep(0.002)  # ~500 MB/s: the watchdog samples every 0.1 s
    time.sleep(30)  # the watchdog should have stopped us long before
    return run_noop(ctx, config)


def run_wrong_count(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    return StrategyOutput(predictions=_constant_predictions(ctx, config)[:-1])


# What each task kind's test rows must not carry (the harness keeps them).
TEST_LABEL_KEYS = {"classification": "label", "generation": "output", "qa": "answer",
                   "preference": "chosen"}


def run_peek(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Cheats: predicts each test row's own label. The harness must not let it."""
    key = TEST_LABEL_KEYS[ctx.data.task]
    return StrategyOutput(predictions=[row[key] for row in ctx.data.test],
                          info={"test_row_keys": sorted(ctx.data.test[0])})


def run_seeded(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Draws from every global generator the harness seeds, and says whether the harness had
    loaded numpy or torch before the strategy imported them."""
    import random
    import sys

    loaded_before = {name: name in sys.modules for name in ("numpy", "torch")}
    import numpy
    import torch

    draws = {"random": random.random(), "numpy": float(numpy.random.rand()),
             "torch": float(torch.rand(1))}
    return StrategyOutput(predictions=_constant_predictions(ctx, config),
                          info={"draws": draws, "loaded_before": loaded_before})


def run_counted(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Hands a model and two batches to the harness's counters, and claims other figures."""
    import torch

    model = torch.nn.Linear(4, 3)  # 12 weights + 3 biases
    model.weight.requires_grad_(False)  # only the 3 biases train
    ctx.count_model(model, "head")
    ctx.count_train_batch({"input_ids": torch.ones(2, 5, dtype=torch.long),
                           "attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0]])})
    ctx.count_train_batch({"input_ids": [[7, 8, 9]]})  # no mask: every id is a token
    return StrategyOutput(predictions=_constant_predictions(ctx, config), trainable_params=10,
                          total_params=100, train_tokens=999)


def run_estimated(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Reports train tokens a helper could only estimate."""
    from strategies.base import note_estimate

    note_estimate("train_tokens", "steps x batch x mean tokens")
    return StrategyOutput(predictions=_constant_predictions(ctx, config), train_tokens=500,
                          predict_tokens=100)


@dataclass
class ScoredConfig:
    accuracy: float = option(1.0, help="share of the validation rows it answers right")


def run_scored(ctx: RunContext, config: ScoredConfig) -> StrategyOutput:
    """For the race (bench.race): scores `accuracy` on the validation split, whose labels any
    strategy may read, by answering the first share of those rows right and the rest wrong;
    on test rows (no labels) it answers the first label. Logs how many train rows it saw, and
    the share of the full run's training budget it was given (a race rung's)."""
    known = {row["text"]: str(row["label"]) for row in ctx.data.validation}
    labels = list(ctx.data.labels)
    right = round(config.accuracy * len(ctx.data.test))
    predictions = []
    for i, row in enumerate(ctx.data.test):
        truth = known.get(row["text"])
        if truth is None or i < right:
            predictions.append(truth or labels[0])
        else:
            predictions.append(next(label for label in labels if label != truth))
    print(f"train rows seen: {len(ctx.data.train)}", flush=True)
    # a race rung's share of the full run's budget, as the child hands it over (bench.child)
    print(f"budget fraction: {ctx.budget_fraction:.4f} of {ctx.full_train_rows} train rows",
          flush=True)
    budget = _fake_checkpoints(ctx)
    return StrategyOutput(predictions=predictions, info={"train_rows_seen": len(ctx.data.train),
                                                         "budget": budget})


def _fake_checkpoints(ctx: RunContext) -> dict:
    """A Trainer checkpoint's life as a race's continuation sees it (one step per train row of
    the full run): resumes the latest `trainer/checkpoint-<step>` under ctx.resume_from (an
    error when there is none: the race removed it too early), trains to budget_fraction of
    the steps, and saves one under its work folder when asked (ctx.save_checkpoint)."""
    schedule = ctx.full_train_rows or len(ctx.data.train)
    resumed = 0
    if ctx.resume_from:
        found = sorted(Path(ctx.resume_from).glob("trainer/checkpoint-*"),
                       key=lambda path: int(path.name.split("-")[-1]))
        if not found:
            raise StrategyError(f"no checkpoint to resume under {ctx.resume_from}")
        resumed = int(found[-1].name.split("-")[-1])
    step = round(ctx.budget_fraction * schedule)
    print(f"resumed from step {resumed} of {ctx.resume_from}; trained to step {step}", flush=True)
    if ctx.save_checkpoint:
        folder = ctx.work_dir / "trainer" / f"checkpoint-{step}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return {"schedule_steps": schedule, "resumed_from_step": resumed}


def run_echo(ctx: RunContext, config: FakeConfig) -> StrategyOutput:
    """Says which base model and prompt it was given, and answers more rows one at a time
    (StrategyOutput.answer) in about 20 ms each, for the deployment facts."""
    def answer(rows):
        time.sleep(0.02)
        return _constant_predictions(ctx.with_test_rows(rows), config)

    return StrategyOutput(predictions=_constant_predictions(ctx, config),
                          info={"model_seen": ctx.model_name,
                                "instruction_seen": ctx.data.instruction,
                                "template_seen": ctx.data.prompt_template},
                          answer=answer)


def _spec(name: str, run, tasks=ALL_TASKS, config_cls=FakeConfig, **kwargs) -> StrategySpec:
    return StrategySpec(name=name, family="baseline", tasks=tasks, config_cls=config_cls,
                        run=run, description=f"test double: {name}", **kwargs)


SPEC_CONSTANT = _spec("fake-constant", run_constant)
SPEC_NOOP = _spec("fake-noop", run_noop)
SPEC_CRASH = _spec("fake-crash", run_crash)
SPEC_USER_ERROR = _spec("fake-user-error", run_user_error)
SPEC_GPU_OOM = _spec("fake-gpu-oom", run_gpu_oom)
SPEC_SKIP = _spec("fake-skip", run_skip)
SPEC_SLEEP = _spec("fake-sleep", run_sleep)
SPEC_SIGKILL = _spec("fake-sigkill", run_sigkill)
SPEC_HOG = _spec("fake-hog", run_hog)
SPEC_WRONG_COUNT = _spec("fake-wrong-count", run_wrong_count)
SPEC_CLS_ONLY = _spec("fake-cls-only", run_noop, tasks=frozenset({"classification"}))
SPEC_PEEK = _spec("fake-peek", run_peek)
SPEC_SEEDED = _spec("fake-seeded", run_seeded)
SPEC_COUNTED = _spec("fake-counted", run_counted)
SPEC_ESTIMATED = _spec("fake-estimated", run_estimated)
SPEC_SCORED_A = _spec("fake-scored-a", run_scored, config_cls=ScoredConfig)
SPEC_SCORED_B = _spec("fake-scored-b", run_scored, config_cls=ScoredConfig)
SPEC_SCORED_C = _spec("fake-scored-c", run_scored, config_cls=ScoredConfig)
SPEC_SCORED_D = _spec("fake-scored-d", run_scored, config_cls=ScoredConfig)
SPEC_ECHO = _spec("fake-echo", run_echo)
# the same, registered as an encoder-only candidate (tests/test_models_prompt_deploy.py)
SPEC_ENCODER_ECHO = _spec("fake-encoder-echo", run_echo)

FAKES = {
    "fake-constant": "SPEC_CONSTANT", "fake-noop": "SPEC_NOOP", "fake-crash": "SPEC_CRASH",
    "fake-user-error": "SPEC_USER_ERROR", "fake-skip": "SPEC_SKIP", "fake-sleep": "SPEC_SLEEP",
    "fake-sigkill": "SPEC_SIGKILL", "fake-hog": "SPEC_HOG",
    "fake-wrong-count": "SPEC_WRONG_COUNT", "fake-cls-only": "SPEC_CLS_ONLY",
    "fake-peek": "SPEC_PEEK", "fake-seeded": "SPEC_SEEDED", "fake-counted": "SPEC_COUNTED",
    "fake-estimated": "SPEC_ESTIMATED", "fake-scored-a": "SPEC_SCORED_A",
    "fake-scored-b": "SPEC_SCORED_B", "fake-scored-c": "SPEC_SCORED_C",
    "fake-scored-d": "SPEC_SCORED_D", "fake-echo": "SPEC_ECHO", "fake-gpu-oom": "SPEC_GPU_OOM",
}


def register_fakes() -> None:
    """Add the fakes to the registry (idempotent: tests call it freely)."""
    from strategies import registry

    for name, attr in FAKES.items():
        if name not in registry.names():
            registry.register(name, f"fake_strategies:{attr}", "baseline")


LABELS = ("negative", "positive")


def write_binary_data(folder: Path) -> dict:
    """40 train rows and 12 test rows (7 negative, 5 positive), all distinct, as JSONL files:
    {"data": train path, "test": test path, "test_rows": the test rows}."""
    train = [{"text": f"train message number {i} about item {i * 7}",
              "label": LABELS[i % 2]} for i in range(40)]
    test = [{"text": f"test message {i} concerning thing {i * 11}",
             "label": "negative" if i < 7 else "positive"} for i in range(12)]
    return {"data": str(write_jsonl(folder / "train.jsonl", train)),
            "test": str(write_jsonl(folder / "test.jsonl", test)), "test_rows": test}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def fake_plan(data: dict, tmp_path: Path, strategies: list[str], **kwargs):
    """A run of `strategies` on the binary data of `write_binary_data`, tiny models, tmp folder."""
    from bench.plan import BenchPlan

    kwargs = {"model": "tiny-llama", "encoder": "tiny-bert", **kwargs}
    return BenchPlan(data=data["data"], test=data["test"], strategies=strategies,
                     out=str(tmp_path / "runs"), command="pytest", **kwargs)
