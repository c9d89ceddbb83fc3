"""Canonical rows: each source row becomes the task's row (strategies.base) or is dropped,
and what was dropped or odd is reported once per kind."""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bench.data.messages import DataError, Report, list_positions, plural
from bench.data.readers import Table

ASSISTANT_MARKER = "\n\nAssistant:"


@dataclass
class _RowIssues:
    """Positions of dropped or odd rows in one table, reported once per kind."""

    empty: list[int] = field(default_factory=list)
    missing_label: list[int] = field(default_factory=list)
    identical_pair: list[int] = field(default_factory=list)
    empty_side: list[int] = field(default_factory=list)
    label_types: Counter = field(default_factory=Counter)
    chat_rows: int = 0
    derived_prompts: int = 0
    no_prompt: list[int] = field(default_factory=list)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _is_messages(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "content" in m for m in value))


def _messages_text(messages: list[dict[str, Any]]) -> str:
    """Chat messages as plain text, one "Role: content" paragraph per message."""
    return "\n\n".join(f"{str(m.get('role') or 'user').strip().capitalize()}: "
                       f"{plain_text(m.get('content'))}" for m in messages)


def plain_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, dict) for part in value):
        # multimodal-style content: [{"type": "text", "text": "..."}]
        return " ".join(str(part.get("text", "")) for part in value)
    return str(value)


def _cell_text(value: Any, table: Table, position: int, column: str,
               issues: _RowIssues) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value.strip()
    if _is_messages(value):
        issues.chat_rows += 1
        return _messages_text(value).strip()
    if isinstance(value, (list, dict)):
        raise DataError(f"{table.where(position)}, column {column!r}: expected text, found a "
                        f"{type(value).__name__}")
    return str(value).strip()


def _label_text(value: Any, table: Table, position: int, column: str,
                issues: _RowIssues) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, (list, dict)):
        raise DataError(f"{table.where(position)}, column {column!r}: a label must be one "
                        f"value, found a {type(value).__name__} (multi-label data is not "
                        f"supported)")
    if isinstance(value, bool):
        issues.label_types["bool"] += 1
        return str(value).lower()
    if isinstance(value, (int, float)):
        issues.label_types["number"] += 1
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    issues.label_types[_label_kind(text)] += 1
    return sys.intern(text)  # one string per distinct label, not one per row


@lru_cache(maxsize=4096)  # labels repeat: classify each distinct label once
def _label_kind(text: str) -> str:
    try:
        float(text)
        return "number"
    except ValueError:
        return "text"


def _canonical_row(task: str, raw: dict[str, Any], mapping: dict[str, str], table: Table,
                   position: int, issues: _RowIssues) -> dict[str, Any] | None:
    """The canonical row of the task (strategies.base), or None when it is dropped."""
    def text(role: str) -> str:
        column = mapping.get(role)
        return _cell_text(raw.get(column), table, position, column, issues) if column else ""

    if task == "classification":
        row_text = text("text")
        label = _label_text(raw.get(mapping["label"]), table, position, mapping["label"], issues)
        if not row_text:
            issues.empty.append(position)
            return None
        if label is None:
            issues.missing_label.append(position)
            return None
        return {"text": row_text, "label": label}
    if task == "generation":
        row = {"instruction": text("instruction"), "input": text("input"),
               "output": text("output")}
        if not (row["instruction"] or row["input"]) or not row["output"]:
            issues.empty.append(position)
            return None
        return row
    if task == "qa":
        answer_value = raw.get(mapping["answer"])
        answers = None
        if isinstance(answer_value, dict) and "text" in answer_value:
            # the Hugging Face SQuAD layout: {"text": [...], "answer_start": [...]}
            answer_value = answer_value["text"]
        if isinstance(answer_value, list) and not _is_messages(answer_value):
            # SQuAD style: several gold answers; the first is the reference
            answers = [plain_text(a).strip() for a in answer_value if not _is_missing(a)]
            answer_value = answers[0] if answers else None
        row = {"question": text("question"), "context": text("context"),
               "answer": _cell_text(answer_value, table, position, mapping["answer"], issues)}
        if not row["question"] or not row["answer"]:
            issues.empty.append(position)
            return None
        if answers and len(answers) > 1:
            row["answers"] = answers
        return row
    return _preference_row(raw, mapping, table, position, issues)


