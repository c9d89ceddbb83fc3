"""evaluate_policy: prompt conversion, length-normalised log-probabilities against a slow
one-pair-at-a-time computation, greedy answers and judge fields."""

from __future__ import annotations

import math

import pytest

from strategies.preference_eval import (EvalSettings, Judge, evaluate_policy, fit_messages,
                                        hh_to_messages, render_conversation, render_prompt,
                                        response_token_ids)

HH = "Human: what do i do if my cats fight?\n\nAssistant: tell me more.\n\nHuman: They hiss.\n\nAssistant:"


def test_hh_prompt_becomes_chat_messages():
    assert hh_to_messages(HH) == [
        {"role": "user", "content": "what do i do if my cats fight?"},
        {"role": "assistant", "content": "tell me more."},
        {"role": "user", "content": "They hiss."},
    ]
    assert hh_to_messages("plain question") == [{"role": "user", "content": "plain question"}]
    chat = [{"role": "user", "content": "hi"}]
    assert hh_to_messages(chat) == chat


@pytest.fixture(scope="module")
def tiny():
    from bench.models import load_model

    return load_model("tiny-llama")


def test_long_prompts_lose_their_oldest_turns_first(tiny):
    _, tokenizer = tiny
    long_prompt = "".join(f"Human: question {i} " + "word " * 30 + f"\n\nAssistant: answer {i}\n\n"
                          for i in range(6)) + "Human: the last question?\n\nAssistant:"
    messages = fit_messages(tokenizer, long_prompt, max_prompt_tokens=80)
    assert messages[-1] == {"role": "user", "content": "the last question?"}
    assert messages[0]["role"] == "user"
    assert len(tokenizer(render_prompt(tokenizer, messages))["input_ids"]) <= 80


def test_response_tokens_end_with_the_end_of_turn(tiny):
    _, tokenizer = tiny
    messages = hh_to_messages(HH)
    prompt_ids, response_ids = response_token_ids(tokenizer, messages, "Separate them.", 64)
    full = tokenizer(render_conversation(tokenizer, messages, "Separate them."),
                     add_special_tokens=False)["input_ids"]
    assert prompt_ids + response_ids == full
    assert "Separate them." in tokenizer.decode(response_ids)


def slow_mean_logp(model, prompt_ids, response_ids) -> float:
    """One pair at a time, no padding, explicit loop over response tokens."""
    import torch

    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    total = sum(float(logp[len(prompt_ids) + t - 1, token]) for t, token in enumerate(response_ids))
    return total / len(response_ids)


def test_length_normalised_logp_matches_slow_computation(context_factory, tiny):
    model, tokenizer = tiny
    ctx = context_factory("preference")
    # different prompt and answer lengths in one batch exercise the padding
    # test pairs come blinded: two neutral responses
    ctx.data.test = [
        {"prompt": HH, "response_a": "Give them separate bowls and space.", "response_b": "No."},
        {"prompt": "Human: hi\n\nAssistant:", "response_a": "Hello!",
         "response_b": "Go away, I am busy today."},
        {"prompt": "Human: name a fruit\n\nAssistant:", "response_a": "An apple.",
         "response_b": "A rock."},
    ]
    settings = EvalSettings(max_new_tokens=4, batch_size=2)
    predictions = evaluate_policy(ctx, model, tokenizer, settings=settings)
    assert len(predictions) == 3
    for row, prediction in zip(ctx.data.test, predictions):
        messages = fit_messages(tokenizer, row["prompt"], settings.max_prompt_tokens)
        for side in ("response_a", "response_b"):
            p, r = response_token_ids(tokenizer, messages, row[side], settings.max_response_tokens)
            assert prediction[f"{side}_logp"] == pytest.approx(slow_mean_logp(model, p, r), abs=1e-4)
        assert isinstance(prediction["response"], str)
        assert "judge_score" not in prediction


def test_judge_and_baseline_fill_win_rate_fields(context_factory, tiny):
    from bench.models import load_model

    model, tokenizer = tiny
    judge_model, judge_tokenizer = load_model("tiny-llama", "seq-cls", num_labels=1)
    ctx = context_factory("preference")
    judge = Judge(judge_model, judge_tokenizer, {"trained_on": "test"})
    predictions = evaluate_policy(ctx, model, tokenizer, baseline=["hi"] * len(ctx.data.test),
                                  judge=judge, settings=EvalSettings(max_new_tokens=3))
    assert len(predictions) == len(ctx.data.test)
    for prediction in predictions:
        assert prediction["baseline_response"] == "hi"
        assert math.isfinite(prediction["judge_score"])
        assert math.isfinite(prediction["baseline_judge_score"])
