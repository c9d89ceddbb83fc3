"""benchmarks/advisor_regret.py: the pure parts (regret, intervals, the table), no training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def regret():
    yield load_benchmark("advisor_regret", "advisor_regret")
    sys.modules.pop("advisor_regret", None)


def record(strategy, value, ci=None, status="ok", outcome=None, seconds=None):
    info = {"race": {"outcome": outcome}} if outcome else {}
    return {"strategy": strategy, "status": status, "primary_metric": "accuracy",
            "metrics": {"accuracy": value} if status == "ok" else {},
            "metrics_ci": {"accuracy": ci} if ci else {}, "info": info,
            **({"time_s": {"total": seconds}} if seconds is not None else {})}


def test_points_lost_and_the_interval(regret):
    assert regret.points_lost(0.975, 0.867) == 10.8
    assert regret.points_lost(0.8, 0.8) == 0.0
    assert regret.points_lost(0.8, 0.9) == 0.0  # never negative: the best is the best
    assert regret.points_lost(None, 0.5) is None and regret.points_lost(0.5, None) is None
    assert regret.inside_interval(0.93, [0.92, 0.99]) is True
    assert regret.inside_interval(0.91, [0.92, 0.99]) is False
    assert regret.inside_interval(0.91, None) is None


def test_a_row_scores_each_pick_on_run_alls_records(regret):
    run_all = [record("majority", 0.17), record("knn", 0.975, [0.94, 1.0]),
               record("lora", 0.867, [0.8, 0.92]), record("full", None, status="failed")]
    raced = [record("majority", 0.17), record("knn", 0.97, outcome="winner"),
             {**record("lora", None, status="skipped"), "info": {"race": {"outcome": "stopped"}}}]
    row = regret.regret_row("banking", "classification", run_all, raced,
                            {"rules": ("lora", ""), "probes": (None, "this advisor has no probes")},
                            race_wall_s=40.0, run_all_wall_s=160.0)
    assert (row.best, row.best_score, row.best_ci) == ("knn", 0.975, [0.94, 1.0])
    assert (row.rules.pick, row.rules.score, row.rules.regret, row.rules.inside) == \
        ("lora", 0.867, 10.8, False)
    assert row.probes.pick is None and row.probes.regret is None
    # the race's winner is scored on the race's own record of it
    assert (row.race.pick, row.race.score, row.race.regret, row.race.inside) == \
        ("knn", 0.97, 0.5, True)
    assert row.race_found_best is True and row.time_ratio == 0.25


def test_the_table_and_the_summary(regret):
    run_all = [record("knn", 0.9, [0.85, 0.95]), record("lora", 0.88)]
    rows = [regret.regret_row("a", "classification", run_all,
                              [record("lora", 0.87, outcome="winner")],
                              {"rules": ("lora", ""), "probes": ("knn", "")}, 30.0, 60.0),
            regret.regret_row("b", "qa", [record("rag", 0.4, [0.3, 0.5])], [],
                              {"rules": ("lora", ""), "probes": (None, "no probes here")},
                              10.0, 0.0)]
    lines = regret.table_lines(rows)
    assert lines[0].startswith("| dataset | task | best (run-all) [95% CI] |")
    assert len(lines) == 4 and all(line.count("|") == len(regret.HEADER) + 1 for line in lines)
    assert "| a | classification | knn 0.900 [0.850, 0.950] | lora 0.880 | 2.0 | yes |" in lines[2]
    assert "| knn 0.900 | 0.0 | yes | lora 0.870 | 3.0 | no | 30 | 60 | 0.50 | n/a |" \
        in lines[2]  # the winner's record says no time: no floor
    assert "lora (not in the measured set)" in lines[3] and "n/a (no probes here)" in lines[3]
    summary = regret.summary_lines(rows)
    assert summary[0] == ("rules pick within 2 points of the best or inside its interval: "
                          "1/1 datasets")
    # the race's lora: not knn, 3 points under it, but inside its interval [0.85, 0.95]
    assert summary[2].startswith("race found run-all's best: 0/1 datasets (its choice within 2 "
                                 "points of the best or inside its interval: 1/1); race wall "
                                 "time <= 1/3 of run-all: 0/1")


def test_the_floor_is_the_race_choices_full_run_over_run_alls_wall_time(regret):
    """However cheap its rungs, a race that trains its winner in full costs at least that run:
    here lora's 45 s of run-all's 60 s (as run-all ran it: the race's final may have continued
    a rung and trained only the rest), so no race on these candidates reaches 1/3."""
    run_all = [record("knn", 0.9, seconds=15.0), record("lora", 0.95, seconds=45.0)]
    raced = [record("lora", 0.95, outcome="winner", seconds=20.0)]  # a continued final
    row = regret.regret_row("a", "classification", run_all, raced, {}, 70.0, 60.0)
    assert row.race_choice_full_s == 45.0 and row.floor == pytest.approx(0.75)
    assert regret.table_lines([row])[2].endswith("| 70 | 60 | 1.17 | 0.75 |")
    cheap = regret.regret_row("b", "classification", run_all,
                              [record("knn", 0.9, outcome="winner", seconds=15.0)], {}, 30.0,
                              60.0)
    assert cheap.floor == 0.25
    assert regret.floor_line([row, cheap]) == (
        "race floor (its choice's full run / run-all's wall time): <= 1/3 on 1/2 datasets "
        "(median 0.75)")
    # a declined race's choice is its own best, and its full run is that record's
    no_race = {"race": {"raced": False, "outcome": "full"}}
    declined = [{**record("knn", 0.9, seconds=15.0), "info": no_race},
                {**record("lora", 0.95, seconds=45.0), "info": no_race}]
    row = regret.regret_row("c", "classification", run_all, declined, {}, 60.0, 60.0)
    assert row.floor == 0.75


def test_the_races_choice_is_its_best_on_test_fixed_entrants_and_baselines_included(regret):
    """The cheap (fixed) entrants and the baselines met the test split beside the racers'
    winner: the race chooses among them as run-all does, by the test score."""
    run_all = [record("knn", 0.97, seconds=10.0), record("lora", 0.9, seconds=45.0)]
    raced = [record("knn", 0.97, outcome="fixed", seconds=10.0),
             record("lora", 0.9, outcome="winner", seconds=20.0),
             record("ia3", None, outcome="stopped")]
    chosen, note = regret.race_choice(raced)
    assert chosen["strategy"] == "knn" and note == "the racers' winner lora 0.900 on test"
    row = regret.regret_row("a", "classification", run_all, raced, {}, 30.0, 90.0)
    assert row.race.pick == "knn" and row.race_found_best and row.race_choice_full_s == 10.0
    alone = [record("lora", 0.9, outcome="winner", seconds=20.0)]
    assert regret.race_choice(alone) == (alone[0], "")


def test_slices_are_label_balanced_and_capped(regret, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    rows = [{"text": f"t{i}", "label": "a" if i < 8 else "b"} for i in range(10)]
    for name in ("train.jsonl", "test.jsonl"):
        (source / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (source / "corpus.jsonl").write_text('{"id": "1", "text": "doc"}\n')
    out = regret.sliced(source, "classification", tmp_path / "out", 4, 2)
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [r["label"] for r in train] == ["a", "b", "a", "b"]
    assert len((out / "test.jsonl").read_text().splitlines()) == 2
    assert (out / "corpus.jsonl").exists()
    assert regret.sliced(source, "classification", tmp_path / "none", 0, 0) == source


def test_probes_degrade_to_n_a_when_the_advisor_has_none(regret, monkeypatch):
    import advisor.recommend as recommend_module

    seen = []

    def rules_only(answers, *, measure=True):  # an advisor without probes
        seen.append(answers["data"]["path"])
        raise AssertionError("not called with probes")

    monkeypatch.setattr(recommend_module, "recommend", rules_only)
    pick, note = regret.advisor_pick("classification", Path("data"), with_probes=True)
    assert pick is None and note == "this advisor has no probes" and seen == []


def test_a_line_separator_inside_a_json_string_does_not_split_the_row(regret, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"text": "a\u2028b\x85c", "label": "x"}, ensure_ascii=False)
                    + "\n", encoding="utf-8")
    assert regret._read_jsonl(path) == [{"text": "a\u2028b\x85c", "label": "x"}]


def test_unknown_datasets_are_refused_before_anything_runs(regret, capsys):
    with pytest.raises(SystemExit, match="unknown dataset 'nope'"):
        regret.main(["--datasets", "nope"])


def test_when_the_race_did_not_race_its_choice_is_its_own_best(regret):
    no_race = {"race": {"raced": False, "outcome": "full"}}
    raced = [record("majority", 0.17), {**record("knn", 0.9), "info": no_race},
             {**record("lora", 0.95), "info": no_race}]
    chosen, note = regret.race_choice(raced)
    assert chosen["strategy"] == "lora" and note == "no race: ran all"
    row = regret.regret_row("a", "classification", [record("knn", 0.9), record("lora", 0.95)],
                            raced, {"rules": ("knn", "")}, 60.0, 60.0)
    assert row.race_found_best is True and row.race.note == "no race: ran all"
    assert "| lora 0.950 (no race: ran all) | 0.0 | yes |" in regret.table_lines([row])[2]
    assert regret.race_choice([record("knn", 0.9)]) == (None, "the race had no winner")


def test_a_declined_race_is_run_all_and_is_not_run_twice(regret, tmp_path):
    from bench.race import RACE_FILE

    assert regret.did_race(None) is False and regret.did_race(tmp_path) is False  # no race.json
    (tmp_path / RACE_FILE).write_text(json.dumps({"raced": False, "note": "no race: ..."}))
    assert regret.did_race(tmp_path) is False
    (tmp_path / RACE_FILE).write_text(json.dumps({"raced": True}))
    assert regret.did_race(tmp_path) is True


def test_rung_cost_counts_each_validation_run_once_with_its_start_up(regret):
    race = {"rungs": {
        "knn": [{"time_s": 20.0, "load_s": 15.0, "fixed": True},
                {"time_s": 0.0, "load_s": 0.0, "fixed": True}],  # its score carried: free
        "lora": [{"time_s": 60.0, "load_s": 25.0}, {"time_s": 90.0, "load_s": 24.0}]}}
    assert regret.rung_cost(race) == {"jobs": 3, "seconds": 170.0, "load_seconds": 64.0,
                                      "fitting_seconds": 0.0, "predict_seconds": 0.0}


def test_the_race_note_says_what_its_rungs_paid_beside_training(regret, tmp_path):
    from bench.race import RACE_FILE

    race = {"raced": True, "schedule": [{"train_rows": 40}, {"train_rows": 120}],
            "train_rows": 360, "validation_rows": 40, "fixed": ["knn"],
            "rungs": {"lora": [{"time_s": 60.0, "load_s": 6.0, "fitting_s": 9.0,
                                "predict_s": 4.0},
                               {"time_s": 50.0, "load_s": 5.0, "fitting_s": 0.0,
                                "predict_s": 5.0}]}}
    (tmp_path / RACE_FILE).write_text(json.dumps(race))
    note, = regret.race_notes(tmp_path)
    assert note.endswith("2 validation runs took 110 s, 11 s of it starting up (process, "
                         "imports, model load), 9 s timing steps and validation rows to plan "
                         "schedules, 9 s predicting the validation rows, 81 s training (with "
                         "the Trainer's setup)")
    for entries in race["rungs"].values():  # a race.json from before: no such parts
        for entry in entries:
            del entry["fitting_s"], entry["predict_s"]
    (tmp_path / RACE_FILE).write_text(json.dumps(race))
    assert regret.race_notes(tmp_path)[0].endswith("(process, imports, model load)")


def test_a_race_choice_tied_with_run_alls_best_on_test_found_the_best(regret):
    run_all = [record("knn", 0.979), record("transfer", 0.979), record("lora", 0.79)]
    row = regret.regret_row("a", "classification", run_all,
                            [record("transfer", 0.979, outcome="winner")], {}, 10.0, 30.0)
    assert row.best == "knn" and row.race_found_best is True and row.race.regret == 0.0
    row = regret.regret_row("a", "classification", run_all,
                            [record("lora", 0.79, outcome="winner")], {}, 10.0, 30.0)
    assert row.race_found_best is False


def _row_file(regret, path, dataset, best_value, pick_value, race_s, all_s, day=None):
    run_all = [record("knn", best_value, [best_value - 0.05, best_value + 0.02]),
               record("lora", pick_value)]
    row = regret.regret_row(dataset, "classification", run_all,
                            [record("knn", best_value, outcome="winner")],
                            {"rules": ("lora", ""), "probes": ("knn", "")}, race_s, all_s)
    row.notes.append(f"a note about {dataset}")
    item = {**regret.asdict(row), "time_ratio": row.time_ratio}  # what --json writes
    if day:
        item["measured_on"] = day
    path.write_text(json.dumps([item]))
    return path


def test_combine_prints_one_table_from_per_dataset_json_files(regret, tmp_path, capsys):
    first = _row_file(regret, tmp_path / "a.json", "alpha", 0.9, 0.8, 20.0, 80.0, "2026-12-01")
    second = _row_file(regret, tmp_path / "b.json", "beta", 0.7, 0.69, 50.0, 100.0, "2026-12-03")
    assert regret.main(["--combine", str(first), str(second)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| dataset | task | best (run-all) [95% CI] |")
    assert "| alpha | classification | knn 0.900 [0.850, 0.920] | lora 0.800 | 10.0 | no |" \
        in out[2]
    assert "| beta | classification | knn 0.700 [0.650, 0.720] | lora 0.690 | 1.0 | yes |" \
        in out[3]
    assert "note: alpha: a note about alpha" in out and "note: beta: a note about beta" in out
    # alpha's rules pick lost 10 points, beta's 1: one of two within 2 points
    assert ("rules pick within 2 points of the best or inside its interval: 1/2 datasets"
            in out)
    assert ("race found run-all's best: 2/2 datasets (its choice within 2 points of the best "
            "or inside its interval: 2/2); race wall time <= 1/3 of run-all: 1/2 "
            "(median ratio 0.50)") in out
    assert out[-1].endswith("race + run-all 250 s in all (2 files combined); "
                            "measured 2026-12-01 to 2026-12-03")


def test_combine_reads_rows_from_before_the_floor_as_n_a(regret, tmp_path, capsys):
    old = _row_file(regret, tmp_path / "old.json", "alpha", 0.9, 0.8, 20.0, 80.0, "2026-12-03")
    item = json.loads(old.read_text())[0]
    item.pop("race_choice_full_s")  # a row written before the floor was recorded
    old.write_text(json.dumps([item]))
    run_all = [record("knn", 0.9, [0.85, 0.92], seconds=12.0), record("lora", 0.8)]
    row = regret.regret_row("beta", "classification", run_all,
                            [record("knn", 0.9, outcome="winner", seconds=20.0)], {}, 50.0,
                            100.0)
    new = tmp_path / "new.json"
    new.write_text(json.dumps([{**regret.asdict(row), "time_ratio": row.time_ratio,
                                "floor": row.floor, "measured_on": "2026-12-03"}]))
    assert regret.main(["--combine", str(old), str(new)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("| alpha |") and out[2].endswith("| 20 | 80 | 0.25 | n/a |")
    assert out[3].startswith("| beta |") and out[3].endswith("| 50 | 100 | 0.50 | 0.12 |")
    assert ("race floor (its choice's full run / run-all's wall time): <= 1/3 on 1/1 datasets "
            "(median 0.12); n/a on 1") in out
    assert regret.floor_line(regret.read_rows(old)[0]) == (
        "race floor (its choice's full run / run-all's wall time): n/a on all 1 datasets "
        "(rows from before it was recorded)")


def test_combine_refuses_a_file_that_is_not_regret_rows(regret, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"dataset": "x"}]))
    with pytest.raises(SystemExit, match="bad.json: cannot read regret rows"):
        regret.main(["--combine", str(bad)])


def test_repick_scores_new_picks_on_the_rows_run_all_and_keeps_its_race(regret, tmp_path,
                                                                       monkeypatch):
    from bench import journal

    old = _row_file(regret, tmp_path / "old.json", "banking_support", 0.9, 0.8, 20.0, 80.0,
                    "2026-12-01")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    knn = {**record("knn", 0.9, [0.85, 0.92]), "time_s": {"total": 20.0}}
    for rec in (knn, record("lora", 0.8), record("transfer", 0.88)):
        journal.append_record(run_dir, rec)
    monkeypatch.setattr(regret, "advisor_pick",
                        lambda task, data, with_probes: ("transfer" if with_probes else "lora", ""))
    out = tmp_path / "out.json"
    assert regret.main(["--datasets", "banking_support", "--max-rows", "0", "--max-test-rows",
                        "0", "--out", str(tmp_path / "o"), "--repick", str(old),
                        "--run-all-dir", str(run_dir), "--json", str(out)]) == 0
    row = regret.read_rows(out)[0][0]
    assert (row.rules.pick, row.rules.regret) == ("lora", 10.0)
    assert (row.probes.pick, row.probes.regret, row.probes.inside) == ("transfer", 2.0, True)
    assert (row.race.pick, row.race_wall_s, row.run_all_wall_s) == ("knn", 20.0, 80.0)
    # the old row had no floor: its race choice's full run is read from run-all's record
    assert row.race_choice_full_s == 20.0 and row.floor == 0.25
    assert any("scored on the records of run-all measured 2026-12-01" in n for n in row.notes)
    # a run folder whose best is not the row's best is another run-all: refused
    other = tmp_path / "other"
    other.mkdir()
    journal.append_record(other, record("knn", 0.5))
    with pytest.raises(SystemExit, match="not that row's run-all"):
        regret.main(["--datasets", "banking_support", "--max-rows", "0", "--max-test-rows", "0",
                     "--out", str(tmp_path / "o"), "--repick", str(old), "--run-all-dir",
                     str(other)])


def test_the_methods_set_adds_every_fine_tuning_method_beside_lora(regret):
    methods = regret.CANDIDATE_SETS["methods"]
    for task in ("classification", "qa", "generation"):
        assert methods[task][:len(regret.CANDIDATES[task])] == regret.CANDIDATES[task]
        assert {"dora", "ia3", "prompt-tuning", "full", "freeze"} <= set(methods[task])
    assert methods["preference"] == regret.CANDIDATES["preference"]
    assert regret.CANDIDATE_SETS["spread"] is regret.CANDIDATES
    every = regret.CANDIDATE_SETS["all-methods"]["classification"]
    assert every[:len(methods["classification"])] == methods["classification"]
    assert {"loha", "adalora", "prefix-tuning"} <= set(every) and "qlora" not in every
    assert len(every) == len(set(every))


def test_every_method_of_the_all_methods_set_is_in_the_catalogue(regret):
    from strategies import catalogue

    for names in regret.CANDIDATE_SETS["all-methods"].values():
        assert all(catalogue.is_known(name) for name in names)


def test_a_run_all_measured_before_gives_its_sessions_wall_time(regret, tmp_path):
    from bench import journal

    run = tmp_path / "run"
    run.mkdir()
    journal.write_json_atomic(run / journal.MANIFEST, {"sessions": [
        {"wall_s": 100.5, "interrupted": False}, {"wall_s": 20.0, "interrupted": False}]})
    assert regret.run_wall_seconds(run) == 120.5
    journal.write_json_atomic(run / journal.MANIFEST, {"sessions": [
        {"wall_s": 100.5, "interrupted": True}]})
    with pytest.raises(SystemExit, match="not one finished run"):
        regret.run_wall_seconds(run)
    with pytest.raises(SystemExit):
        regret.main(["--repick", str(tmp_path / "x.json")])  # --repick needs --run-all-dir
