"""`tunewise bench` end to end (in-process), its input errors, and the progress displays."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from advisor.cli import main
from bench import journal
from bench.runner import CandidateFinished, CandidateProgress, CandidateStarted, RunFinished
from fake_strategies import register_fakes

SAMPLE = Path(__file__).resolve().parent.parent / "bench" / "samples" / "banking_support"


@pytest.fixture(autouse=True)
def fakes():
    register_fakes()


def _bench(tmp_path, *extra):
    return main(["bench", "--data", str(SAMPLE), "--out", str(tmp_path / "runs"),
                 "--model", "tiny-llama", "--encoder", "tiny-bert", "--no-report", *extra])


@pytest.mark.parametrize("extra, message", [
    (["--strategies", "majorty"], "did you mean majority"),
    (["--strategies", "fake-noop", "--set", "fake-noop.sleep=1"], "did you mean 'sleep_s'"),
    (["--strategies", "fake-noop", "--set", "nokey"], "expected KEY=VALUE"),
    (["--strategies", "fake-noop", "--set", "lora.lora_r=8"], "is not among --strategies"),
    (["--strategies", "fake-noop", "--peft-args", "{oops"], "--peft-args is not valid JSON"),
    (["--strategies", "fake-noop", "--seeds", "0"], "--seeds 0: needs at least 1"),
    (["--strategies", "fake-noop", "--timeout", "-3"], "--timeout -3: must be positive"),
    (["--strategies", "fake-noop", "--price-as", "h1000"], "did you mean 'h100'"),
    (["--strategies", "fake-noop", "--model", "smolm2"],
     "--model: unknown model 'smolm2' (did you mean 'smollm2-135m'?)"),
    (["--strategies", "fake-noop", "--model", "tiny-llama,SmolLM2-135M"],
     "did you mean 'smollm2-135m'"),
    (["--strategies", "fake-noop", "--encoder", "minilm"], "did you mean 'minilm-l6'"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, extra, message):
    assert _bench(tmp_path, *extra) == 2
    err = capsys.readouterr().err
    assert message.lower() in err.lower()
    assert "Traceback" not in err


def test_a_misspelt_model_lists_the_known_ones_before_anything_runs(tmp_path, capsys):
    assert _bench(tmp_path, "--strategies", "fake-echo", "--model", "tiny-lama") == 2
    err = capsys.readouterr().err
    assert "did you mean 'tiny-llama'" in err
    assert "smollm2-135m, tiny-llama, minilm-l6, tiny-bert" in err
    assert "Hugging Face id (org/name)" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


TINY_CONFIG = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
               "vocab_size": 100}


def _fake_hub_cache(tmp_path, monkeypatch, hub_id: str) -> None:
    """HF_HOME at a Hugging Face cache holding `hub_id`'s config.json, laid out as the hub
    client writes it: models--org--name/refs/main names the snapshot with the files."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    hub = tmp_path / "hf" / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / repo_folder_name(repo_id=hub_id, repo_type="model")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps(TINY_CONFIG))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # the hub client reads HF_HOME once, at import: point this process's copy there too
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))


