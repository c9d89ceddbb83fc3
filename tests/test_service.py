"""bench.service: one error policy for every front door, and the four doors going through it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from advisor.cli import main
from bench import journal, service
from bench.runner import BenchPlan, RunResult
from fake_strategies import fake_plan, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "bench" / "samples" / "banking_support"
ANSWERS = ROOT / "advisor" / "samples" / "classification.yaml"


pytestmark = pytest.mark.usefixtures("fakes")  # tests/conftest.py: fakes, data


_plan = fake_plan  # the shared run of tiny models on the binary data


# ------------------------------------------------------------------------- the error policy


def test_a_bad_data_file_is_refused_with_a_message_and_exit_2(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"colour": "red"}, {"colour": "blue"}])
    outcome = service.run_plan(BenchPlan(data=str(bad), strategies=["majority"],
                                         out=str(tmp_path / "runs")))
    assert outcome.exit_code == 2 and outcome.error and outcome.run_dir is None
    assert outcome.records == []
    assert service.refusal(outcome) == 2
    err = capsys.readouterr().err
    assert err.startswith("tunewise: error: ") and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    # the command line says the same thing, with the same exit code
    assert main(["bench", "--data", str(bad), "--strategies", "majority", "--no-report",
                 "--out", str(tmp_path / "runs")]) == 2
    assert capsys.readouterr().err.strip() == err.strip()


def test_an_unknown_strategy_is_refused_before_the_data_is_read(tmp_path):
    outcome = service.run_plan(BenchPlan(data=str(tmp_path / "missing.csv"),
                                         strategies=["majorty"]))
    assert outcome.exit_code == 2 and "did you mean majority" in outcome.error.lower()


def test_a_failing_candidate_exits_1_and_its_record_is_kept(data, tmp_path):
    written = []

    def write_report(run_dir, advice=None):
        written.append((run_dir, advice))
        path = Path(run_dir) / "report.html"
        path.write_text("<html></html>")
        return path

    outcome = service.run_plan(_plan(data, tmp_path, ["fake-noop", "fake-crash"]),
                               advice={"ranked": []}, write_report=write_report)
    assert outcome.exit_code == 1 and outcome.error is None
    assert [r["status"] for r in outcome.records] == ["ok", "failed"]
    assert [r["strategy"] for r in outcome.failed] == ["fake-crash"]
    assert journal.read_records(outcome.run_dir) == outcome.records  # kept on disk
    assert written == [(outcome.run_dir, {"ranked": []})]
    assert outcome.report_path == outcome.run_dir / "report.html"


def test_a_report_that_cannot_be_written_never_hides_the_records(data, tmp_path):
    def broken_report(run_dir, advice=None):
        raise ValueError("a bug in the report")

    outcome = service.run_plan(_plan(data, tmp_path, ["fake-noop"]), write_report=broken_report)
    assert outcome.exit_code == 0 and outcome.report_path is None
    assert "ValueError: a bug in the report" in outcome.report_error
    assert "results.jsonl" in outcome.report_error
    assert [r["strategy"] for r in journal.read_records(outcome.run_dir)] == ["fake-noop"]


def test_ctrl_c_is_130_and_keeps_every_record(tmp_path, capsys):
    records = [{"strategy": "majority", "status": "ok"}]

    def interrupted_run(plan, *, on_event=None, cancel=None):
        return RunResult(tmp_path, records, interrupted=True)

    outcome = service.run_plan(BenchPlan(data="x"), benchmark=interrupted_run)
    assert outcome.exit_code == 130 and outcome.records == records
    assert outcome.resume_hint == f"interrupted: finish with `tunewise bench --resume {tmp_path}`"
    assert service.refusal(outcome) is None  # there are records to show

    def ctrl_c_while_reading_data(plan, *, on_event=None, cancel=None):
        raise KeyboardInterrupt

    outcome = service.run_plan(BenchPlan(data="x"), benchmark=ctrl_c_while_reading_data)
    assert outcome.exit_code == 130 and outcome.run_dir is None
    assert service.refusal(outcome) == 130
    assert capsys.readouterr().err.strip() == "tunewise: interrupted"


# ------------------------------------------------------------------------- the four front doors


class ServiceSpy:
    """Stands in for bench.service.run_plan: remembers the call, refuses the plan."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, plan, **kwargs):
        self.calls.append({"plan": plan, **kwargs})
        return service.RunOutcome(error="refused by the test")


