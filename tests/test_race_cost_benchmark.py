"""benchmarks/race_cost.py: the race's estimated cost against run-all, no training."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def race_cost():
    yield load_benchmark("race_cost", "race_cost")
    sys.modules.pop("race_cost", None)


def test_more_racers_lower_the_ratio_and_the_floor_stays_below_it(race_cost):
    cells = race_cost.grid(["classification"], [100, 300], [3, 6, 9], race_cost.REFERENCE_CPU)
    for train in (100, 300):
        row = [c for c in cells if c.train_rows == train]
        assert [c.asked_racers for c in row] == [3, 6, 9]
        ratios = [c.ratio for c in row]
        assert all(r is not None for r in ratios)
        assert ratios[0] > ratios[1] > ratios[2]  # halving pays more the more there are
    for c in cells:
        # on the reference CPU the LLM trainers race, knn and transfer are cheap (fixed)
        assert c.fixed == ["knn", "transfer"] and len(c.racers) == c.asked_racers
        # the last rung trains a third of the rows (eta 3: a third goes on)
        assert c.rungs and c.rungs[-1] == round(c.train_rows / 3)
        assert 0 < c.floor_best <= c.floor_worst
        assert c.floor_best <= c.ratio  # the race pays its winner in full, and the rungs besides
        assert c.races == (c.ratio <= race_cost.RaceSettings().max_cost_ratio)


def test_validation_rows_are_carved_as_bench_carves_them(race_cost):
    assert race_cost.validation_rows(90) == 10  # 100 rows given: 10 to validation
    assert race_cost.validation_rows(9000) == 1000  # no cap on the split
    profile = race_cost.data_profile("classification", 90, 10, 200, labels=3)
    assert profile["splits"] == {"train": 90, "validation": 10, "test": 200}
    assert len(profile["labels"]) == 3


def test_the_rungs_score_at_most_the_races_validation_cap(race_cost):
    cpu = race_cost.REFERENCE_CPU
    capped = race_cost.cell("classification", 9000, 9, cpu)
    uncapped = race_cost.cell("classification", 9000, 9, cpu,
                              settings=race_cost.RaceSettings(max_validation_rows=0))
    assert (capped.validation_rows, capped.scored_rows) == (1000, 200)
    assert (uncapped.validation_rows, uncapped.scored_rows) == (1000, 1000)
    assert capped.run_all_s == uncapped.run_all_s and capped.ratio < uncapped.ratio
    small = race_cost.cell("classification", 900, 9, cpu)  # 100 validation rows: all scored
    assert small.scored_rows == small.validation_rows == 100
    assert "| classification | 9000 | 1000 (200) | 9 |" in "\n".join(
        race_cost.table_lines([capped]))


def test_a_fast_gpu_makes_every_entrant_cheap_and_nothing_races(race_cost):
    c = race_cost.cell("classification", 300, 3, race_cost.gpu("H200"))
    assert c.racers == [] and c.races is False and c.ratio is None
    assert "every entrant estimated" in c.why
    assert c.run_all_s > 0


def _cell(race_cost, train, racers, ratio):
    return race_cost.Cell("qa", train, 10, 10, racers, ["a"] * racers, [], [16], ratio * 100.0,
                          100.0, 0.1, 0.2, True, "")


def test_the_summary_names_the_first_cell_at_or_under_a_third(race_cost):
    cells = [_cell(race_cost, 100, 3, 0.9), _cell(race_cost, 100, 9, 0.30),
             _cell(race_cost, 1000, 3, 0.6), _cell(race_cost, 1000, 9, 0.2)]
    line = race_cost.summary_line(cells, "qa")
    assert "100 train rows and 9 LLM racers (0.30)" in line
    assert "first estimated at or under 0.33" in line
    none = race_cost.summary_line(cells[:1] + cells[2:3], "qa")
    assert none.startswith("qa: never at or under 0.33") and "lowest 0.60 with 1000" in none


def test_the_table_and_the_user_errors(race_cost, capsys):
    assert race_cost.main(["--train", "100", "--racers", "3", "--tasks", "classification"]) == 0
    out = capsys.readouterr().out
    assert "estimated, not measured" in out and "| classification | 100 | 11 | 3 | 3 | 2 |" in out
    assert race_cost.main(["--gpu", "nosuchcard"]) == 2
    assert "--gpu nosuchcard" in capsys.readouterr().err
    assert race_cost.main(["--tasks", "poetry"]) == 2
    assert race_cost.main(["--racers", "12"]) == 2
    assert race_cost.main(["--max-validation-rows", "-1"]) == 2
    assert "max_validation_rows -1" in capsys.readouterr().err


def test_continuing_rungs_cost_less_than_training_each_afresh(race_cost):
    cpu = race_cost.REFERENCE_CPU
    continued = race_cost.cell("classification", 300, 6, cpu)
    afresh = race_cost.cell("classification", 300, 6, cpu,
                            settings=race_cost.RaceSettings(continue_rungs=False))
    assert continued.run_all_s == afresh.run_all_s and continued.rungs == afresh.rungs
    assert afresh.ratio > continued.ratio
    # a racer's rungs and final together train about its full run: at least the winner's
    assert continued.ratio >= continued.floor_best


def test_no_continue_and_eta_reach_the_settings_and_the_header(race_cost, capsys):
    args = ["--train", "300", "--racers", "6", "--tasks", "classification"]
    assert race_cost.main(args) == 0
    default = capsys.readouterr().out
    assert "eta 3; a resumable racer's next rung and final continue its last rung" in default
    assert race_cost.main([*args, "--no-continue", "--eta", "2"]) == 0
    afresh = capsys.readouterr().out
    assert "eta 2; every rung and the final train afresh" in afresh
    assert "| 38 → 75 → 150 |" in afresh and "| 33 → 100 |" in default  # a third goes on
    assert race_cost.main([*args, "--eta", "1"]) == 2
    assert "eta 1 must be at least 2" in capsys.readouterr().err
