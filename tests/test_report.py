"""The HTML report, results.csv and the terminal table, rendered from fixture records (no models).

Fixture run folders live in tests/fixtures/records/ (regenerate with make_fixtures.py there).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from advisor.cli import main as tunewise
from reports import analysis as an
from reports import format as fmt
from reports.html import write_report
from reports.run_data import load_run
from reports.tables import results_table

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
PAYLOAD_MARKERS = ("<script>alert", "<img src=x", "<b onmouseover", "<svg onload")


class ReportParser(HTMLParser):
    """Collects what the tests look at: tags with their attributes, the results-table rows, the
    text of script elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self.rows: list[dict] = []  # results table: {"strategy", "cells": [(classes, text)]}
        self._in_results = self._in_script = False
        self._cell: list[str] | None = None
        self._cell_class = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "table" and attributes.get("id") == "results-table":
            self._in_results = True
        if self._in_results and tag == "tr" and "data-strategy" in attributes:
            self.rows.append({"strategy": attributes["data-strategy"], "cells": []})
        if self._in_results and tag in ("td", "th") and self.rows:
            self._cell, self._cell_class = [], attributes.get("class") or ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "table":
            self._in_results = False
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1]["cells"].append((self._cell_class, " ".join(" ".join(self._cell).split())))
            self._cell = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        if self._cell is not None:
            self._cell.append(data)


def render(tmp_path: Path, fixture: str = "classification_run", advice=None) -> tuple[str, ReportParser]:
    run_dir = tmp_path / fixture
    shutil.copytree(FIXTURES / fixture, run_dir)
    path = write_report(run_dir, advice=advice)
    html = path.read_text(encoding="utf-8")
    parser = ReportParser()
    parser.feed(html)
    return html, parser


def column_index(parser: ReportParser, html: str, label: str) -> int:
    headers = re.search(r'<table class="sortable results".*?<thead>(.*?)</thead>', html, re.S).group(1)
    names = [" ".join(re.sub(r"<[^>]+>", " ", h).split()) for h in re.findall(r"<th.*?</th>", headers, re.S)]
    return next(i for i, name in enumerate(names) if name.startswith(label))


# ---------------------------------------------------------------- the rendered report

def test_every_section_is_present(tmp_path):
    html, parser = render(tmp_path)
    ids = {attrs.get("id") for _, attrs in parser.tags}
    for section in ("verdict", "results", "unfinished", "plots", "plot-quality-cost", "plot-quality-memory",
                    "plot-time", "plot-curve", "plot-confusion", "advisor", "estimates", "candidates",
                    "data", "environment"):
        assert section in ids, f"section {section} missing"
    assert "tunewise bench --data bench/samples/banking_support --label-col intent --strategies" in html
    assert "9f2c9f2c" in html and "transformers" in html and "5.24.0" in html  # hash, packages
    assert "2 rows longer than 40 tokens" in html  # data warnings
    assert html.count("<svg") >= 5


def test_the_report_is_self_contained(tmp_path):
    html, parser = render(tmp_path)
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not value or value.startswith("#") or value.startswith("data:"), (tag, name, value)
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert len(parser.scripts) == 1


def test_numbers_are_formatted(tmp_path):
    html, parser = render(tmp_path)
    lora = next(r for r in parser.rows if r["strategy"] == "lora")
    texts = [text for _, text in lora["cells"]]
    assert "0.842 0.775–0.900" in texts  # value with its interval
    assert "2.16 GB" in texts and "5 min 01 s" in texts and "14.0 s" in texts
    assert "921,600" in texts and "3.6 MB" in texts and "$0.0032" in texts
    assert "None" not in html and "nan" not in html.lower().split("<script>")[0].replace("nano", "")


def test_best_value_per_column_is_marked(tmp_path):
    html, parser = render(tmp_path)
    by_name = {row["strategy"]: row["cells"] for row in parser.rows}

    def best_in(label):
        index = column_index(parser, html, label)
        return {name for name, cells in by_name.items() if "best" in cells[index][0]}

    assert best_in("accuracy") == {"lora"}  # higher is better
    assert best_in("peak memory") == {"majority"}  # lower is better
    assert best_in("tokens/s") == {"knn"}
    assert best_in("predict time") == {"majority"}
    assert not {"qlora", "full", "dora"} & set().union(*(best_in(l) for l in ("accuracy", "adapt time")))


