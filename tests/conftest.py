"""Shared test fixtures: tiny rows per task kind, a RunContext on tiny random models, and the
misbehaving strategies (tests/fake_strategies.py) with the small file the harness tests run on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No hub on these machines: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "bench" / "samples"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def tiny_split(task: str):
    """A few hand-written rows per task kind: enough for plumbing, seconds to run."""
    from strategies.base import TaskSplit

    if task == "classification":
        pos = ["great product, works well", "I love it", "excellent service", "very happy",
               "fantastic quality", "really good value"]
        neg = ["terrible, broke at once", "I hate it", "awful service", "very unhappy",
               "poor quality", "a waste of money"]
        rows = [{"text": t, "label": "positive"} for t in pos] + \
               [{"text": t, "label": "negative"} for t in neg]
        train = rows[0:4] + rows[6:10]
        return TaskSplit("classification", train=train, validation=[rows[4], rows[10]],
                         test=[rows[5], rows[11], rows[4], rows[10]],
                         labels=["negative", "positive"],
                         label_names={"negative": "negative", "positive": "positive"})
    if task == "generation":
        rows = [{"instruction": f"Repeat the word {w}.", "input": "", "output": w}
                for w in ["apple", "river", "stone", "cloud", "green", "bread", "light", "north"]]
        return TaskSplit("generation", train=rows[:5], validation=rows[5:6], test=rows[6:])
    if task == "qa":
        docs = [{"id": "d1", "text": "Paris is the capital of France."},
                {"id": "d2", "text": "Berlin is the capital of Germany."},
                {"id": "d3", "text": "Madrid is the capital of Spain."},
                {"id": "d4", "text": "Rome is the capital of Italy."}]
        rows = [{"question": f"What is the capital of {c}?", "context": d["text"], "answer": a}
                for c, a, d in zip(["France", "Germany", "Spain", "Italy"],
                                   ["Paris", "Berlin", "Madrid", "Rome"], docs)]
        return TaskSplit("qa", train=rows[:2], validation=rows[2:3], test=rows[2:],
                         corpus=docs)
    if task == "preference":
        rows = [{"prompt": f"Human: Say something kind about {x}.\n\nAssistant:",
                 "chosen": f" {x} is wonderful and I appreciate it.",
                 "rejected": f" {x} is bad."} for x in
                ["cats", "dogs", "trees", "rain", "music", "books", "tea", "bread"]]
        return TaskSplit("preference", train=rows[:5], validation=rows[5:6], test=rows[6:])
    raise ValueError(task)


def load_benchmark(script: str, module_name: str):
    """benchmarks/<script>.py imported as `module_name` (registered in sys.modules: its
    dataclasses look their module up there); the caller pops it when done."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(module_name,
                                                  ROOT / "benchmarks" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def make_context(task: str, work_dir: Path, *, model_name: str = "tiny-llama",
                 encoder_name: str = "tiny-bert", seed: int = 0, split=None, **options):
    """A RunContext as the harness builds it, on tiny random models, for strategy tests: the
    test rows carry their inputs only (bench.split_view; preference pairs in the order
    chosen_shown_first(seed, ...) gives)."""
    from bench.models import load_model
    from bench.split_view import blind_split
    from strategies.base import RunContext

    work_dir.mkdir(parents=True, exist_ok=True)
    return RunContext(data=blind_split(split or tiny_split(task), seed), model_name=model_name,
                      encoder_name=encoder_name, load_model=load_model, device="cpu",
                      seed=seed, work_dir=work_dir, preset="quick", options=dict(options))


@pytest.fixture
def context_factory(tmp_path):
    def factory(task: str, **kwargs):
        return make_context(task, tmp_path / "candidate", **kwargs)
    return factory


@pytest.fixture(autouse=True, scope="module")
def _restore_strategy_registry():
    """Test modules register fake strategies; later modules (the TUI's ranking snapshots) must
    see the real registry, whatever order the suite runs in."""
    from strategies import catalogue, registry

    entries = catalogue.snapshot()
    yield
    catalogue.restore(entries)
    registry.get.cache_clear()


@pytest.fixture
def fakes():
    """The strategies of tests/fake_strategies.py, registered (harness tests use them with
    `pytestmark = pytest.mark.usefixtures("fakes")`)."""
    from fake_strategies import register_fakes

    register_fakes()


@pytest.fixture
def data(tmp_path) -> dict:
    """A small binary classification train/test file pair for the harness tests."""
    from fake_strategies import write_binary_data

    return write_binary_data(tmp_path)

