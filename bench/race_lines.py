"""The race in words, for the terminal, the TUI and the report's readers: the plan line, a
rung's line, how a record's race ended and what the race's candidates took. bench.race
re-exports them."""

from __future__ import annotations

from typing import Any

from bench.race_rules import RaceStarted, RungFinished, going_on


def race_plan_line(event: RaceStarted) -> str:
    """"race: 3 entrants (lora, full, ia3) scored on 24 validation rows after 72 of
    216 train rows; knn, transfer (estimated cheap) run once on all of them and the test split
    ...", or why there is no race."""
    if not event.rungs:
        return (f"no race: {event.note}" if event.note else
                f"race: {len(event.entrants)} entrant(s), nothing to halve: each runs on all "
                f"{event.train_rows} train rows and the test split")
    budgets = " → ".join(str(r.train_rows) for r in event.rungs)
    scored = (f"{event.validation_rows} of {event.of_validation_rows} validation rows "
              "(a seeded subset, the same at every rung)" if event.of_validation_rows
              else f"{event.validation_rows} validation rows")
    fixed = (f"; {', '.join(event.fixed)} (estimated cheap) run once on all of them and the "
             "test split, beside the race" if event.fixed else "")
    return (f"race: {len(event.entrants)} entrants ({', '.join(event.entrants)}) scored on "
            f"{scored} after {budgets} of {event.train_rows} "
            f"train rows{fixed}; {going_on(event.eta)} go on at each rung, the winner trains on all "
            "of them and meets the test split once")


def rung_line(event: RungFinished) -> str:
    """"rung 1 (27 of 216 train rows), validation accuracy: lora 0.917 kept, ia3 0.500
    stopped ..."."""
    def shown(result: dict[str, Any]) -> str:
        score = result.get("score")
        value = f"{score:.3f}" if score is not None else "failed"
        state = ("kept (inside the interval)" if result.get("reprieved")
                 else "kept" if result.get("kept") else "stopped")
        return f"{result['strategy']} {value} {state}"

    return (f"rung {event.rung + 1} ({event.train_rows} of {event.of_train_rows} train rows), "
            f"validation {event.metric}: " + ", ".join(shown(r) for r in event.results))


def race_outcome(record: dict[str, Any]) -> str | None:
    """How a record's race ended (winner | finalist | stopped | failed | ...; "fixed": cheap, it
    ran once in full beside the race; "full": there was no race and it ran on the full
    budget), None when the candidate did not race."""
    race = (record.get("info") or {}).get("race")
    return race.get("outcome") if isinstance(race, dict) else None


def race_wall_time(records: list[dict[str, Any]]) -> float:
    """Seconds the race's candidates took, rungs included (from the records' info.race)."""
    total = 0.0
    for record in records:
        race = (record.get("info") or {}).get("race")
        if not isinstance(race, dict):
            continue
        if race.get("outcome") in ("winner", "finalist", "full", "fixed"):
            total += float((record.get("time_s") or {}).get("total") or 0.0)
        total += sum(float(e.get("time_s") or 0.0) for e in race.get("rungs") or [])
    return total
