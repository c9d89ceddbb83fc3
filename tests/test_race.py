"""bench.race: successive halving on the validation split, through the run service."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from bench import journal, race, race_rules, service
from bench.race import (RaceSettings, Rung, estimated_seconds, is_cheap, keep_count, rank_rung,
                        reprieved, rung_schedule)
from bench.race_rules import estimated_rung_seconds, race_cost, race_pays
from fake_strategies import fake_plan, register_fakes, write_jsonl


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()


# ------------------------------------------------------------------------- the schedule


def test_six_entrants_halve_three_times_to_one_winner():
    assert rung_schedule(216, 6, RaceSettings(eta=2)) == [Rung(27), Rung(54), Rung(108)]
    assert rung_schedule(216, 6, RaceSettings(eta=2, finalists=2)) == [Rung(54), Rung(108)]
    assert rung_schedule(216, 5, RaceSettings(eta=3)) == [Rung(24), Rung(72)]


def test_no_race_when_there_are_no_more_entrants_than_finalists():
    assert rung_schedule(216, 1, RaceSettings(eta=2)) == []
    assert rung_schedule(216, 2, RaceSettings(eta=2, finalists=2)) == []


def test_small_data_merges_rungs_that_would_train_on_the_same_rows():
    # 8 entrants on 40 rows: 5, 10, 20 rows, but no rung below 16 rows -> 16 (halving twice), 20
    assert rung_schedule(40, 8, RaceSettings(eta=2)) == [Rung(16, halvings=2), Rung(20)]
    # fewer train rows than the floor: one rung on all of them, halving all the way
    assert rung_schedule(10, 4, RaceSettings(eta=2)) == [Rung(10, halvings=2)]


def test_keep_count_keeps_the_better_half_and_the_last_rung_the_finalists():
    settings = RaceSettings(eta=2)
    assert keep_count(6, Rung(27), settings, last=False) == 3
    assert keep_count(3, Rung(54), settings, last=False) == 2
    assert keep_count(2, Rung(108), settings, last=True) == 1
    assert keep_count(8, Rung(16, halvings=2), settings, last=False) == 2
    assert keep_count(3, Rung(54), RaceSettings(eta=2, finalists=2), last=True) == 2


def test_rank_rung_breaks_ties_by_collapse_then_the_tie_metric_then_the_advisors_order():
    order = ["lora", "knn", "transfer", "full"]
    results = [{"strategy": "lora", "score": 0.5, "degenerate": True},
               {"strategy": "knn", "score": 0.9},
               {"strategy": "transfer", "score": 0.5},
               {"strategy": "full", "score": None}]  # failed: last whatever the order
    assert [r["strategy"] for r in rank_rung(results, order)] == ["knn", "transfer", "lora",
                                                                  "full"]
    tie = [{"strategy": "transfer", "score": 0.5}, {"strategy": "knn", "score": 0.5}]
    assert [r["strategy"] for r in rank_rung(tie, order)] == ["knn", "transfer"]
    # the same accuracy, but transfer's macro-F1 is better: the second metric decides first
    tie = [{"strategy": "knn", "score": 1.0, "tie": 0.8},
           {"strategy": "transfer", "score": 1.0, "tie": 0.9},
           {"strategy": "lora", "score": 1.0, "tie": None}]  # no second metric: after both
    assert [r["strategy"] for r in rank_rung(tie, order)] == ["transfer", "knn", "lora"]


def test_a_tiny_validation_split_keeps_one_more_inside_the_interval():
    able = [{"strategy": "knn", "score": 1.0, "ci": [1.0, 1.0]},
            {"strategy": "lora", "score": 0.833, "ci": [0.5, 1.0]},
            {"strategy": "full", "score": 0.667, "ci": [0.333, 1.0]},
            {"strategy": "ia3", "score": 0.5, "ci": [0.167, 0.833]},
            {"strategy": "dora", "score": 0.333, "ci": [0.0, 0.667]}]
    # keep 2: lora is the lowest kept; full and ia3 lie inside its interval, the cap is one
    assert reprieved(able, 2, cap=1) == ["full"]
    assert reprieved(able, 2, cap=3) == ["full", "ia3"]
    assert reprieved(able, 1, cap=3) == []  # knn's interval is [1, 1]: nobody is inside
    assert reprieved(able, 2, cap=0) == [] and reprieved(able, 5, cap=1) == []
    # lower is better: inside means at or under the interval's high end
    low = [{"strategy": "a", "score": 0.1, "ci": [0.05, 0.3]}, {"strategy": "b", "score": 0.25}]
    assert reprieved(low, 1, cap=1, higher_is_better=False) == ["b"]


def test_cheap_means_a_known_estimate_within_cheap_s():
    settings = RaceSettings(eta=2, cheap_s=60)
    assert is_cheap(15.0, settings) and is_cheap(60.0, settings)
    assert not is_cheap(61.0, settings) and not is_cheap(None, settings)  # unknown: it races


def test_an_entrant_that_trains_nothing_runs_once_however_dear():
    """few-shot and rag train nothing: a rung of them on fewer rows measures what the full run
    does (on QA, generating every validation answer again), so they run once, as cheap ones do."""
    settings = RaceSettings()
    assert race_rules.trains_nothing("few-shot") and race_rules.trains_nothing("rag")
    assert race_rules.runs_once("few-shot", 830.0, settings)  # a QA few-shot: dear, still once
    assert race_rules.runs_once("knn", 8.0, settings)  # cheap
    assert not race_rules.trains_nothing("lora") and not race_rules.trains_nothing("transfer")
    assert not race_rules.runs_once("lora", 300.0, settings)
    assert race_rules.runs_once("transfer", 8.0, settings)  # it trains a head, but cheaply
    assert not race_rules.trains_nothing("no-such-strategy")  # unknown: it races



def estimate_job(strategy: str, estimate: dict | None = None):
    """What the race's estimates read of a CandidateJob: SmolLM2 on the reference CPU."""
    from types import SimpleNamespace

    return SimpleNamespace(strategy=strategy, estimate=estimate, preset="quick", hardware={},
                           device="cpu", model="smollm2-135m", encoder="minilm-l6",
                           overrides={})

