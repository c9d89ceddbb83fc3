"""Integration: on the bundled banking sample, LoRA on SmolLM2 beats calibrated zero-shot
with the same prompt and the same label scoring (a small stratified slice, quick preset)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


def _per_label(rows, n):
    taken, counts = [], collections.Counter()
    for row in rows:
        if counts[row["label"]] < n:
            taken.append(row)
            counts[row["label"]] += 1
    return taken


def _accuracy(predictions, rows):
    return sum(p == r["label"] for p, r in zip(predictions, rows)) / len(rows)


@pytest.mark.integration
@pytest.mark.slow
def test_lora_beats_zero_shot_on_banking(tmp_path):
    from bench.data import load_task_data
    from bench.models import load_model
    from strategies import registry
    from strategies.base import RunContext

    full = load_task_data(SAMPLE, seed=0).split
    split = type(full)(task=full.task, train=_per_label(full.train, 16),
                       validation=_per_label(full.validation, 2), test=_per_label(full.test, 6),
                       labels=full.labels, label_names=full.label_names,
                       instruction=full.instruction)
    accuracy = {}
    for name, overrides in [("zero-shot", {}),
                            ("lora", {"max_steps": 24, "epochs": 2, "eval_every": 12})]:
        ctx = RunContext(data=split, model_name="smollm2-135m", encoder_name="minilm-l6",
                         load_model=load_model, device="cpu", seed=0, work_dir=tmp_path / name)
        spec = registry.get(name)
        output = spec.run(ctx, spec.make_config("quick", overrides))
        accuracy[name] = _accuracy(output.predictions, split.test)
    assert accuracy["lora"] > accuracy["zero-shot"], accuracy
