"""The answers file: load, validate and save the advisor's answers (DESIGN.md "The advisor").

    answers = load_answers("advisor/samples/classification.yaml")   # validated nested dict
    save_answers(answers, "my-answers.yaml")
    get(answers, "resources.gpu_memory_gb")                          # None when unanswered

Every key is optional; anything the data or the hardware can tell is filled in by `prefill()`.
The schema lives in advisor.questions (one question per key, with `get`, `put` and
`AnswersError`, re-exported here), so the TUI, the validator and this file can never disagree
about a key, its type or its choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from advisor.questions import QUESTIONS_BY_KEY, TASKS, AnswersError, coerce, get, put
from advisor.rules import labeled_rows
from advisor.yaml_files import did_you_mean, read_yaml

__all__ = ["SECTIONS", "AnswersError", "dump_answers", "get", "load_answers", "prefill", "put",
           "save_answers", "validate_answers"]

SECTIONS = ("task", "data", "resources", "goals", "model")


def validate_answers(raw: Any, source: str = "answers") -> dict[str, Any]:
    """Check keys, types and choices; return a clean nested dict (values coerced)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AnswersError(f"{source}: expected a mapping of sections ({', '.join(SECTIONS)}), "
                           f"got {type(raw).__name__}")
    clean: dict[str, Any] = {}
    for section, value in raw.items():
        if section not in SECTIONS:
            raise AnswersError(f"{source}: unknown section {section!r}{did_you_mean(section, SECTIONS)}; "
                               f"sections: {', '.join(SECTIONS)}")
        if section == "task":
            put(clean, "task", coerce(QUESTIONS_BY_KEY["task"], value, f"{source}: task"))
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            raise AnswersError(f"{source}: {section} must be a mapping of keys, got {value!r}")
        for key, item in value.items():
            dotted = f"{section}.{key}"
            if dotted not in QUESTIONS_BY_KEY:
                known = [k.split(".", 1)[1] for k in QUESTIONS_BY_KEY if k.startswith(section + ".")]
                raise AnswersError(f"{source}: unknown key {dotted!r}{did_you_mean(key, known)}; "
                                   f"{section} keys: {', '.join(known)}")
            put(clean, dotted, coerce(QUESTIONS_BY_KEY[dotted], item, f"{source}: {dotted}"))
    _check_base_model(get(clean, "model.base"), f"{source}: model.base")
    return clean


def _check_base_model(name: str | None, where: str) -> None:
    """model.base: a name the run or the estimator knows (the bundled models, the estimator's
    built-in shapes), a hub id or a folder; a misspelt name gets the closest known one."""
    if name is None:
        return
    from advisor.estimate_shapes import known_model_names
    from bench.models import ModelError, check_model_name

    try:
        check_model_name(name, known=known_model_names())
    except ModelError as exc:
        raise AnswersError(f"{where}: {exc}") from None


def load_answers(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    raw = read_yaml(path, "answers file", AnswersError)
    answers = validate_answers(raw, str(path))
    _resolve_relative_paths(answers, path.parent)
    return answers


def _resolve_relative_paths(answers: dict[str, Any], base: Path) -> None:
    """Data paths in a file are relative to that file (so samples work from any directory)."""
    for key in ("data.path", "data.corpus"):
        value = get(answers, key)
        if value and not Path(value).expanduser().is_absolute():
            candidate = (base / value).resolve()
            if candidate.exists() or not Path(value).exists():
                put(answers, key, str(candidate))


def dump_answers(answers: dict[str, Any]) -> str:
    import yaml

    ordered = {s: answers[s] for s in SECTIONS if answers.get(s) not in (None, {})}
    return yaml.safe_dump(ordered, sort_keys=False, allow_unicode=True)


def save_answers(answers: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_answers(validate_answers(answers)), encoding="utf-8")
    except OSError as exc:
        raise AnswersError(f"cannot write answers to {path}: {exc.strerror or exc}") from None
    return path


def prefill(profile: dict[str, Any] | None, hardware: dict[str, Any] | None) -> dict[str, Any]:
    """Answers the data profile and the hardware probe already give (the user may override)."""
    filled: dict[str, Any] = {}
    profile = profile or {}
    if profile.get("task") in TASKS:
        put(filled, "task", profile["task"])
    rows = labeled_rows(profile)
    if rows is not None:
        put(filled, "data.labeled_examples", rows)
    if profile.get("task") == "preference":
        put(filled, "data.has_preference_pairs", True)
    corpus = (profile.get("sources") or {}).get("corpus")
    if profile.get("has_corpus") and isinstance(corpus, str):
        put(filled, "data.corpus", corpus)
    if hardware:
        if hardware.get("cuda") and hardware.get("gpu_memory_gb"):
            put(filled, "resources.gpu_memory_gb", float(hardware["gpu_memory_gb"]))
        else:
            put(filled, "resources.cpu_only", True)
    return filled