def test_failed_skipped_and_timeout_candidates_are_listed_with_reasons(tmp_path):
    html, _ = render(tmp_path)
    unfinished = html[html.index('id="unfinished"'):html.index('id="plots"')]
    assert "QLoRA needs CUDA" in unfinished and "skipped" in unfinished
    assert "exceeded --max-memory 4000 MB" in unfinished and "failed" in unfinished
    assert "timed out after 600 s" in unfinished and "timeout" in unfinished


def test_verdict_names_winner_overlap_and_advisor(tmp_path):
    html, _ = render(tmp_path)
    sentence = re.search(r'<p class="verdict">(.*?)</p>', html, re.S).group(1)
    assert "lora" in sentence and "not distinguishable" in sentence and "transfer" in sentence
    assert "advisor&#39;s top recommendation" in sentence
    assert "$0.0084 to adapt" in sentence


def test_advisor_ranking_sits_beside_the_measured_one(tmp_path):
    html, _ = render(tmp_path)
    advisor = html[html.index('id="advisor"'):html.index('id="estimates"')]
    assert "labelled-50-500" in advisor and "Hu et al. 2021" in advisor  # reasons with evidence
    few_shot_row = re.search(r"<tr><td class=\"num\">2</td><th scope=\"row\">few-shot</th>.*?</tr>", advisor, re.S)
    assert few_shot_row and '<td class="num">4</td>' in few_shot_row.group(0)  # advisor 2nd, measured 4th
    assert "prompt-tuning" in advisor  # excluded candidates


def test_estimate_vs_measured_shows_the_error(tmp_path):
    html, _ = render(tmp_path)
    estimates = html[html.index('id="estimates"'):html.index('id="candidates"')]
    # lora: 2.6 GB estimated vs 2210 MB measured -> +20 %; 340 s vs 315.9 s -> +8 %
    assert "+20%" in estimates and "+8%" in estimates


def test_learning_curve_includes_the_full_data_run(tmp_path):
    run = load_run(FIXTURES / "classification_run")
    assert [r["train_rows"] for r in run.curve_records] == [24, 48, 96]
    assert all(r["strategy"] != "lora" or "train_rows" not in r for r in run.records)
    html, _ = render(tmp_path)
    curve = html[html.index('id="plot-curve"'):]
    assert "lora: 0.842 with 216 rows" in curve  # the main run closes the curve


def test_samples_are_marked_correct_or_wrong(tmp_path):
    html, _ = render(tmp_path)
    candidates = html[html.index('id="candidates"'):html.index('id="data"')]
    assert 'class="mark-correct"' in candidates and 'class="mark-wrong"' in candidates
    assert "lora_r" in candidates and "q_proj, v_proj" in candidates  # the config


def test_advice_argument_overrides_the_manifest(tmp_path):
    advice = {"ranked": [{"strategy": "knn", "family": "rag", "score": 0.9, "fits": True, "reasons": []}],
              "excluded": []}
    html, _ = render(tmp_path, advice=advice)
    sentence = re.search(r'<p class="verdict">(.*?)</p>', html, re.S).group(1)
    assert "the advisor had ranked knn first" in sentence