def test_the_estimate_is_the_plans_else_the_estimators_on_the_runs_profile():
    profile = {"rows": 360, "splits": {"train": 216, "validation": 24, "test": 120},
               "token_length": {"p50": 10, "p90": 21},
               "labels": {name: 60 for name in "abcdef"}}
    # the plan's estimate wins
    assert estimated_seconds(estimate_job("lora", {"time_s": 7.5}), profile) == 7.5
    knn = estimated_seconds(estimate_job("knn"), profile)
    lora = estimated_seconds(estimate_job("lora"), profile)
    assert knn is not None and lora is not None
    assert is_cheap(knn, RaceSettings(eta=2)) and not is_cheap(lora, RaceSettings(eta=2))
    assert estimated_seconds(estimate_job("fake-scored-a"), profile) is None  # no estimate profile
    assert estimated_seconds(estimate_job("knn"), None) is None


def test_race_cost_counts_fixed_once_rungs_for_the_racers_left_and_the_finalists_in_full():
    settings = RaceSettings(eta=2)
    rungs = [Rung(27), Rung(54)]
    full = {"a": 100.0, "b": 100.0, "c": 100.0, "k": 10.0}
    cheap_rungs = [{"a": 20.0, "b": 20.0, "c": 20.0}, {"a": 40.0, "b": 40.0, "c": 40.0}]
    # run-all 310; race: k 10 + rung 1: 3 racers x 20 + rung 2: 2 go on x 40 + 1 final x 100
    assert race_cost(["a", "b", "c"], ["k"], rungs, full, cheap_rungs, settings) == \
        (10 + 60 + 80 + 100, 310)
    assert race_pays((250.0, 310.0), settings) is False  # 0.81 of run-all: not worth it
    assert race_pays((150.0, 310.0), settings) is True
    assert race_pays(None, settings) is True  # unknown: race, as before
    # a rung that costs as much as the full run (as when rungs trained to min_steps)
    dear_rungs = [{"a": 100.0, "b": 100.0, "c": 100.0}] * 2
    race_s, run_all_s = race_cost(["a", "b", "c"], ["k"], rungs, full, dear_rungs, settings)
    assert race_s > run_all_s
    assert race_cost(["a", "b"], [], rungs, full, [{"a": 1.0, "b": None}], settings) is None


def test_a_rung_is_estimated_with_its_share_of_the_full_runs_training():
    """A rung on 27 of 108 train rows: before rungs had their share of the budget, the
    training budget's min_steps (40) gave it about the full run's steps (42), so a race cost
    about twice a run-all; with the share, a rung costs its share (plus its start) and the
    race much less than before (with three racers, still about a run-all: 3 x 1/4 + 2 x 1/2
    + the winner's full run)."""
    from bench.race_rules import profile_estimate


    profile = {"rows": 160, "splits": {"train": 108, "validation": 24, "test": 28},
               "token_length": {"p50": 40, "p90": 80, "p99": 120, "max": 140},
               "labels": {name: 36 for name in "abcd"}, "task": "classification"}
    racers, fixed = ["lora", "full", "ia3"], ["knn"]
    rungs = rung_schedule(108, 4, RaceSettings(eta=2), 16)
    assert rungs == [Rung(27), Rung(54)]
    full = {name: profile_estimate(estimate_job(name), profile) for name in (*racers, *fixed)}

    def planned_on_its_own_rows(name, rows):  # the estimate before (no share of the budget)
        splits = {**profile["splits"], "train": rows, "test": 24}
        return profile_estimate(estimate_job(name), {**profile, "splits": splits})

    before = [{n: planned_on_its_own_rows(n, r.train_rows) for n in racers} for r in rungs]
    now = [{n: estimated_rung_seconds(estimate_job(n), profile, r.train_rows, 24, 108)
            for n in racers} for r in rungs]
    for name in racers:
        assert before[0][name] > 0.8 * full[name]  # min_steps made the rung a full run
        assert now[0][name] < before[0][name] and now[1][name] < before[1][name]
        assert now[0][name] < now[1][name] < full[name]
    settings = RaceSettings(eta=2)
    race_before, run_all = race_cost(racers, fixed, rungs, full, before, settings)
    race_now, same_run_all = race_cost(racers, fixed, rungs, full, now, settings)
    assert same_run_all == run_all and race_now < race_before
    assert race_before > run_all * settings.max_cost_ratio  # it declined before
    # the profile's train split is the full one when the caller does not say
    assert estimated_rung_seconds(estimate_job("lora"), profile, 27, 24) == now[0]["lora"]
    # a candidate that keeps its own budget on the rung's rows (encoder-ft) is estimated so
    assert estimated_rung_seconds(estimate_job("encoder-ft"), profile, 27, 24, 108) == \
        planned_on_its_own_rows("encoder-ft", 27)


def test_a_rung_is_estimated_on_its_train_rows_predicting_the_validation_rows():

    profile = {"rows": 2400, "splits": {"train": 2000, "validation": 100, "test": 300},
               "token_length": {"p50": 10, "p90": 21},
               "labels": {name: 400 for name in "abcdef"}}
    full = estimated_seconds(estimate_job("full"), profile)
    small = estimated_rung_seconds(estimate_job("full"), profile, 100, 100)
    assert 0 < small < full  # fewer passes' steps (still at least the minimum) and fewer rows
    assert estimated_rung_seconds(estimate_job("full"), None, 100, 100) is None


