"""benchmarks/best_stability.py: run-all's best across training seeds and test draws, read from
run folders written here (records and per-row predictions; nothing trains)."""

from __future__ import annotations

import json
import sys

import pytest

from bench import journal
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def stability():
    yield load_benchmark("best_stability", "best_stability")
    sys.modules.pop("best_stability", None)


def write_run(path, seed, correct_by_candidate):
    """A run folder: one ok record per candidate and its per-row `correct` predictions."""
    (path / "predictions").mkdir(parents=True)
    for name, correct in correct_by_candidate.items():
        accuracy = sum(correct) / len(correct)
        journal.append_record(path, {"strategy": name, "status": "ok", "seed": 0,
                                     "config": {"seed": seed}, "info": {"seed": seed},
                                     "primary_metric": "accuracy",
                                     "metrics": {"accuracy": accuracy}})
        journal.write_predictions(path, name, [{"index": i, "seed": 0, "correct": c}
                                               for i, c in enumerate(correct)])
    return path


def test_runs_that_name_different_bests_disagree(stability, tmp_path):
    a = write_run(tmp_path / "a", 1, {"lora": [1] * 9 + [0], "dora": [1] * 8 + [0, 0]})
    b = write_run(tmp_path / "b", 2, {"lora": [1] * 8 + [0, 0], "dora": [1] * 9 + [0]})
    c = write_run(tmp_path / "c", 3, {"lora": [1] * 9 + [0], "dora": [1] * 9 + [0]})  # a tie
    runs = [stability.read_run(p) for p in (a, b, c)]
    assert [r.seed for r in runs] == [1, 2, 3]
    assert runs[2].best() == {"lora", "dora"}
    # a-b and b-a disagree; a tie agrees with either: 4 of 6 ordered pairs
    assert stability.agreement(runs) == (4, 6)


def test_a_candidate_far_ahead_is_the_best_on_almost_every_test_draw(stability, tmp_path):
    run = stability.read_run(write_run(tmp_path / "r", 0, {
        "lora": [1] * 95 + [0] * 5, "knn": [1] * 60 + [0] * 40, "dora": [0] * 6 + [1] * 94}))
    shares = stability.best_shares(run, resamples=500, seed=0)
    assert shares["knn"] == 0.0
    # lora and dora are one row apart, each right where the other is wrong on 5-6 rows: each
    # is the best on a good share of the draws (resampled jointly: the same rows for all)
    assert 0.3 < shares["dora"] < shares["lora"] < 0.7


def test_test_draws_are_paired_a_candidate_right_wherever_another_is_never_behind(
        stability, tmp_path):
    run = stability.read_run(write_run(tmp_path / "r", 0, {
        "lora": [1] * 95 + [0] * 5, "dora": [1] * 94 + [0] * 6}))
    shares = stability.best_shares(run, resamples=2000, seed=0)
    # lora is never behind; dora ties it when row 94 is not drawn: (1 - 1/100)^100 = 0.37
    assert shares["lora"] == 1.0
    assert shares["dora"] == pytest.approx(0.366, abs=0.03)


def test_the_report_prints_the_ceiling_and_writes_json(stability, tmp_path, capsys):
    a = write_run(tmp_path / "a", 1, {"lora": [1] * 20, "knn": [0] * 20})
    b = write_run(tmp_path / "b", 2, {"lora": [1] * 20, "knn": [0] * 20})
    out = tmp_path / "s.json"
    assert stability.main([str(a), str(b), "--resamples", "200", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| lora | 1.000 ★ | 1.000 ★ | 1.00 |" in printed
    assert "2/2 ordered pairs" in printed and "lora, is run-all's best (or tied with it) on 100%" in printed
    data = json.loads(out.read_text())
    assert data["ceiling"] == {"candidate": "lora", "p": 1.0}
    assert data["seed_agreement"] == [2, 2]


def test_a_folder_without_records_is_refused(stability, tmp_path):
    with pytest.raises(SystemExit, match="no finished candidate"):
        stability.read_run(tmp_path)


def test_candidates_narrow_every_run_to_the_same_set(stability, tmp_path, capsys):
    a = write_run(tmp_path / "a", 1, {"lora": [1] * 9 + [0], "dora": [1] * 10, "knn": [0] * 10})
    b = write_run(tmp_path / "b", 2, {"lora": [1] * 9 + [0], "knn": [0] * 10})
    # dora, measured in a only, would be a's best: left out, a and b both name lora
    assert stability.main([str(a), str(b), "--candidates", "lora,knn"]) == 0
    assert "2/2 ordered pairs" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="dora"):
        stability.main([str(a), str(b), "--candidates", "lora,dora"])
