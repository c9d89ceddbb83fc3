"""DPO on the bundled HH-RLHF sample with the real SmolLM2: held-out preference accuracy at
least the base model's (the same evaluate_policy scores both)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLES, make_context


def _rows(name: str, n: int) -> list[dict]:
    path = SAMPLES / "hh_helpful_mini" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()[:n]]


def _accuracy(predictions) -> float:
    """Preference accuracy as the harness scores it: the blinded pairs mapped back (make_context
    blinds with seed 0)."""
    from bench.split_view import unblind_predictions

    mapped = unblind_predictions("preference", predictions, 0)
    return sum(p["chosen_logp"] > p["rejected_logp"] for p in mapped) / len(mapped)


@pytest.mark.integration
@pytest.mark.slow
def test_dpo_held_out_preference_accuracy_at_least_base(tmp_path):
    from strategies import registry
    from strategies.base import TaskSplit
    from strategies.preference_eval import EvalSettings, evaluate_policy

    # short budgets keep this near a minute on 2 cores; no generation (win rate is not tested)
    budget = {"max_prompt_tokens": 96, "max_response_tokens": 40, "max_new_tokens": 1}
    split = TaskSplit("preference", train=_rows("train", 32), validation=[],
                      test=_rows("test", 24))
    ctx = make_context("preference", tmp_path / "zero-shot", model_name="smollm2-135m",
                       split=split)
    model, tokenizer = ctx.load_model("smollm2-135m")
    base = evaluate_policy(ctx, model, tokenizer, settings=EvalSettings(**budget))
    del model

    spec = registry.get("dpo")
    config = spec.make_config("quick", {**budget, "max_steps": 8, "batch_size": 4,
                                        "win_rate": False})
    ctx = make_context("preference", tmp_path / "dpo", model_name="smollm2-135m", split=split)
    output = spec.run(ctx, config)
    assert len(output.predictions) == len(split.test)
    print(f"held-out preference accuracy: base {_accuracy(base):.3f}, "
          f"dpo {_accuracy(output.predictions):.3f}")
    assert _accuracy(output.predictions) >= _accuracy(base), (
        f"dpo {_accuracy(output.predictions):.3f} < base {_accuracy(base):.3f}")
