"""The one place prompts are built, for every LM candidate (prompting, RAG, fine-tuning).

A gain between candidates must be the method's, not the prompt's: zero-shot, few-shot, RAG and
every fine-tuned LM see the same instruction, the same verbalised labels and the same chat
layout. Prompts use the tokenizer's chat template (the assistant turn opened with
`add_generation_prompt=True`); a tokenizer without one gets a plain "### Instruction / ###
Response" layout. The user can replace the instruction (`--instruction`, TaskSplit.instruction)
and the user turn's layout (`--prompt-template`, TaskSplit.prompt_template: "Ticket: {text}");
both then reach every LM candidate the same way.

    prompt = classification_prompt(tokenizer, split, "Where is my card?", demos=train[:4])
    scores = label_logprobs(model, tokenizer, [prompt], label_texts(split))
    prompt = qa_prompt(tokenizer, split, row, passages=["Paris is ..."])
    target = target_text(split, row)    # what a trained model should emit after the prompt
"""

from __future__ import annotations

from typing import Any, Sequence

from strategies.base import StrategyError, TaskSplit

DEFAULT_INSTRUCTIONS = {
    "classification": ("Classify the text into exactly one of these categories: {labels}. "
                       "Answer with the category name only."),
    "generation": "Follow the user's instruction. Answer directly and concisely.",
    "qa": ("Answer the question using the context when one is given. "
           "Answer with a short phrase taken from the context, not a full sentence."),
    "preference": "You are a helpful, honest and harmless assistant.",
}

# Content-free input for contextual calibration (Zhao et al. 2021).
CONTENT_FREE_TEXT = "N/A"

# RunContext.options key of the user's --label-names file (set by bench.plan), whose
# descriptions reach the prompts as split.label_names.
LABEL_NAMES_OPTION = "label_names_file"


# ------------------------------------------------------------------------------ task facts


def label_name(split: TaskSplit, label: str) -> str:
    """Readable verbalisation of a label: the split's own name, else underscores as spaces."""
    name = split.label_names.get(label) if split.label_names else None
    return name or label.replace("_", " ").strip() or label


def label_texts(split: TaskSplit) -> list[str]:
    """The text the model emits for each label, in the order of `split.labels`."""
    if not split.labels:
        raise StrategyError("a classification split needs its list of labels")
    texts = [label_name(split, label) for label in split.labels]
    duplicates = sorted({t for t in texts if texts.count(t) > 1})
    if duplicates:
        # Two labels with the same text cannot be told apart by label scoring.
        raise StrategyError(f"labels verbalise to the same text: {duplicates}; "
                            "give them distinct label names")
    return texts


def label_names_info(split: TaskSplit, options: dict[str, Any]) -> dict[str, Any]:
    """For a candidate's record: the label descriptions its prompts used, when the user gave
    them (--label-names); {} otherwise."""
    file = options.get(LABEL_NAMES_OPTION)
    if split.task != "classification" or not file:
        return {}
    return {"label_names": {"file": str(file),
                            "names": dict(zip(split.labels, label_texts(split)))}}


def task_instruction(split: TaskSplit) -> str:
    """The user's task description, else a default for the task kind (classification lists
    the readable label names so the model knows its choices)."""
    if split.instruction and split.instruction.strip():
        return split.instruction.strip()
    template = DEFAULT_INSTRUCTIONS.get(split.task)
    if template is None:
        raise StrategyError(f"no prompt format for task kind {split.task!r}")
    if split.task == "classification":
        return template.format(labels=", ".join(label_texts(split)))
    return template


def target_text(split: TaskSplit, row: dict[str, Any]) -> str:
    """What a trained model should emit for `row` after its prompt."""
    if split.task == "classification":
        return label_name(split, str(row["label"]))
    if split.task == "generation":
        return str(row["output"])
    if split.task == "qa":
        return str(row["answer"])
    if split.task == "preference":
        return str(row["chosen"])
    raise StrategyError(f"no target text for task kind {split.task!r}")


# ------------------------------------------------------------------------------ user turns


