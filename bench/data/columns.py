"""Column roles and task detection: which column is the text, label, question, chosen...,
and which task kind the columns describe (or a message naming the flags to pass)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from bench.data.messages import DataError, Report
from strategies.base import TASK_KINDS

# Column roles and the names that mean them (normalised: lower case, "_" for spaces and dashes).
ROLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "utterance", "content", "review", "message"),
    "label": ("label", "labels", "category", "intent", "class"),
    "instruction": ("instruction", "prompt", "question"),
    "input": ("input", "context"),
    "output": ("output", "response", "completion", "answer"),
    "question": ("question", "query"),
    "context": ("context", "passage"),
    "answer": ("answer", "answers"),
    "prompt": ("prompt", "instruction", "question"),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
}
# task -> (required roles, optional roles), in the order of the canonical row keys
TASK_ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "classification": (("text", "label"), ()),
    "generation": (("instruction", "output"), ("input",)),
    "qa": (("question", "answer"), ("context",)),
    "preference": (("chosen", "rejected"), ("prompt",)),
}


def role_flag(role: str) -> str:
    """The `tunewise` flag that names the column of a role: "label" -> "--label-col"."""
    return f"--{role}-col"


def normalise_name(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _match_role(role: str, columns: list[str]) -> list[str]:
    wanted = ROLE_SYNONYMS[role]
    return [c for c in columns if normalise_name(c) in wanted]


def _resolve_roles(columns: list[str], overrides: dict[str, str], path: Path) -> dict[str, Any]:
    """role -> column, or a list of candidate columns when several match (ambiguous)."""
    for role, column in overrides.items():
        if role not in ROLE_SYNONYMS:
            close = difflib.get_close_matches(role, list(ROLE_SYNONYMS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"unknown column role {role!r}{hint}; roles: "
                            f"{', '.join(ROLE_SYNONYMS)}")
        if column not in columns:
            raise DataError(missing_column_message(path, column, columns, role_flag(role)))
    resolved: dict[str, Any] = {}
    for role in ROLE_SYNONYMS:
        if role in overrides:
            resolved[role] = overrides[role]
            continue
        matches = [c for c in _match_role(role, columns) if c not in overrides.values()]
        exact = [c for c in matches if normalise_name(c) == role]
        if len(matches) == 1:
            resolved[role] = matches[0]
        elif len(exact) == 1:
            resolved[role] = exact[0]
        elif matches:
            resolved[role] = matches  # ambiguous: decided only if the task needs the role
    return resolved


def missing_column_message(path: Path, column: str, columns: list[str], flag: str) -> str:
    close = difflib.get_close_matches(column, columns, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (f"{path}: no column {column!r} ({flag}){hint} "
            f"Columns seen: {', '.join(columns)}")


def _task_fits(task: str, resolved: dict[str, Any]) -> bool:
    required, _ = TASK_ROLES[task]
    return all(role in resolved for role in required)


def detect_task(columns: list[str], task: str | None, overrides: dict[str, str],
                 path: Path, report: Report) -> tuple[str, dict[str, str]]:
    resolved = _resolve_roles(columns, overrides, path)
    if task is not None:
        if task not in TASK_KINDS:
            close = difflib.get_close_matches(task, TASK_KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"unknown task {task!r}{hint}; one of {', '.join(TASK_KINDS)}")
        return task, _columns_for(task, resolved, columns, path)
    candidates = [t for t in TASK_KINDS if _task_fits(t, resolved)]
    if overrides:  # an explicit --label-col etc. says which task the user means
        candidates = [t for t in candidates if set(overrides) <= set(sum(TASK_ROLES[t], ()))]
    if "preference" in candidates:
        candidates = ["preference"]  # chosen/rejected columns are unmistakable
    if set(candidates) == {"qa", "generation"} and _is_literal_qa(resolved):
        report.note("question/answer columns read as a qa task (pass --task generation to "
                    "treat them as open-ended generation)")
        candidates = ["qa"]
    if len(candidates) == 1:
        return candidates[0], _columns_for(candidates[0], resolved, columns, path)
    seen = ", ".join(columns)
    if candidates:
        options = "; ".join(f"{t} ({', '.join(_describe_roles(t, resolved))})"
                            for t in candidates)
        raise DataError(f"{path}: the columns fit more than one task: {options}. Columns seen: "
                        f"{seen}. Pass --task {' or --task '.join(candidates)}")
    raise DataError(f"{path}: cannot tell the task from the columns ({seen}). "
                    f"{_detection_hints(columns)}")


def _is_literal_qa(resolved: dict[str, Any]) -> bool:
    question, answer = resolved.get("question"), resolved.get("answer")
    return isinstance(question, str) and isinstance(answer, str)


def _describe_roles(task: str, resolved: dict[str, Any]) -> list[str]:
    required, optional = TASK_ROLES[task]
    return [f"{role}={resolved[role]!r}" for role in (*required, *optional)
            if isinstance(resolved.get(role), str)]


def _detection_hints(columns: list[str]) -> str:
    """Which columns look like a role (closest synonym), and the flags to pass."""
    hints = []
    for column in columns:
        name = normalise_name(column)
        for role, synonyms in ROLE_SYNONYMS.items():
            close = difflib.get_close_matches(name, synonyms, n=1, cutoff=0.75)
            if close and name not in synonyms:
                hints.append(f"{column!r} looks like {close[0]!r} (pass {role_flag(role)} "
                             f"{column})")
                break
    needs = ("classification needs text+label, generation instruction+output, qa "
             "question+answer, preference chosen+rejected; pass --task KIND and the column "
             "flags (--text-col, --label-col, --instruction-col, --output-col, ...)")
    return (("; ".join(hints) + ". ") if hints else "") + needs[0].upper() + needs[1:]


def _columns_for(task: str, resolved: dict[str, Any], columns: list[str],
                 path: Path) -> dict[str, str]:
    required, optional = TASK_ROLES[task]
    mapping: dict[str, str] = {}
    for role in (*required, *optional):
        value = resolved.get(role)
        if isinstance(value, list):
            raise DataError(f"{path}: several columns could be the {role} of a {task} task "
                            f"({', '.join(value)}); pass {role_flag(role)} COLUMN")
        if value is None:
            if role in optional:
                continue
            synonyms = "/".join(ROLE_SYNONYMS[role])
            close = difflib.get_close_matches(role, [normalise_name(c) for c in columns],
                                              n=1, cutoff=0.6)
            hint = f" ({close[0]!r} is close)" if close else ""
            raise DataError(f"{path}: a {task} task needs a {role} column ({synonyms}){hint}. "
                            f"Columns seen: {', '.join(columns)}. Pass {role_flag(role)} COLUMN")
        mapping[role] = value
    if len(set(mapping.values())) < len(mapping):
        raise DataError(f"{path}: one column serves two roles ({mapping}); pass distinct "
                        f"--*-col flags")
    return mapping
