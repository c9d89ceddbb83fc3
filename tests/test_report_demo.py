"""`tunewise demo`: its choices without models, and `--tiny` end to end (integration)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from advisor import demo
from advisor.cli import main as tunewise


def test_tiny_slice_is_label_balanced(tmp_path):
    settings = demo.DemoSettings(tiny=True)
    folder = demo._demo_data({}, settings, tmp_path)
    for part, expected in (("train", settings.train_rows), ("test", settings.test_rows)):
        rows = [json.loads(line) for line in (folder / f"{part}.jsonl").read_text().splitlines()]
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["label"]] = counts.get(row["label"], 0) + 1
        assert len(rows) == expected and len(counts) == 6
        assert max(counts.values()) - min(counts.values()) <= 1
    assert "label-balanced slice" in (folder / "SOURCE.txt").read_text()


def test_the_default_demo_uses_the_bundled_sample_as_is(tmp_path):
    from bench.data import SAMPLES

    assert demo._demo_data({}, demo.DemoSettings(tiny=False), tmp_path) == Path(SAMPLES["classification"])


def test_the_demo_runs_only_the_picks_the_advisor_estimates_under_its_time():
    advice = {"ranked": [
        {"strategy": "zero-shot", "fits": True, "estimate": {"time_s": 5}},
        {"strategy": "few-shot", "fits": True, "estimate": {"time_s": 800}},
        {"strategy": "qlora", "fits": False, "estimate": {"time_s": 10}},
        {"strategy": "knn", "fits": True, "estimate": {"time_s": 20}},
        {"strategy": "rag", "fits": True},  # no estimate: not known to be cheap
        {"strategy": "transfer", "fits": True, "estimate": {"time_s": 30}},
        {"strategy": "encoder-ft", "fits": True, "estimate": {"time_s": 25}},
    ]}
    # racing, the demo takes twice the picks (--tiny: 2, else 6) as running all (1, else 3)
    assert demo.advisor_picks(advice, demo.DemoSettings(tiny=True)) == ["knn", "transfer"]
    assert demo.advisor_picks(advice, demo.DemoSettings(tiny=True, race=False)) == ["knn"]
    assert demo.advisor_picks(advice, demo.DemoSettings(tiny=False)) == ["knn", "transfer", "encoder-ft"]
    assert demo.advisor_picks(advice, demo.DemoSettings(tiny=False, race=False)) == [
        "knn", "transfer", "encoder-ft"]
    assert demo.over_time(advice, demo.DemoSettings(tiny=False)) == ["few-shot", "rag"]


def test_candidates_are_baselines_plus_picks_and_only_registered_ones():
    names = demo._candidates(["lora", "not-a-strategy"], demo.DemoSettings(tiny=False))
    assert names[:2] == ["majority", "zero-shot"] and "not-a-strategy" not in names
    assert {"transfer", "knn"} <= set(names)
    assert demo._candidates(["knn"], demo.DemoSettings(tiny=True)) == ["majority", "zero-shot", "knn"]


def test_without_the_advisor_the_demo_says_so_and_uses_a_fixed_list(monkeypatch):
    monkeypatch.setitem(sys.modules, "advisor.recommend", None)  # import now raises ImportError
    advice, picks, note = demo._recommend({}, demo.DemoSettings(tiny=True))
    assert advice is None and picks == demo.FALLBACK_TINY
    assert "advisor is not available" in note and "fixed candidate list" in note


def test_demo_arguments():
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--tiny", "--out", "x"])
    assert args.tiny and args.out == "x" and args.answers.endswith("classification.yaml")
    assert not args.no_race and parser.parse_args(["--no-race"]).no_race


@pytest.mark.integration
# About 2 minutes on an idle 2-core CI machine; the cap is a safety net that leaves room for a
# busy one (on the shared development machine, under load ~20, it took over 10 minutes).
@pytest.mark.timeout(1500)
def test_tiny_demo_end_to_end(tmp_path, capsys):
    code = tunewise(["demo", "--tiny", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    report = Path(out.strip().splitlines()[-1])  # the report's path is printed last
    assert code == 0, out[-3000:]
    assert report.name == "report.html" and report.exists()
    run_dir = report.parent
    assert (run_dir / "results.csv").exists() and (run_dir / "advice.json").exists()
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert {"majority", "zero-shot"} <= {r["strategy"] for r in records}
    # --tiny takes only picks estimated under a minute: all cheap, so there is no race
    # (bench.race) and each ran in full on test, as the terminal and the report say
    outcomes = {r["strategy"]: (r["info"].get("race") or {}).get("outcome") for r in records}
    assert {o for o in outcomes.values() if o} <= {"full", "winner"}, outcomes
    assert all(r["status"] == "ok" for r in records), \
        [(r["strategy"], r.get("error")) for r in records]
    assert "no race: " in out and "rung 1 (" not in out
    html = report.read_text(encoding="utf-8")
    assert '<section id="race">' in html and "No race:" in html
    assert "advisor rank" in html and 'id="plot-quality-cost"' in html and "tunewise demo --tiny" in html
    assert "ranked by accuracy" in out  # the terminal table


def test_the_demo_says_which_better_ranked_picks_it_leaves_out_for_time():
    from rich.console import Console

    advice = {"ranked": [
        {"strategy": "lora", "fits": True, "estimate": {"time_s": 280}},
        {"strategy": "qlora", "fits": True, "estimate": {"time_s": 700}},
        {"strategy": "encoder-ft", "fits": True, "estimate": {"time_s": 25}},
        {"strategy": "full", "fits": True, "estimate": {"time_s": 900}},  # ranked below the picks
    ]}
    settings = demo.DemoSettings(tiny=False)
    picks = demo.advisor_picks(advice, settings)
    console = Console(record=True, width=200)
    demo._print_left_out(console, advice, picks, settings)
    text = console.export_text()
    assert picks == ["lora", "encoder-ft"]
    assert "qlora ~11 min 40 s" in text and "full" not in text