def test_the_validation_subset_is_seeded_stratified_and_only_above_the_cap():
    rows = [{"text": f"row {i}", "label": "a" if i % 3 else "b"} for i in range(300)]
    split = {"task": "classification", "validation": rows}
    subset = race.validation_subset(split, RaceSettings(eta=2, max_validation_rows=60), seed=7)
    assert len(subset) == 60 == len(set(subset)) and subset == sorted(subset)
    labels = [rows[i]["label"] for i in subset]
    assert (labels.count("a"), labels.count("b")) == (40, 20)  # the split's 2 : 1
    assert race.validation_subset(split, RaceSettings(max_validation_rows=60), seed=7) == subset
    assert race.validation_subset(split, RaceSettings(max_validation_rows=60), seed=8) != subset
    # at or under the cap, or no cap: every row, no subset
    assert race.validation_subset(split, RaceSettings(max_validation_rows=300), seed=7) is None
    assert race.validation_subset(split, RaceSettings(eta=2, max_validation_rows=0), seed=7) is None
    assert race.validation_subset({**split, "validation": []}, RaceSettings(eta=2), seed=7) is None
    qa = {"task": "qa", "validation": [{"question": f"q{i}"} for i in range(250)]}
    picked = race.validation_subset(qa, RaceSettings(eta=2), seed=0)  # no labels: a seeded sample
    assert len(picked) == 200 == len(set(picked)) and max(picked) < 250


def test_a_rung_is_estimated_predicting_at_most_the_capped_validation_rows():
    from bench.race_rules import estimated_cost, profile_estimate


    # bench's tenth of a 10,000-row train file: 1,000 validation rows beside 9,000 train rows
    profile = {"rows": 10200, "splits": {"train": 9000, "validation": 1000, "test": 200},
               "token_length": {"p50": 17, "p90": 34, "p99": 58, "max": 58},
               "labels": {name: 2250 for name in "abcd"}, "task": "classification"}
    jobs = [estimate_job(name) for name in ("lora", "dora", "ia3", "full", "knn")]
    racers, fixed = ["lora", "dora", "ia3", "full"], ["knn"]
    rungs = rung_schedule(9000, len(jobs), RaceSettings(eta=2), 16)
    capped = estimated_cost(jobs, racers, fixed, rungs, profile, 9000, 1000, RaceSettings(eta=2))
    uncapped = estimated_cost(jobs, racers, fixed, rungs, profile, 9000, 1000,
                              RaceSettings(eta=2, max_validation_rows=0))
    assert capped[1] == uncapped[1]  # run-all predicts the test split either way
    assert capped[0] < uncapped[0]
    # the rungs were estimated predicting 200 rows, as a rung job does (rungs trained afresh)
    afresh = RaceSettings(eta=2, continue_rungs=False)
    by_hand = race_cost(racers, fixed, rungs,
                        {j.strategy: profile_estimate(j, profile) for j in jobs},
                        [{n: estimated_rung_seconds(estimate_job(n), profile, r.train_rows,
                                                    200, 9000)
                          for n in racers} for r in rungs], afresh)
    assert estimated_cost(jobs, racers, fixed, rungs, profile, 9000, 1000, afresh) == by_hand
    # under the cap nothing changes
    small = estimated_cost(jobs, racers, fixed, rungs, profile, 9000, 150, RaceSettings(eta=2))
    assert small == estimated_cost(jobs, racers, fixed, rungs, profile, 9000, 150,
                                   RaceSettings(eta=2, max_validation_rows=0))


@pytest.mark.timeout(300)
def test_no_race_when_its_rungs_are_estimated_to_cost_about_as_much_as_run_all(
        data, tmp_path, monkeypatch):
    events = []
    names = list(ACCURACY)
    # every rung job estimated to cost what a full run does (as when a rung trained to the
    # budget's min_steps, before rungs had their share of the budget)
    monkeypatch.setattr(race_rules, "profile_estimate", lambda job, profile, **budget: 100.0)
    monkeypatch.setattr(race_rules, "estimated_rung_seconds",
                        lambda job, profile, rows, val, full_rows, from_fraction=0.0: 100.0)
    outcome = service.run_plan(_race_plan(data, tmp_path, names,
                                          estimates={n: EXPENSIVE for n in names}),
                               race=RaceSettings(eta=2, min_validation_rows=0),
                               on_event=events.append)
    assert outcome.exit_code == 0
    records = _by_name(outcome.records)
    assert all(r["status"] == "ok" for r in records.values())  # every one in full, on test
    assert not list((outcome.run_dir / "logs").glob("race-*"))
    started = next(e for e in events if isinstance(e, race.RaceStarted))
    assert started.note.startswith("the race is estimated at 700 s against 400 s for running "
                                   "every entrant in full (1.75; it races at or below 0.67)")
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["raced"] is False
    assert kept["estimated_cost_s"] == {"race": 700.0, "run_all": 400.0}


def test_bad_settings_and_sweeps_are_refused(tmp_path):
    with pytest.raises(Exception, match="eta 1"):
        RaceSettings(eta=1).check()
    with pytest.raises(Exception, match="max_validation_rows -1 must not be negative"):
        RaceSettings(eta=2, max_validation_rows=-1).check()
    RaceSettings(eta=2, max_validation_rows=0).check()  # 0: no cap
    with pytest.raises(Exception, match="min_racers 1"):
        RaceSettings(eta=2, min_racers=1).check()
    plan = fake_plan({"data": "x", "test": None}, tmp_path, ["fake-noop"], tune=2)
    outcome = service.run_plan(plan, race=RaceSettings(eta=2))
    assert outcome.exit_code == 2 and "--tune" in outcome.error


@pytest.mark.timeout(300)
def test_a_tie_goes_to_the_entrant_ranked_higher_and_says_so(data, tmp_path):
    names = ["fake-scored-c", "fake-scored-b"]
    plan = fake_plan(data, tmp_path, names, overrides={name: {"accuracy": "0.5"}
                                                       for name in names})
    outcome = service.run_plan(plan, race=RaceSettings(eta=2, min_racers=2))
    records = _by_name(outcome.records)
    assert records["fake-scored-c"]["info"]["race"]["outcome"] == "winner"  # entered first
    assert records["fake-scored-b"]["error"].endswith(
        "validation accuracy 0.500, tied with the lowest of the 1 kept; ties go to the entrant "
        "whose predictions did not collapse, then to the better macro_f1, then to the one the "
        "advisor ranked higher")