def test_results_csv_is_written_beside_the_report(tmp_path):
    render(tmp_path)
    with (tmp_path / "classification_run" / "results.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["strategy"] for r in rows][:3] == ["majority", "zero-shot", "few-shot"]
    lora = next(r for r in rows if r["strategy"] == "lora")
    assert float(lora["accuracy"]) == 0.842 and float(lora["accuracy_ci_low"]) == 0.775
    assert float(lora["peak_rss_mb"]) == 2210.0
    assert next(r for r in rows if r["strategy"] == "full")["status"] == "failed"


def test_csv_text_cannot_become_a_spreadsheet_formula():
    from reports.html import _csv_text

    assert _csv_text("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _csv_text("lora") == "lora"


# ---------------------------------------------------------------- safety

def test_payloads_are_shown_as_text_and_run_nothing(tmp_path):
    html, parser = render(tmp_path, "payload_run")
    # Exactly one script element, and it is ours (the sorting script), allowed by hash in the CSP.
    assert html.count("<script") == 1 and len(parser.scripts) == 1
    assert "alert" not in parser.scripts[0]
    csp = next(a["content"] for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'sha256-" in csp and "default-src 'none'" in csp
    # No injected element and no event-handler attribute anywhere.
    assert not any(tag in ("img", "b") for tag, _ in parser.tags)
    assert not [(t, a) for t, a in parser.tags if any(name.startswith("on") for name in a)]
    svg_tags = [t for t, _ in parser.tags if t == "svg"]
    assert len(svg_tags) == html.count('<svg xmlns="http://www.w3.org/2000/svg" class="plot"')
    for marker in PAYLOAD_MARKERS:
        assert marker not in html, marker
    # ...and the payloads are visible as text: labels, texts, file names, errors, reasons.
    assert html.count("&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;") >= 8
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_payload_strategy_names_stay_text_in_the_terminal():
    run = load_run(FIXTURES / "payload_run")
    run.records[1]["strategy"] = "[bold red]zero-shot[/]"
    console = Console(record=True, width=120)
    console.print(results_table(run.records, run.manifest))
    assert "[bold red]zero-shot[/]" in console.export_text()


# ---------------------------------------------------------------- partial and old runs

def test_a_partial_run_still_renders(tmp_path):
    run_dir = tmp_path / "partial"
    run_dir.mkdir()
    lines = [json.dumps({"strategy": "majority", "status": "ok", "metrics": {"accuracy": 0.5}}),
             json.dumps({"strategy": "lora", "status": "failed"}),  # no error text, no family
             '{"strategy": "zero-sh']  # the harness died mid-write
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "majority" in html and "no reason was recorded" in html
    assert "line 3 is not valid JSON" in html and "manifest.json is missing" in html
    assert "rebuilt from its facts" in html
    assert "majority is the only candidate that finished" in html


def test_a_run_where_nothing_finished_says_so(tmp_path):
    run_dir = tmp_path / "none"
    run_dir.mkdir()
    (run_dir / "results.jsonl").write_text(json.dumps(
        {"strategy": "qlora", "status": "skipped", "error": "needs CUDA"}) + "\n", encoding="utf-8")
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "No candidate finished successfully" in html and "needs CUDA" in html


def test_report_command(tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "classification_run", run_dir)
    out = tmp_path / "elsewhere" / "decision.html"
    assert tunewise(["report", str(run_dir), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out) and out.exists() and (out.parent / "results.csv").exists()
    verdict = next(line for line in printed if line.startswith("Under your quality priority"))
    assert "lora scores the highest accuracy" in verdict and "runner-up transfer" in verdict
    assert tunewise(["report", str(tmp_path / "missing")]) == 2
    assert "is not a run folder" in capsys.readouterr().err
    (tmp_path / "advice.json").write_text("[1, 2]", encoding="utf-8")
    assert tunewise(["report", str(run_dir), "--advice", str(tmp_path / "advice.json")]) == 2


# ---------------------------------------------------------------- the conclusions

def rec(name, value, ci, per_1k=0.01, predict=10.0, adapt_cost=0.0, family="peft"):
    return {"strategy": name, "family": family, "status": "ok", "primary_metric": "accuracy",
            "metrics": {"accuracy": value}, "metrics_ci": {"accuracy": ci},
            "time_s": {"predict": predict}, "cost_usd": {"adapt": adapt_cost, "per_1k_requests": per_1k}}


def test_a_clear_winner_is_called_by_how_much():
    records = [rec("lora", 0.9, [0.85, 0.95]), rec("zero-shot", 0.5, [0.4, 0.6], family="prompting")]
    verdict = an.verdict(records, {}, None)
    assert verdict.winner == "lora" and verdict.distinguishable is True
    assert "0.400 above the runner-up zero-shot" in verdict.sentence
    assert "no advisor ranking was recorded" in verdict.sentence


def test_cost_priority_picks_the_cheapest_candidate_not_measurably_worse():
    records = [rec("lora", 0.90, [0.84, 0.95], per_1k=0.05), rec("knn", 0.86, [0.80, 0.91], per_1k=0.001),
               rec("majority", 0.2, [0.1, 0.3], per_1k=0.0)]
    advice = {"answers": {"goals": {"priority": "cost"}}, "ranked": [{"strategy": "lora", "fits": True}]}
    verdict = an.verdict(records, {}, advice)
    assert verdict.winner == "knn"  # majority is cheaper but measurably worse
    assert "Under your cost priority, knn wins" in verdict.sentence
    assert "the advisor had ranked lora first" in verdict.sentence


def test_latency_priority_and_a_target_metric():
    records = [rec("lora", 0.90, [0.88, 0.92], predict=2.0), rec("few-shot", 0.80, [0.78, 0.82], predict=60.0),
               rec("transfer", 0.75, [0.73, 0.77], predict=0.5)]
    advice = {"answers": {"goals": {"priority": "latency", "target_metric": 0.7}}}
    assert an.verdict(records, {"split": {"test": 100}}, advice).winner == "transfer"
    advice["answers"]["goals"]["target_metric"] = 0.85
    assert an.verdict(records, {"split": {"test": 100}}, advice).winner == "lora"


def test_stated_limits_set_candidates_aside():
    records = [rec("full", 0.95, [0.93, 0.97], adapt_cost=50.0), rec("lora", 0.90, [0.88, 0.92], adapt_cost=1.0)]
    advice = {"answers": {"resources": {"budget_usd": 10}}}
    verdict = an.verdict(records, {}, advice)
    assert verdict.winner == "lora"
    # Each candidate set aside is named with the limit it broke, measured against the limit.
    assert verdict.sentence.endswith("Set aside because it broke your stated limits: full (budget: adapting "
                                     "cost $50.00 measured, limit $10.00).")


def test_every_candidate_set_aside_is_named_with_each_limit_it_broke():
    records = [rec("full", 0.95, [0.93, 0.97], adapt_cost=50.0, predict=90.0),
               rec("qlora", 0.93, [0.9, 0.96], adapt_cost=1.0, predict=90.0),
               rec("lora", 0.90, [0.88, 0.92], adapt_cost=1.0, predict=6.0)]
    records[1]["peak_memory_mb"] = {"cuda": 30 * 1024}
    advice = {"answers": {"resources": {"budget_usd": 10, "gpu_memory_gb": 24}, "goals": {"latency_ms": 500}}}
    verdict = an.verdict(records, {"split": {"sizes": {"test": 100}}}, advice)
    assert verdict.winner == "lora"
    assert an.set_aside(records, {"split": {"sizes": {"test": 100}}}, advice) == [
        ("full", ["budget: adapting cost $50.00 measured, limit $10.00",
                  "latency: 900 ms per request measured, limit 500 ms"]),
        ("qlora", ["latency: 900 ms per request measured, limit 500 ms",
                   "GPU memory: peak 30.00 GB measured, limit 24 GB"])]
    assert "Set aside because they broke your stated limits: full (budget" in verdict.sentence
    assert "; qlora (latency: 900 ms per request measured, limit 500 ms, GPU memory" in verdict.sentence


def test_pareto_front():
    points = [(1.0, 0.5, "a"), (2.0, 0.9, "b"), (3.0, 0.8, "c"), (0.5, 0.2, "d"), (2.0, 0.9, "e")]
    assert an.pareto_front(points) == ["a", "b", "d", "e"]  # c is dominated by b; b and e tie


def test_best_values_skip_columns_where_everyone_ties():
    records = [rec("a", 0.5, None), rec("b", 0.7, None)]
    for record in records:
        record["trainable_params"] = 0
    columns = an.table_columns(records, {})
    best = an.best_values(records, columns)
    assert best["accuracy"] == 0.7 and "trainable_params" not in best


@pytest.mark.parametrize("value, text", [(None, "—"), (float("nan"), "—"), (0, "$0"), (0.0032, "$0.0032"),
                                         (0.000053, "$0.000053"), (1.234, "$1.23"), (1234.5, "$1,234")])
def test_usd_format(value, text):
    assert fmt.fmt_usd(value) == text


def test_other_formats():
    assert fmt.fmt_seconds(301) == "5 min 01 s" and fmt.fmt_seconds(0.25) == "250 ms"
    assert fmt.fmt_seconds(7300) == "2 h 01 min"
    assert fmt.fmt_mb(2210) == "2.16 GB" and fmt.fmt_mb(420) == "420 MB"
    assert fmt.fmt_count(921_600) == "921,600" and fmt.fmt_count(134_515_008) == "134.52 M"
    assert fmt.fmt_metric("0.5") == "0.500" and fmt.fmt_metric(True) == "—"


def test_a_qa_run_on_cuda_with_a_curve_inside_its_record(tmp_path):
    run_dir = tmp_path / "qa"
    run_dir.mkdir()
    base = {"task": "qa", "status": "ok", "primary_metric": "token_f1", "family": "rag",
            "peak_memory_mb": {"cpu_rss": 900.0, "cuda": 2048.0}, "time_s": {"adapt": 3.0, "predict": 9.0},
            "cost_usd": {"adapt": 0.001, "per_1k_requests": 0.02}}
    records = [
        {**base, "strategy": "rag", "metrics": {"token_f1": 0.61, "exact_match": 0.4},
         "samples": [{"input": "Who?", "prediction": "Paris", "reference": "Paris", "correct": None}]},
        {**base, "strategy": "lora", "family": "peft", "metrics": {"token_f1": 0.52, "exact_match": 0.3},
         "peak_memory_mb": {"cpu_rss": 1200.0, "cuda": 3100.0},
         "info": {"learning_curve": [{"train_rows": 30, "token_f1": 0.3}, {"train_rows": 60, "token_f1": 0.45}]}},
    ]
    (run_dir / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "token f1" in html and "exact match" in html and "peak memory (CUDA)" in html
    assert 'id="plot-confusion"' not in html  # not a classifier
    assert 'id="plot-curve"' in html and "lora: 0.450 with 60 rows" in html
    assert "peak memory, CUDA (MB)" in html  # the memory plot uses the GPU peak


def test_terminal_table_fits_80_columns_and_lists_failures():
    run = load_run(FIXTURES / "classification_run")
    console = Console(record=True, width=80)
    console.print(results_table(run.records, run.manifest))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    ranked = [line.split()[0] for line in lines if line.strip().split(" ")[0] in
              {"lora", "transfer", "knn", "few-shot", "zero-shot", "majority"}]
    assert ranked == ["lora", "transfer", "knn", "few-shot", "zero-shot", "majority"]
    assert "0.842 [0.78–0.90]" in text
    assert "qlora skipped: QLoRA needs CUDA" in text and "dora timeout" in text


def test_records_of_any_shape_render_without_crashing(tmp_path_factory):
    """Old, partial or odd records (wrong types where numbers belong) must never crash the
    report: it is what a user opens after a run went wrong."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=8), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.sampled_from(["cpu_rss", "cuda", "adapt", "predict", "accuracy",
                                                      "labels", "matrix"]), st.integers(), max_size=3))
    keys = ["status", "family", "metrics", "metrics_ci", "peak_memory_mb", "time_s", "cost_usd",
            "tokens_per_s", "trainable_params", "artifact_mb", "samples", "confusion_matrix", "info",
            "estimate", "config", "error", "primary_metric", "hardware"]
    record = st.fixed_dictionaries({"strategy": st.text(min_size=1, max_size=6)},
                                   optional={key: junk for key in keys})

    @settings(max_examples=25, deadline=None)
    @given(st.lists(record, min_size=1, max_size=4), st.dictionaries(st.sampled_from(
        ["task", "split", "profile", "hardware", "packages", "command", "advice", "git"]), junk, max_size=4))
    def render_anything(records, manifest):
        run_dir = tmp_path_factory.mktemp("odd")
        (run_dir / "results.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
        (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        assert "<html" in write_report(run_dir).read_text(encoding="utf-8")

    render_anything()


def test_variants_of_one_strategy_keep_their_own_rows(tmp_path):
    run_dir = tmp_path / "multitask"
    run_dir.mkdir()
    base = {"strategy": "lora", "family": "peft", "status": "ok", "primary_metric": "accuracy"}
    lines = [{**base, "metrics": {"accuracy": 0.8}, "log": "logs/lora.log"},
             {**base, "metrics": {"accuracy": 0.7}, "log": "logs/lora@multitask.log"},
             {**base, "metrics": {"accuracy": 0.5}, "log": "logs/lora@n16.log",
              "info": {"learning_curve": {"train_rows": 16}, "train_rows": 16}}]
    (run_dir / "results.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n", encoding="utf-8")
    run = load_run(run_dir)
    assert sorted(r["strategy"] for r in run.records) == ["lora", "lora@multitask"]
    assert [r["strategy"] for r in run.curve_records] == ["lora"]  # one curve per strategy
    html = write_report(run_dir).read_text(encoding="utf-8")
    assert "lora: 0.500 with 16 rows" in html


def test_when_only_baselines_meet_the_limits_no_baseline_is_crowned():
    records = [rec("encoder-ft", 0.75, [0.6, 0.9], predict=7.8), rec("majority", 0.17, [0.05, 0.3], predict=0.0,
                                                                      family="baseline")]
    advice = {"answers": {"goals": {"latency_ms": 200}}}
    verdict = an.verdict(records, {"split": {"sizes": {"test": 24}}}, advice)
    assert verdict.winner is None
    assert "No candidate beyond the baselines met your stated limits" in verdict.sentence
    assert ("Set aside because it broke your stated limits: encoder-ft (latency: 325 ms per request "
            "measured, limit 200 ms)") in verdict.sentence


def _preference_record(strategy, accuracy, low, high, **metrics):
    return {"strategy": strategy, "family": "preference", "task": "preference", "status": "ok",
            "primary_metric": "preference_accuracy",
            "metrics": {"preference_accuracy": accuracy, **metrics},
            "metrics_ci": {"preference_accuracy": [low, high]},
            "cost_usd": {"adapt": 0.01, "predict": 0.005, "per_1k_requests": 0.1},
            "time_s": {"load": 1.0, "adapt": 10.0, "predict": 5.0, "total": 16.0},
            "peak_memory_mb": {"cpu_rss": 1000.0, "cuda": None}}


def test_a_preference_verdict_ranks_policies_and_names_the_reward_model_beside_them():
    records = [_preference_record("zero-shot", 0.58, 0.47, 0.70),
               _preference_record("dpo", 0.70, 0.60, 0.80, win_rate=0.6),
               _preference_record("reward-model", 0.90, 0.80, 0.97, reward_accuracy=0.9)]
    result = an.verdict(records, {"task": "preference"})
    assert result.winner == "dpo"
    assert "Not ranked here: reward-model (reward accuracy 0.900)" in result.sentence
    # without a finished policy the reward model is all there is, and it is ranked
    only_scorer = an.verdict([records[2]], {"task": "preference"})
    assert only_scorer.winner == "reward-model" and "Not ranked here" not in only_scorer.sentence


def test_a_collapsed_candidate_neither_wins_nor_counts_against_its_method():
    run = load_run(FIXTURES / "classification_run")
    records = [dict(r) for r in run.records]
    lora = next(r for r in records if r["strategy"] == "lora")  # the fixture's winner
    lora.update(degenerate=True, degenerate_why="predicts the label 'a' for 95 of 96 test rows")
    advice = {"ranked": [{"strategy": "lora", "fits": True}]}
    verdict = an.verdict(records, run.manifest, advice)
    assert verdict.winner not in (None, "lora")
    assert "collapsed" in verdict.sentence and "no evidence that its method loses" in verdict.sentence
    assert "the advisor had ranked lora first, but its predictions collapsed" in verdict.sentence
    console = Console(record=True, width=100)
    console.print(results_table(records, run.manifest))
    lora_line = next(line for line in console.export_text().splitlines() if line.strip().startswith("lora"))
    assert an.DEGENERATE_MARK in lora_line
    accuracy = an.table_columns(records, run.manifest)[0]
    assert an.best_values(records, [accuracy])["accuracy"] == an.metric_value(
        next(r for r in records if r["strategy"] == "transfer"), "accuracy")


# ---------------------------------------------------------------- the candidate sections

def candidate_section(html: str, strategy: str) -> str:
    """The HTML of one candidate's <details> block."""
    match = re.search(r'<details class="candidate"[^>]*>\s*<summary>' + re.escape(strategy) + r' .*?</details>\s*'
                      r'(?=<details class="candidate"|</section>)', html, re.S)
    assert match, f"no candidate section for {strategy}"
    return match.group(0)


def test_each_classifier_shows_per_class_scores_and_a_collapsed_confusion_matrix(tmp_path):
    html, _ = render(tmp_path)
    lora = candidate_section(html, "lora")
    # tests/fixtures: lora gets 18 of the 20 card_arrival rows right and predicts card_arrival 21
    # times (3 errors of other classes): precision 18/21, recall 18/20
    rows = re.findall(r'<tr><th scope="row" data-sort="([a-z_]+)">.*?</tr>', lora.split("Per class", 1)[1], re.S)
    assert rows[:6] == ["card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed",
                        "cash_withdrawal_charge", "passcode_forgotten"]
    first = re.search(r'data-sort="card_arrival">card_arrival</th>(.*?)</tr>', lora, re.S).group(1)
    assert [c.strip() for c in re.findall(r'<td class="num"[^>]*>(.*?)</td>', first)] == [
        "0.857", "0.900", "0.878", "20", "21"]
    # The confusion matrix sits in its own collapsed <details> (no `open`).
    details = re.search(r'<details class="confusion"([^>]*)><summary>Confusion matrix</summary>(.*?)</details>',
                        lora, re.S)
    assert details and "open" not in details.group(1) and "<svg" in details.group(2)
    assert "true card_arrival, predicted lost_or_stolen_card: 1" in details.group(2)
    # Every finished classifier gets both; the skipped one gets neither.
    assert html.count('<details class="confusion">') == 6
    assert "Per class" not in candidate_section(html, "qlora")


def test_sample_predictions_show_the_errors_first(tmp_path):
    html, _ = render(tmp_path)
    lora = candidate_section(html, "lora")
    samples = lora.split("<h3>Sample predictions</h3>", 1)[1]
    marks = re.findall(r'title="(correct|wrong)"', samples)
    # Chosen from predictions/lora.jsonl (120 rows, 19 wrong): 6 wrong first, then 3 right.
    assert marks == ["wrong"] * 6 + ["correct"] * 3
    assert "19 of 120 predictions wrong; the wrong ones come first" in samples
    assert "chosen from every test prediction" in samples
    # Without a predictions file the record's own samples are used, still errors first.
    knn = candidate_section(html, "knn").split("<h3>Sample predictions</h3>", 1)[1]
    assert re.findall(r'title="(correct|wrong)"', knn) == ["wrong", "correct"]
    assert "chosen from the rows kept in the record" in knn


def test_error_first_samples_rank_text_predictions_by_their_score(tmp_path):
    from reports.run_data import error_first_samples

    (tmp_path / "predictions").mkdir()
    rows = [{"index": i, "seed": seed, "input": f"q{i}", "prediction": "p", "reference": "r",
             "rouge_l": score} for seed in (0, 1) for i, score in enumerate([1.0, 0.2, 0.9, 0.0, 1.0])]
    (tmp_path / "predictions" / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    record = {"strategy": "sft", "status": "ok", "seed": 0, "primary_metric": "rouge_l",
              "predictions": "predictions/sft.jsonl"}
    samples = error_first_samples(tmp_path, record)
    assert [r["input"] for r in samples.rows] == ["q3", "q1", "q2", "q0", "q4"]
    assert (samples.wrong, samples.total, samples.score_key) == (3, 5, "rouge_l")
    # A record cannot make the report read a file outside its run folder.
    (tmp_path / "outside.jsonl").write_text(json.dumps(rows[0]) + "\n")
    record["predictions"] = "../" + tmp_path.name + "/../outside.jsonl"
    assert error_first_samples(tmp_path / "predictions", record).source == "record"


def test_the_training_loss_is_plotted_not_listed(tmp_path):
    html, _ = render(tmp_path)
    lora = candidate_section(html, "lora")
    loss = re.search(r'<figure class="loss">(.*?)</figure>', lora, re.S).group(1)
    assert 'aria-label="loss of lora"' in loss
    assert "train loss: 60 points" in loss and "validation loss 0.7900 at step 40" in loss
    assert "weights kept from step 40" in loss
    assert "train_curve" not in lora and "val_curve" not in lora  # not dumped as a fact
    assert '<figure class="loss">' not in candidate_section(html, "knn")  # nothing trained there


def test_a_seed_of_minus_one_shows_the_seed_it_became(tmp_path):
    html, _ = render(tmp_path)
    lora = candidate_section(html, "lora")
    assert re.search(r'<th scope="row">seed</th><td class="text">0 \(config -1: the run&#39;s seed\)</td>', lora)


def test_the_reproduce_command_is_the_bench_command_of_the_plan(tmp_path):
    html, _ = render(tmp_path)
    environment = html.split('<section id="environment">', 1)[1]
    command = re.search(r'<pre class="command">(.*?)</pre>', environment, re.S).group(1)
    assert command.startswith("tunewise bench --data bench/samples/banking_support --label-col intent "
                              "--strategies majority,zero-shot,few-shot,knn,transfer,lora,qlora,full,dora ")
    assert "--resume" not in command and "tunewise demo" not in command
    assert "The run was started with <code>tunewise demo</code>" in environment


def test_the_reproduce_command_parses_back_to_the_same_plan(tmp_path):
    import dataclasses
    import shlex

    from advisor import bench_cli
    from advisor.cli import command_parser
    from bench.runner import BenchPlan
    from reports.reproduce import reproduce_command

    plan = BenchPlan(data="train.csv", task="classification", test="test.csv", corpus="docs/",
                     columns={"text": "body", "label": "team"}, strategies=["lora", "peft:vera"],
                     model="smollm2-135m", encoder="minilm-l6", preset="full", out="elsewhere", seed=3,
                     seeds=2, timeout_s=90.5, max_memory_mb=4000.0,
                     overrides={"lora": {"r": "16", "target_modules": "q_proj,v_proj"}, "*": {"epochs": "2"}},
                     options={"peft_args": {"r": 256, "vera_dropout": 0.1}, "trust_remote_code": True},
                     price_as="h100", metrics=["bleu"], max_train_rows=500, device="cpu",
                     prices="my_prices.toml", tune=4, learning_curve=[16, 64],
                     more_data=["other.csv"], gpus_per_candidate=2, command="tunewise tui")
    manifest = {"plan": dataclasses.asdict(plan), "strategies": ["lora", "peft:vera"],
                "command": "tunewise bench --resume runs/x"}
    command = reproduce_command(manifest, [])
    assert command["source"] == "plan" and command["invoked"] == "tunewise bench --resume runs/x"
    words = shlex.split(command["text"])
    assert words[:2] == ["tunewise", "bench"]
    parser, _, rest = command_parser(words[1:])
    again = bench_cli.plan_from_args(parser.parse_args(rest))
    for field in dataclasses.fields(BenchPlan):
        if field.name not in ("command", "estimates"):
            assert getattr(again, field.name) == getattr(plan, field.name), field.name


def test_older_manifests_fall_back_to_the_stored_bench_command_or_the_facts():
    from reports.reproduce import reproduce_command

    stored = "tunewise bench --data d.csv --strategies lora --seed 1"
    assert reproduce_command({"command": stored}, []) == {"text": stored, "source": "command", "invoked": None}
    rebuilt = reproduce_command({"command": "tunewise bench --resume runs/x", "data": {"path": "d.csv"},
                                 "model": "m", "seed": 2}, [{"strategy": "knn"}])
    assert rebuilt["text"] == "tunewise bench --data d.csv --strategies knn --model m --seed 2"
    assert rebuilt["source"] == "facts" and rebuilt["invoked"] == "tunewise bench --resume runs/x"
