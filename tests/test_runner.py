"""The harness: isolation, records, resume, events — with strategies that misbehave on purpose.

Every candidate here is a test double from tests/fake_strategies.py running in a real spawned
child, on a small classification file written by the test (bench.data loads and splits it).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from bench import journal
from bench.runner import (BenchPlan, CandidateFinished, CandidateProgress, CandidateStarted,
                          RunFinished, prepare_run, run_benchmark, run_candidate)
from bench.schema import validate_record
from fake_strategies import fake_plan, write_jsonl


pytestmark = pytest.mark.usefixtures("fakes")  # tests/conftest.py: fakes, data


_plan = fake_plan  # the shared run of tiny models on the binary data


def _by_strategy(records):
    return {r["strategy"]: r for r in records}


def test_failures_become_records_while_the_others_finish(data, tmp_path):
    strategies = ["fake-crash", "fake-constant", "fake-sleep", "fake-sigkill",
                  "fake-user-error", "fake-skip", "fake-wrong-count", "fake-noop"]
    result = run_benchmark(_plan(data, tmp_path, strategies, timeout_s=4))
    records = _by_strategy(result.records)
    assert list(records) == strategies
    assert {s: r["status"] for s, r in records.items()} == {
        "fake-crash": "failed", "fake-constant": "ok", "fake-sleep": "timeout",
        "fake-sigkill": "failed", "fake-user-error": "failed", "fake-skip": "skipped",
        "fake-wrong-count": "failed", "fake-noop": "ok"}
    assert records["fake-crash"]["error"].startswith(
        "RuntimeError: deliberate crash inside the strategy (at fake_strategies.py:")
    assert records["fake-sleep"]["error"].startswith("timed out after 4 s (--timeout)")
    assert "phase adapt" in records["fake-sleep"]["error"]  # what it was doing
    assert "SIGKILL" in records["fake-sigkill"]["error"]
    assert "about to be killed" in records["fake-sigkill"]["error"]  # the log's last lines
    # A StrategyError is the user's message, without a traceback.
    assert records["fake-user-error"]["error"] == "lora_r must be positive (got -1)"
    assert "Traceback" not in records["fake-user-error"]["error"]
    assert records["fake-skip"]["error"] == "needs a CUDA GPU; none is available here"
    assert "11 predictions for 12 test rows" in records["fake-wrong-count"]["error"]
    for record in result.records:
        assert validate_record(record) == [], record["strategy"]
    # The journal holds exactly what was returned, and the full traceback is in the log.
    assert journal.read_records(result.run_dir) == json.loads(json.dumps(result.records))
    crash_log = (result.run_dir / records["fake-crash"]["log"]).read_text()
    assert "Traceback (most recent call last)" in crash_log
    assert "fake-constant printed this to stdout" in (
        result.run_dir / records["fake-constant"]["log"]).read_text()


def test_running_out_of_gpu_memory_is_a_message_with_what_to_try(data, tmp_path):
    result = run_benchmark(_plan(data, tmp_path, ["fake-gpu-oom", "fake-constant"]))
    records = _by_strategy(result.records)
    assert records["fake-constant"]["status"] == "ok"  # the next candidate still runs
    oom = records["fake-gpu-oom"]
    assert oom["status"] == "failed"
    assert oom["error"].startswith("out of GPU memory (Tried to allocate 2.00 GiB): try a "
                                   "smaller batch")
    assert "qlora" in oom["error"] and "PYTORCH_CUDA_ALLOC_CONF" not in oom["error"]
    assert "Traceback" in (result.run_dir / oom["log"]).read_text()  # the details stay in the log


def test_a_wrapped_gpu_out_of_memory_error_is_recognised_through_its_cause():
    import torch

    from bench.errors import out_of_gpu_memory
    from strategies.base import StrategyError

    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0")
        except RuntimeError as exc:  # as strategies.training_loop.train wraps it
            raise StrategyError(f"training failed: {exc}") from exc
    except StrategyError as wrapped:
        assert out_of_gpu_memory(wrapped).startswith("out of GPU memory (Tried to allocate 20.00 MiB)")
    assert out_of_gpu_memory(RuntimeError("shape mismatch")) is None


def test_ok_record_measures_and_scores(data, tmp_path):
    result = run_benchmark(_plan(data, tmp_path, ["fake-constant"]))
    record = result.records[0]
    assert validate_record(record) == []
    # Predicts "negative" (the first label) for all 12 test rows, 7 of which are negative.
    assert record["metrics"]["accuracy"] == pytest.approx(7 / 12, abs=1e-6)
    # macro over both labels: precision (7/12 + 0)/2, recall (1 + 0)/2
    assert record["metrics"]["precision"] == pytest.approx(7 / 24, abs=1e-6)
    assert record["metrics"]["recall"] == pytest.approx(0.5, abs=1e-6)
    assert record["metrics"]["fake_score"] == 0.5  # StrategyOutput.extra_metrics merged
    low, high = record["metrics_ci"]["accuracy"]
    assert low <= 7 / 12 <= high and high - low > 0
    assert record["confusion_matrix"] == {"labels": ["negative", "positive"],
                                          "matrix": [[7, 0], [5, 0]]}
    assert record["artifact_mb"] == pytest.approx(1.0)
    assert record["trainable_params"] == 10 and record["total_params"] == 100
    assert record["peak_memory_mb"]["cpu_rss"] > 5
    assert record["peak_memory_mb"]["cuda"] is None
    times = record["time_s"]
    assert times["total"] >= times["load"] + times["adapt"] + times["predict"]
    expected_cost = times["predict"] / 12 * 1000 * record["hardware"]["price_per_hour"] / 3600
    assert record["cost_usd"]["per_1k_requests"] == pytest.approx(expected_cost, rel=1e-3,
                                                                  abs=1e-7)
    assert record["hardware"]["price_row"] == "cpu" and record["cost_projected"] is False
    predictions = journal.read_records(result.run_dir, record["predictions"])
    assert [p["reference"] for p in predictions] == [r["label"] for r in data["test_rows"]]
    assert all(p["prediction"] == "negative" for p in predictions)
    assert [p["correct"] for p in predictions] == [1.0] * 7 + [0.0] * 5


def test_manifest_and_split_are_written(data, tmp_path):
    run_dir, jobs = prepare_run(_plan(data, tmp_path, ["fake-noop"], seed=3))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == run_dir.name
    assert len(manifest["data"]["hash"]) == 64
    assert manifest["seed"] == 3 and manifest["command"] == "pytest"
    assert manifest["task"] == "classification"
    assert manifest["packages"]["torch"] and manifest["hardware"]["cores"] >= 1
    assert "commit" in manifest["git"]
    assert sum(len(v) for v in manifest["split"]["indices"].values()) == 52
    split = json.loads((run_dir / "split.json").read_text())
    assert [row["label"] for row in split["test"]] == [r["label"] for r in data["test_rows"]]
    assert [job.strategy for job in jobs] == ["fake-noop"]
    assert jobs[0].target == "fake_strategies:SPEC_NOOP"


def test_memory_ceiling_stops_the_candidate(data, tmp_path):
    plan = _plan(data, tmp_path, ["fake-hog", "fake-noop"], max_memory_mb=250,
                 overrides={"fake-hog": {"hog_mb": 1200}})
    records = _by_strategy(run_benchmark(plan).records)
    assert records["fake-hog"]["status"] == "failed"
    assert records["fake-hog"]["error"].startswith("exceeded --max-memory 250 MB")
    assert records["fake-hog"]["peak_memory_mb"]["cpu_rss"] > 250
    assert records["fake-noop"]["status"] == "ok"


def test_seeds_report_mean_and_spread(data, tmp_path):
    record = run_benchmark(_plan(data, tmp_path, ["fake-constant"], seed=5, seeds=2)).records[0]
    assert record["seeds"] == [5, 6] and record["seed"] == 5
    assert record["metrics_std"]["accuracy"] == 0.0  # constant predictions: no spread
    assert len(record["info"]["time_s_per_seed"]) == 2
    assert validate_record(record) == []


def test_events_reach_the_caller(data, tmp_path):
    events = []
    result = run_benchmark(_plan(data, tmp_path, ["fake-constant", "fake-noop"]),
                           on_event=events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "CandidateStarted" and kinds[-1] == "RunFinished"
    started = [e for e in events if isinstance(e, CandidateStarted)]
    assert [(e.strategy, e.index, e.total) for e in started] == [
        ("fake-constant", 1, 2), ("fake-noop", 2, 2)]
    steps = [(e.phase, e.step, e.total) for e in events
             if isinstance(e, CandidateProgress) and e.total]
    assert ("adapt", 3, 3) in steps
    finished = [e.strategy for e in events if isinstance(e, CandidateFinished)]
    assert finished == ["fake-constant", "fake-noop"]
    assert isinstance(events[-1], RunFinished) and events[-1].run_dir == result.run_dir


def _comparable(records):
    """What must not change between a straight run and an interrupted-then-resumed one."""
    return sorted((r["strategy"], r["status"], json.dumps(r["metrics"], sort_keys=True),
                   r["error"] and r["error"].split(" (at ")[0]) for r in records)


def test_resume_skips_finished_and_gives_the_same_final_file(data, tmp_path):
    strategies = ["fake-constant", "fake-crash", "fake-noop"]
    straight = run_benchmark(_plan(data, tmp_path / "a", strategies))

    # Interrupt after the first candidate: the cancel event is what Ctrl-C and the TUI set.
    cancel = threading.Event()

    def stop_after_first(event):
        if isinstance(event, CandidateFinished):
            cancel.set()

    partial = run_benchmark(_plan(data, tmp_path / "b", strategies),
                            on_event=stop_after_first, cancel=cancel)
    assert partial.interrupted
    assert [r["strategy"] for r in partial.records] == ["fake-constant"]

    started = []
    resumed = run_benchmark(_plan(data, tmp_path / "ignored", ["ignored"],
                                  resume=str(partial.run_dir)),
                            on_event=lambda e: started.append(e.strategy)
                            if isinstance(e, CandidateStarted) else None)
    assert resumed.run_dir == partial.run_dir
    assert started == ["fake-crash", "fake-noop"]  # fake-constant was not run again
    final = journal.read_records(partial.run_dir)
    assert _comparable(final) == _comparable(straight.records)

    # Resuming again reruns only the failed candidate, moving its old record aside, so the
    # final file still has one record per candidate.
    started.clear()
    run_benchmark(BenchPlan(data="", resume=str(partial.run_dir)),
                  on_event=lambda e: started.append(e.strategy)
                  if isinstance(e, CandidateStarted) else None)
    assert started == ["fake-crash"]
    final = journal.read_records(partial.run_dir)
    assert Counter(r["strategy"] for r in final) == Counter(strategies)
    assert _comparable(final) == _comparable(straight.records)
    attempts = journal.read_records(partial.run_dir, journal.ATTEMPTS)
    assert [r["strategy"] for r in attempts] == ["fake-crash"]
    manifest = json.loads((partial.run_dir / "manifest.json").read_text())
    assert [s["interrupted"] for s in manifest["sessions"]] == [True, False, False]


def test_cancel_mid_candidate_stops_the_child_and_keeps_records(data, tmp_path):
    cancel = threading.Event()

    def cancel_when_sleeping(event):
        if isinstance(event, CandidateProgress) and event.phase == "adapt":
            cancel.set()

    result = run_benchmark(_plan(data, tmp_path, ["fake-noop", "fake-sleep", "fake-constant"]),
                           on_event=cancel_when_sleeping, cancel=cancel)
    assert result.interrupted
    # fake-noop finished and was kept; fake-sleep was stopped (no record: resume reruns it).
    assert [r["strategy"] for r in journal.read_records(result.run_dir)] == ["fake-noop"]


def test_cuda_requirement_is_a_skipped_record_without_a_child(data, tmp_path):
    run_dir, jobs = prepare_run(_plan(data, tmp_path, ["fake-noop"], device="cpu"))
    job = jobs[0]
    job.requires_cuda = True
    record = run_candidate(job)
    assert record["status"] == "skipped" and "CUDA" in record["error"]
    assert validate_record(record) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"strategies": ["majorty"]}, "did you mean majority"),
    ({"strategies": ["fake-noop", "fake-noop"]}, "listed twice"),
    ({"overrides": {"fake-noop": {"sleep": "1"}}}, "did you mean 'sleep_s'"),
    ({"overrides": {"*": {"lora_r": "8"}}}, "no selected strategy has an option 'lora_r'"),
    ({"overrides": {"lora": {"lora_r": "8"}}}, "'lora' is not among --strategies (fake-noop)"),
    ({"strategies": ["all", "fake-noop"]}, "give it alone"),
    ({"strategies": []}, "--strategies is empty"),
    ({"price_as": "h1000"}, "Did you mean 'h100'"),
    ({"metrics": ["no_such_metric_anywhere"]}, "cannot load this `evaluate` metric"),
])
def test_bad_input_is_a_clear_error_and_leaves_no_run_folder(data, tmp_path, kwargs, message):
    from bench.errors import TunewiseError

    kwargs.setdefault("strategies", ["fake-noop"])
    with pytest.raises(TunewiseError, match=f"(?i){re.escape(message)}") as info:
        prepare_run(_plan(data, tmp_path, **kwargs))
    assert "Traceback" not in str(info.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_unsupported_task_is_rejected(tmp_path):
    rows = [{"instruction": f"Say {w} please", "input": "", "output": w}
            for w in ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta",
                      "lambda", "zeta", "iota", "rho"]]
    path = write_jsonl(tmp_path / "gen.jsonl", rows)
    from bench.errors import TunewiseError

    with pytest.raises(TunewiseError, match="does not support generation"):
        prepare_run(BenchPlan(data=str(path), strategies=["fake-cls-only"],
                              out=str(tmp_path / "runs"), model="tiny-llama"))


def test_global_override_applies_where_the_field_exists(data, tmp_path):
    plan = _plan(data, tmp_path, ["fake-constant", "fake-noop"],
                 overrides={"*": {"label": "positive"}, "fake-noop": {"label": "negative"}})
    _, jobs = prepare_run(plan)
    assert {j.strategy: j.config["label"] for j in jobs} == {
        "fake-constant": "positive", "fake-noop": "negative"}


def test_one_child_per_gpu_pins_each_candidate_to_its_gpu(data, tmp_path):
    from bench.runner import LocalExecutor

    plan = _plan(data, tmp_path, ["fake-constant", "fake-noop", "fake-crash"],
                 overrides={"fake-constant": {"sleep_s": "1.5"}})
    result = run_benchmark(plan, executor=LocalExecutor(gpus=[0, 1]))
    records = _by_strategy(result.records)
    assert set(records) == {"fake-constant", "fake-noop", "fake-crash"}
    assert records["fake-crash"]["status"] == "failed"
    devices = {records[name]["info"]["visible_devices"] for name in ("fake-constant", "fake-noop")}
    assert devices == {"0", "1"}  # the two ran side by side, one on each GPU
    assert len(journal.read_records(result.run_dir)) == 3


SAMPLES = Path(__file__).resolve().parent.parent / "bench" / "samples"


@pytest.mark.parametrize("sample, task, expected", [
    ("self_instruct_mini", "generation", {"rouge_l", "token_f1", "exact_match"}),
    ("squad_mini", "qa", {"rouge_l", "token_f1", "exact_match"}),
    ("hh_helpful_mini", "preference", {"preference_accuracy"}),
])
def test_every_task_kind_is_scored_with_its_metrics(tmp_path, sample, task, expected):
    result = run_benchmark(BenchPlan(data=str(SAMPLES / sample), strategies=["fake-constant"],
                                     out=str(tmp_path / "runs"), model="tiny-llama"))
    record = result.records[0]
    assert validate_record(record) == [], record["error"]
    assert record["task"] == task
    assert expected <= set(record["metrics"]) and expected <= set(record["metrics_ci"])
    if task == "preference":  # the fake always prefers the response shown first
        from bench.split_view import chosen_shown_first

        test_rows = json.loads((result.run_dir / "split.json").read_text())["test"]
        shown_first = chosen_shown_first(record["seed"], len(test_rows))
        assert record["metrics"]["preference_accuracy"] == pytest.approx(
            sum(shown_first) / len(shown_first), abs=1e-6)
        assert 0 < record["metrics"]["preference_accuracy"] < 1  # the order is shuffled
    else:  # "constant" is never the answer
        assert record["metrics"]["exact_match"] == 0.0
    split = json.loads((result.run_dir / "split.json").read_text())
    assert len(journal.read_records(result.run_dir, record["predictions"])) == len(split["test"])


def test_a_run_folder_cannot_be_resumed_twice_at_once(data, tmp_path):
    from filelock import FileLock

    from bench.errors import TunewiseError

    run_dir, _ = prepare_run(_plan(data, tmp_path, ["fake-noop"]))
    with FileLock(str(run_dir / ".lock")):  # another process resuming it
        with pytest.raises(TunewiseError, match="being run by another tunewise process"):
            run_benchmark(BenchPlan(data="", resume=str(run_dir)))
    result = run_benchmark(BenchPlan(data="", resume=str(run_dir)))
    assert [r["status"] for r in result.records] == ["ok"]


# --------------------------------------------------------------------------- blind test labels


@pytest.mark.parametrize("sample", [None, "self_instruct_mini", "squad_mini", "hh_helpful_mini"])
def test_a_strategy_never_sees_test_labels(data, tmp_path, sample):
    """The child reads the label-free view: a strategy that reaches for a test row's label,
    output, answer or chosen response fails loudly, whatever the task kind."""
    plan = (_plan(data, tmp_path, ["fake-peek", "fake-constant"]) if sample is None else
            BenchPlan(data=str(SAMPLES / sample), strategies=["fake-peek", "fake-constant"],
                      out=str(tmp_path / "runs"), model="tiny-llama", command="pytest"))
    result = run_benchmark(plan)
    records = _by_strategy(result.records)
    peek = records["fake-peek"]
    key = {"classification": "label", "generation": "output", "qa": "answer",
           "preference": "chosen"}[peek["task"]]
    assert peek["status"] == "failed"
    assert peek["error"].startswith(f"KeyError: '{key}' (at fake_strategies.py:")
    assert records["fake-constant"]["status"] == "ok"  # the same view is enough to predict
    split = json.loads((result.run_dir / "split.json").read_text())
    view = json.loads((result.run_dir / "split_inputs.json").read_text())
    assert view["train"] == split["train"] and view["validation"] == split["validation"]
    assert len(view["test"]) == len(split["test"])
    expected_keys = {"classification": {"text"}, "generation": {"instruction", "input"},
                     "qa": {"question", "context"},
                     "preference": {"prompt", "response_a", "response_b"}}[peek["task"]]
    assert all(set(row) <= expected_keys for row in view["test"])
    assert any(set(row) == expected_keys for row in view["test"])


def test_preference_pairs_are_shown_shuffled_and_mapped_back(tmp_path):
    from bench.split_view import chosen_shown_first

    result = run_benchmark(BenchPlan(data=str(SAMPLES / "hh_helpful_mini"),
                                     strategies=["fake-constant"], out=str(tmp_path / "runs"),
                                     model="tiny-llama", seed=4))
    split = json.loads((result.run_dir / "split.json").read_text())
    view = json.loads((result.run_dir / "split_inputs.json").read_text())
    first = chosen_shown_first(4, len(split["test"]))
    for row, shown, chosen_first in zip(split["test"], view["test"], first):
        assert shown["prompt"] == row["prompt"]
        expected = (row["chosen"], row["rejected"]) if chosen_first else (row["rejected"],
                                                                           row["chosen"])
        assert (shown["response_a"], shown["response_b"]) == expected
    # fake-constant scores response_a above response_b: right exactly where chosen came first
    predictions = journal.read_records(result.run_dir, result.records[0]["predictions"])
    assert [p["preference_accuracy"] for p in predictions] == [float(f) for f in first]
    assert all(p["prediction"]["chosen_logp"] == (-1.0 if f else -2.0)
               for p, f in zip(predictions, first))


def test_a_tuning_trial_predicts_validation_inputs_only(data, tmp_path):
    """A job scored on validation (a --tune trial) trains with validation's labels but predicts
    its rows blinded; the parent scores them."""
    import dataclasses

    run_dir, jobs = prepare_run(_plan(data, tmp_path, ["fake-peek", "fake-constant"]))
    records = [run_candidate(dataclasses.replace(job, eval_split="validation")) for job in jobs]
    peek, constant = records
    assert peek["status"] == "failed" and peek["error"].startswith("KeyError: 'label'")
    assert constant["status"] == "ok"
    validation = json.loads((run_dir / "split.json").read_text())["validation"]
    negatives = sum(row["label"] == "negative" for row in validation)
    assert constant["metrics"]["accuracy"] == pytest.approx(negatives / len(validation))


# --------------------------------------------------------------------------- seeding


def test_the_child_seeds_random_numpy_and_torch_from_the_record_seed(data, tmp_path):
    import random

    import numpy
    import torch

    def draws(seed):
        record = run_benchmark(_plan(data, tmp_path / f"s{seed}", ["fake-seeded"],
                                     seed=seed)).records[0]
        assert record["status"] == "ok", record["error"]
        return record["info"]

    first, again, other = draws(3), draws(3), draws(4)
    # Nothing the harness runs before the strategy imports numpy or torch (majority stays light)
    assert first["loaded_before"] == {"numpy": False, "torch": False}
    assert first["draws"] == again["draws"]
    assert all(first["draws"][k] != other["draws"][k] for k in ("random", "numpy", "torch"))
    torch.manual_seed(3)
    assert first["draws"] == pytest.approx({"random": random.Random(3).random(),
                                            "numpy": numpy.random.RandomState(3).rand(),
                                            "torch": float(torch.rand(1))})


# --------------------------------------------------------------------------- harness counts


def test_parameters_and_tokens_are_counted_by_the_harness(data, tmp_path):
    result = run_benchmark(_plan(data, tmp_path, ["fake-counted", "fake-constant",
                                                  "fake-estimated"]))
    records = _by_strategy(result.records)
    counted = records["fake-counted"]
    assert counted["status"] == "ok", counted["error"]
    assert (counted["trainable_params"], counted["total_params"]) == (3, 15)
    assert counted["info"]["train_tokens"] == 3 + 4 + 3  # mask ones, then every id
    assert counted["info"]["reported_by"] == {"trainable_params": "harness",
                                              "total_params": "harness",
                                              "train_tokens": "harness",
                                              "predict_tokens": "strategy"}
    assert counted["info"]["train_tokens_source"] == "harness count"
    # What the strategy claimed stays beside the count, never instead of it.
    assert counted["info"]["strategy_reported"] == {"trainable_params": 10, "total_params": 100,
                                                    "train_tokens": 999}
    constant = records["fake-constant"]  # hands nothing over: its own figures, marked so
    assert constant["trainable_params"] == 10 and constant["info"]["train_tokens"] == 300
    assert set(constant["info"]["reported_by"].values()) == {"strategy"}
    assert constant["info"]["train_tokens_source"] == "strategy count"
    estimated = records["fake-estimated"]
    assert estimated["info"]["train_tokens_source"] == "estimate"
    assert estimated["info"]["train_tokens_estimate"] == "steps x batch x mean tokens"
    assert "estimated" in estimated["info"]["tokens_per_s_note"]


# --------------------------------------------------------------------------- intervals


def test_every_metric_has_an_interval_or_says_why_not(data, tmp_path):
    record = run_benchmark(_plan(data, tmp_path, ["fake-constant"])).records[0]
    assert record["metrics"]["fake_score"] == 0.5  # a strategy's extra metric
    assert set(record["metrics"]) == set(record["metrics_ci"]) | set(record["metrics_without_ci"])
    assert set(record["metrics_without_ci"]) == {"fake_score"}
    assert "reported by the strategy" in record["metrics_without_ci"]["fake_score"]


def test_a_fine_tuning_candidate_hands_its_model_and_batches_to_the_harness(data, tmp_path):
    """LoRA on the tiny model: parameters and trained tokens are the harness's counts, and they
    agree with the trainer's own (both sum the batches' attention masks)."""
    record = run_benchmark(_plan(data, tmp_path, ["lora"],
                                 overrides={"lora": {"epochs": 1}})).records[0]
    assert record["status"] == "ok", record["error"]
    info = record["info"]
    assert info["reported_by"] == {"trainable_params": "harness", "total_params": "harness",
                                   "train_tokens": "harness", "predict_tokens": "strategy"}
    assert 0 < record["trainable_params"] < record["total_params"]
    assert info["train_tokens"] > 0 and "strategy_reported" not in info


def test_names_and_candidates_are_checked_once(data, tmp_path, monkeypatch):
    """--strategies is checked once before the data is read, each candidate's config once."""
    from bench import plan as plan_module
    from strategies import registry

    calls: Counter = Counter()
    real_check, real_is_known = plan_module.check_candidates, registry.is_known

    def check_candidates(*args, **kwargs):
        calls["check_candidates"] += 1
        return real_check(*args, **kwargs)

    def is_known(name):
        calls[name] += 1
        return real_is_known(name)

    monkeypatch.setattr(plan_module, "check_candidates", check_candidates)
    monkeypatch.setattr(registry, "is_known", is_known)
    run_dir, jobs = prepare_run(_plan(data, tmp_path, ["fake-noop", "fake-constant"]))
    assert calls == {"check_candidates": 1, "fake-noop": 1, "fake-constant": 1}
    assert [job.strategy for job in jobs] == ["fake-noop", "fake-constant"]
    assert {job.run_dir for job in jobs} == {str(run_dir)}
    assert all(job.log_path.startswith(str(run_dir)) for job in jobs)


def test_openmp_waits_passively_only_when_other_threads_want_the_cores():
    from bench.child import choose_omp_wait_policy

    assert choose_omp_wait_policy([0, 0, 1, 0, 0]) == "ACTIVE"  # one blip: the machine is ours
    assert choose_omp_wait_policy([2, 3, 1, 2, 0]) == "PASSIVE"  # others keep wanting a core
    assert choose_omp_wait_policy([]) == "ACTIVE"


def test_the_record_says_which_openmp_wait_policy_ran_and_a_users_setting_wins(
        data, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    record = run_benchmark(_plan(data, tmp_path, ["fake-noop"])).records[0]
    assert record["info"]["omp_wait_policy"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    record = run_benchmark(_plan(data, tmp_path, ["fake-noop"])).records[0]
    assert record["info"]["omp_wait_policy"] in ("ACTIVE", "PASSIVE")  # chosen by the load
