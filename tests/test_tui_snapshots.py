"""Snapshot tests of every TUI screen at 80x24 and 120x40 (pytest-textual-snapshot).

Deterministic by construction: fixed hardware, the reference CPU throughput instead of a
measurement, relative paths, no ETAs or pulsing bars (snapshot mode), and a scripted runner for
the run and results screens. Regenerate with `pytest tests/test_tui_snapshots.py
--snapshot-update` and look at the SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advisor.tui.app import TunewiseApp
from tests.tui_script import ScriptedRunner, scripted_record

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "bench/samples/banking_support"
HARDWARE = {"cpu": "test CPU", "cores": 2, "memory_gb": 24.0, "gpu": None, "gpu_memory_gb": None,
            "cuda": False}
ANSWERS = {"task": "classification",
           "data": {"path": SAMPLE, "domain_vocabulary": "medium"},
           "resources": {"cpu_only": True, "budget_usd": 5.0, "time_budget_hours": 1.0},
           "goals": {"target_metric": 0.85, "latency_ms": 200.0, "monthly_requests": 2000000,
                     "retraining": "periodic"},
           "model": {"base": "smollm2-135m"}}
RECORDS = [scripted_record("majority", "baseline", 0.167, 518, 3.1),
           scripted_record("zero-shot", "prompting", 0.425, 905, 48.0),
           scripted_record("lora", "peft", 0.792, 1650, 310.0)]
SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def fixed_probes(answers):
    """What the probes measured on the banking sample's validation split (the bundled models,
    2026-12-03), fixed so that the screens do not depend on a measurement."""
    from advisor.probes import Probes
    from advisor.rules import ProbeScore

    return Probes("accuracy", {
        "knn": ProbeScore("knn", 1.0, 1.0, 1.0, rows=24, seconds=20.0),
        "transfer": ProbeScore("transfer", 1.0, 1.0, 1.0, rows=24, seconds=27.0),
        "zero-shot": ProbeScore("zero-shot", 0.375, 0.208, 0.583, rows=24, seconds=34.0),
        "majority": ProbeScore("majority", 0.167, 0.042, 0.333, rows=24, seconds=0.4)},
        {}, 24, 85.0)


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch):
    """Screens must not change when someone edits bench/prices.toml or registers a strategy."""
    from advisor import estimate

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(estimate, "prices", lambda path=None: dict(estimate.DEFAULT_PRICES))
    monkeypatch.setattr(TunewiseApp, "is_runnable", lambda self, name: True)


def make_app(runner=None, start_at: str = "welcome", ticked=None) -> TunewiseApp:
    import copy

    app = TunewiseApp(copy.deepcopy(ANSWERS), hardware=dict(HARDWARE), measure=False,
                      snapshot=True, save_to="/dev/null", runner=runner, start_at=start_at,
                      prober=fixed_probes)
    app.selected = ticked
    return app


async def until(pilot, condition, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out on {type(pilot.app.screen).__name__}"
        await pilot.pause(0.05)


def when(ready):
    """Take the screenshot once `ready(app)` holds and nothing is animating."""
    async def run_before(pilot) -> None:
        await until(pilot, lambda: ready(pilot.app))
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
    return run_before


def ranked(app) -> bool:
    table = app.screen.query("#ranking")
    return (getattr(app.screen, "ranking", None) is not None and bool(table)
            and table.first().row_count > 0)


def run_from_ranking(ready):
    """From the ranking (three candidates ticked), ctrl+r starts the scripted run."""
    async def run_before(pilot) -> None:
        await until(pilot, lambda: ranked(pilot.app))
        await pilot.press("ctrl+r")
        await when(ready)(pilot)
    return run_before


def mid_run(app) -> bool:
    rows = app.screen.query("#row-zero-shot .candidate-phase")
    return bool(rows) and "adapt 3/10" in str(rows.first().render())


def results_filled(app) -> bool:
    tables = app.screen.query("#results")
    return bool(tables) and tables.first().row_count == len(RECORDS)


def profiled(app) -> bool:
    shown = app.screen.query("#profile")
    return getattr(app.screen, "profile", None) is not None and bool(shown) and "rows" in str(shown.first().render())


def named(step: str):
    return lambda app: app.screen.name == step


# screen -> (scripted runner, where the app starts, when the screenshot is taken)
SCREENS = {
    "welcome": (None, "welcome", when(lambda app: type(app.screen).__name__ == "WelcomeScreen")),
    "data": (None, "data", when(profiled)),
    "labels": (None, "labels", when(named("labels"))),
    "resources": (None, "resources", when(named("resources"))),
    "goals": (None, "goals", when(named("goals"))),
    "recommendation": (None, "recommendation", when(ranked)),
    "run": ("hold", "recommendation", run_from_ranking(mid_run)),
    "results": ("all", "recommendation", run_from_ranking(results_filled)),  # via the run
}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(snap_compare, screen, size):
    runner_kind, start_at, run_before = SCREENS[screen]
    runner = None
    if runner_kind == "hold":
        runner = ScriptedRunner(RECORDS, hold_after=1, hold_timeout_s=10)
    elif runner_kind == "all":
        runner = ScriptedRunner(RECORDS)
    app = make_app(runner, start_at, ticked=["majority", "zero-shot", "lora"] if runner else None)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_before)