def test_printed_lines_say_budgets_and_who_stops():
    started = race.RaceStarted(["knn", "lora"], [Rung(108)], 216, 24, "accuracy")
    assert "108 of 216 train rows" in race.race_plan_line(started)
    assert "24 validation rows" in race.race_plan_line(started)
    line = race.rung_line(race.RungFinished(0, 108, 216, "accuracy", [
        {"strategy": "ia3", "score": 0.9, "kept": True},
        {"strategy": "full", "score": 0.8, "kept": True, "reprieved": True},
        {"strategy": "lora", "score": None, "kept": False}]))
    assert line == ("rung 1 (108 of 216 train rows), validation accuracy: ia3 0.900 "
                    "kept, full 0.800 kept (inside the interval), lora failed stopped")
    fixed = race.RaceStarted(["lora", "full", "ia3"], [Rung(54), Rung(108)], 216, 24,
                             "accuracy", fixed=["knn", "transfer"])
    assert ("knn, transfer (estimated cheap) run once on all of them and the test split, "
            "beside the race") in race.race_plan_line(fixed)
    none = race.RaceStarted(["knn", "lora"], [], 216, 24, "accuracy", note="1 of 2 entrants ...")
    assert race.race_plan_line(none) == "no race: 1 of 2 entrants ..."


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


def _race_plan(data, tmp_path, strategies, accuracy=ACCURACY, **kwargs):
    return fake_plan(data, tmp_path, strategies,
                     overrides={name: {"accuracy": value} for name, value in accuracy.items()
                                if name in strategies}, **kwargs)


CHEAP, EXPENSIVE = {"time_s": 5.0}, {"time_s": 600.0}  # the plan's estimates (the advisor's)


def _by_name(records):
    return {r["strategy"]: r for r in records}


