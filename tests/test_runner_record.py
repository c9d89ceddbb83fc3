"""Facts the harness records about a finished candidate: its artifact and per-class scores.

The artifact a strategy saves is measured where it lies, and its path is recorded once.

A run folder under a relative --out (the default `runs`) gave strategies a relative
ctx.work_dir; the path they built on it was joined to the work folder a second time
(`work/x/runs/<id>/work/x/adapter`), so nothing was found there and every artifact measured 0 MB.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.runner import BenchPlan, run_benchmark
from fake_artifact_strategies import ARTIFACT_BYTES, NAME, register
from fake_strategies import register_fakes, write_binary_data


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()
    register()


@pytest.mark.parametrize("seeds", [1, 2])
def test_artifact_under_a_relative_run_folder_is_measured_and_recorded_once(tmp_path, monkeypatch,
                                                                             seeds):
    data = write_binary_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    plan = BenchPlan(data=data["data"], test=data["test"], strategies=[NAME, "fake-constant"],
                     out="runs", model="tiny-llama", encoder="tiny-bert", command="pytest",
                     seeds=seeds)
    result = run_benchmark(plan)
    assert not result.run_dir.is_absolute()  # the case that broke
    records = {r["strategy"]: r for r in result.records}
    saved = records[NAME]
    assert saved["status"] == "ok", saved.get("error")
    assert saved["artifact_mb"] == pytest.approx(ARTIFACT_BYTES / 2**20, abs=1e-3)
    expected = Path("work", NAME, "seed0" if seeds > 1 else "", "adapter")
    assert Path(saved["info"]["artifact_path"]) == expected
    assert (result.run_dir / expected / "adapter_model.safetensors").is_file()
    assert "runs" not in Path(saved["info"]["artifact_path"]).parts  # not doubled
    # A path given relative to ctx.work_dir (fake-constant's "artifact.bin") still resolves there.
    relative = records["fake-constant"]
    assert relative["artifact_mb"] == pytest.approx(1.0)
    assert os.path.normpath(relative["info"]["artifact_path"]) == os.path.normpath(
        Path("work", "fake-constant", "seed0" if seeds > 1 else "", "artifact.bin"))


def test_classification_record_has_per_class_scores(tmp_path):
    data = write_binary_data(tmp_path)
    plan = BenchPlan(data=data["data"], test=data["test"], strategies=["fake-constant"],
                     out=str(tmp_path / "runs"), model="tiny-llama", encoder="tiny-bert",
                     command="pytest")
    record = run_benchmark(plan).records[0]
    # "negative" for all 12 test rows, 7 of which are negative (tests/fake_strategies.py)
    assert record["per_class"] == [
        {"label": "negative", "precision": pytest.approx(7 / 12, abs=1e-6), "recall": 1.0,
         "f1": pytest.approx(2 * (7 / 12) / (1 + 7 / 12), abs=1e-6), "support": 7, "predicted": 12},
        {"label": "positive", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 5,
         "predicted": 0}]


def test_a_record_with_a_line_separator_in_its_text_is_read_back_whole(tmp_path):
    """Records keep non-ASCII text as it is; real data (the UCI sentiment sentences) holds
    U+0085, and text can hold U+2028: neither may cut a record in two (it would be dropped as a
    torn line, a measured result lost)."""
    from bench import journal
    from reports.run_data import _read_records

    record = {"strategy": "x", "samples": [{"input": "a\u2028b\x85c", "prediction": "d\u2029e"}]}
    journal.append_record(tmp_path, record)
    journal.append_record(tmp_path, {"strategy": "y"})
    assert journal.read_records(tmp_path) == [record, {"strategy": "y"}]
    notes: list[str] = []
    assert _read_records(tmp_path / journal.RESULTS, notes) == [record, {"strategy": "y"}]
    assert notes == []
