"""The preference strategies on the tiny random model: each returns one finite prediction per
test pair with its counts and info; the reward model learns a toy separable preference."""

from __future__ import annotations

import math

import pytest

from strategies import registry

# Tiny budgets: these tests check plumbing, not quality (the integration test does that).
FAST = {"max_steps": 2, "judge_steps": 2, "max_new_tokens": 4, "batch_size": 2}


def harness_scores(predictions, seed: int = 0) -> dict[str, float]:
    """Mean per-pair scores as the harness computes them: the blinded pairs mapped back."""
    from bench.metrics import preference_row_scores
    from bench.split_view import unblind_predictions

    rows = [preference_row_scores(p) for p in unblind_predictions("preference", predictions, seed)]
    return {name: sum(r[name] for r in rows) / len(rows) for name in rows[0]}


def toy_split(n_train: int = 24, n_test: int = 8):
    """Chosen answers are always polite and long, rejected ones always a rude 'No.': a
    preference any working reward model separates."""
    from strategies.base import TaskSplit

    topics = ["cats", "dogs", "trees", "rain", "music", "books", "tea", "bread", "maps", "boats",
              "clocks", "shoes", "lamps", "songs", "rivers", "hills", "birds", "coins", "doors",
              "fish", "games", "kites", "pens", "stars", "clouds", "roads", "cups", "tents",
              "bikes", "ships", "parks", "farms"]
    rows = [{"prompt": f"Human: Tell me about {t}.\n\nAssistant:",
             "chosen": f"Thank you for asking! I would be happy to tell you about {t}.",
             "rejected": "No. Go away."} for t in topics[: n_train + n_test]]
    return TaskSplit("preference", train=rows[:n_train], validation=[], test=rows[n_train:])


@pytest.mark.parametrize("name", ["sft-chosen", "dpo", "reward-model", "rlhf"])
def test_strategy_returns_finite_prediction_per_pair(name, context_factory):
    spec = registry.get(name)
    assert spec.family == registry.family_of(name) == "preference"
    overrides = dict(FAST)
    if name == "rlhf":
        overrides.update(reward_steps=1, num_generations=2, prompts_per_step=1)
    ctx = context_factory("preference")
    phases: list[str] = []
    ctx.on_phase = phases.append
    output = spec.run(ctx, spec.make_config("quick", overrides))
    assert len(output.predictions) == len(ctx.data.test)
    a_key, b_key = ("response_a_reward", "response_b_reward") if name == "reward-model" else (
        "response_a_logp", "response_b_logp")
    for prediction in output.predictions:
        assert math.isfinite(prediction[a_key]) and math.isfinite(prediction[b_key])
    assert 0 < output.trainable_params < output.total_params
    assert output.train_tokens > 0 and output.predict_tokens > 0
    assert {"load", "adapt", "predict"} <= set(phases)
    if name != "reward-model":  # policies answer and are judged against the base model
        for prediction in output.predictions:
            assert isinstance(prediction["response"], str)
            assert math.isfinite(prediction["judge_score"])
            assert math.isfinite(prediction["baseline_judge_score"])
        assert output.info["judge"]["trained_on"] == "whole train split"  # 5 pairs: no halves
        assert output.info["generation"]["max_new_tokens"] == 4
    else:
        assert 0 <= harness_scores(output.predictions)["reward_accuracy"] <= 1


def test_rlhf_names_its_algorithm_truthfully(context_factory):
    spec = registry.get("rlhf")
    assert "no PPO" in spec.description or "no value network" in spec.description
    config = spec.make_config("quick", {"algorithm": "rloo"})
    assert config.algorithm == "rloo"
    from strategies.base import StrategyError

    with pytest.raises(StrategyError):
        spec.make_config("quick", {"algorithm": "ppo"})
    with pytest.raises(StrategyError):
        spec.make_config("quick", {"num_generations": 1})


def test_train_halves_are_disjoint_when_data_allows():
    from strategies.preference_training import train_halves

    rows = [{"prompt": str(i), "chosen": "a", "rejected": "b"} for i in range(40)]
    policy, judge, disjoint = train_halves(rows, seed=0)
    assert disjoint and len(policy) == len(judge) == 20
    assert not {r["prompt"] for r in policy} & {r["prompt"] for r in judge}
    assert train_halves(rows, seed=0) == (policy, judge, True)  # seeded
    few_policy, few_judge, few_disjoint = train_halves(rows[:6], seed=0)
    assert not few_disjoint and few_policy == few_judge == rows[:6]


def test_reward_model_learns_a_toy_separable_preference(context_factory):
    spec = registry.get("reward-model")
    ctx = context_factory("preference", split=toy_split())
    config = spec.make_config("quick", {"max_steps": 24, "batch_size": 4, "learning_rate": 3e-3,
                                        "max_epochs": 10})
    output = spec.run(ctx, config)
    # chance is 0.5; a reward model that learned nothing would sit there
    scores = harness_scores(output.predictions)
    assert scores["reward_accuracy"] >= 0.875
    assert scores["preference_accuracy"] == scores["reward_accuracy"]
    assert scores["reward_margin"] > 0
    assert "reward" in output.info["predictions"]


def test_whole_weights_that_train_load_in_float32(context_factory):
    """A full-weights policy and a reward model's new score head train every weight: they load
    in float32 (on a GPU the default is bf16); a LoRA policy keeps the default dtype."""
    from strategies.preference_training import load_trainable

    ctx = context_factory("preference")
    real, asked = ctx.load_model, []

    def loader(name, kind, **kwargs):
        asked.append((kind, kwargs.get("dtype")))
        return real(name, kind, **kwargs)

    ctx.load_model = loader
    load_trainable(ctx, "causal-lm")
    load_trainable(ctx, "causal-lm", full_weights=True)
    load_trainable(ctx, "seq-cls")
    assert asked == [("causal-lm", None), ("causal-lm", "float32"), ("seq-cls", "float32")]
