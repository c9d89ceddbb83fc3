"""Prompt builders: one layout for every LM candidate, with and without a chat template."""

import pytest

from bench.models import load_model
from strategies.base import StrategyError, TaskSplit
from strategies.prompts import (classification_messages, classification_prompt,
                                generation_prompt, label_texts, prompt_for, qa_prompt,
                                target_text, task_instruction)
from tests.conftest import tiny_split


class NoTemplateTokenizer:
    chat_template = None


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("tiny-llama")[1]


def banking_split(**kwargs):
    return TaskSplit("classification", train=[], validation=[], test=[],
                     labels=["card_arrival", "lost_or_stolen_card"], **kwargs)


def test_label_texts_are_readable_and_in_label_order():
    assert label_texts(banking_split()) == ["card arrival", "lost or stolen card"]
    named = banking_split(label_names={"card_arrival": "card not arrived yet"})
    assert label_texts(named) == ["card not arrived yet", "lost or stolen card"]


def test_label_texts_refuse_labels_that_read_the_same():
    split = TaskSplit("classification", [], [], [], labels=["a_b", "a b"])
    with pytest.raises(StrategyError, match="same text"):
        label_texts(split)


def test_default_instruction_lists_labels_and_user_instruction_wins():
    assert "card arrival, lost or stolen card" in task_instruction(banking_split())
    assert task_instruction(banking_split(instruction="  Route the ticket. ")) == "Route the ticket."


def test_demos_become_prior_turns(tokenizer):
    split = tiny_split("classification")
    demos = split.train[:2]
    messages = classification_messages(split, "so so", demos)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant",
                                             "user"]
    assert messages[2]["content"] == "positive" and messages[-1]["content"] == "Text: so so"
    prompt = classification_prompt(tokenizer, split, "so so", demos)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert prompt.index(demos[0]["text"]) < prompt.index(demos[1]["text"]) < prompt.index("so so")


def test_plain_format_without_chat_template():
    split = tiny_split("classification")
    prompt = classification_prompt(NoTemplateTokenizer(), split, "meh", split.train[:1])
    assert prompt.startswith("### Instruction:\n" + task_instruction(split))
    assert prompt.endswith("Text: meh\n\n### Response:\n")
    assert "### Response:\npositive\n\n" in prompt


def test_qa_prompt_uses_context_and_passages(tokenizer):
    split = tiny_split("qa")
    row = split.test[0]
    with_context = qa_prompt(tokenizer, split, row)
    assert row["context"] in with_context and row["question"] in with_context
    without = qa_prompt(tokenizer, split, row, use_context=False, passages=["Doc one.", "Doc two."])
    assert row["context"] not in without
    assert "[1] Doc one.\n[2] Doc two." in without


def test_generation_prompt_includes_input_only_when_present(tokenizer):
    split = tiny_split("generation")
    row = dict(split.test[0])
    assert "Input:" not in generation_prompt(tokenizer, split, row)
    row["input"] = "some input"
    assert "Input:\nsome input" in generation_prompt(tokenizer, split, row)


def test_target_text_per_task():
    assert target_text(tiny_split("classification"), {"text": "x", "label": "negative"}) == "negative"
    gen = tiny_split("generation")
    assert target_text(gen, gen.test[0]) == gen.test[0]["output"]
    qa = tiny_split("qa")
    assert target_text(qa, qa.test[0]) == qa.test[0]["answer"]


def test_prompt_for_dispatches_by_task(tokenizer):
    qa = tiny_split("qa")
    assert prompt_for(tokenizer, qa, qa.test[0]) == qa_prompt(tokenizer, qa, qa.test[0])