@pytest.fixture
def spy(monkeypatch) -> ServiceSpy:
    spy = ServiceSpy()
    monkeypatch.setattr(service, "run_plan", spy)
    return spy


def test_tunewise_bench_calls_the_service(spy, tmp_path, capsys, monkeypatch):
    from advisor import bench_cli

    monkeypatch.setattr(bench_cli, "fill_estimates", lambda plan: None)
    assert main(["bench", "--data", str(SAMPLE), "--strategies", "majority,zero-shot",
                 "--out", str(tmp_path)]) == 2
    assert "tunewise: error: refused by the test" in capsys.readouterr().err
    (call,) = spy.calls
    assert call["plan"].strategies == ["majority", "zero-shot"]
    assert call["write_report"] is not None  # the report is the service's to write


def test_advise_run_calls_the_service_with_the_ranking(spy, tmp_path, capsys):
    assert main(["advise", "--answers", str(ANSWERS), "--data", str(SAMPLE), "--run",
                 "--no-measure", "--no-probe", "--top", "1", "--out", str(tmp_path)]) == 2
    assert "tunewise: error: refused by the test" in capsys.readouterr().err
    (call,) = spy.calls
    assert call["plan"].data == str(SAMPLE)
    assert call["advice"]["ranked"]  # the advisor's ranking goes to the report


def test_the_demo_calls_the_service(spy, tmp_path, capsys):
    assert main(["demo", "--tiny", "--no-probe", "--out", str(tmp_path)]) == 2
    assert "tunewise: error: refused by the test" in capsys.readouterr().err
    (call,) = spy.calls
    assert {"majority", "zero-shot"} <= set(call["plan"].strategies)


def test_the_tui_calls_the_service(spy, tmp_path):
    from advisor.tui.app import TunewiseApp
    from bench.errors import TunewiseError

    app = TunewiseApp({"task": "classification", "data": {"path": str(SAMPLE)}},
                      hardware={}, measure=False, out=str(tmp_path))
    app.selected = ["majority"]
    with pytest.raises(TunewiseError, match="refused by the test"):  # the run screen shows it
        app.start_run(lambda event: None, threading.Event())
    (call,) = spy.calls
    assert call["plan"].strategies == ["majority"] and call["cancel"] is not None


def test_advise_demo_and_tui_race_unless_told_not_to(spy, tmp_path, capsys):
    from advisor.tui.app import TunewiseApp
    from bench.errors import TunewiseError
    from bench.race import RaceSettings

    common = ["--answers", str(ANSWERS), "--data", str(SAMPLE), "--run", "--no-measure",
              "--no-domain", "--out", str(tmp_path)]
    main(["advise", *common])
    main(["advise", *common, "--no-race"])
    main(["demo", "--tiny", "--out", str(tmp_path)])
    main(["demo", "--tiny", "--no-race", "--out", str(tmp_path)])
    for race in (True, False):
        app = TunewiseApp({"task": "classification", "data": {"path": str(SAMPLE)}},
                          hardware={}, measure=False, out=str(tmp_path), race=race)
        app.selected = ["majority", "knn"]
        with pytest.raises(TunewiseError):
            app.start_run(lambda event: None, threading.Event())
    raced = [isinstance(call["race"], RaceSettings) for call in spy.calls]
    assert raced == [True, False] * 3
    # a race takes more of the advisor's picks than a run-all (the worse half stops early)
    advise_race, advise_all = (spy.calls[0]["plan"].strategies, spy.calls[1]["plan"].strategies)
    assert len(advise_race) > len(advise_all)
    assert "--no-race" in spy.calls[3]["plan"].command


def test_parse_sets_only_parses_the_plan_checks_the_target():
    from advisor.bench_cli import parse_sets

    assert parse_sets(["lora.r=16", "epochs=2"]) == {"lora": {"r": "16"}, "*": {"epochs": "2"}}
