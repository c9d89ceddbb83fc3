"""The report's forgetting plot, table and verdict sentence, from records only (no models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reports import analysis as an
from reports.html import write_report

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"


def rec(name, value, ci, family="peft", forgetting=None):
    record = {"strategy": name, "family": family, "status": "ok", "primary_metric": "accuracy",
              "metrics": {"accuracy": value}, "metrics_ci": {"accuracy": ci},
              "time_s": {"predict": 10.0}, "cost_usd": {"adapt": 0.0, "per_1k_requests": 0.01}}
    if forgetting is not None:
        change, low, high = forgetting
        record["forgetting"] = {"probe": "general_passages", "texts": 32, "tokens": 2000,
                                "base_perplexity": 20.0, "perplexity": 20.0 * (1 + change),
                                "change": change, "interval": [low, high], "seconds": 12.5}
    return record


def test_the_verdict_says_when_the_winner_forgets_much_more_than_the_runner_up():
    records = [rec("full", 0.90, [0.85, 0.95], "fine-tuning", (0.40, 0.30, 0.50)),
               rec("lora", 0.70, [0.62, 0.78], "peft", (0.05, 0.02, 0.08))]
    sentence = an.verdict(records, {}, None).sentence
    assert "But full forgets more: general text is 40% more perplexing" in sentence
    assert "+30% to +50%" in sentence and "vs +5% for the runner-up lora" in sentence


def test_a_runner_up_that_trains_no_llm_counts_as_forgetting_nothing():
    records = [rec("lora", 0.90, [0.85, 0.95], "peft", (0.20, 0.12, 0.28)),
               rec("few-shot", 0.60, [0.5, 0.7], "prompting")]
    sentence = an.verdict(records, {}, None).sentence
    assert "vs +0% for the runner-up few-shot (it leaves the base model untouched)" in sentence


def test_no_sentence_for_small_or_uncertain_forgetting_or_an_unprobed_runner_up():
    small = [rec("lora", 0.9, [0.85, 0.95], "peft", (0.06, 0.03, 0.09)),
             rec("zero-shot", 0.5, [0.4, 0.6], "prompting")]
    uncertain = [rec("lora", 0.9, [0.85, 0.95], "peft", (0.30, -0.01, 0.6)),
                 rec("zero-shot", 0.5, [0.4, 0.6], "prompting")]
    unprobed = [rec("full", 0.9, [0.85, 0.95], "fine-tuning", (0.5, 0.4, 0.6)),
                rec("lora", 0.5, [0.4, 0.6], "peft")]  # e.g. --no-forgetting: unknown, not 0
    for records in (small, uncertain, unprobed):
        assert "forgets more" not in an.verdict(records, {}, None).sentence


def test_the_report_plots_and_tabulates_forgetting(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "classification_run", run_dir)
    records = [json.loads(line) for line in
               (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines() if line]
    trained = [r for r in records if r.get("status") == "ok" and r.get("family") == "peft"]
    assert trained, "the fixture run has a finished PEFT candidate"
    trained[0]["forgetting"] = {"probe": "general_passages", "texts": 32, "tokens": 2000,
                                "base_perplexity": 23.4, "perplexity": 25.74, "change": 0.1,
                                "interval": [0.07, 0.13], "seconds": 14.2}
    (run_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records),
                                           encoding="utf-8")
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert 'id="plot-forgetting"' in html and "vs forgetting" in html
    assert 'id="forgetting-table"' in html
    assert "23.40" in html and "25.74" in html and "+10.0%" in html and "+7.0% to +13.0%" in html


def test_a_run_without_forgetting_has_no_forgetting_figure(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "classification_run", run_dir)
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert 'id="plot-forgetting"' not in html and 'id="forgetting-table"' not in html


def test_a_probe_that_could_not_run_is_listed_with_why():
    rows = an.forgetting_rows([{**rec("reward-model", 0.6, [0.5, 0.7], "preference"),
                                "forgetting": {"skipped": "its model is a classifier"}}])
    assert rows[0]["why_not"] == "its model is a classifier"


def test_odd_forgetting_records_render_as_not_measured():
    odd = [{**rec("lora", 0.6, [0.5, 0.7]), "forgetting": {"change": "lots", "interval": ["a", 1]}},
           {**rec("full", 0.5, [0.4, 0.6], "fine-tuning"), "forgetting": {}}]
    rows = an.forgetting_rows(odd)
    assert [row["why_not"] for row in rows] == ["no measurement recorded"] * 2
    assert an.forgetting_interval(odd[0]) is None
    assert "forgets more" not in an.verdict(odd, {}, None).sentence
