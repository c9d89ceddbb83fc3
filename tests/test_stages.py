"""bench.stages: a model the candidates share is built once per run, before them, as a stage with
its own measured and priced record, billed to no candidate.

Most tests use the fake provider of tests/fake_stage.py (a stage that sleeps 0.6 s in its
adapt phase) in real spawned children; the last ones plan the real win-rate judge stage of the
preference strategies and run it on the tiny random model.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

import fake_stage
from bench import journal, stages
from bench.events import CandidateFinished, CandidateStarted, StageFinished
from bench.runner import BenchPlan, prepare_run, run_benchmark
from bench.schema import validate_record
from fake_strategies import fake_plan

pytestmark = pytest.mark.usefixtures("fakes")  # tests/conftest.py: fakes, data


@pytest.fixture
def fake_provider(monkeypatch):
    fake_stage.register_staged()
    monkeypatch.setattr(stages, "PROVIDERS", ("fake_stage",))


def _stage_records(run_dir):
    return journal.read_records(run_dir, stages.STAGES)


def test_the_stage_runs_once_before_the_candidates_and_is_billed_to_none(
        fake_provider, data, tmp_path):
    events = []
    result = run_benchmark(fake_plan(data, tmp_path, ["fake-staged", "fake-staged-2",
                                                      "fake-constant"]),
                           on_event=events.append)
    [stage] = _stage_records(result.run_dir)
    assert result.stages == [stage]
    assert validate_record(stage) == []
    assert stage["kind"] == "stage" and stage["status"] == "ok"
    assert stage["strategy"] == "fake-shared"
    assert stage["info"]["used_by"] == ["fake-staged", "fake-staged-2"]  # not fake-constant
    # measured and priced like a candidate
    assert stage["time_s"]["adapt"] >= fake_stage.STAGE_SECONDS
    assert stage["cost_usd"]["adapt"] > 0 and stage["cost_usd"]["per_1k_requests"] == 0
    assert stage["peak_memory_mb"]["cpu_rss"] > 0
    assert stage["info"]["phases_s"]["adapt"] >= fake_stage.STAGE_SECONDS
    # the candidates only read what it built: one build (one process) for both
    records = {r["strategy"]: r for r in result.records}
    assert "fake-shared" not in records and all("kind" not in r for r in result.records)
    seen = [records[name]["info"]["stage_seen"] for name in ("fake-staged", "fake-staged-2")]
    assert seen[0] == seen[1] and seen[0]["steps"] == 3
    for name in ("fake-staged", "fake-staged-2"):
        # the stage's adaptation is in none of theirs (they adapt nothing themselves)
        assert records[name]["time_s"]["adapt"] == 0 and records[name]["cost_usd"]["adapt"] == 0
        assert records[name]["info"]["stage_name"] == "fake-shared"
    assert records["fake-constant"]["status"] == "ok"
    # events: the stage first, reported as a stage, never as a finished candidate
    started = [e.strategy for e in events if isinstance(e, CandidateStarted)]
    assert started[0] == "fake-shared"
    assert [e.stage for e in events if isinstance(e, StageFinished)] == ["fake-shared"]
    assert "fake-shared" not in [e.strategy for e in events if isinstance(e, CandidateFinished)]
    assert "fake-shared" not in {r["strategy"] for r in journal.read_records(result.run_dir)}


def test_candidates_asking_for_another_stage_get_their_own(fake_provider, data, tmp_path):
    result = run_benchmark(fake_plan(data, tmp_path, ["fake-staged", "fake-staged-2"],
                                     overrides={"fake-staged-2": {"stage_steps": 5}}))
    built = {r["strategy"]: r["config"]["steps"] for r in _stage_records(result.run_dir)}
    assert built == {"fake-shared": 3, "fake-shared-2": 5}
    records = {r["strategy"]: r for r in result.records}
    assert records["fake-staged-2"]["info"]["stage_seen"]["steps"] == 5
    assert records["fake-staged-2"]["info"]["stage_name"] == "fake-shared-2"


def test_a_candidate_that_wants_no_stage_starts_none(fake_provider, data, tmp_path):
    result = run_benchmark(fake_plan(data, tmp_path, ["fake-staged"],
                                     overrides={"fake-staged": {"wants_stage": False}}))
    assert _stage_records(result.run_dir) == [] and result.stages == []
    assert result.records[0]["info"]["stage_seen"] is None


def test_a_failed_stage_is_recorded_and_the_candidates_still_run(fake_provider, data, tmp_path):
    result = run_benchmark(fake_plan(data, tmp_path, ["fake-staged"],
                                     overrides={"fake-staged": {"stage_steps": -1}}))
    [stage] = _stage_records(result.run_dir)
    assert stage["status"] == "failed" and stage["kind"] == "stage"
    assert "deliberate crash inside the stage" in stage["error"]
    [record] = result.records
    assert record["status"] == "ok" and record["info"]["stage_seen"] is None


def test_resume_reuses_a_finished_stage(fake_provider, data, tmp_path):
    first = run_benchmark(fake_plan(data, tmp_path, ["fake-staged", "fake-crash"]))
    [built] = _stage_records(first.run_dir)
    again = run_benchmark(BenchPlan(data=data["data"], resume=str(first.run_dir)))
    assert again.stages == []  # fake-crash reran; the stage it does not need was not rebuilt
    assert _stage_records(first.run_dir) == [built]
    # and a rerun candidate that needs it would find it: plan_stages links without rebuilding
    _, jobs = prepare_run(fake_plan(data, tmp_path, ["fake-staged"]))
    jobs = [dataclasses.replace(j, run_dir=str(first.run_dir)) for j in jobs]
    pending, linked = stages.plan_stages(first.run_dir, jobs)
    assert pending == []
    assert linked[0].options["fake_shared"]["folder"] == built_folder(first.run_dir)


def built_folder(run_dir) -> str:
    return str(journal.work_dir(run_dir, "fake-shared"))


def test_the_report_shows_the_stage_and_the_run_total(fake_provider, data, tmp_path):
    from reports.html import write_report

    result = run_benchmark(fake_plan(data, tmp_path, ["fake-staged"]))
    html = write_report(result.run_dir).read_text(encoding="utf-8")
    assert "Shared stages" in html and "fake-shared" in html
    assert "billed to none of them" in html and "Run total" in html


# ----------------------------------------------------------------- the real win-rate judge


def _preference_jobs(tmp_path, strategies, overrides=None):
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "bench" / "samples" / "hh_helpful_mini"
    return prepare_run(BenchPlan(data=str(sample), strategies=strategies, out=str(tmp_path),
                                 model="tiny-llama", overrides=overrides or {}))


def test_the_preference_policies_share_one_win_rate_judge_stage(tmp_path):
    from strategies.preference_judge import OPTION, STAGE_NAME, STAGE_TARGET

    run_dir, jobs = _preference_jobs(tmp_path, ["sft-chosen", "dpo", "reward-model"],
                                     {"*": {"judge_steps": 7}})
    pending, linked = stages.plan_stages(run_dir, jobs)
    [stage] = pending
    assert (stage.strategy, stage.target, stage.kind) == (STAGE_NAME, STAGE_TARGET, "stage")
    assert stage.config["max_steps"] == 7 and stage.seeds == [0]
    assert stage.extra_info["used_by"] == ["sft-chosen", "dpo"]  # reward-model gives no answers
    by_name = {job.strategy: job for job in linked}
    assert OPTION not in by_name["reward-model"].options
    for name in ("sft-chosen", "dpo"):
        assert by_name[name].options[OPTION] == {"folder": stage.work_dir, "stage": STAGE_NAME,
                                                  "halves_seed": 0}


def test_a_tuned_policy_setting_does_not_change_the_judge(tmp_path):
    """The judge's adapter, batch and learning rate are its own: a candidate with another LoRA
    rank (or a tuning trial) is judged by the same referee; only the budgets are carried."""
    run_dir, jobs = _preference_jobs(tmp_path, ["sft-chosen", "dpo"],
                                     {"dpo": {"lora_r": 4, "batch_size": 2}})
    pending, _ = stages.plan_stages(run_dir, jobs)
    assert len(pending) == 1 and pending[0].config["lora_r"] == 16
    run_dir, jobs = _preference_jobs(tmp_path, ["sft-chosen", "dpo"],
                                     {"dpo": {"max_new_tokens": 8}})
    assert [s.config["max_new_tokens"] for s in stages.plan_stages(run_dir, jobs)[0]] == [32, 8]


def test_a_candidate_whose_stage_failed_is_not_judged(context_factory, tmp_path):
    from strategies.preference_eval import EvalSettings
    from strategies.preference_judge import OPTION, option_for, referee_for
    from strategies.preference_training import PreferenceConfig

    ctx = context_factory("preference", **{
        OPTION: option_for(tmp_path / "never-built", "win-rate-judge", 0)})
    phases = []
    ctx.on_phase = phases.append
    referee, info = referee_for(ctx, PreferenceConfig(), EvalSettings())
    assert referee is None and phases == []  # nothing trained in its place
    assert "win-rate-judge stage did not finish" in info["win_rate_not_measured"]


def test_the_judge_stage_builds_the_referee_a_policy_then_loads(context_factory, tmp_path):
    """The real stage on the tiny model: judge and base answers in its folder, its phases its
    own; a dpo candidate handed the folder trains no judge and is judged with it."""
    from strategies import registry
    from strategies.preference_judge import (ANSWERS_FILE, OPTION, REFEREE_FILE, STAGE,
                                             option_for)

    stage_dir = tmp_path / "work" / "win-rate-judge"
    stage_ctx = context_factory("preference")
    stage_ctx.work_dir = stage_dir
    stage_dir.mkdir(parents=True)
    stage_phases = []
    stage_ctx.on_phase = stage_phases.append
    output = STAGE.run(stage_ctx, STAGE.make_config("quick", {"max_steps": 1,
                                                               "max_new_tokens": 4}))
    assert output.predictions == [] and stage_phases == ["load", "adapt", "predict", "save"]
    assert output.trainable_params > 0 and (stage_dir / "judge" / "config.json").exists()
    answers = json.loads((stage_dir / ANSWERS_FILE).read_text())
    assert len(answers) == len(stage_ctx.data.test)
    assert json.loads((stage_dir / REFEREE_FILE).read_text())["judge"]["steps"] == 1

    spec = registry.get("dpo")
    ctx = context_factory("preference", **{OPTION: option_for(stage_dir, "win-rate-judge", 0)})
    phases = []
    ctx.on_phase = phases.append
    result = spec.run(ctx, spec.make_config("quick", {"max_steps": 1, "judge_steps": 1,
                                                      "max_new_tokens": 4, "batch_size": 2}))
    assert phases == ["load", "adapt", "predict", "save"]
    assert not (ctx.work_dir / "win-rate-judge").exists()  # nothing of the referee built here
    assert result.info["judge_stage"] == "win-rate-judge"
    assert [p["baseline_response"] for p in result.predictions] == answers
    assert all("judge_score" in p for p in result.predictions)