def _preference_row(raw: dict[str, Any], mapping: dict[str, str], table: Table,
                    position: int, issues: _RowIssues) -> dict[str, Any] | None:
    prompt_value = raw.get(mapping["prompt"]) if "prompt" in mapping else None
    chosen_value, rejected_value = raw.get(mapping["chosen"]), raw.get(mapping["rejected"])
    for column, value in ((mapping["chosen"], chosen_value), (mapping["rejected"], rejected_value)):
        if isinstance(value, dict) or (isinstance(value, list) and not _is_messages(value)
                                       and value):
            raise DataError(f"{table.where(position)}, column {column!r}: expected text or a "
                            f"list of chat messages, found {type(value).__name__}")
    if any(_is_messages(v) for v in (prompt_value, chosen_value, rejected_value)):
        issues.chat_rows += 1
        prompt, chosen, rejected = _chat_pair(prompt_value, chosen_value, rejected_value)
    elif "prompt" in mapping:
        prompt = plain_text(prompt_value).strip()
        chosen, rejected = plain_text(chosen_value).strip(), plain_text(rejected_value).strip()
        if prompt and chosen.startswith(prompt) and rejected.startswith(prompt):
            # full transcripts next to their prompt (HH-RLHF with a prompt column added)
            chosen, rejected = chosen[len(prompt):].strip(), rejected[len(prompt):].strip()
    else:
        prompt, chosen, rejected = _split_shared_prompt(plain_text(chosen_value),
                                                        plain_text(rejected_value))
        if prompt:
            issues.derived_prompts += 1
        else:
            issues.no_prompt.append(position)
    if not chosen or not rejected:
        issues.empty_side.append(position)
        return None
    if chosen == rejected:
        issues.identical_pair.append(position)
        return None
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _split_shared_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """HH-RLHF transcripts: the shared prefix up to the last "\\n\\nAssistant:" is the prompt."""
    common = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        common += 1
    cut = chosen.rfind(ASSISTANT_MARKER, 0, common)
    if cut < 0:
        return "", chosen.strip(), rejected.strip()
    cut += len(ASSISTANT_MARKER)
    return chosen[:cut].strip(), chosen[cut:].strip(), rejected[cut:].strip()


def _chat_pair(prompt_value: Any, chosen_value: Any, rejected_value: Any) -> tuple[str, str, str]:
    """Chat-format rows: prompt messages -> "Role: content" text ending in "Assistant:";
    chosen/rejected -> the text of the reply (a copy of the prompt in front is removed)."""
    prompt_messages = prompt_value if _is_messages(prompt_value) else None
    chosen_messages = chosen_value if _is_messages(chosen_value) else None
    rejected_messages = rejected_value if _is_messages(rejected_value) else None
    if prompt_messages is None and chosen_messages and rejected_messages and \
            not isinstance(prompt_value, str):
        shared = 0  # no prompt column: the messages both sides share are the prompt
        for a, b in zip(chosen_messages, rejected_messages):
            if a != b:
                break
            shared += 1
        prompt_messages = chosen_messages[:shared]
    if prompt_messages:
        prompt = _messages_text(prompt_messages) + ASSISTANT_MARKER
    else:
        prompt = plain_text(prompt_value).strip()
    return (prompt.strip(), _reply_text(chosen_value, prompt_messages),
            _reply_text(rejected_value, prompt_messages))


