"""Issue 17: several base models in one run, the user's prompt, deployment facts, trackers.

Fake strategies (tests/fake_strategies.py) check the harness's plumbing in seconds; the tiny
random models (tests/conftest.py) check that real candidates take the prompt and the model.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from bench import journal
from bench.deploy import measure_deploy, percentile
from bench.errors import TunewiseError
from bench.plan import model_labels, model_names, prepare_run, text_or_file
from bench.service import run_plan
from fake_strategies import fake_plan, register_fakes, write_binary_data
from reports.html import write_report
from reports.run_data import load_run
from strategies.base import StrategyError, TaskSplit
from strategies.prompts import (check_prompt_template, classification_prompt, qa_prompt,
                                task_instruction)


@pytest.fixture(autouse=True)
def fakes():
    from strategies import catalogue, registry
    from strategies.profile import Profile

    saved = catalogue.snapshot()
    register_fakes()
    registry.register("fake-encoder-echo", "fake_strategies:SPEC_ENCODER_ECHO", "baseline",
                      profile=Profile(model="encoder"))
    yield
    catalogue.restore(saved)
    registry.get.cache_clear()


@pytest.fixture
def data(tmp_path):
    return write_binary_data(tmp_path)


@pytest.fixture
def second_model(tmp_path) -> str:
    """The tiny Llama copied to a folder of its own name: a second base model (a local folder,
    as a user would give one)."""
    from bench.models import tiny_llama_dir

    folder = tmp_path / "models" / "tiny-llama-b"
    shutil.copytree(tiny_llama_dir(), folder)
    return str(folder)


# --------------------------------------------------------------------------- several models


def test_model_names_read_a_comma_list_or_a_list_and_refuse_repeats():
    assert model_names("tiny-llama, org/model-b") == ["tiny-llama", "org/model-b"]
    assert model_names(["a", "b"]) == ["a", "b"]
    with pytest.raises(TunewiseError, match="listed twice"):
        model_names("a,b,a")
    with pytest.raises(TunewiseError, match="empty"):
        model_names(" , ")


def test_model_labels_are_short_and_never_shared():
    labels = model_labels(["HuggingFaceTB/SmolLM2-135M", "/models/tiny-llama"])
    assert labels == {"HuggingFaceTB/SmolLM2-135M": "SmolLM2-135M",
                      "/models/tiny-llama": "tiny-llama"}
    clash = model_labels(["org-a/model", "org-b/model"])
    assert len(set(clash.values())) == 2


def test_llm_candidates_get_one_job_per_model_and_encoder_candidates_one(data, tmp_path,
                                                                         second_model):
    plan = fake_plan(data, tmp_path, ["fake-echo", "fake-encoder-echo"],
                     model=f"tiny-llama,{second_model}")
    run_dir, jobs = prepare_run(plan)
    named = {(job.variant or job.strategy): job for job in jobs}
    assert set(named) == {"fake-echo@tiny-llama", "fake-echo@tiny-llama-b", "fake-encoder-echo"}
    assert named["fake-echo@tiny-llama"].model == "tiny-llama"
    assert named["fake-echo@tiny-llama-b"].model == second_model
    assert not named["fake-encoder-echo"].uses_llm
    # each model's run has its own folder and log; every job reads the one split
    assert len({job.work_dir for job in jobs}) == 3 and len({job.log_path for job in jobs}) == 3
    assert len({job.split_path for job in jobs}) == 1
    manifest = journal.read_json(run_dir / journal.MANIFEST)
    assert manifest["models"] == ["tiny-llama", second_model]


def test_several_models_refuse_sweeps(data, tmp_path):
    plan = fake_plan(data, tmp_path, ["fake-echo"], model="tiny-llama,other")
    plan.tune = 2
    with pytest.raises(TunewiseError, match="several base models"):
        prepare_run(plan)
    assert not (tmp_path / "runs").exists()


def test_a_run_of_two_models_records_and_reports_each(data, tmp_path, second_model):
    plan = fake_plan(data, tmp_path, ["fake-echo", "fake-encoder-echo"],
                     model=f"tiny-llama,{second_model}")
    outcome = run_plan(plan, write_report=write_report)
    assert outcome.exit_code == 0, outcome.records
    by_name = {r.get("variant") or r["strategy"]: r for r in outcome.records}
    assert set(by_name) == {"fake-echo@tiny-llama", "fake-echo@tiny-llama-b", "fake-encoder-echo"}
    # the child got the model its record names
    assert by_name["fake-echo@tiny-llama"]["info"]["model_seen"] == "tiny-llama"
    assert by_name["fake-echo@tiny-llama-b"]["info"]["model_seen"] == second_model
    assert by_name["fake-echo@tiny-llama-b"]["model"] == second_model
    assert "model" not in by_name["fake-encoder-echo"]  # it never read the LLM
    run = load_run(outcome.run_dir)
    assert {r["strategy"] for r in run.records} == set(by_name)  # none hides another
    html = outcome.report_path.read_text(encoding="utf-8")
    assert "Base models compared" in html
    assert "fake-echo@tiny-llama-b" in html and "tiny-llama-b" in html


def test_resume_runs_only_the_models_that_did_not_finish(data, tmp_path, second_model):
    plan = fake_plan(data, tmp_path, ["fake-echo"], model=f"tiny-llama,{second_model}")
    outcome = run_plan(plan)
    records = journal.read_records(outcome.run_dir)
    # as if the second model's run had failed: drop its record
    kept = [r for r in records if r.get("variant") == "fake-echo@tiny-llama"]
    (outcome.run_dir / journal.RESULTS).write_text(
        "".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    from bench.plan import BenchPlan

    _, jobs = prepare_run(BenchPlan(data="", resume=str(outcome.run_dir)))
    assert [job.variant for job in jobs] == ["fake-echo@tiny-llama-b"]


# --------------------------------------------------------------------------- the prompt


def test_instruction_and_template_reach_the_candidates_and_the_records(data, tmp_path):
    instruction_file = tmp_path / "instruction.txt"
    instruction_file.write_text("Decide if the message is positive or negative.\n",
                                encoding="utf-8")
    plan = fake_plan(data, tmp_path, ["fake-echo", "fake-encoder-echo"],
                     instruction=str(instruction_file), prompt_template="Message: {text}")
    outcome = run_plan(plan, write_report=write_report)
    assert outcome.exit_code == 0
    echo = next(r for r in outcome.records if r["strategy"] == "fake-echo")
    assert echo["info"]["instruction_seen"] == "Decide if the message is positive or negative."
    assert echo["info"]["template_seen"] == "Message: {text}"
    assert echo["prompt"] == {"instruction": "Decide if the message is positive or negative.",
                              "instruction_source": "user", "template": "Message: {text}"}
    encoder = next(r for r in outcome.records if r["strategy"] == "fake-encoder-echo")
    assert "prompt" not in encoder  # an encoder candidate reads no prompt
    html = outcome.report_path.read_text(encoding="utf-8")
    assert "Decide if the message is positive or negative." in html
    assert "Message: {text}" in html
    from reports.reproduce import reproduce_command

    command = reproduce_command(load_run(outcome.run_dir).manifest, [])["text"]
    assert "--instruction" in command and "--prompt-template" in command


def test_the_default_instruction_is_recorded_as_the_default(data, tmp_path):
    outcome = run_plan(fake_plan(data, tmp_path, ["fake-echo"]))
    prompt = outcome.records[0]["prompt"]
    assert prompt["instruction_source"] == "default" and prompt["template"] is None
    assert "negative, positive" in prompt["instruction"]  # the labels, listed by the default


@pytest.mark.parametrize("template, message", [
    ("Ticket: {body}", "{body}"),
    ("Nothing to fill", "must contain {text}"),
    ("Ticket: {text", "does not parse"),
])
def test_a_bad_template_is_refused_before_a_run_folder_exists(data, tmp_path, template, message):
    outcome = run_plan(fake_plan(data, tmp_path, ["fake-echo"], prompt_template=template))
    assert outcome.exit_code == 2 and message in outcome.error
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_text_or_file_reads_a_file_and_refuses_an_empty_one(tmp_path):
    assert text_or_file("Classify the ticket.", "--instruction") == "Classify the ticket."
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(TunewiseError, match="empty"):
        text_or_file(str(empty), "--instruction")


def test_the_template_shapes_every_turn_of_the_prompt():
    split = TaskSplit("classification", train=[], validation=[], test=[],
                      labels=["neg", "pos"], instruction="Is it good?",
                      prompt_template="Customer wrote: <<{text}>>")
    demos = [{"text": "great", "label": "pos"}]
    prompt = classification_prompt(None, split, "awful", demos)  # no tokenizer: plain layout
    assert "Is it good?" in prompt
    assert "Customer wrote: <<great>>" in prompt and "Customer wrote: <<awful>>" in prompt
    assert "Text: " not in prompt
    assert task_instruction(split) == "Is it good?"


def test_a_qa_template_places_retrieved_passages():
    split = TaskSplit("qa", train=[], validation=[], test=[],
                      prompt_template="Q: {question}\nDocs:\n{passages}")
    prompt = qa_prompt(None, split, {"question": "Capital of France?", "context": ""},
                       passages=["Paris is the capital of France."])
    assert "Q: Capital of France?\nDocs:\nRetrieved passages:\n[1] Paris" in prompt
    without_slot = TaskSplit("qa", train=[], validation=[], test=[],
                             prompt_template="Q: {question}")
    prompt = qa_prompt(None, without_slot, {"question": "Capital?"}, passages=["Paris."])
    assert prompt.index("[1] Paris.") < prompt.index("Q: Capital?")  # passages first


def test_check_prompt_template_names_the_fields_a_task_allows():
    check_prompt_template("generation", "{instruction}\n{input}")
    with pytest.raises(StrategyError, match=r"\{instruction\}, \{input\}, \{passages\}"):
        check_prompt_template("generation", "{instruction} {text}")


def test_the_chat_template_carries_the_users_prompt():
    """What fine-tuning trains on and prediction sends (prompt_for), through the tiny Llama's
    chat template: the instruction as the system turn, the template as the user turn."""
    from bench.models import load_model
    from strategies.prompts import prompt_for

    split = TaskSplit("classification", train=[], validation=[], test=[],
                      labels=["negative", "positive"], instruction="Rate the sentiment.",
                      prompt_template="Review: {text}")
    _, tokenizer = load_model("tiny-llama", "causal-lm")
    prompt = prompt_for(tokenizer, split, {"text": "I love it", "label": "positive"})
    assert prompt.index("Rate the sentiment.") < prompt.index("Review: I love it")
    assert "<|im_start|>system" in prompt  # SmolLM2's chat layout, not the plain fallback


def test_zero_shot_compares_two_base_models_with_the_users_prompt(data, tmp_path, second_model):
    """The real zero-shot candidate on two tiny models in one run: one record per model, each
    with the model, the prompt and its latency at batch 1; the report compares them."""
    plan = fake_plan(data, tmp_path, ["zero-shot", "majority"],
                     model=f"tiny-llama,{second_model}", instruction="Rate the sentiment.",
                     prompt_template="Review: {text}")
    outcome = run_plan(plan, write_report=write_report)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    shots = {r["variant"]: r for r in outcome.records if r["strategy"] == "zero-shot"}
    assert set(shots) == {"zero-shot@tiny-llama", "zero-shot@tiny-llama-b"}
    for record in shots.values():
        assert record["prompt"]["instruction"] == "Rate the sentiment."
        assert record["deploy"]["p50_ms"] > 0 and record["deploy"]["requests"] >= 2
    assert [r["strategy"] for r in outcome.records].count("majority") == 1
    split = journal.read_json(outcome.run_dir / journal.SPLIT)
    assert split["prompt_template"] == "Review: {text}"  # what every child read
    html = outcome.report_path.read_text(encoding="utf-8")
    assert "Base models compared" in html and "zero-shot@tiny-llama-b" in html


# --------------------------------------------------------------------------- deployment facts


def test_percentile_is_nearest_rank():
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 20.0
    assert percentile(values, 95) == 40.0
    assert percentile([7.0], 95) == 7.0


def test_measure_deploy_times_one_request_at_a_time():
    calls = []

    def answer(rows):
        calls.append(len(rows))
        time.sleep(0.03)
        return ["label"] * len(rows)

    facts = measure_deploy(answer, [{"text": str(i)} for i in range(20)], "cpu")
    assert set(calls) == {1}  # batch 1, always
    assert facts["requests"] == 8 and len(calls) == 9  # 8 timed after one warm-up
    assert 25 <= facts["p50_ms"] <= facts["p95_ms"] < 1000
    assert facts["serving_mb"] > 0 and facts["memory_kind"] == "process rss"


def test_measure_deploy_stops_at_its_budget_and_never_raises():
    slow = measure_deploy(lambda rows: (time.sleep(0.2), ["x"])[1],
                          [{"text": "a"}] * 8, "cpu", budget_s=0.1)
    assert slow["requests"] == 2  # the minimum, then the budget stopped it
    broken = measure_deploy(lambda rows: 1 / 0, [{"text": "a"}], "cpu")
    assert broken["error"].startswith("not measured: ZeroDivisionError")
    assert "no predict path" in measure_deploy(None, [{"text": "a"}], "cpu")["error"]


def test_deployment_facts_reach_the_record_and_the_report(data, tmp_path):
    outcome = run_plan(fake_plan(data, tmp_path, ["fake-echo", "fake-noop"]),
                       write_report=write_report)
    by_name = {r["strategy"]: r for r in outcome.records}
    deploy = by_name["fake-echo"]["deploy"]
    assert deploy["batch_size"] == 1 and deploy["requests"] == 8
    assert 15 <= deploy["p50_ms"] <= deploy["p95_ms"]  # each answer sleeps 20 ms
    assert "no predict path" in by_name["fake-noop"]["deploy"]["error"]
    html = outcome.report_path.read_text(encoding="utf-8")
    assert "latency p50" in html and "serving memory" in html
    from reports.tables import results_grid

    grid = results_grid(load_run(outcome.run_dir).records)
    row = next(r for r in grid.rows if r.strategy == "fake-echo")
    assert row.value("latency_p50_ms") == deploy["p50_ms"]


def test_the_deployment_measurement_is_not_in_the_candidates_time(data, tmp_path):
    """Latency is measured after the candidate's work, like the forgetting probe: its seconds
    are deploy.measure_s, and time_s.total (what the candidate is timed and priced by) is the
    child's phases plus the harness's start-up, without them."""
    record = run_plan(fake_plan(data, tmp_path, ["fake-echo"])).records[0]
    measured = record["deploy"]["measure_s"]
    assert measured >= 0.15  # a warm-up and 8 requests of ~20 ms
    child_time = record["time_s"]["total"] - record["info"]["harness_overhead_s"]
    # the child's time left in total is its phases (it would be phases + measure_s if counted)
    assert abs(child_time - sum(record["info"]["phases_s"].values())) < measured / 2


def test_a_real_candidate_is_timed_at_batch_1(data, tmp_path):
    """knn on the tiny encoder: its own predict path answers the timed requests."""
    outcome = run_plan(fake_plan(data, tmp_path, ["knn"]))
    deploy = outcome.records[0]["deploy"]
    assert outcome.records[0]["status"] == "ok", outcome.records[0]["error"]
    assert deploy["requests"] >= 2 and 0 < deploy["p50_ms"] <= deploy["p95_ms"]
    assert deploy["serving_mb"] > 0


# --------------------------------------------------------------------------- trackers


def test_report_to_refuses_a_tracker_that_is_not_installed(data, tmp_path, monkeypatch):
    import bench.tracking

    monkeypatch.setattr(bench.tracking, "missing_package", lambda kind: "tensorboard")
    outcome = run_plan(fake_plan(data, tmp_path, ["fake-echo"], report_to="tensorboard"))
    assert outcome.exit_code == 2 and "pip install" in outcome.error


def test_tracker_env_points_inside_the_run_folder(tmp_path):
    from bench.tracking import REPORT_TO_ENV, tracker_env
    from strategies import trackers

    assert tracker_env("none", tmp_path, "run", "lora", 0, False) == {}
    tensorboard = tracker_env("tensorboard", tmp_path, "run", "lora@tiny", 0, False)
    assert Path(tensorboard["TENSORBOARD_LOGGING_DIR"]) == \
        tmp_path.resolve() / "tracking" / "tensorboard" / "lora@tiny"
    mlflow = tracker_env("mlflow", tmp_path, "run", "lora", 1, True)
    assert mlflow["MLFLOW_TRACKING_URI"].startswith("file:")
    assert REPORT_TO_ENV == trackers.REPORT_TO_ENV  # strategies repeat the name


def test_tensorboard_event_files_hold_the_loss_curve(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plan = fake_plan(data, tmp_path, ["lora"], report_to="tensorboard")
    plan.overrides = {"lora": {"max_steps": "3"}}
    outcome = run_plan(plan, write_report=write_report)
    assert outcome.records[0]["status"] == "ok", outcome.records[0]["error"]
    folder = outcome.run_dir / "tracking" / "tensorboard" / "lora"
    events = list(folder.rglob("events.out.tfevents.*"))
    assert events, list(outcome.run_dir.rglob("*"))
    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]
    assert len(accumulator.Scalars("train/loss")) >= 2
    assert 'href="tracking/tensorboard/"' in outcome.report_path.read_text(encoding="utf-8")


def test_mlflow_file_store_holds_the_run(data, tmp_path):
    pytest.importorskip("mlflow")
    plan = fake_plan(data, tmp_path, ["lora"], report_to="mlflow")
    plan.overrides = {"lora": {"max_steps": "2"}}
    outcome = run_plan(plan)
    assert outcome.records[0]["status"] == "ok", outcome.records[0]["error"]
    store = outcome.run_dir / "tracking" / "mlruns"
    metrics = [p.name for p in store.rglob("metrics/*")]
    assert "loss" in metrics or "train_loss" in metrics, list(store.rglob("*"))[:40]


@pytest.mark.parametrize("strategy, task, overrides", [
    ("knn", "classification", {}),
    ("transfer", "classification", {}),
    ("zero-shot", "classification", {"calibrate": False}),
    ("rag", "qa", {"max_new_tokens": 4}),
    ("lora", "classification", {"max_steps": 2}),
])
def test_the_timed_path_answers_what_the_run_predicted(context_factory, strategy, task,
                                                       overrides):
    """StrategyOutput.answer is the candidate's own predict path: on test rows it gives the
    predictions the harness scored, so the latency is the latency of those answers."""
    from strategies import registry

    spec = registry.get(strategy)
    ctx = context_factory(task)
    output = spec.run(ctx, spec.make_config("quick", overrides))
    rows = ctx.data.test[:2]
    assert output.answer is not None
    assert [output.answer([row])[0] for row in rows] == output.predictions[:2]


@pytest.mark.integration
def test_one_report_compares_the_bundled_smollm2_with_the_tiny_model(data, tmp_path):
    """Issue 17's check: the bundled SmolLM2 and the tiny model, side by side in one report."""
    plan = fake_plan(data, tmp_path, ["zero-shot"], model="smollm2-135m,tiny-llama")
    outcome = run_plan(plan, write_report=write_report)
    assert outcome.exit_code == 0, [r.get("error") for r in outcome.records]
    models = {r["model"]: r for r in outcome.records}
    assert set(models) == {"smollm2-135m", "tiny-llama"}
    # a 135M model and a 2-layer random one are not the same size
    assert models["smollm2-135m"]["total_params"] > 10 * models["tiny-llama"]["total_params"]
    html = outcome.report_path.read_text(encoding="utf-8")
    assert "Base models compared" in html
    assert "zero-shot@smollm2-135m" in html and "zero-shot@tiny-llama" in html


def test_export_refuses_a_candidate_run_on_several_models(data, tmp_path, second_model):
    import argparse

    from bench import export

    outcome = run_plan(fake_plan(data, tmp_path, ["fake-echo"],
                                 model=f"tiny-llama,{second_model}"))
    args = argparse.Namespace(run_dir=str(outcome.run_dir), strategy="fake-echo",
                              out=str(tmp_path / "out"), merge=False, force=False)
    with pytest.raises(TunewiseError, match="several base models"):
        export.run(args)
