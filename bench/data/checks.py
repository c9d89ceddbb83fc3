"""Checks on the canonical rows: duplicates, conflicting labels, test rows seen in training,
and labels too rare or too alike; problems the run survives become warnings."""

from __future__ import annotations

import re
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

from bench.data.messages import MAX_EXAMPLES, DataError, Report, plural


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


# What a model sees and what it must produce, per task: equal inputs in train and test are
# leakage; equal input and target twice is a duplicate.
INPUT_FIELDS = {"classification": ("text",), "generation": ("instruction", "input"),
                "qa": ("question", "context"), "preference": ("prompt",)}
TARGET_FIELDS = {"classification": ("label",), "generation": ("output",), "qa": ("answer",),
                 "preference": ("chosen", "rejected")}


def _key(row: dict[str, Any], fields: tuple[str, ...]) -> int:
    """A 64-bit hash of the normalised fields: a big file's text is not held a second time
    (a collision among 10 million rows has odds of about 1 in 200,000)."""
    if len(fields) == 1:
        return hash(_normalised(row[fields[0]]))
    return hash(_normalised("\x1f".join([row[f] for f in fields])))


def check_duplicates_and_leakage(task: str, parts: dict[str, list[dict[str, Any]]],
                                  report: Report) -> tuple[int, int]:
    """Duplicates within each split, conflicting labels, and test inputs seen in training.

    Each row is normalised once (lower case, single spaces): 100k rows take well under a
    second."""
    # arrays of 8-byte hashes, not lists of Python ints: a 10-million-row file stays small
    inputs = {split: array("q", (_key(row, INPUT_FIELDS[task]) for row in rows))
              for split, rows in parts.items()}
    duplicates = 0
    targets_of: dict[int, set[str]] = {}
    for split, rows in parts.items():
        seen: set[int] = set()
        in_split = 0
        for input_key, row in zip(inputs[split], rows):
            target = _key(row, TARGET_FIELDS[task])
            pair = hash((input_key, target))
            in_split += pair in seen
            seen.add(pair)
            if task == "classification":
                targets_of.setdefault(input_key, set()).add(row["label"])
        if in_split:
            report.warn(f"{split}: {plural(in_split, 'duplicate row')} (same input and "
                        f"answer): they weigh double in training and scoring")
        duplicates += in_split
    conflicts = sum(len(labels) > 1 for labels in targets_of.values())
    if conflicts:
        report.warn(f"{plural(conflicts, 'text')} with different labels in different rows: "
                    f"no model can get them all right")
    trained = set(inputs["train"]) | set(inputs["validation"])
    leaked = sum(key in trained for key in inputs["test"])
    if leaked:
        what = "prompts" if task == "preference" else "inputs"
        report.warn(f"leakage: {leaked} of {plural(len(parts['test']), 'test row')} have {what} "
                    f"that also appear in train/validation; their scores overstate quality "
                    f"(remove duplicates before splitting)")
    return duplicates, leaked


def check_labels(parts: dict[str, list[dict[str, Any]]], all_labels: Counter, path: Path,
                  column: str, report: Report) -> None:
    if len(all_labels) < 2:
        only = next(iter(all_labels), "")
        raise DataError(f"{path}: column {column!r} has a single label ({only!r}); "
                        f"classification needs at least two")
    variants: dict[str, list[str]] = {}
    for label in sorted(all_labels):
        variants.setdefault(label_name(label).lower(), []).append(label)
    clashes = [" / ".join(repr(v) for v in group) for group in variants.values() if len(group) > 1]
    if clashes:
        report.warn(f"labels that differ only in case or punctuation are kept apart: "
                    f"{'; '.join(clashes[:MAX_EXAMPLES])}; merge them if they mean the same")
    # a stratified train/validation/test split needs a row of the label on each side
    rare = sorted(label for label, n in all_labels.items() if n < 3)
    if rare:
        shown = ", ".join(f"{label!r} ({plural(all_labels[label], 'row')})"
                          for label in rare[:MAX_EXAMPLES])
        report.warn(f"{plural(len(rare), 'label')} too small to stratify into train, validation "
                    f"and test: {shown}; add rows or merge it, or its quality goes unmeasured")
    in_split = {split: {row["label"] for row in rows} for split, rows in parts.items()}
    missing_in_train = sorted(set(all_labels) - in_split["train"])
    if missing_in_train:
        report.warn(f"labels in test/validation but never in train: "
                    f"{', '.join(missing_in_train[:MAX_EXAMPLES])}")
    untested = sorted(set(all_labels) - in_split["test"] - set(rare))
    if untested:
        report.warn(f"labels with no test rows, so unmeasured: "
                    f"{', '.join(untested[:MAX_EXAMPLES])}")


def label_name(label: str) -> str:
    """A readable verbalisation for prompts: "card_arrival" -> "card arrival",
    "NotSpam" -> "not spam"."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", label)
    text = re.sub(r"[_\-.]+", " ", text).strip()
    text = " ".join(text.split())
    if not text:
        return label
    return text.lower() if text != text.upper() or len(text) > 4 else text