# The row fields a prompt template may name, per task kind (the test row's inputs: what every
# candidate can see), and the one it must name so the model sees the row at all.
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text",),
    "generation": ("instruction", "input", "passages"),
    "qa": ("question", "context", "passages"),
    "preference": ("prompt",),
}
TEMPLATE_REQUIRED = {"classification": "text", "generation": "instruction", "qa": "question",
                     "preference": "prompt"}


def template_fields(template: str) -> list[str]:
    """The {field} names a template uses; StrategyError when its braces do not parse."""
    import string

    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise StrategyError(f"the prompt template does not parse ({exc}); write fields as "
                            "{text} and a literal brace as {{ or }}") from None


def check_prompt_template(task: str, template: str) -> None:
    """A template for `task`: only that task's fields, the main input among them."""
    allowed = TEMPLATE_FIELDS.get(task)
    if allowed is None:
        raise StrategyError(f"no prompt template for task kind {task!r}")
    fields = template_fields(template)
    unknown = sorted({name for name in fields if name not in allowed})
    if unknown:
        raise StrategyError(f"the prompt template names {', '.join('{' + n + '}' for n in unknown)}"
                            f"; a {task} template may use "
                            f"{', '.join('{' + n + '}' for n in allowed)}")
    if TEMPLATE_REQUIRED[task] not in fields:
        raise StrategyError(f"the prompt template must contain {{{TEMPLATE_REQUIRED[task]}}}, "
                            f"or the model never sees the row's {TEMPLATE_REQUIRED[task]}")


def _templated_user(split: TaskSplit, row: dict[str, Any],
                    passages: Sequence[str] = ()) -> str:
    """The user's template filled with the row (fields it lacks are empty); retrieved passages
    go where {passages} stands, else before the filled template."""
    template = split.prompt_template or ""
    values = {name: str(row.get(name) or "").strip() for name in TEMPLATE_FIELDS[split.task]}
    values["passages"] = _passages_block(passages) if passages else ""
    text = template.format(**values).strip()
    if passages and "passages" not in template_fields(template):
        text = f"{values['passages']}\n\n{text}"
    return text


# Rows augmented by strategies.ft_rag carry their retrieved passages under this key.
PASSAGES_KEY = "_retrieved_passages"


def _classification_user(text: str, split: TaskSplit | None = None) -> str:
    if split is not None and split.prompt_template:
        return _templated_user(split, {"text": text})
    return f"Text: {text}"


def _passages_block(passages: Sequence[str]) -> str:
    numbered = "\n".join(f"[{i}] {p.strip()}" for i, p in enumerate(passages, start=1))
    return f"Retrieved passages:\n{numbered}"


def _generation_user(row: dict[str, Any], passages: Sequence[str] = (),
                     split: TaskSplit | None = None) -> str:
    if split is not None and split.prompt_template:
        return _templated_user(split, row, passages)
    parts = [str(row.get("instruction", "")).strip()]
    if str(row.get("input", "") or "").strip():
        parts.append(f"Input:\n{str(row['input']).strip()}")
    if passages:
        parts.append(_passages_block(passages))
    return "\n\n".join(parts)


def _qa_user(row: dict[str, Any], passages: Sequence[str] = (), use_context: bool = True,
             split: TaskSplit | None = None) -> str:
    if split is not None and split.prompt_template:
        return _templated_user(split, row if use_context else {**row, "context": ""}, passages)
    parts = []
    context = str(row.get("context", "") or "").strip()
    if use_context and context:
        parts.append(f"Context: {context}")
    if passages:
        parts.append(_passages_block(passages))
    parts.append(f"Question: {str(row['question']).strip()}")
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------ messages


def classification_messages(split: TaskSplit, text: str,
                            demos: Sequence[dict[str, Any]] = ()) -> list[dict[str, str]]:
    """Chat messages: the instruction as system, demonstrations as prior user/assistant turns."""
    messages = [{"role": "system", "content": task_instruction(split)}]
    for demo in demos:
        messages.append({"role": "user", "content": _classification_user(demo["text"], split)})
        messages.append({"role": "assistant", "content": target_text(split, demo)})
    messages.append({"role": "user", "content": _classification_user(text, split)})
    return messages


