"""The race as the report draws it, from the records' `info.race` (bench.race) and nothing else.

    summary = race_summary(records)     # None when no candidate raced
    summary["rungs"], summary["rows"], summary["sentence"], summary["series"]

One row per entrant, one column per rung (its validation score, kept or stopped), then the test
score of those that reached the final. Pure functions over plain dicts, like reports.analysis.
"""

from __future__ import annotations

from typing import Any

from reports import format as fmt


def race_of(record: dict[str, Any]) -> dict[str, Any] | None:
    info = record.get("info")
    race = info.get("race") if isinstance(info, dict) else None
    return race if isinstance(race, dict) else None


def _rungs_of(race: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in race.get("rungs") or [] if isinstance(e, dict)]


def _order(record: dict[str, Any]) -> tuple:
    """Winner first, then the finalists, then by how far each got and its last score."""
    race = race_of(record) or {}
    rank = {"winner": 0, "finalist": 1}.get(str(race.get("outcome")), 2)
    rungs = _rungs_of(race)
    last = fmt.as_number(rungs[-1].get("validation")) if rungs else None
    return rank, -len(rungs), -(last if last is not None else -1.0)


def _cell(entry: dict[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {"text": "", "state": "absent"}
    score = fmt.as_number(entry.get("validation"))
    if score is None:
        return {"text": str(entry.get("status") or "failed"), "state": "failed"}
    state = "kept" if entry.get("kept") else ("stopped" if entry.get("kept") is False else "")
    return {"text": fmt.fmt_metric(score), "state": state,
            "degenerate": bool(entry.get("degenerate"))}


def _final_cell(record: dict[str, Any]) -> dict[str, Any]:
    if (race_of(record) or {}).get("outcome") not in ("winner", "finalist"):
        return {"text": "", "state": "absent"}
    if record.get("status") != "ok":
        return {"text": str(record.get("status") or "?"), "state": "failed"}
    metric = record.get("primary_metric")
    value = fmt.as_number((record.get("metrics") or {}).get(metric))
    ci = (record.get("metrics_ci") or {}).get(metric)
    return {"text": fmt.fmt_metric(value), "state": "final",
            "ci": fmt.fmt_ci(ci) if isinstance(ci, list) and len(ci) == 2 else ""}


def race_summary(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The race's table, its plot's series and a sentence; None when nothing raced."""
    entrants = sorted((r for r in records if race_of(r)), key=_order)
    if not entrants:
        return None
    race = race_of(entrants[0]) or {}
    schedule = [s for s in race.get("schedule") or [] if isinstance(s, dict)]
    metric = str(race.get("metric") or "score")
    rows = []
    for record in entrants:
        by_rung = {e.get("rung"): e for e in _rungs_of(race_of(record) or {})}
        rows.append({"strategy": record.get("strategy"),
                     "outcome": (race_of(record) or {}).get("outcome") or "",
                     "cells": [_cell(by_rung.get(s.get("rung"))) for s in schedule],
                     "final": _final_cell(record)})
    series = {str(r.get("strategy")): [(float(e["train_rows"]), float(e["validation"]))
                                       for e in _rungs_of(race_of(r) or {})
                                       if isinstance(e.get("train_rows"), (int, float))
                                       and isinstance(e.get("validation"), (int, float))]
              for r in entrants}
    return {"metric": metric, "rungs": schedule, "rows": rows,
            "series": {k: v for k, v in series.items() if v},
            "sentence": _sentence(race, entrants, schedule, metric),
            "note": race.get("note")}


def _sentence(race: dict[str, Any], entrants: list[dict], schedule: list[dict],
              metric: str) -> str:
    winner = next((r.get("strategy") for r in entrants
                   if (race_of(r) or {}).get("outcome") == "winner"), None)
    train_rows, validation_rows = race.get("train_rows"), race.get("validation_rows")
    if not schedule:
        return (f"{len(entrants)} candidate(s) entered the race, no more than its finalists: "
                "each trained on every train row and met the test split once.")
    budgets = " → ".join(str(s.get("train_rows")) for s in schedule)
    head = (f"{len(entrants)} candidates raced on {validation_rows} validation rows after "
            f"{budgets} of {train_rows} train rows, the worse half stopping at each rung "
            f"(validation {metric}). ")
    if winner is None:
        return head + "The race did not finish, so no winner met the test split."
    return (head + f"{winner} won on validation, then trained on all {train_rows} train rows and "
            "met the test split once; the baselines ran once on test beside it.")
