"""RayExecutor: the same records as the local executor, and failures that become records.

One local Ray (2 CPUs, loopback only, no dashboard: the executor's own start_local_ray)
serves the whole module. Its workers get the tests folder
on PYTHONPATH so that the spawned candidate children can import tests/fake_strategies.py and
the misbehaving task body below.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from bench import journal
from bench.ray_executor import (LOOPBACK, RayExecutor, TaskResources, fit_to_cluster,
                                resources_for, start_local_ray)
from bench.runner import (BenchPlan, CandidateStarted, LocalExecutor, prepare_run, run_benchmark,
                          run_candidate)
from bench.schema import validate_record

ray = pytest.importorskip("ray")

TESTS = Path(__file__).resolve().parent
# What may differ between two runs of the same candidate: its clock, its memory, and the price
# of its seconds, and the OpenMP wait policy the machine's load chose.
TIMING_KEYS = {"run_id", "time_s", "peak_memory_mb", "tokens_per_s", "cost_usd", "deploy"}
TIMING_INFO_KEYS = {"phases_s", "harness_overhead_s", "time_s_per_seed", "executor",
                    "omp_wait_policy"}


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])
    start_local_ray(ray, num_cpus=2, object_store_mb=100,
                    runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


pytestmark = pytest.mark.usefixtures("fakes")  # tests/conftest.py: fakes, data


def _plan(data, out: Path, strategies, **kwargs) -> BenchPlan:
    return BenchPlan(data=data["data"], test=data["test"], strategies=strategies, out=str(out),
                     model="tiny-llama", encoder="tiny-bert", command="pytest", **kwargs)


def _comparable(record: dict) -> dict:
    kept = {k: v for k, v in record.items() if k not in TIMING_KEYS}
    kept["info"] = {k: v for k, v in record.get("info", {}).items() if k not in TIMING_INFO_KEYS}
    return kept


def _by_strategy(records) -> dict[str, dict]:
    return {r["strategy"]: r for r in records}


def misbehaving_task(job, on_event, cancel):
    """The Ray task body for the failure test: for two candidates the task itself breaks
    (outside the candidate's child, where run_candidate cannot catch it)."""
    if job.strategy == "fake-user-error":
        raise RuntimeError("the task itself broke")
    if job.strategy == "fake-hog":
        os.kill(os.getpid(), signal.SIGKILL)  # the Ray worker process dies
    return run_candidate(job, on_event, cancel)


def killed_mid_candidate(job, on_event, cancel):
    """The Ray task body whose worker dies while the candidate's child is busy training."""
    from bench.runner import CandidateProgress

    training = threading.Event()

    def relay(event):
        if isinstance(event, CandidateProgress) and event.phase == "adapt":
            training.set()

    threading.Thread(target=run_candidate, args=(job, relay, cancel), daemon=True).start()
    training.wait(120)
    os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- no Ray needed


def test_resources_follow_the_estimate(tmp_path, data):
    import dataclasses

    _, (job,) = prepare_run(_plan(data, tmp_path / "runs", ["fake-noop"]))
    assert resources_for(job) == TaskResources(1.0, 0.0, None)
    cpu = resources_for(dataclasses.replace(job, estimate={"peak_memory_gb": 2.0, "time_s": 9}))
    assert cpu == TaskResources(1.0, 0.0, 2 * 2**30)
    # On CUDA the estimate is GPU memory: one GPU, no host-memory request unless given.
    gpu = resources_for(dataclasses.replace(job, device="cuda",
                                            estimate={"peak_memory_gb": 13.1, "num_cpus": 4}))
    assert gpu == TaskResources(4.0, 1.0, None)


def test_requests_are_checked_against_the_cluster():
    cluster = {"CPU": 2.0, "memory": 4 * 2**30}
    assert fit_to_cluster(TaskResources(1, 0, None), cluster) == (TaskResources(1, 0, None), None)
    _, why = fit_to_cluster(TaskResources(1, 1, None), cluster)
    assert why == "needs 1 GPU(s); the Ray cluster has 0"
    _, why = fit_to_cluster(TaskResources(8, 0, None), cluster)
    assert why == "needs 8 CPU(s); the Ray cluster has 2"
    capped, why = fit_to_cluster(TaskResources(1, 0, 64 * 2**30), cluster)
    assert why is None and capped.memory_bytes == 4 * 2**30


def test_a_race_rungs_continuation_travels_in_place_and_is_dropped_on_a_scratch_node(
        tmp_path, data):
    import dataclasses

    from bench.ray_executor import _absolute, _scratch_job

    _, (job,) = prepare_run(_plan(data, tmp_path / "runs", ["fake-noop"]))
    assert _absolute(job).resume_from is None  # a job that resumes nothing stays so
    rung = dataclasses.replace(job, resume_from="work/race-r0-lora", save_checkpoint=True)
    assert _absolute(rung).resume_from == os.path.abspath("work/race-r0-lora")
    assert _absolute(rung).save_checkpoint
    # a node without the run folder cannot see the previous rung's checkpoint: afresh there
    moved = _scratch_job(_absolute(rung), b"{}", tmp_path / "scratch")
    assert moved.resume_from is None and not moved.save_checkpoint
    assert moved.work_dir.startswith(str(tmp_path / "scratch"))


# --------------------------------------------------------------------------- on a local Ray


def test_ray_gives_the_same_records_as_local(local_ray, data, tmp_path):
    strategies = ["majority", "fake-constant", "zero-shot"]
    local = run_benchmark(_plan(data, tmp_path / "local", strategies),
                          executor=LocalExecutor())
    events = []
    on_ray = run_benchmark(_plan(data, tmp_path / "ray", strategies),
                           executor=RayExecutor(), on_event=events.append)
    assert [r["status"] for r in local.records] == ["ok", "ok", "ok"]
    ray_records = _by_strategy(on_ray.records)
    assert sorted(ray_records) == sorted(strategies)
    for record in local.records:
        assert _comparable(ray_records[record["strategy"]]) == _comparable(record)
        assert validate_record(ray_records[record["strategy"]]) == []
    # The driver journalled them; the candidates ran in their own children under Ray workers.
    assert journal.read_records(on_ray.run_dir) == on_ray.records
    executor_info = ray_records["fake-constant"]["info"]["executor"]
    assert executor_info["name"] == "ray" and executor_info["shared_run_dir"] is True
    assert executor_info["resources"] == {"num_cpus": 1.0, "num_gpus": 0.0, "memory_gb": None}
    assert ray_records["fake-constant"]["peak_memory_mb"]["cpu_rss"] > 0
    assert (on_ray.run_dir / "logs" / "fake-constant.log").read_text().count("printed this") == 1
    # Progress travelled back from the workers through the event queue.
    started = {e.strategy for e in events if isinstance(e, CandidateStarted)}
    assert started == set(strategies)


def test_task_and_worker_failures_become_records(local_ray, data, tmp_path):
    strategies = ["fake-constant", "fake-user-error", "fake-hog", "fake-crash", "fake-noop"]
    result = run_benchmark(_plan(data, tmp_path / "runs", strategies),
                           executor=RayExecutor(candidate_fn=misbehaving_task))
    records = _by_strategy(result.records)
    assert {s: r["status"] for s, r in records.items()} == {
        "fake-constant": "ok", "fake-user-error": "failed", "fake-hog": "failed",
        "fake-crash": "failed", "fake-noop": "ok"}
    assert records["fake-user-error"]["error"] == (
        "its Ray task raised RuntimeError: the task itself broke")
    assert records["fake-hog"]["error"].startswith("the Ray worker process running it died")
    # A crash inside the candidate's child is handled by the same path as locally.
    assert records["fake-crash"]["error"].startswith(
        "RuntimeError: deliberate crash inside the strategy")
    assert len(journal.read_records(result.run_dir)) == 5
    assert not result.interrupted
    for record in result.records:
        assert validate_record(record) == [], record["strategy"]


def test_a_dead_worker_leaves_no_orphan_child(local_ray, data, tmp_path):
    import re
    import time

    import psutil

    result = run_benchmark(_plan(data, tmp_path / "runs", ["fake-sleep"]),
                           executor=RayExecutor(candidate_fn=killed_mid_candidate))
    record = result.records[0]
    assert record["status"] == "failed"
    assert record["error"].startswith("the Ray worker process running it died")
    assert "phase adapt" in record["error"]  # the candidate's log tail says what it was doing
    log = (result.run_dir / record["log"]).read_text()
    child_pid = int(re.search(r"candidate fake-sleep seed 0 pid (\d+)", log).group(1))
    deadline = time.monotonic() + 15
    while psutil.pid_exists(child_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(child_pid) or \
        psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_resume_reruns_only_unfinished_candidates(local_ray, data, tmp_path):
    first = run_benchmark(_plan(data, tmp_path / "runs", ["fake-constant", "fake-crash"]),
                          executor=RayExecutor())
    assert sorted(r["status"] for r in first.records) == ["failed", "ok"]
    resumed = run_benchmark(BenchPlan(data="", resume=str(first.run_dir), command="pytest"),
                            executor=RayExecutor())
    records = journal.read_records(first.run_dir)
    assert sorted(r["strategy"] for r in records) == ["fake-constant", "fake-crash"]
    constant = _by_strategy(records)["fake-constant"]
    assert constant == _by_strategy(first.records)["fake-constant"]  # kept, not rerun
    assert resumed.records[-1]["strategy"] == "fake-crash"
    attempts = journal.read_records(first.run_dir, journal.ATTEMPTS)
    assert [r["strategy"] for r in attempts] == ["fake-crash"]


def test_without_a_shared_folder_the_split_travels_in_the_object_store(local_ray, data,
                                                                        tmp_path):
    result = run_benchmark(_plan(data, tmp_path / "runs", ["fake-constant"]),
                           executor=RayExecutor(shared_run_dir=False))
    record = result.records[0]
    assert record["status"] == "ok" and record["info"]["executor"]["shared_run_dir"] is False
    # The worker ran in a scratch folder; its log and predictions came back with the record.
    assert "printed this" in (result.run_dir / record["log"]).read_text()
    predictions = (result.run_dir / record["predictions"]).read_text().splitlines()
    assert len(predictions) == 12
    assert not (result.run_dir / "work" / "fake-constant" / "artifact.bin").exists()


def test_cancel_stops_running_tasks_and_keeps_finished_records(local_ray, data, tmp_path):
    cancel = threading.Event()

    def on_event(event):
        if isinstance(event, CandidateStarted) and event.strategy == "fake-sleep":
            cancel.set()

    result = run_benchmark(_plan(data, tmp_path / "runs", ["fake-noop", "fake-sleep"]),
                           executor=RayExecutor(), on_event=on_event, cancel=cancel)
    assert result.interrupted
    statuses = {r["strategy"]: r["status"] for r in journal.read_records(result.run_dir)}
    assert "fake-sleep" not in statuses  # not journalled: --resume runs it again
    assert statuses.get("fake-noop") in (None, "ok")


def test_missing_ray_is_a_clear_message(monkeypatch):
    import builtins

    from bench.errors import TunewiseError
    from bench.ray_executor import import_ray

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(TunewiseError, match=r"pip install 'tunewise\[ray\]'"):
        import_ray()


def test_cli_chooses_the_executor_and_fills_the_estimates(data):
    import argparse

    from advisor import bench_cli
    from bench.errors import TunewiseError

    parser = argparse.ArgumentParser()
    bench_cli.add_arguments(parser)

    def plan_and_executor(*flags):
        args = parser.parse_args(["--data", data["data"], "--test", data["test"],
                                  "--strategies", "majority,zero-shot", "--model", "tiny-llama",
                                  "--encoder", "tiny-bert", *flags])
        plan = bench_cli.plan_from_args(args)
        return plan, bench_cli.make_executor(args, plan)

    plan, executor = plan_and_executor()
    assert executor is None and plan.estimates == {}  # the runner's local default
    with pytest.raises(TunewiseError, match="--address needs --executor ray"):
        plan_and_executor("--address", "auto")
    plan, executor = plan_and_executor("--executor", "ray", "--address", "ray://head:10001")
    assert isinstance(executor, RayExecutor) and executor.address == "ray://head:10001"
    assert set(plan.estimates) == {"majority", "zero-shot"}
    assert plan.estimates["zero-shot"]["peak_memory_gb"] > 0


def test_the_local_ray_listens_on_loopback_only(local_ray):
    """Its node registers 127.0.0.1, no process it started (GCS, raylet, workers) listens on a
    network address (ShadowRay used exactly those ports), and it runs no dashboard."""
    import ipaddress

    import psutil

    assert [node["NodeManagerAddress"] for node in ray.nodes()] == [LOOPBACK]
    assert ray.get_runtime_context().gcs_address.startswith(f"{LOOPBACK}:")
    listening, dashboard_ports = [], []
    for process in psutil.Process().children(recursive=True):
        try:
            ports = [c.laddr for c in process.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
            listening += [port.ip for port in ports]
            if "dashboard/dashboard.py" in " ".join(process.cmdline()):
                dashboard_ports += ports  # Ray keeps a headless one (--minimal) for its API
        except psutil.Error:  # a worker that exited meanwhile
            pass
    assert listening, "the local Ray's processes were not found"

    def loopback(ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return (getattr(address, "ipv4_mapped", None) or address).is_loopback

    assert all(loopback(ip) for ip in listening), listening
    assert dashboard_ports == []  # no dashboard web server


def test_a_strategy_never_sees_test_labels_on_ray(local_ray, data, tmp_path):
    """The Ray task runs the local measured path: the child reads the label-free view, in the
    shared run folder and in a scratch copy alike."""
    for shared in (True, False):
        result = run_benchmark(_plan(data, tmp_path / f"shared-{shared}",
                                     ["fake-peek", "fake-constant"]),
                               executor=RayExecutor(shared_run_dir=shared))
        records = _by_strategy(result.records)
        assert records["fake-peek"]["status"] == "failed"
        assert records["fake-peek"]["error"].startswith("KeyError: 'label'")
        assert records["fake-constant"]["status"] == "ok"
        assert records["fake-constant"]["metrics"]["accuracy"] == pytest.approx(7 / 12)
