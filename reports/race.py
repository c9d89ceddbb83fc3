"""The race as the report draws it, from the records' `info.race` (bench.race) and nothing else.

    summary = race_summary(records)     # None when no candidate raced
    summary["rungs"], summary["rows"], summary["sentence"], summary["series"]

One row per entrant, one column per rung (its validation score, kept or stopped; a fixed entrant,
cheap enough to run once on every train row, shows that one score at each rung it took part in),
then the test score of those that reached the final. When there was no race (too few expensive
entrants), the sentence says why and the table is left out. Pure functions over plain dicts, like
reports.analysis.
"""

from __future__ import annotations

from typing import Any

from bench.race_rules import going_on
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
    rank = {"winner": 0, "finalist": 1, "full": 1, "fixed": 1}.get(str(race.get("outcome")), 2)
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
    # a fixed entrant in a race from before they ran beside it (they joined every rung)
    text = fmt.fmt_metric(score) + (" (all rows)" if entry.get("fixed") else "")
    if entry.get("reprieved"):
        text += " (inside the interval)"
    return {"text": text, "state": state, "degenerate": bool(entry.get("degenerate"))}


def _final_cell(record: dict[str, Any]) -> dict[str, Any]:
    if (race_of(record) or {}).get("outcome") not in ("winner", "finalist", "full", "fixed"):
        return {"text": "", "state": "absent"}
    if record.get("status") != "ok":
        return {"text": str(record.get("status") or "?"), "state": "failed"}
    metric = record.get("primary_metric")
    value = fmt.as_number((record.get("metrics") or {}).get(metric))
    ci = (record.get("metrics_ci") or {}).get(metric)
    return {"text": fmt.fmt_metric(value), "state": "final",
            "ci": fmt.fmt_ci(ci) if isinstance(ci, list) and len(ci) == 2 else ""}


def _points(race: dict[str, Any]) -> list[tuple[float, float]]:
    """(train rows, validation score) per rung; a fixed entrant's one measurement once."""
    points: list[tuple[float, float]] = []
    for entry in _rungs_of(race):
        rows, score = entry.get("train_rows"), entry.get("validation")
        if isinstance(rows, (int, float)) and isinstance(score, (int, float)):
            point = (float(rows), float(score))
            if point not in points:
                points.append(point)
    return points


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
    series = {str(r.get("strategy")): _points(race_of(r) or {}) for r in entrants}
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
        if race.get("note"):  # the note, beside the sentence, says why
            return (f"No race: the {len(entrants)} candidate(s) each trained on every train row "
                    "and met the test split once, as in a run of them all.")
        return (f"{len(entrants)} candidate(s) entered the race, no more than its finalists: "
                "each trained on every train row and met the test split once.")
    budgets = " → ".join(str(s.get("train_rows")) for s in schedule)
    fixed = [str(name) for name in race.get("fixed") or []]
    racers = len(entrants) - len(fixed)
    of_rows = race.get("of_validation_rows")
    if of_rows and of_rows != validation_rows:  # the race scored a subset (max_validation_rows)
        validation_rows = f"{validation_rows} of {of_rows}"
    head = (f"{racers} candidates raced on {validation_rows} validation rows after "
            f"{budgets} of {train_rows} train rows, {going_on(int(race.get('eta') or 2))} "
            f"going on at each rung (validation {metric}). ")
    if fixed:
        head += (f"{', '.join(fixed)} (estimated at {race.get('cheap_s', 60):g} s or less, or "
                 f"training nothing) trained once on all {train_rows} train rows and met the "
                 "test split beside the race. ")
    if winner is None:
        return head + "The race did not finish, so no winner met the test split."
    return (head + f"{winner} won on validation, then trained on all {train_rows} train rows and "
            "met the test split once; the baselines ran once on test beside it. The table "
            "ranks on test all that met it, as a run of them all would.")