@pytest.mark.timeout(300)
def test_a_race_keeps_the_better_half_and_tests_only_the_winner(data, tmp_path):
    events = []
    names = ["majority", *ACCURACY]
    # plain halving: no entrant kept for being inside the interval (tested on its own below)
    outcome = service.run_plan(_race_plan(data, tmp_path, names),
                               race=RaceSettings(eta=2, min_validation_rows=0),
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
    # ... with the same share of the full run's training budget, the full split's size known
    assert "budget fraction: 0.2444 of 90 train rows" in log  # 22 / 90
    assert [e["budget_fraction"] for e in winner["info"]["race"]["rungs"]] == [0.2444, 0.5]
    final_log = (outcome.run_dir / "logs" / "fake-scored-b.log").read_text()
    assert "budget fraction: 1.0000 of 90 train rows" in final_log  # the winner: in full
    rung_rows = journal.read_records(outcome.run_dir, "predictions/race-r1-fake-scored-d.jsonl")
    validation_texts = {row["text"] for row in split["validation"]}
    assert len(rung_rows) == validation_rows
    assert {row["input"] for row in rung_rows} == validation_texts
    assert not (outcome.run_dir / "work" / "race-r0-fake-scored-b").exists()  # artifacts dropped

    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["finished"] is True and kept["winner"] == "fake-scored-b"
    assert kept["outcome"]["fake-scored-a"] == "stopped"
    # 10 validation rows, under the 200-row cap: every rung scored all of them
    assert (kept["validation_rows"], kept["of_validation_rows"]) == (10, 10)
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
    outcome = service.run_plan(_race_plan(data, tmp_path, names),
                               race=RaceSettings(eta=2, min_racers=2))
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
    outcome = service.run_plan(_race_plan(data, tmp_path, names),
                               race=RaceSettings(eta=2, min_validation_rows=0), on_event=on_event,
                               cancel=cancel)
    assert outcome.interrupted and outcome.exit_code == 130
    # the one stopped at rung 1 is journalled; the two still racing are resumed at full budget
    assert [r["strategy"] for r in journal.read_records(outcome.run_dir)] == ["fake-scored-a"]
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["finished"] is False and kept["winner"] is None
    assert {name: [e["validation"] for e in entries] for name, entries in kept["rungs"].items()} \
        == {"fake-scored-a": [0.2], "fake-scored-b": [1.0], "fake-scored-c": [0.5]}
    assert "--resume" in outcome.resume_hint


@pytest.mark.timeout(300)
def test_a_cheap_entrant_runs_once_in_full_on_test_and_the_racers_halve_among_themselves(
        data, tmp_path):
    """b is estimated cheap: it runs once on every train row and the test split, as in a
    run-all, and takes no place in a rung, so the racers (a, c, d) are compared with each other
    at the same budget, not with a finished b."""
    events = []
    names = ["majority", *ACCURACY]
    estimates = {name: CHEAP if name == "fake-scored-b" else EXPENSIVE for name in ACCURACY}
    outcome = service.run_plan(_race_plan(data, tmp_path, names, estimates=estimates),
                               race=RaceSettings(eta=2, min_validation_rows=0),
                               on_event=events.append)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    records = _by_name(outcome.records)
    started = next(e for e in events if isinstance(e, race.RaceStarted))
    assert started.entrants == ["fake-scored-a", "fake-scored-c", "fake-scored-d"]
    assert started.fixed == ["fake-scored-b"] and started.note is None

    fixed = records["fake-scored-b"]
    assert fixed["status"] == "ok" and fixed["info"]["race"]["outcome"] == "fixed"
    assert fixed["info"]["race"]["rungs"] == [] and fixed["info"]["train_rows_seen"] == 90
    assert not list((outcome.run_dir / "logs").glob("race-*fake-scored-b*"))  # no rung job
    assert fixed["metrics"]["accuracy"] is not None  # it met the test split
    for event in (e for e in events if isinstance(e, race.RungFinished)):
        assert "fake-scored-b" not in [r["strategy"] for r in event.results]

    # three racers: rung 1 on 22 rows keeps 2 (d, c), rung 2 on 45 keeps the winner d
    assert records["fake-scored-a"]["error"].startswith(
        "stopped by the race at rung 1 of 2 (22 of 90 train rows)")
    assert records["fake-scored-c"]["error"].startswith(
        "stopped by the race at rung 2 of 2 (45 of 90 train rows)")
    winner = records["fake-scored-d"]
    assert winner["info"]["race"]["outcome"] == "winner"
    assert [e["train_rows"] for e in winner["info"]["race"]["rungs"]] == [22, 45]
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["raced"] is True and kept["fixed"] == ["fake-scored-b"]
    assert kept["estimated_s"]["fake-scored-b"] == 5.0
    assert race.race_wall_time(outcome.records) >= fixed["time_s"]["total"]

    from reports.html import write_report

    html = write_report(outcome.run_dir).read_text(encoding="utf-8")
    section = html[html.index('<section id="race">'):html.index('<section id="plots">')]
    assert "3 candidates raced on 10 validation rows after 22 → 45 of 90 train rows" in section
    assert ("fake-scored-b (estimated at 60 s or less, or training nothing) trained once on "
            "all 90 train rows and met the test split beside the race") in section


@pytest.mark.timeout(300)
def test_on_a_tiny_validation_split_one_more_inside_the_interval_goes_on(data, tmp_path):
    events = []
    accuracy = {"fake-scored-a": "0.2", "fake-scored-b": "1.0", "fake-scored-c": "0.8",
                "fake-scored-d": "0.9"}
    outcome = service.run_plan(_race_plan(data, tmp_path, list(accuracy), accuracy),
                               race=RaceSettings(eta=2), on_event=events.append)
    records = _by_name(outcome.records)
    first, last = [e for e in events if isinstance(e, race.RungFinished)]
    # 10 validation rows (< 20): keep 2 (b 1.0, d 0.9) and c (0.8, inside d's interval); a stops
    assert [(r["strategy"], r["kept"], r["reprieved"]) for r in first.results] == [
        ("fake-scored-b", True, False), ("fake-scored-d", True, False),
        ("fake-scored-c", True, True), ("fake-scored-a", False, False)]
    assert records["fake-scored-c"]["info"]["race"]["rungs"][0]["reprieved"] is True
    assert records["fake-scored-a"]["error"].endswith("below the 3 kept (lowest kept 0.800)")
    # never at the last rung: one winner
    assert [r["kept"] for r in last.results] == [True, False, False]
    assert records["fake-scored-b"]["info"]["race"]["outcome"] == "winner"


@pytest.mark.timeout(300)
def test_above_the_cap_every_rung_scores_the_same_subset(data, tmp_path):
    """6 of the 10 validation rows (3 of each label), the same for every rung of every racer;
    the tiny-split rule counts those 6 rows: at 8 rows or fewer it keeps one more inside the
    interval, though the split has 10. b, estimated cheap, runs once on test and predicts no
    validation row."""
    events = []
    accuracy = {"fake-scored-a": "0.67", "fake-scored-b": "1.0", "fake-scored-c": "0.84",
                "fake-scored-d": "1.0"}
    estimates = {name: CHEAP if name == "fake-scored-b" else EXPENSIVE for name in accuracy}
    settings = RaceSettings(eta=2, max_validation_rows=6, min_validation_rows=8)
    outcome = service.run_plan(_race_plan(data, tmp_path, list(accuracy), accuracy,
                                          estimates=estimates),
                               race=settings, on_event=events.append)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    split = journal.read_json(outcome.run_dir / journal.SPLIT)
    label_of = {row["text"]: row["label"] for row in split["validation"]}
    assert len(label_of) == 10

    predicted = sorted(path.name for path in (outcome.run_dir / "predictions").glob("race-*"))
    assert predicted == ["race-r0-fake-scored-a.jsonl", "race-r0-fake-scored-c.jsonl",
                         "race-r0-fake-scored-d.jsonl", "race-r1-fake-scored-a.jsonl",
                         "race-r1-fake-scored-c.jsonl", "race-r1-fake-scored-d.jsonl"]
    inputs = {name: [row["input"] for row in journal.read_records(
        outcome.run_dir, f"predictions/{name}")] for name in predicted}
    first = inputs[predicted[0]]
    assert all(rows == first for rows in inputs.values())  # the same rows, the same order
    assert len(first) == 6 and set(first) <= set(label_of)
    assert sorted(label_of[text] for text in first) == ["no"] * 3 + ["yes"] * 3  # stratified

    records = _by_name(outcome.records)
    # scored on 6 rows: d answers all 6 right, c round(0.84 x 6) = 5, a 4: a is reprieved
    rungs_c = records["fake-scored-c"]["info"]["race"]["rungs"]
    assert rungs_c[0]["validation"] == pytest.approx(5 / 6)
    assert records["fake-scored-a"]["info"]["race"]["rungs"][0]["reprieved"] is True
    assert records["fake-scored-a"]["info"]["race"]["outcome"] == "stopped"
    assert records["fake-scored-d"]["info"]["race"]["outcome"] == "winner"
    assert records["fake-scored-b"]["info"]["race"]["outcome"] == "fixed"
    assert records["fake-scored-b"]["metrics"]["accuracy"] == pytest.approx(8 / 12)  # on test
    info = records["fake-scored-d"]["info"]["race"]
    assert (info["validation_rows"], info["of_validation_rows"]) == (6, 10)
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert (kept["validation_rows"], kept["of_validation_rows"]) == (6, 10)
    assert kept["max_validation_rows"] == 6
    started = next(e for e in events if isinstance(e, race.RaceStarted))
    assert "scored on 6 of 10 validation rows (a seeded subset, the same at every rung)" \
        in race.race_plan_line(started)

    from reports.html import write_report

    html = write_report(outcome.run_dir).read_text(encoding="utf-8")
    assert "3 candidates raced on 6 of 10 validation rows after 22 → 45 of 90 train rows" in html


@pytest.mark.timeout(300)
def test_fewer_than_three_expensive_entrants_run_all_and_say_so(data, tmp_path):
    events = []
    names = ["majority", "fake-scored-a", "fake-scored-b", "fake-scored-c"]
    estimates = {"fake-scored-a": CHEAP, "fake-scored-b": CHEAP, "fake-scored-c": EXPENSIVE}
    outcome = service.run_plan(_race_plan(data, tmp_path, names, estimates=estimates),
                               race=RaceSettings(eta=2), on_event=events.append)
    assert outcome.exit_code == 0
    records = _by_name(outcome.records)
    assert all(r["status"] == "ok" for r in records.values())  # every one on test
    assert [records[n]["info"]["race"]["outcome"] for n in names[1:]] == ["full"] * 3
    assert records["fake-scored-b"]["info"]["train_rows_seen"] == 90
    assert not list((outcome.run_dir / "logs").glob("race-*"))  # no rung, no validation run
    started = next(e for e in events if isinstance(e, race.RaceStarted))
    assert not any(isinstance(e, race.RungFinished) for e in events)
    line = race.race_plan_line(started)
    assert line.startswith("no race: 1 of 3 entrants are estimated to take over 60 s "
                           "(fake-scored-c); with fewer than 3")
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["raced"] is False and kept["note"] == started.note and kept["finished"] is True

    from reports.html import write_report

    html = write_report(outcome.run_dir).read_text(encoding="utf-8")
    section = html[html.index('<section id="race">'):html.index('<section id="plots">')]
    assert "No race: the 3 candidate(s) each trained on every train row" in section
    assert "1 of 3 entrants are estimated" in section


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


# ------------------------------------------------------------------------- continuation


@pytest.fixture
def resumable():
    """Marks fakes as resumable (the catalogue's trait, as lora's): resumable("fake-scored-b")."""
    import dataclasses

    from strategies import catalogue

    saved = catalogue.snapshot()

    def mark(*names: str) -> None:
        entries = catalogue.snapshot()
        for name in names:
            entries[name] = dataclasses.replace(entries[name],
                                                traits=entries[name].traits | {"resumable"})
        catalogue.restore(entries)

    yield mark
    catalogue.restore(saved)


class _Recording:
    """The local executor, noting each batch of jobs and which rung folders exist as it
    starts (work/race-*)."""

    def __init__(self) -> None:
        from bench.executors import LocalExecutor

        self.inner, self.batches, self.folders = LocalExecutor(), [], []

    def run(self, jobs, on_event, cancel):
        self.batches.append({job.strategy: job for job in jobs})
        work = Path(jobs[0].run_dir) / "work"
        self.folders.append(sorted(path.name for path in work.glob("race-*")))
        yield from self.inner.run(jobs, on_event, cancel)


def _race_recorded(data, tmp_path, settings=None):
    executor = _Recording()
    outcome = service.run_plan(_race_plan(data, tmp_path, list(ACCURACY)), executor=executor,
                               race=settings or RaceSettings(eta=2, min_validation_rows=0))
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    return outcome, executor


@pytest.mark.timeout(300)
def test_a_resumable_racer_continues_its_last_rung_and_the_winner_its_last_rung(
        data, tmp_path, resumable):
    resumable(*ACCURACY)
    outcome, executor = _race_recorded(data, tmp_path)
    first, second, final = executor.batches  # rung 1 (22 rows), rung 2 (45 rows), the final
    assert all(job.save_checkpoint and job.resume_from is None for job in first.values())
    # b and d went on: each resumes its own rung-1 job's folder, and saves again
    assert set(second) == {"fake-scored-b", "fake-scored-d"}
    for name, job in second.items():
        assert job.resume_from == first[name].work_dir and job.save_checkpoint
        assert job.budget_fraction == 0.5  # cumulative: to half of the full run's steps
    # the stopped ones' folders were removed at once, the kept ones' kept for rung 2
    assert executor.folders[1] == ["race-r0-fake-scored-b", "race-r0-fake-scored-d"]
    winner = final["fake-scored-b"]
    assert (winner.resume_from, winner.budget_fraction) == (second["fake-scored-b"].work_dir,
                                                            None)
    assert not winner.save_checkpoint
    # at the final: only the winner's rung-2 folder (rung 1's went once rung 2 had resumed it)
    assert executor.folders[2] == ["race-r1-fake-scored-b"]
    assert not list((outcome.run_dir / "work").glob("race-*"))  # and none after the final

    records = _by_name(outcome.records)
    race_info = records["fake-scored-b"]["info"]["race"]
    assert [e.get("continued_from_rung") for e in race_info["rungs"]] == [None, 0]
    assert race_info["rungs"][1]["resumed_from_step"] == 22  # the fake: a step per train row
    assert race_info["final_continued_from_rung"] == 1
    assert records["fake-scored-b"]["info"]["budget"]["resumed_from_step"] == 45
    assert "resumed from step 45" in (outcome.run_dir / "logs" / "fake-scored-b.log").read_text()
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["continue_rungs"] is True and kept["continued"] == list(ACCURACY)


@pytest.mark.timeout(300)
def test_a_racer_that_cannot_resume_trains_each_rung_afresh(data, tmp_path, resumable):
    resumable("fake-scored-b")  # d (kept at rung 1) cannot resume: as adalora or encoder-ft
    outcome, executor = _race_recorded(data, tmp_path)
    first, second, final = executor.batches
    assert first["fake-scored-b"].save_checkpoint and not first["fake-scored-d"].save_checkpoint
    assert second["fake-scored-d"].resume_from is None
    assert not second["fake-scored-d"].save_checkpoint
    assert second["fake-scored-b"].resume_from == first["fake-scored-b"].work_dir
    assert executor.folders[1] == ["race-r0-fake-scored-b"]  # d's went after its rung, as ever
    records = _by_name(outcome.records)
    assert "continued_from_rung" not in records["fake-scored-d"]["info"]["race"]["rungs"][1]
    kept = json.loads((outcome.run_dir / race.RACE_FILE).read_text())
    assert kept["continued"] == ["fake-scored-b"]


@pytest.mark.timeout(300)
def test_without_continue_rungs_every_rung_and_the_final_train_afresh(data, tmp_path,
                                                                        resumable):
    resumable(*ACCURACY)
    outcome, executor = _race_recorded(
        data, tmp_path, RaceSettings(eta=2, min_validation_rows=0, continue_rungs=False))
    jobs = [job for batch in executor.batches for job in batch.values()]
    assert len(jobs) == 4 + 2 + 1
    assert all(job.resume_from is None and not job.save_checkpoint for job in jobs)
    assert executor.folders == [[], [], []]  # each rung's folder removed after its rung
    race_info = _by_name(outcome.records)["fake-scored-b"]["info"]["race"]
    assert race_info["final_continued_from_rung"] is None
    assert all("continued_from_rung" not in e for e in race_info["rungs"])
    assert "resumed from step 0 of None" in (
        outcome.run_dir / "logs" / "fake-scored-b.log").read_text()


def test_a_job_continued_only_when_its_record_says_it_resumed():
    resumed = {"info": {"budget": {"resumed_from_step": 22}}}
    assert race._continued_from(resumed, 0) == 0
    assert race._continued_from(resumed, None) is None  # not asked: afresh
    # asked, but it trained from step 0 (a scratch Ray node), or says nothing (it failed)
    assert race._continued_from({"info": {"budget": {"resumed_from_step": 0}}}, 0) is None
    assert race._continued_from({"status": "failed", "info": {}}, 0) is None


def test_which_strategies_continue():
    settings = RaceSettings(eta=2)
    assert race_rules.continues("lora", settings) and race_rules.continues("full", settings)
    # adalora's rank schedule is built for a fixed total; encoder-ft is not a Trainer of ours
    assert not race_rules.continues("adalora", settings)
    assert not race_rules.continues("encoder-ft", settings)
    assert not race_rules.continues("lora", RaceSettings(eta=2, continue_rungs=False))
    assert not race_rules.can_continue("no-such-strategy")


@pytest.mark.timeout(300)
def test_an_interrupted_race_drops_its_checkpoints_and_resume_runs_the_rest_afresh(
        data, tmp_path, resumable):
    from bench.plan import BenchPlan

    resumable(*ACCURACY)
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, race.RungFinished):
            cancel.set()  # Ctrl-C right after rung 1: b and d hold checkpoints

    names = list(ACCURACY)
    outcome = service.run_plan(_race_plan(data, tmp_path, names),
                               race=RaceSettings(eta=2, min_validation_rows=0), on_event=on_event,
                               cancel=cancel)
    assert outcome.interrupted
    assert not list((outcome.run_dir / "work").glob("race-*"))  # nothing will resume them
    resumed = service.run_plan(BenchPlan(data="", resume=str(outcome.run_dir),
                                         command="pytest"))
    assert resumed.exit_code == 0, [r.get("error") for r in resumed.records]
    records = _by_name(resumed.records)
    for name in ("fake-scored-b", "fake-scored-d"):  # still in the race: in full, afresh
        assert records[name]["status"] == "ok"
        assert records[name]["info"]["budget"]["resumed_from_step"] == 0
        assert records[name]["info"]["train_rows_seen"] == 90