def _reply_text(value: Any, prompt_messages: list[dict[str, Any]] | None) -> str:
    if not _is_messages(value):
        return plain_text(value).strip()
    messages = list(value)
    if prompt_messages and messages[:len(prompt_messages)] == list(prompt_messages):
        messages = messages[len(prompt_messages):]
    if not messages:
        return ""
    if len(messages) == 1:
        return plain_text(messages[0].get("content")).strip()
    text = _messages_text(messages)
    return text.removeprefix("Assistant: ").strip()


def read_rows(table: Table, task: str, mapping: dict[str, str], offset: int,
               report: Report) -> tuple[list[dict[str, Any]], array, int]:
    """Canonical rows, their source indices (offset + data row number, from 0), and how
    many rows the table had."""
    rows: list[dict[str, Any]] = []
    indices = array("q")
    issues = _RowIssues()
    wanted = list(dict.fromkeys(mapping.values()))
    count = 0
    for count, (position, raw) in enumerate(table.rows(wanted), start=1):
        row = _canonical_row(task, raw, mapping, table, position, issues)
        if row is not None:
            rows.append(row)
            indices.append(offset + count - 1)
    _report_issues(table, task, mapping, issues, report)
    if count == 0:
        raise DataError(f"{table.path} has a header but no data rows")
    if not rows:
        raise DataError(f"{table.path}: none of its {count} rows is usable "
                        f"({', '.join(_issue_summary(issues))}); see the columns "
                        f"{', '.join(repr(c) for c in wanted)}")
    return rows, indices, count


def _issue_summary(issues: _RowIssues) -> list[str]:
    parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in (
        ("empty", issues.empty), ("missing_label", issues.missing_label),
        ("identical_pair", issues.identical_pair), ("empty_side", issues.empty_side)) if v]
    return parts or ["no rows"]


# The columns whose emptiness makes a row unusable, per task (for the message).
EMPTY_MEANS = {"classification": ("text",), "generation": ("instruction", "input", "output"),
               "qa": ("question", "answer"), "preference": ("chosen", "rejected")}


# Rows dropped for each kind of issue (a _RowIssues field): what one is called, and the rest of
# the warning ({needed}: the columns that were empty, {label}: the label column, {where}: rows).
DROPPED_ROWS = {
    "empty": ("empty row", "dropped (no text in {needed}; {where})"),
    "missing_label": ("row", "without a label in column {label!r} dropped ({where})"),
    "identical_pair": ("pair", "where chosen equals rejected dropped ({where})"),
    "empty_side": ("pair", "with an empty chosen or rejected side dropped ({where})"),
}


def _report_issues(table: Table, task: str, mapping: dict[str, str], issues: _RowIssues,
                   report: Report) -> None:
    name, unit = table.path.name, table.unit
    needed = "/".join(repr(mapping[r]) for r in EMPTY_MEANS[task] if r in mapping)
    for kind, (noun, text) in DROPPED_ROWS.items():
        rows = getattr(issues, kind)
        if rows:
            report.dropped[kind] += len(rows)
            report.warn(f"{name}: {plural(len(rows), noun)} " + text.format(
                needed=needed, label=mapping.get("label"), where=list_positions(rows, unit)))
    if len(issues.label_types) > 1:
        kinds = ", ".join(f"{kind}: {n} rows" for kind, n in issues.label_types.most_common())
        report.warn(f"{name}: column {mapping['label']!r} mixes label types ({kinds}); all are "
                    f"read as text labels, so 1 and '1.0' differ: make them consistent")
    if issues.chat_rows:
        report.note(f"{name}: {issues.chat_rows} chat-format rows flattened to text, one "
                    f"'Role: content' paragraph per message")
    if issues.derived_prompts:
        report.note(f"{name}: no prompt column; the prompt of {issues.derived_prompts} pairs is "
                    f"the transcript both sides share, up to the last 'Assistant:'")
    if issues.no_prompt:
        report.warn(f"{name}: {plural(len(issues.no_prompt), 'pair')} share no 'Assistant:' "
                    f"turn, so their prompt is empty "
                    f"({list_positions(issues.no_prompt, unit)}); pass "
                    f"--prompt-col if the prompt is in a column")