def test_a_model_folder_and_a_cached_hub_id_are_still_taken_as_they_are(tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "my-model"  # a folder named without any "/"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    _fake_hub_cache(tmp_path, monkeypatch, "some-org/some-model")
    for model in ("my-model", "some-org/some-model"):
        assert _bench(tmp_path, "--strategies", "fake-echo", "--model", model) == 0, model
        run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
        assert journal.read_records(run_dir)[0]["info"]["model_seen"] == model


@pytest.mark.parametrize("option", ["--model", "--encoder"])
@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_an_uncached_hub_id_offline_is_refused_before_anything_runs(tmp_path, capsys,
                                                                    monkeypatch, option,
                                                                    variable):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")
    _fake_hub_cache(tmp_path, monkeypatch, "some-org/some-model")  # another id is cached
    assert _bench(tmp_path, "--strategies", "fake-echo", option,
                  "some-org/not-cached-model") == 2
    err = capsys.readouterr().err
    assert f"{option} 'some-org/not-cached-model'" in err
    assert "not in the local Hugging Face cache" in err and f"({variable} is set)" in err
    assert f"--local-dir DIR`) and pass {option} DIR" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before a run folder was made


def test_a_run_config_with_an_uncached_hub_id_offline_is_refused(tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {SAMPLE}\nstrategies: fake-echo\nmodel: some-org/not-cached\n"
                      f"out: {tmp_path / 'runs'}\nno_report: true\n")
    assert main(["bench", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "'some-org/not-cached': it is not in the local Hugging Face cache" in err
    assert not (tmp_path / "runs").exists()


def test_peft_args_with_only_candidates_that_ignore_it_warns_and_runs(tmp_path, capsys):
    assert _bench(tmp_path, "--strategies", "fake-echo,fake-noop",
                  "--peft-args", '{"lora_dropout": 0.1}') == 0
    captured = capsys.readouterr()
    assert ("tunewise: warning: --peft-args is ignored: none of the chosen candidates "
            "(fake-echo, fake-noop) reads it") in captured.err
    assert "lora, qlora, dora" in captured.err
    run_dir = Path(captured.out.strip().splitlines()[-1])
    assert [r["status"] for r in journal.read_records(run_dir)] == ["ok", "ok"]


def test_peft_args_warning_only_when_no_chosen_candidate_reads_it():
    from advisor.bench_cli import peft_args_unread_by

    assert peft_args_unread_by(["full", "freeze", "dpo"]) == ["full", "freeze", "dpo"]
    assert peft_args_unread_by(["zero-shot", "sft-chosen"]) == ["zero-shot", "sft-chosen"]
    for read in (["full", "lora"], ["qlora"], ["peft:vera"], ["ia3+rag"], ["majority", "dora"]):
        assert peft_args_unread_by(read) == [], read
    assert peft_args_unread_by(["all"]) == []  # which candidates `all` is waits on the task
    assert peft_args_unread_by(["full", "lorra"]) == []  # the misspelling is refused instead


def test_missing_data_and_bad_flags_exit_2(capsys):
    assert main(["bench", "--strategies", "majority"]) == 2
    assert "--data PATH is required" in capsys.readouterr().err
    assert main(["bench", "--data", "x.csv", "--preset", "huge"]) == 2
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    assert main(["bench", "--data", "x.csv", "--seeds", "many"]) == 2
    assert main(["bench", "--data", str(SAMPLE / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_successful_run_prints_table_and_run_dir_last(tmp_path, capsys):
    code = _bench(tmp_path, "--strategies", "fake-constant,fake-skip", "--set", "label=card_arrival",
                  "--price-as", "h100")
    out = capsys.readouterr().out
    assert code == 0
    run_dir = Path(out.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "results.jsonl").exists()
    records = journal.read_records(run_dir)
    assert [r["status"] for r in records] == ["ok", "skipped"]
    assert records[0]["config"]["label"] == "card_arrival"
    assert records[0]["cost_projected"] is True
    assert records[0]["hardware"]["price_row"] == "h100"
    assert "fake-constant" in out and "accuracy" in out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["plan"]["overrides"] == {"*": {"label": "card_arrival"}}
    assert manifest["command"].startswith("tunewise")


def test_a_failed_candidate_exits_1_and_resume_reruns_it(tmp_path, capsys):
    assert _bench(tmp_path, "--strategies", "fake-noop,fake-crash") == 1
    run_dir = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["bench", "--resume", run_dir, "--no-report"]) == 1
    assert "[fake-noop]" not in capsys.readouterr().out  # finished: not run again
    assert [r["strategy"] for r in journal.read_records(Path(run_dir))] == [
        "fake-noop", "fake-crash"]


def test_resume_of_a_folder_that_is_not_a_run_exits_2(tmp_path, capsys):
    assert main(["bench", "--resume", str(tmp_path)]) == 2
    assert "is not a tunewise run folder" in capsys.readouterr().err


def _events():
    ok = {"strategy": "knn", "status": "ok", "primary_metric": "accuracy",
          "metrics": {"accuracy": 0.9}, "metrics_ci": {"accuracy": [0.8, 0.95]},
          "peak_memory_mb": {"cpu_rss": 800}, "time_s": {"total": 12.0},
          "cost_usd": {"per_1k_requests": 0.01}}
    failed = {"strategy": "lora", "status": "failed", "error": "boom [bold]x[/bold]\nmore",
              "primary_metric": "accuracy", "metrics": {}}
    return [CandidateStarted("knn", 0, 1, 2), CandidateProgress("knn", "adapt"),
            CandidateProgress("knn", "adapt", 5, 10, loss=0.5),
            CandidateProgress("knn", "adapt", 10, 10, loss=0.25),
            CandidateFinished("knn", ok), CandidateStarted("lora", 0, 2, 2),
            CandidateFinished("lora", failed), RunFinished(Path("runs/x"))]


def test_plain_display_prints_readable_lines():
    from bench.progress import PlainDisplay

    buffer = io.StringIO()
    display = PlainDisplay(Console(file=buffer, width=120))
    for event in _events():
        display(event)
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "[knn] started (1/2), seed 0"
    assert "[knn] adapt 10/10 loss 0.2500" in lines
    assert "[knn] ok accuracy 0.900 [0.800–0.950] (12.0 s)" in lines
    # user text is printed as is, not as rich markup
    assert any(line.startswith("[lora] failed: boom [bold]x[/bold]") for line in lines)


def test_live_display_draws_bars_and_the_finished_table():
    from bench.progress import LiveDisplay, sort_records

    buffer = io.StringIO()
    with LiveDisplay(Console(file=buffer, width=120, force_terminal=True)) as display:
        for event in _events():
            display(event)
    text = buffer.getvalue()
    assert "knn" in text and "finished" in text and "loss 0.2500" in text
    assert [r["strategy"] for r in sort_records(display.records)] == ["knn", "lora"]


def test_ctrl_c_stops_the_child_keeps_records_and_exits_130(tmp_path):
    """A real SIGINT to the whole process group, as a terminal sends it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    tests_dir = Path(__file__).resolve().parent
    script = ("import sys; sys.path.insert(0, %r); from fake_strategies import register_fakes; "
              "register_fakes(); from advisor.cli import main; sys.exit(main(sys.argv[1:]))"
              % str(tests_dir))
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "bench", "--data", str(SAMPLE), "--out", str(out),
         "--model", "tiny-llama", "--strategies", "fake-noop,fake-sleep,fake-constant",
         "--no-report"],
        cwd=tests_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        sleeping = None
        while time.monotonic() < deadline and sleeping is None:
            time.sleep(0.5)
            logs = list(out.glob("*/logs/fake-sleep.log"))
            if logs and "phase adapt" in logs[0].read_text():
                sleeping = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert sleeping, "the sleeping candidate never started"
        os.killpg(proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    run_dir = Path(stdout.strip().splitlines()[-1])
    assert "--resume" in stdout
    assert [r["strategy"] for r in journal.read_records(run_dir)] == ["fake-noop"]
    time.sleep(0.5)
    assert not [pid for pid in sleeping if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
