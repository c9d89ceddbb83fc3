"""What a candidate's process may read of a split: train and validation in full, test inputs only.

    view = ensure_inputs_view(run_dir / "split.json", seed)     # -> run_dir / "split_inputs.json"
    predictions = unblind_predictions(task, payload["predictions"], seed)   # harness side

The harness keeps split.json (the test labels included) and scores from it; the strategy's
process reads `split_inputs.json`, where each test row keeps only the fields a model reads:

| task           | test row in the view                                     |
| -------------- | -------------------------------------------------------- |
| classification | text                                                     |
| generation     | instruction, input                                       |
| qa             | question, context                                        |
| preference     | prompt, response_a, response_b (chosen/rejected shuffled)|

Everything else (label, output, answer, answers, chosen, rejected, any other column) is left
out, so a strategy or a bug that reaches for a test label fails with a KeyError instead of
scoring itself. A preference strategy must score both responses of a pair without knowing which
one a person chose: it gets them as neutral `response_a` / `response_b` in a seeded order and
returns `response_a_logp` / `response_b_logp` (a reward model: `response_a_reward` /
`response_b_reward`); `unblind_predictions` maps those back to chosen_logp / rejected_logp
(chosen_reward / rejected_reward) with the same order.

This is a contract, not a sandbox: the child runs as the same user and could open split.json by
its path. It keeps honest strategies (and their bugs) away from the labels.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from strategies.base import PAIR_FIELDS, PAIR_LOGP_FIELDS, PAIR_REWARD_FIELDS

# The fields of a test row a strategy may read, per task kind (a whitelist: a new column in the
# data is hidden until someone decides it is an input).
INPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "classification": ("text",),
    "generation": ("instruction", "input"),
    "qa": ("question", "context"),
    "preference": ("prompt",),
}
# A strategy's neutral scores of a pair -> the keys the scorer reads (bench.metrics). Only the
# harness may set the latter: a strategy cannot know which response was chosen.
PAIR_SCORE_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    PAIR_LOGP_FIELDS: ("chosen_logp", "rejected_logp"),
    PAIR_REWARD_FIELDS: ("chosen_reward", "rejected_reward"),
}


def inputs_path(split_path: str | Path) -> Path:
    """split.json -> split_inputs.json (split-multitask.json -> split-multitask_inputs.json)."""
    path = Path(split_path)
    return path.with_name(f"{path.stem}_inputs.json")


def chosen_shown_first(seed: int, count: int) -> list[bool]:
    """Per pair: is the chosen response shown as response_a? Seeded, so the harness can map the
    strategy's answers back; a string seed hashes the same in every process (no PYTHONHASHSEED)."""
    rng = random.Random(f"tunewise-pair-order:{seed}")
    return [rng.random() < 0.5 for _ in range(count)]


def blind_rows(task: str, rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The rows as a strategy sees rows it must predict (see the module table)."""
    if task not in INPUT_FIELDS:
        raise ValueError(f"unknown task kind {task!r}")
    fields = INPUT_FIELDS[task]
    blind = [{key: row[key] for key in fields if key in row} for row in rows]
    if task == "preference":
        first_a, first_b = PAIR_FIELDS
        for view, row, chosen_first in zip(blind, rows, chosen_shown_first(seed, len(rows))):
            pair = (row["chosen"], row["rejected"])
            view[first_a], view[first_b] = pair if chosen_first else pair[::-1]
    return blind


def eval_rows(rows: list[dict[str, Any]], subset: list[int] | None) -> list[dict[str, Any]]:
    """The rows a job predicts and is scored on: all, or those at `subset`'s positions (the
    child predicts them, bench.records scores the same positions)."""
    return list(rows) if subset is None else [rows[i] for i in subset]


def inputs_view(split: dict[str, Any], seed: int) -> dict[str, Any]:
    """split.json's content with its test rows blinded; everything else as it is."""
    return {**split, "test": blind_rows(split["task"], split["test"], seed)}


def blind_split(split, seed: int):
    """A TaskSplit as a strategy gets it in the harness (for tests that call a strategy
    directly): the same split with its test rows blinded."""
    import dataclasses

    return dataclasses.replace(split, test=blind_rows(split.task, split.test, seed))


def ensure_inputs_view(split_path: str | Path, seed: int) -> Path:
    """Write the view beside the split unless an up-to-date one is there; return its path.

    Called by the parent before each candidate, so every split a job can point at (the run's,
    a multi-task mix, a scratch copy on a Ray node) gets its view. Safe when several threads or
    nodes do it at once: each writes its own temporary file and renames it into place."""
    split_path = Path(split_path)
    view_path = inputs_path(split_path)
    if view_path.exists() and view_path.stat().st_mtime_ns >= split_path.stat().st_mtime_ns:
        return view_path
    split = json.loads(split_path.read_text(encoding="utf-8"))
    tmp = view_path.with_name(f".{view_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(inputs_view(split, seed), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, view_path)
    return view_path


def unblind_predictions(task: str, predictions: list[Any], seed: int) -> list[Any]:
    """The strategy's predictions as the scorer reads them. For preference, each pair's
    response_a / response_b scores become chosen / rejected scores in the order the view showed
    them; chosen/rejected keys a strategy set itself are dropped (they could only be a guess or
    a leak)."""
    if task != "preference":
        return list(predictions)
    neutral_keys = {key for pair in PAIR_SCORE_KEYS for key in pair}
    harness_keys = {key for pair in PAIR_SCORE_KEYS.values() for key in pair}
    mapped = []
    for prediction, chosen_first in zip(predictions,
                                        chosen_shown_first(seed, len(predictions))):
        if not isinstance(prediction, dict):
            mapped.append(prediction)
            continue
        row = {k: v for k, v in prediction.items() if k not in neutral_keys | harness_keys}
        for (a_key, b_key), (chosen_key, rejected_key) in PAIR_SCORE_KEYS.items():
            a, b = prediction.get(a_key), prediction.get(b_key)
            if a is not None and b is not None:
                row[chosen_key], row[rejected_key] = (a, b) if chosen_first else (b, a)
        mapped.append(row)
    return mapped
