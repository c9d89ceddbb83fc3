"""Pilot tests of the TUI at 80x24: the questionnaire by keyboard, inline validation, saving
and loading answers, cancel, and a real run of `majority` through the harness."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.answers import load_answers
from advisor.tui.app import TunewiseApp
from advisor.tui.scripted import ScriptedRunner, scripted_record

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = {"cpu": "test CPU", "cores": 2, "memory_gb": 24.0, "gpu": None, "gpu_memory_gb": None,
            "cuda": False}
SAMPLE = "bench/samples/banking_support"


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample path is typed relative to the repository


def make_app(tmp_path, answers=None, **kwargs) -> TunewiseApp:
    return TunewiseApp(answers or {}, hardware=dict(HARDWARE), measure=False, snapshot=True,
                       save_to=str(tmp_path / "answers.yaml"), out=str(tmp_path / "runs"),
                       **kwargs)


async def until(pilot, condition, timeout_s: float = 120.0) -> None:
    """Let the app run until `condition()` holds (workers post back asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s on {type(pilot.app.screen).__name__}")
        await pilot.pause(0.05)


async def goto(pilot, step: str) -> None:
    """Jump to a screen (after the first one has mounted), as the keys would."""
    await until(pilot, lambda: screen_name(pilot.app) == "WelcomeScreen")
    pilot.app.go(step)
    await pilot.pause()


def results_shown(app) -> bool:
    """The results screen is up and its table filled (the switch happens before the mount)."""
    tables = app.screen.query("#results") if screen_name(app) == "ResultsScreen" else []
    return bool(tables) and tables.first().row_count > 0


def screen_name(app) -> str:
    return type(app.screen).__name__


async def answer_questionnaire(pilot) -> None:
    """welcome -> data (typed path, profile) -> labels -> resources -> goals -> recommendation"""
    app = pilot.app
    await pilot.press("enter")  # Start
    await until(pilot, lambda: screen_name(app) == "DataScreen")
    await pilot.press(*SAMPLE, "enter")
    await until(pilot, lambda: app.profile is not None)
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.screen.name == "labels")
    assert app.focused.value == "240"  # pre-filled from the data profile (train + validation)
    await pilot.press("ctrl+n")
    await until(pilot, lambda: screen_name(app) == "ResourcesScreen")
    await pilot.press("tab", "tab", "3")  # budget: $3 (gpu memory empty, cpu-only switch)
    await pilot.press("ctrl+n")
    await until(pilot, lambda: app.screen.name == "goals")
    await pilot.press(*"0.8")  # target metric
    await pilot.press("ctrl+n")
    await until(pilot, lambda: screen_name(app) == "RecommendationScreen")
    await until(pilot, lambda: app.ranking is not None)


async def tick_only(pilot, wanted: set[str]) -> None:
    """Walk the ranking with the keyboard and leave only `wanted` ticked."""
    app = pilot.app
    for candidate in app.ranking.ranked:
        if (candidate.strategy in app.selected) != (candidate.strategy in wanted):
            await pilot.press("space")
        await pilot.press("down")
    assert sorted(app.selected) == sorted(wanted)


def test_app_module_imports_neither_torch_nor_transformers():
    code = ("import sys, time; t = time.perf_counter(); import advisor.tui.app; "
            "print('torch' in sys.modules, 'transformers' in sys.modules, time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.split()
    assert out[:2] == ["False", "False"], out


async def test_keyboard_questionnaire_reaches_a_reasoned_recommendation(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await answer_questionnaire(pilot)
        assert app.answers["task"] == "classification"
        assert app.answers["resources"]["budget_usd"] == 3
        assert app.answers["goals"]["target_metric"] == 0.8
        table = app.screen.query_one("#ranking")
        assert table.row_count == len(app.ranking.ranked) > 10
        top = app.ranking.ranked[0]
        reasons = str(app.screen.query_one("#reasons").render())
        assert top.strategy in reasons and top.reasons[0].rule in reasons
        assert {"majority", "zero-shot"} <= set(app.selected)  # baselines ticked by default


async def test_inline_validation_keeps_the_user_on_the_screen(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await goto(pilot, "labels")
        await until(pilot, lambda: app.screen.name == "labels")
        await pilot.press(*"abc")
        error = app.screen.query_one("#error-data-labeled_examples")
        assert "number" in str(error.render())
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen.name == "labels"
        await pilot.press("backspace", "backspace", "backspace", *"120", "ctrl+n")
        await until(pilot, lambda: screen_name(app) == "ResourcesScreen")
        assert app.answers["data"]["labeled_examples"] == 120


async def test_ctrl_s_saves_answers_and_they_load_back(tmp_path):
    app = make_app(tmp_path, {"data": {"path": SAMPLE}})
    async with app.run_test(size=(80, 24)) as pilot:
        await goto(pilot, "goals")
        await until(pilot, lambda: app.screen.name == "goals")
        await pilot.press(*"0.7", "ctrl+s")
        await pilot.pause()
    saved = load_answers(tmp_path / "answers.yaml")
    assert saved["goals"]["target_metric"] == 0.7
    assert Path(saved["data"]["path"]).resolve() == (ROOT / SAMPLE).resolve()

    again = make_app(tmp_path, saved)
    async with again.run_test(size=(80, 24)) as pilot:
        await goto(pilot, "goals")
        await until(pilot, lambda: again.screen.name == "goals")
        assert again.screen.query_one("#q-goals-target_metric").value == "0.7"


async def test_cancel_keeps_finished_records(tmp_path):
    records = [scripted_record("majority", "baseline", 0.17, 500, 2.0),
               scripted_record("zero-shot", "prompting", 0.40, 900, 30.0)]
    runner = ScriptedRunner(records, hold_after=1)
    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}}, runner=runner)
    async with app.run_test(size=(80, 24)) as pilot:
        await goto(pilot, "recommendation")
        await until(pilot, lambda: app.ranking is not None)
        app.selected[:] = ["majority", "zero-shot"]
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen_name(app) == "RunScreen")
        await until(pilot, lambda: "adapt 3/10" in str(
            app.screen.query_one("#row-zero-shot .candidate-phase").render()))
        await pilot.press("c")
        await until(pilot, lambda: results_shown(app))
        table = app.screen.query_one("#results")
        assert table.row_count == 1 and table.get_row("majority")[2] == "ok"
        assert "cancelled" in str(app.screen.query_one("#report-path").render())
    assert runner.plans[0].strategies == ["zero-shot", "majority"] or \
        set(runner.plans[0].strategies) == {"majority", "zero-shot"}


async def test_run_majority_through_the_harness_and_see_its_row(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await answer_questionnaire(pilot)
        await tick_only(pilot, {"majority"})
        await pilot.press("ctrl+r")
        await until(pilot, lambda: results_shown(app), timeout_s=400)
        row = app.screen.query_one("#results").get_row("majority")
        assert row[1] == "majority" and row[2] == "ok"
        assert 0.0 < float(row[3]) < 0.5  # majority class of 6 balanced labels: ~1/6
        assert row[4] != "—"  # the advisor's prior rank beside the measured one
    assert app.report_path and Path(app.report_path).is_file()
    records = (Path(app.run_result.run_dir) / "results.jsonl").read_text()
    assert '"majority"' in records
