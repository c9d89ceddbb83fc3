"""The `tunewise` front door: help, version, the data group, no terminal, and `strategies`."""

from __future__ import annotations

import io
import json
import sys

import pytest

from advisor.cli import main


class _NoTerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_data_help_lists_its_subcommands_instead_of_calling_data_unknown(capsys):
    assert main(["data", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: tunewise data SUBCOMMAND" in out and "check" in out
    assert "unknown command" not in out


def test_data_alone_or_misspelt_says_what_exists_and_exits_2(capsys):
    assert main(["data"]) == 2
    assert "usage: tunewise data SUBCOMMAND" in capsys.readouterr().err
    assert main(["data", "chek"]) == 2
    assert "Did you mean 'check'?" in capsys.readouterr().err


def test_version_prints_the_installed_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tunewise {version('tunewise')}"


def test_no_command_without_a_terminal_prints_help_instead_of_hanging_in_the_tui(
        capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", _NoTerminal())
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "no terminal" in err and "commands:" in err


def test_strategies_lists_every_registered_strategy_with_family_and_tasks(capsys):
    from strategies import registry

    assert main(["strategies", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == registry.names()
    lora = next(r for r in rows if r["name"] == "lora")
    assert lora["family"] == "peft" and lora["trainable"] is True
    assert "classification" in lora["tasks"]


def test_strategies_name_shows_its_options_with_preset_defaults_and_help(capsys):
    from strategies import registry
    from strategies.base import config_help

    assert main(["strategies", "lora"]) == 0
    out = capsys.readouterr().out
    for option in config_help(registry.get("lora").config_cls):
        assert option["name"] in out and option["help"] in out
    assert "quick" in out and "full" in out


def test_strategies_task_filter_keeps_only_supporting_ones(capsys):
    assert main(["strategies", "--task", "preference", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all("preference" in r["tasks"] for r in rows)
    assert "majority" not in {r["name"] for r in rows}


def test_strategies_unknown_name_gets_did_you_mean_and_exit_2(capsys):
    assert main(["strategies", "lorra"]) == 2
    assert "Did you mean lora" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["strategies"], ["strategies", "knn"]])
def test_strategies_text_output_is_not_empty(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()


def test_a_run_ends_on_its_own_last_line_not_a_leaked_semaphore_warning(tmp_path):
    """A child that drew a tqdm bar left a named semaphore behind (os._exit skips its
    finalizer), and Python's resource tracker printed a warning after the run's last line."""
    import subprocess
    from pathlib import Path

    tests_dir = Path(__file__).resolve().parent
    sample = tests_dir.parent / "bench" / "samples" / "banking_support"
    script = ("import sys; sys.path.insert(0, %r); from strategies import registry; "
              "registry.register('fake-tqdm', 'fake_progress_bar:SPEC', 'baseline'); "
              "from advisor.cli import main; sys.exit(main(sys.argv[1:]))" % str(tests_dir))
    done = subprocess.run(
        [sys.executable, "-c", script, "bench", "--data", str(sample), "--out",
         str(tmp_path / "runs"), "--strategies", "fake-tqdm", "--no-report"],
        cwd=tests_dir.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "leaked semaphore" not in done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]).is_dir()


def test_estimate_for_an_uncached_hub_model_offline_is_a_message_not_a_traceback(
        capsys, monkeypatch, tmp_path):
    import time

    from bench.models import model_info

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    model_info.cache_clear()
    started = time.monotonic()
    assert main(["estimate", "--model", "some-org/not-cached-model", "--strategies", "lora"]) == 2
    err = capsys.readouterr().err
    assert "not in the local Hugging Face cache" in err and "Traceback" not in err
    assert time.monotonic() - started < 20  # no retries against an unreachable hub


def test_hub_resolvable_says_no_when_offline_is_set(monkeypatch):
    from bench.models import hub_resolvable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_resolvable() is False
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://no-such-host.invalid")
    assert hub_resolvable() is False


@pytest.mark.parametrize("command", [["tui"], ["data", "check", "data.csv"]])
def test_tui_and_data_check_refuse_a_misspelt_model_before_anything_runs(capsys, command):
    assert main([*command, "--model", "smolm2"]) == 2  # refused before data.csv is read
    err = capsys.readouterr().err
    assert "--model: unknown model 'smolm2' (did you mean 'smollm2-135m'?)" in err
    assert "Traceback" not in err
    assert main([*command, "--encoder", "minilm"]) == 2
    assert "--encoder: unknown model 'minilm' (did you mean 'minilm-l6'?)" in capsys.readouterr().err


def test_estimate_names_the_closest_built_in_shape_for_a_misspelt_model(capsys):
    assert main(["estimate", "--model", "mistrl-7b", "--strategies", "lora"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'mistral-7b'" in err and "llama-3-8b" in err and "Traceback" not in err