def _profile_108() -> dict:
    return {"rows": 160, "splits": {"train": 108, "validation": 24, "test": 28},
            "token_length": {"p50": 40, "p90": 80, "p99": 120, "max": 140},
            "labels": {name: 36 for name in "abcd"}, "task": "classification"}


def test_a_continuing_rung_and_final_are_charged_their_increments():
    """Rungs on 27 and 54 of 108 rows: lora's rung 2 continues rung 1 (a quarter of the full
    run's steps) and trains another quarter; the final continues rung 2 and trains the last
    half. Charged its cumulative share (half), rung 2 would cost about what it did afresh."""
    from bench.race_rules import estimated_final_seconds, profile_estimate

    profile = _profile_108()
    lora = estimate_job("lora")
    afresh = estimated_rung_seconds(lora, profile, 54, 24, 108)
    continued = estimated_rung_seconds(lora, profile, 54, 24, 108, from_fraction=0.25)
    rung_profile = {**profile, "splits": {**profile["splits"], "train": 54, "test": 24}}
    assert continued == profile_estimate(lora, rung_profile, budget_fraction=0.5,
                                         full_train_rows=108, continues_from=0.25)
    assert continued < afresh
    full = profile_estimate(lora, profile)
    final = estimated_final_seconds(lora, profile, 0.5, 108)
    assert final == profile_estimate(lora, profile, full_train_rows=108, continues_from=0.5)
    assert final < full
    # a last rung on every row leaves no steps: charged the estimator's least, not a full run
    assert estimated_final_seconds(lora, profile, 1.0, 108) < final