def generation_messages(split: TaskSplit, row: dict[str, Any],
                        demos: Sequence[dict[str, Any]] = (),
                        passages: Sequence[str] = ()) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": task_instruction(split)}]
    for demo in demos:
        messages.append({"role": "user", "content": _generation_user(demo, split=split)})
        messages.append({"role": "assistant", "content": target_text(split, demo)})
    messages.append({"role": "user", "content": _generation_user(row, passages, split)})
    return messages


def qa_messages(split: TaskSplit, row: dict[str, Any], demos: Sequence[dict[str, Any]] = (),
                passages: Sequence[str] = (), use_context: bool = True) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": task_instruction(split)}]
    for demo in demos:
        messages.append({"role": "user", "content": _qa_user(demo, use_context=use_context,
                                                             split=split)})
        messages.append({"role": "assistant", "content": target_text(split, demo)})
    messages.append({"role": "user", "content": _qa_user(row, passages, use_context, split)})
    return messages


def preference_messages(split: TaskSplit, row: dict[str, Any]) -> list[dict[str, str]]:
    """The preference prompt as a user turn (the HH "Human: ... Assistant:" text kept as is)."""
    content = (_templated_user(split, row) if split.prompt_template
               else str(row["prompt"]).strip())
    return [{"role": "system", "content": task_instruction(split)},
            {"role": "user", "content": content}]


def messages_for(split: TaskSplit, row: dict[str, Any], demos: Sequence[dict[str, Any]] = (),
                 passages: Sequence[str] = ()) -> list[dict[str, str]]:
    """The messages of any task kind's row (for SFT data and generic code)."""
    if split.task == "classification":
        return classification_messages(split, row["text"], demos)
    if split.task == "generation":
        return generation_messages(split, row, demos, passages)
    if split.task == "qa":
        return qa_messages(split, row, demos, passages)
    if split.task == "preference":
        return preference_messages(split, row)
    raise StrategyError(f"no prompt format for task kind {split.task!r}")


# ------------------------------------------------------------------------------ rendering


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render(tokenizer, messages: Sequence[dict[str, str]]) -> str:
    """Messages -> prompt text ending where the assistant's answer starts."""
    if not has_chat_template(tokenizer):
        return _plain_format(messages)
    try:
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=True)
    except Exception:  # noqa: BLE001 - jinja raises its own TemplateError type
        # Some templates (Gemma, Mistral) refuse a system role: fold it into the first user turn.
        return tokenizer.apply_chat_template(_fold_system(messages), tokenize=False,
                                             add_generation_prompt=True)


def _fold_system(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    return rest


def _plain_format(messages: Sequence[dict[str, str]]) -> str:
    """Alpaca-style layout for base models without a chat template."""
    blocks, pending_instruction = [], ""
    for message in messages:
        if message["role"] == "system":
            pending_instruction = message["content"] + "\n\n"
        elif message["role"] == "user":
            blocks.append(f"### Instruction:\n{pending_instruction}{message['content']}\n\n")
            pending_instruction = ""
        else:
            blocks.append(f"### Response:\n{message['content']}\n\n")
    blocks.append("### Response:\n")
    return "".join(blocks)


def classification_prompt(tokenizer, split: TaskSplit, text: str,
                          demos: Sequence[dict[str, Any]] = ()) -> str:
    """Prompt after which each of `label_texts(split)` is scored."""
    return render(tokenizer, classification_messages(split, text, demos))


def generation_prompt(tokenizer, split: TaskSplit, row: dict[str, Any],
                      demos: Sequence[dict[str, Any]] = (), passages: Sequence[str] = ()) -> str:
    return render(tokenizer, generation_messages(split, row, demos, passages))


def qa_prompt(tokenizer, split: TaskSplit, row: dict[str, Any],
              demos: Sequence[dict[str, Any]] = (), passages: Sequence[str] = (),
              use_context: bool = True) -> str:
    return render(tokenizer, qa_messages(split, row, demos, passages, use_context))


def prompt_for(tokenizer, split: TaskSplit, row: dict[str, Any],
               demos: Sequence[dict[str, Any]] = (), passages: Sequence[str] = ()) -> str:
    """The prompt of any task kind's row: what SFT trains on and what prediction sends.
    Passages retrieved for the row by `<trainable>+rag` ride on the row (PASSAGES_KEY)."""
    passages = passages or row.get(PASSAGES_KEY, ())
    return render(tokenizer, messages_for(split, row, demos, passages))
