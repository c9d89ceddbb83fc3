"""bench.race: successive halving on the validation split, through the run service."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bench import journal, race, service
from bench.race import RaceSettings, Rung, keep_count, rank_rung, rung_schedule
from fake_strategies import fake_plan, register_fakes, write_jsonl


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()


# ------------------------------------------------------------------------- the schedule


def test_six_entrants_halve_three_times_to_one_winner():
    assert rung_schedule(216, 6, RaceSettings()) == [Rung(27), Rung(54), Rung(108)]
    assert rung_schedule(216, 6, RaceSettings(finalists=2)) == [Rung(54), Rung(108)]
    assert rung_schedule(216, 5, RaceSettings(eta=3)) == [Rung(24), Rung(72)]


def test_no_race_when_there_are_no_more_entrants_than_finalists():
    assert rung_schedule(216, 1, RaceSettings()) == []
    assert rung_schedule(216, 2, RaceSettings(finalists=2)) == []


def test_small_data_merges_rungs_that_would_train_on_the_same_rows():
    # 8 entrants on 40 rows: 5, 10, 20 rows, but no rung below 16 rows -> 16 (halving twice), 20
    assert rung_schedule(40, 8, RaceSettings()) == [Rung(16, halvings=2), Rung(20)]
    # fewer train rows than the floor: one rung on all of them, halving all the way
    assert rung_schedule(10, 4, RaceSettings()) == [Rung(10, halvings=2)]


def test_keep_count_keeps_the_better_half_and_the_last_rung_the_finalists():
    settings = RaceSettings()
    assert keep_count(6, Rung(27), settings, last=False) == 3
    assert keep_count(3, Rung(54), settings, last=False) == 2
    assert keep_count(2, Rung(108), settings, last=True) == 1
    assert keep_count(8, Rung(16, halvings=2), settings, last=False) == 2
    assert keep_count(3, Rung(54), RaceSettings(finalists=2), last=True) == 2


def test_rank_rung_breaks_ties_by_collapse_then_the_advisors_order():
    order = ["lora", "knn", "transfer", "full"]
    results = [{"strategy": "lora", "score": 0.5, "degenerate": True},
               {"strategy": "knn", "score": 0.9},
               {"strategy": "transfer", "score": 0.5},
               {"strategy": "full", "score": None}]  # failed: last whatever the order
    assert [r["strategy"] for r in rank_rung(results, order)] == ["knn", "transfer", "lora",
                                                                  "full"]
    tie = [{"strategy": "transfer", "score": 0.5}, {"strategy": "knn", "score": 0.5}]
    assert [r["strategy"] for r in rank_rung(tie, order)] == ["knn", "transfer"]


def test_bad_settings_and_sweeps_are_refused(tmp_path):
    with pytest.raises(Exception, match="eta 1"):
        RaceSettings(eta=1).check()
    plan = fake_plan({"data": "x", "test": None}, tmp_path, ["fake-noop"], tune=2)
    outcome = service.run_plan(plan, race=RaceSettings())
    assert outcome.exit_code == 2 and "--tune" in outcome.error


@pytest.mark.timeout(300)
def test_a_tie_goes_to_the_entrant_ranked_higher_and_says_so(data, tmp_path):
    names = ["fake-scored-c", "fake-scored-b"]
    plan = fake_plan(data, tmp_path, names, overrides={name: {"accuracy": "0.5"}
                                                       for name in names})
    outcome = service.run_plan(plan, race=RaceSettings())
    records = _by_name(outcome.records)
    assert records["fake-scored-c"]["info"]["race"]["outcome"] == "winner"  # entered first
    assert records["fake-scored-b"]["error"].endswith(
        "validation accuracy 0.500, tied with the lowest of the 1 kept; a tie goes to the "
        "candidate ranked higher by the advisor")


def test_printed_lines_say_budgets_and_who_stops():
    started = race.RaceStarted(["knn", "lora"], [Rung(108)], 216, 24, "accuracy")
    assert "108 of 216 train rows" in race.race_plan_line(started)
    assert "24 validation rows" in race.race_plan_line(started)
    line = race.rung_line(race.RungFinished(0, 108, 216, "accuracy", [
        {"strategy": "knn", "score": 0.9, "kept": True},
        {"strategy": "lora", "score": None, "kept": False}]))
    assert line == ("rung 1 (108 of 216 train rows), validation accuracy: knn 0.900 kept, "
                    "lora failed stopped")


# ------------------------------------------------------------------------- a race of fakes

ACCURACY = {"fake-scored-a": "0.25", "fake-scored-b": "1.0", "fake-scored-c": "0.5",
            "fake-scored-d": "0.75"}


@pytest.fixture
def data(tmp_path) -> dict:
    """100 train rows (two labels; 10 are carved for validation) and 12 test rows."""
    train = [{"text": f"train row {i} about thing {i * 3}", "label": ("no", "yes")[i % 2]}
             for i in range(100)]
    test = [{"text": f"test row {i} on item {i * 5}", "label": ("no", "yes")[i % 3 == 0]}
            for i in range(12)]
    return {"data": str(write_jsonl(tmp_path / "train.jsonl", train)),
            "test": str(write_jsonl(tmp_path / "test.jsonl", test))}


def _race_plan(data, tmp_path, strategies):
    return fake_plan(data, tmp_path, strategies,
                     overrides={name: {"accuracy": value} for name, value in ACCURACY.items()
                                if name in strategies})


def _by_name(records):
    return {r["strategy"]: r for r in records}


@pytest.mark.timeout(300)
def test_a_race_keeps_the_better_half_and_tests_only_the_winner(data, tmp_path):
    events = []
    names = ["majority", *ACCURACY]
    outcome = service.run_plan(_race_plan(data, tmp_path, names), race=RaceSettings(),
                               on_event=events.append)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    records = _by_name(outcome.records)
    assert set(records) == set(names)
    assert journal.read_records(outcome.run_dir) == outcome.records  # one record each, on disk

    split = journal.read_json(outcome.run_dir / journal.SPLIT)
    train_rows, validation_rows = len(split["train"]), len(split["validation"])
    assert (train_rows, validation_rows) == (90, 10)
    # 4 entrants, one finalist: rungs on 22 (the floor is 16) and 45 rows
    assert [e["train_rows"] for e in records["fake-scored-b"]["info"]["race"]["rungs"]] == [22, 45]

    # the baseline did not race: once, on test
    assert records["majority"]["status"] == "ok" and "race" not in records["majority"]["info"]
    # rung 1: a (0.2) and c (0.5) stop; rung 2: d (0.7 < 1.0) stops; b wins
    winner = records["fake-scored-b"]
    assert winner["status"] == "ok" and winner["info"]["race"]["outcome"] == "winner"
    assert winner["info"]["race"]["winner"] == "fake-scored-b"
    assert winner["info"]["train_rows_seen"] == train_rows  # the final trains on every row
    assert [e["validation"] for e in winner["info"]["race"]["rungs"]] == [1.0, 1.0]
    assert winner["metrics"]["accuracy"] == pytest.approx(8 / 12)  # "no" on test: it is blind
    for name, rung in (("fake-scored-a", 1), ("fake-scored-c", 1), ("fake-scored-d", 2)):
        record = records[name]
        assert record["status"] == "skipped" and record["metrics"] == {}
        assert record["error"].startswith(f"stopped by the race at rung {rung} of 2")
        entries = record["info"]["race"]["rungs"]
        assert len(entries) == rung and entries[-1]["kept"] is False
        assert all(e["kept"] for e in entries[:-1])
        assert record["info"]["race"]["outcome"] == "stopped"
    assert records["fake-scored-d"]["info"]["race"]["rungs"][0]["validation"] == 0.8
    assert records["fake-scored-c"]["error"].endswith("below the 2 kept (lowest kept 0.800)")

    # each rung trained on its subset and predicted the validation split, never test
    log = (outcome.run_dir / "logs" / "race-r0-fake-scored-b.log").read_text()
    assert "train rows seen: 22" in log
    rung_rows = journal.read_records(outcome.run_dir, "predictions/race-r1-fake-scored-d.jsonl")
    validation_texts = {row["text"] for row in split["validation"]}
    assert len(rung_rows) == validation_rows
    assert {row["input"] for row in rung_rows} == validation_texts
    assert not (outcome.run_dir / "work" / "race-r0-fake-scored-b").exists()  # artifacts dropped

    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["finished"] is True and kept["winner"] == "fake-scored-b"
    assert kept["outcome"]["fake-scored-a"] == "stopped"
    rung_events = [e for e in events if isinstance(e, race.RungFinished)]
    assert [[r["kept"] for r in e.results] for e in rung_events] == [
        [True, True, False, False], [True, False]]

    # the report draws every rung, from the records alone
    from reports.html import write_report

    html = write_report(outcome.run_dir).read_text(encoding="utf-8")
    section = html[html.index('<section id="race">'):html.index('<section id="plots">')]
    assert "4 candidates raced on 10 validation rows after 22 → 45 of 90 train rows" in section
    assert "fake-scored-b won on validation" in section and 'id="plot-race"' in section
    rows = section.split('<tr class="race-')[1:]
    assert [row.split('"')[0] for row in rows] == ["winner", "stopped", "stopped", "stopped"]
    assert rows[0].startswith('winner"><th scope="row">fake-scored-b')
    assert "1.000 ✓" in rows[0] and "0.667" in rows[0]  # kept at both rungs, then test
    assert rows[1].count("✓") == 1 and rows[1].count("✗") == 1  # d: kept, then stopped


@pytest.mark.timeout(300)
def test_a_failing_entrant_leaves_the_race_with_its_record(data, tmp_path):
    names = ["fake-scored-b", "fake-crash"]
    outcome = service.run_plan(_race_plan(data, tmp_path, names), race=RaceSettings())
    records = _by_name(outcome.records)
    assert outcome.exit_code == 1
    crashed = records["fake-crash"]
    assert crashed["status"] == "failed" and "deliberate crash" in crashed["error"]
    assert crashed["info"]["race"]["outcome"] == "failed"
    assert "predictions" not in crashed  # its rung predicted validation, not test
    assert records["fake-scored-b"]["info"]["race"]["outcome"] == "winner"


@pytest.mark.timeout(300)
def test_cancel_mid_race_keeps_every_measured_rung(data, tmp_path):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, race.RungFinished):
            cancel.set()  # as if the user pressed Ctrl-C right after the first rung

    names = ["fake-scored-a", "fake-scored-b", "fake-scored-c"]
    outcome = service.run_plan(_race_plan(data, tmp_path, names), race=RaceSettings(),
                               on_event=on_event, cancel=cancel)
    assert outcome.interrupted and outcome.exit_code == 130
    # the one stopped at rung 1 is journalled; the two still racing are resumed at full budget
    assert [r["strategy"] for r in journal.read_records(outcome.run_dir)] == ["fake-scored-a"]
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["finished"] is False and kept["winner"] is None
    assert {name: [e["validation"] for e in entries] for name, entries in kept["rungs"].items()} \
        == {"fake-scored-a": [0.2], "fake-scored-b": [1.0], "fake-scored-c": [0.5]}
    assert "--resume" in outcome.resume_hint


# ------------------------------------------------------------------------- the TUI's run screen


def test_the_run_screen_shows_the_race_and_where_a_candidate_stopped():
    from advisor.tui.screens.run import RaceMessage, run_message, stopped_status

    started = race.RaceStarted(["knn", "lora"], [Rung(108)], 216, 24, "accuracy")
    message = run_message(started)
    assert isinstance(message, RaceMessage) and "24 validation rows" in message.text
    rung = race.RungFinished(0, 108, 216, "accuracy", [{"strategy": "knn", "score": 0.9,
                                                        "kept": True}])
    assert run_message(rung).text.startswith("rung 1 (108 of 216 train rows)")
    stopped = {"status": "skipped", "info": {"race": {
        "outcome": "stopped", "metric": "accuracy",
        "rungs": [{"validation": 0.75, "kept": True}, {"validation": 0.5, "kept": False}]}}}
    assert stopped_status(stopped) == "stopped at rung 2: validation accuracy 0.500"
    assert stopped_status({"status": "ok", "info": {}}) is None


def test_the_report_says_when_the_race_stopped_the_advisors_pick():
    from reports.analysis import verdict
    from reports.race import race_summary

    race_info = {"metric": "accuracy", "train_rows": 90, "validation_rows": 10,
                 "schedule": [{"rung": 0, "train_rows": 45}], "winner": "knn"}
    knn = {"strategy": "knn", "status": "ok", "primary_metric": "accuracy",
           "metrics": {"accuracy": 0.9}, "metrics_ci": {"accuracy": [0.8, 0.97]},
           "info": {"race": {**race_info, "outcome": "winner",
                             "rungs": [{"rung": 0, "train_rows": 45, "validation": 0.8,
                                        "kept": True}]}}}
    lora = {"strategy": "lora", "status": "skipped", "primary_metric": "accuracy",
            "error": "stopped by the race", "metrics": {},
            "info": {"race": {**race_info, "outcome": "stopped",
                              "rungs": [{"rung": 0, "train_rows": 45, "validation": 0.4,
                                         "kept": False}]}}}
    summary = race_summary([lora, knn])
    assert [row["strategy"] for row in summary["rows"]] == ["knn", "lora"]
    assert summary["rows"][0]["final"]["text"] == "0.900"
    assert summary["rows"][1]["cells"][0] == {"text": "0.400", "state": "stopped",
                                              "degenerate": False}
    assert summary["series"] == {"knn": [(45.0, 0.8)], "lora": [(45.0, 0.4)]}
    assert race_summary([{"strategy": "majority", "status": "ok", "info": {}}]) is None
    advice = {"ranked": [{"strategy": "lora", "fits": True}, {"strategy": "knn", "fits": True}]}
    sentence = verdict([knn, lora], {"task": "classification"}, advice).sentence
    assert "the race stopped it at rung 1 (validation accuracy 0.400 on 45 train rows)" in sentence