def test_a_continuing_job_trains_its_increment_of_the_time_bounded_schedule():
    """As strategies.training_budget.continuing_budget plans it: the schedule is the full
    run's steps cut to the time bound, a rung trains at least RUNG_MIN_STEPS of it. Where a
    step is dear (long QA contexts) the schedule is short and a first rung on a ninth of the
    rows trains 8 of its 27 steps, not a ninth of them, and resumed jobs time nothing."""
    from advisor.estimate import continuing_workload
    from advisor.estimate_workload import Workload

    rung = Workload(train_rows=100, full_train_rows=900, budget_fraction=1 / 9, batch_size=8,
                    epochs=3, time_budget_s=300.0, continues_from=0.0)
    # 900 rows x 3 epochs / 8 = 338 steps; at 0.1 s a step all of them fit: a ninth is 38
    assert continuing_workload(rung, step_s=0.1).trained_rows == 38 * 8
    # at 10 s a step (1.1x for the optimizer) 27 fit: the rung's floor of 8, not 3
    first = continuing_workload(rung, step_s=10.0)
    assert first.trained_rows == 8 * 8 and first.time_budget_s == 300.0  # it times the schedule
    second = continuing_workload(replace(rung, train_rows=300, budget_fraction=1 / 3,
                                         continues_from=1 / 9), step_s=10.0)
    assert second.trained_rows == 1 * 8 and second.time_budget_s == 0.0  # 8 -> 9, no timing
    final = continuing_workload(replace(rung, train_rows=900, budget_fraction=1.0,
                                        continues_from=1 / 3), step_s=10.0)
    assert final.trained_rows == (27 - 9) * 8


def test_a_race_on_long_qa_rows_is_estimated_with_its_rungs_at_the_floor():
    """squad_mini (108 train rows, contexts of ~190 tokens): a LoRA step took ~15 s on 2 cores,
    the schedule fitted 11 steps, and each first rung trained 8 of them (LoRA's in 194 s).
    Charged a share of the time bound (44 s), a first rung was estimated at ~80 s and the race
    at 0.47 of run-all; with the floor on the time-bounded schedule, at ~0.6, as measured
    (benchmarks/advisor_regret.py --datasets squad_mini --candidate-set methods, 2026-12-04)."""
    from bench.race_rules import estimated_cost

    profile = {"task": "qa", "rows": 180, "splits": {"train": 108, "validation": 12, "test": 60},
               "token_length": {"p50": 188, "p90": 314, "p99": 514, "max": 517},
               "has_corpus": True, "corpus_docs": 111}
    lora = estimate_job("lora")
    afresh = estimated_rung_seconds(lora, profile, 16, 12, 108)
    first = estimated_rung_seconds(lora, profile, 16, 12, 108, from_fraction=0.0)
    assert first > 2 * afresh
    racers, fixed = ["lora", "dora", "ia3", "prompt-tuning", "full", "freeze"], ["few-shot", "rag"]
    jobs = [estimate_job(name) for name in (*racers, *fixed)]
    race_s, run_all_s = estimated_cost(jobs, racers, fixed, [Rung(16), Rung(36)], profile, 108,
                                       12, RaceSettings())
    assert 0.55 < race_s / run_all_s < 0.8


def test_the_race_cost_charges_continuing_racers_increments_and_the_others_in_full():
    from bench.race_rules import estimated_cost, estimated_final_seconds, profile_estimate

    profile = _profile_108()
    racers, fixed = ["lora", "full", "adalora"], ["knn"]  # adalora cannot continue
    jobs = [estimate_job(name) for name in (*racers, *fixed)]
    rungs = [Rung(27), Rung(54)]
    settings = RaceSettings(eta=2)
    full = {j.strategy: profile_estimate(j, profile) for j in jobs}
    by_name = {j.strategy: j for j in jobs}

    def rung_s(name, rows, previous):  # previous None: afresh (adalora)
        return estimated_rung_seconds(by_name[name], profile, rows, 24, 108,
                                      from_fraction=previous)

    continued = [{n: rung_s(n, 27, 0.0 if n != "adalora" else None) for n in racers},
                 {n: rung_s(n, 54, 0.25 if n != "adalora" else None) for n in racers}]
    final = {n: estimated_final_seconds(by_name[n], profile, 0.5, 108) for n in ("lora", "full")}
    final["adalora"] = full["adalora"]
    mixed = estimated_cost(jobs, racers, fixed, rungs, profile, 108, 24, settings)
    assert mixed == race_cost(racers, fixed, rungs, full, continued, settings, final)
    # afresh, every rung's whole share and the final in full: exactly the model before
    afresh = [{n: rung_s(n, r.train_rows, None) for n in racers} for r in rungs]
    no_continue = RaceSettings(eta=2, continue_rungs=False)
    before = estimated_cost(jobs, racers, fixed, rungs, profile, 108, 24, no_continue)
    assert before == race_cost(racers, fixed, rungs, full, afresh, no_continue)
    assert mixed[1] == before[1] and mixed[0] < before[0]
    # with no racer able to continue, continue_rungs changes nothing
    only = ["adalora", "encoder-ft"]
    jobs = [estimate_job(name) for name in only]
    assert estimated_cost(jobs, only, [], rungs, profile, 108, 24, settings) == \
        estimated_cost(jobs, only, [], rungs, profile, 108, 24, no_continue)


@pytest.mark.timeout(600)
def test_a_race_of_real_fine_tuning_methods_continues_each_rung_and_the_final(data, tmp_path):
    """lora, ia3 and prompt-tuning on the tiny Llama through the harness: each rung resumes
    its racer's previous rung (the Trainer's checkpoint: the step count carried), the winner's
    final resumes its last rung and trains to the end of the full run's schedule, and no rung
    folder is left behind."""
    names = ["lora", "ia3", "prompt-tuning"]
    # a time bound far above what the tiny model needs: the schedule is timed, never cut
    quick = {"epochs": 3, "batch_size": 8, "min_steps": 0, "time_budget_s": 3600,
             "patience": 0}
    plan = fake_plan(data, tmp_path, names, overrides={name: dict(quick) for name in names},
                     estimates={name: EXPENSIVE for name in names})
    # raced whatever the estimator says of the tiny model (it would run them all in full)
    settings = RaceSettings(eta=2, min_validation_rows=0, max_cost_ratio=1e6)
    outcome = service.run_plan(plan, race=settings)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    records = _by_name(outcome.records)
    winner = next(r for r in outcome.records if r["info"]["race"]["outcome"] == "winner")
    rungs = winner["info"]["race"]["rungs"]
    # 90 train rows / 8 a step x 3 epochs = 36 steps in full; rung 1 (22 of 90 rows): 9 of
    # them, rung 2 (45 rows): half of 36, resumed from 9; the final: on to 36, resumed from 18
    assert [e["train_rows"] for e in rungs] == [22, 45]
    assert rungs[1]["continued_from_rung"] == 0 and rungs[1]["resumed_from_step"] == 9
    assert winner["info"]["race"]["final_continued_from_rung"] == 1
    # rung 0 timed the full run's schedule; rung 1 resumed it and timed nothing; both predicted
    assert rungs[0]["fitting_s"] > 0 and rungs[1]["fitting_s"] == 0
    assert all(0 < e["predict_s"] < e["time_s"] and e["load_s"] > 0 for e in rungs)
    budget = winner["info"]["budget"]
    assert (budget["resumed_from_step"], budget["schedule_steps"]) == (18, 36)
    assert winner["info"]["steps"] == 36
    stopped = [r for r in records.values() if r["info"]["race"]["outcome"] == "stopped"]
    assert len(stopped) == 2
    assert not list((outcome.run_dir / "work").glob("race-*"))  # every checkpoint removed
