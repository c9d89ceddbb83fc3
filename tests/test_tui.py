"""Pilot tests of the TUI at 80x24: the questionnaire by keyboard, inline validation, saving
and loading answers, the data screen's column mapping and its refusal of unreadable data, tab
completion of paths, ticks kept on the way back, yes/no switches, hardware defaults, cancel,
and a real run of `majority` through the harness."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets.select import InvalidSelectValueError

from advisor.answers import load_answers
from advisor.tui.app import TunewiseApp
from advisor.tui.screens import DataScreen, RecommendationScreen
from tests.tui_script import ScriptedRunner, scripted_record

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = {"cpu": "test CPU", "cores": 2, "memory_gb": 24.0, "gpu": None, "gpu_memory_gb": None,
            "cuda": False}
SAMPLE = "bench/samples/banking_support"


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the sample path is typed relative to the repository


def make_app(tmp_path, answers=None, hardware=HARDWARE, **kwargs) -> TunewiseApp:
    kwargs.setdefault("probe", False)  # the rules' ranking; test_probes covers the probed one
    return TunewiseApp(answers or {}, hardware=dict(hardware), measure=False, snapshot=True,
                       save_to=str(tmp_path / "answers.yaml"), out=str(tmp_path / "runs"),
                       **kwargs)


async def until(pilot, condition, timeout_s: float = 120.0) -> None:
    """Let the app run until `condition()` holds (workers post back asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s on {type(pilot.app.screen).__name__}")
        await pilot.pause(0.05)


def ranked(app) -> bool:
    """The recommendation screen is up and shows its ranking."""
    screen = app.screen
    return isinstance(screen, RecommendationScreen) and screen.ranking is not None


def ticks_shown(app) -> set[str]:
    """The strategies whose row shows a tick on the recommendation screen."""
    table = app.screen.query_one("#ranking")
    return {str(key.value) for key in table.rows if table.get_cell(key, "tick") == "✓"}


def shown(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def profiled(app) -> bool:
    return isinstance(app.screen, DataScreen) and "rows" in shown(app, "#profile")


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
    await until(pilot, lambda: profiled(app))
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
    await until(pilot, lambda: ranked(app))


async def tick_only(pilot, wanted: set[str]) -> None:
    """Walk the ranking with the keyboard and leave only `wanted` ticked."""
    screen = pilot.app.screen
    for candidate in screen.ranking.ranked:
        if (candidate.strategy in screen.ticked) != (candidate.strategy in wanted):
            await pilot.press("space")
        await pilot.press("down")
    assert sorted(screen.ticked) == sorted(wanted)


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
        screen = app.screen
        table = screen.query_one("#ranking")
        assert table.row_count == len(screen.ranking.ranked) > 10
        top = screen.ranking.ranked[0]
        reasons = shown(app, "#reasons")
        assert top.strategy in reasons and top.reasons[0].rule in reasons
        assert {"majority", "zero-shot"} <= set(screen.ticked)  # baselines ticked by default
        assert {"majority", "zero-shot"} <= ticks_shown(app)


async def test_inline_validation_keeps_the_user_on_the_screen(tmp_path):
    app = make_app(tmp_path, start_at="labels")
    async with app.run_test(size=(80, 24)) as pilot:
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
    app = make_app(tmp_path, {"data": {"path": SAMPLE}}, start_at="goals")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.name == "goals")
        await pilot.press(*"0.7", "ctrl+s")
        await pilot.pause()
    saved = load_answers(tmp_path / "answers.yaml")
    assert saved["goals"]["target_metric"] == 0.7
    assert Path(saved["data"]["path"]).resolve() == (ROOT / SAMPLE).resolve()

    again = make_app(tmp_path, saved, start_at="goals")
    async with again.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: again.screen.name == "goals")
        assert again.screen.query_one("#q-goals-target_metric").value == "0.7"


async def test_cancel_keeps_finished_records(tmp_path):
    records = [scripted_record("majority", "baseline", 0.17, 500, 2.0),
               scripted_record("zero-shot", "prompting", 0.40, 900, 30.0)]
    runner = ScriptedRunner(records, hold_after=1)
    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}}, runner=runner,
                   start_at="recommendation")
    app.selected = ["majority", "zero-shot"]  # ticked on an earlier visit
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ranked(app))
        assert ticks_shown(app) == {"majority", "zero-shot"}
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen_name(app) == "RunScreen")
        await until(pilot, lambda: "adapt 3/10" in str(
            app.screen.query_one("#row-zero-shot .candidate-phase").render()))
        await pilot.press("c")
        await until(pilot, lambda: results_shown(app))
        table = app.screen.query_one("#results")
        assert table.row_count == 1 and table.get_row("majority")[2] == "ok"
        assert "cancelled" in shown(app, "#report-path")
        await pilot.press("escape")  # back from the results: the same ticks
        await until(pilot, lambda: ranked(app))
        assert ticks_shown(app) == {"majority", "zero-shot"}
    assert set(runner.plans[0].strategies) == {"majority", "zero-shot"}


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


# ---------------------------------------------------------------------- the data screen


def write_unnamed_columns(folder: Path) -> Path:
    """A classification file whose column names the data check cannot read as text/label."""
    path = folder / "tickets.csv"
    labels = ("billing", "refund", "login")
    lines = ["body,tag"] + [f"customer message number {i} about {labels[i % 3]},{labels[i % 3]}"
                            for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_columns_the_check_cannot_tell_are_mapped_on_the_data_screen(tmp_path):
    data = write_unnamed_columns(tmp_path)
    app = make_app(tmp_path, start_at="data")
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DataScreen))
        await pilot.press(*str(data), "enter")
        await until(pilot, lambda: app.screen.query_one("#columns").display)
        message = shown(app, "#profile")
        assert "cannot tell" in message and "--" not in message  # no command-line flags
        await pilot.press("ctrl+n")  # not past data it cannot read
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)

        app.screen.query_one("#q-task").value = "classification"
        await until(pilot, lambda: bool(app.screen.query("#column-label")))
        assert "seen: body, tag" in shown(app, "#columns .question-text")
        with pytest.raises(InvalidSelectValueError):  # only the columns the check saw
            app.screen.query_one("#column-text").value = "message"
        for role, column in (("text", "body"), ("label", "tag")):
            app.screen.query_one(f"#column-{role}").value = column
        await pilot.click("#apply-columns")
        await until(pilot, lambda: profiled(app))
        assert "3 labels" in shown(app, "#profile")
        assert not app.screen.query_one("#columns").display
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "labels")
    assert app.columns == {"text": "body", "label": "tag"}
    assert app.profile["task"] == "classification" and app.answers["task"] == "classification"
    assert app.answers["data"]["labeled_examples"] == app.profile["splits"]["train"] + \
        app.profile["splits"]["validation"]


async def test_data_it_cannot_read_keeps_the_user_on_the_data_screen(tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("", encoding="utf-8")
    app = make_app(tmp_path, start_at="data")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DataScreen))
        await pilot.press(*str(broken), "ctrl+n")  # on without pressing enter: checked first
        await until(pilot, lambda: "empty" in shown(app, "#profile"))
        assert isinstance(app.screen, DataScreen)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)
        assert not app.screen.query_one("#columns").display  # nothing to map in an empty file
        field = app.screen.query_one("#q-data-path")
        field.value = ""  # no data at all is allowed: the advice does not need it
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "labels")
    assert app.profile is None


async def test_tab_completes_a_path_and_moves_on_when_there_is_nothing_to_complete(tmp_path):
    app = make_app(tmp_path, start_at="data")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DataScreen))
        path_input = app.screen.query_one("#q-data-path")
        await pilot.press(*"bench/sam")
        await pilot.pause(0.2)  # the suggester runs in a worker
        await pilot.press("tab")
        assert path_input.value == "bench/samples/" and app.focused is path_input
        await pilot.press(*"bank")
        await pilot.pause(0.2)
        await pilot.press("tab")
        assert path_input.value == "bench/samples/banking_support/"
        await pilot.pause(0.2)
        await pilot.press("tab")  # a folder with several files: nothing shared to complete
        assert app.focused is not path_input


async def test_ticks_survive_going_back_to_the_questions(tmp_path):
    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}},
                   start_at="recommendation")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ranked(app))
        await tick_only(pilot, {"majority", "knn"})
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.name == "goals")
        assert sorted(app.selected) == ["knn", "majority"]
        await pilot.press("ctrl+n")
        await until(pilot, lambda: ranked(app))
        assert ticks_shown(app) == {"majority", "knn"}
        assert sorted(app.screen.ticked) == ["knn", "majority"]


async def test_switches_say_yes_or_no(tmp_path):
    app = make_app(tmp_path, start_at="labels")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.name == "labels")
        state = "#q-data-has_labels-box .switch-state"
        assert shown(app, state) == "yes"
        assert shown(app, "#q-data-has_preference_pairs-box .switch-state") == "no"
        app.screen.query_one("#q-data-has_labels").focus()
        await pilot.press("space")
        await pilot.pause()
        assert shown(app, state) == "no"
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "resources")
    assert app.answers["data"]["has_labels"] is False


async def test_resources_default_to_what_the_hardware_probe_found(tmp_path):
    app = make_app(tmp_path, start_at="resources")  # no CUDA
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.name == "resources")
        assert app.screen.query_one("#q-resources-cpu_only").value is True
        assert shown(app, "#q-resources-cpu_only-box .switch-state") == "yes"
        assert app.screen.query_one("#q-resources-gpu_memory_gb").value == ""
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.screen.name == "goals")
    assert app.answers["resources"]["cpu_only"] is True

    gpu = {**HARDWARE, "gpu": "test GPU", "gpu_memory_gb": 80.0, "cuda": True}
    app = make_app(tmp_path, hardware=gpu, start_at="resources")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.name == "resources")
        assert app.screen.query_one("#q-resources-cpu_only").value is False
        assert app.screen.query_one("#q-resources-gpu_memory_gb").value == "80"
        assert "test GPU" in shown(app, "#hardware")

    mine = make_app(tmp_path, {"resources": {"cpu_only": False}}, start_at="resources")
    async with mine.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: mine.screen.name == "resources")
        assert mine.screen.query_one("#q-resources-cpu_only").value is False  # the answer wins


def test_data_errors_on_screen_leave_out_command_line_flags():
    from advisor.tui.views import without_cli_hints

    message = ("t.csv: cannot tell the task from the columns (body, tag). 'txt' looks like "
               "'text' (pass --text-col txt); Classification needs text+label; pass --task KIND "
               "and the column flags (--text-col, --label-col, ...)")
    assert without_cli_hints(message) == ("t.csv: cannot tell the task from the columns (body, "
                                          "tag). 'txt' looks like 'text'; Classification needs "
                                          "text+label.")
    assert without_cli_hints("t.csv: a classification task needs a label column. Columns seen: "
                             "text, lab. Pass --label-col COLUMN") == \
        "t.csv: a classification task needs a label column. Columns seen: text, lab."
    assert without_cli_hints("t.csv is empty") == "t.csv is empty."


async def test_a_task_chosen_by_hand_checks_the_data_again_as_that_task(tmp_path):
    app = make_app(tmp_path, {"data": {"path": SAMPLE}}, start_at="data")
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: profiled(app))
        assert app.screen.query_one("#q-task").value == "classification"  # detected
        app.screen.query_one("#q-task").value = "preference"
        await until(pilot, lambda: app.screen.query_one("#columns").display)
        assert app.screen.query("#column-chosen") and app.screen.query("#column-rejected")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, DataScreen)  # a preference task needs its columns first


async def test_the_ranking_shows_the_probes_and_measures_them_once(tmp_path):
    """With data, the ranking first probes (here a fixed prober), shows what they measured
    and ticks the probed leaders; back and forward again reuses the probes."""
    from advisor.probes import Probes
    from advisor.rules import ProbeScore

    calls = []

    def prober(answers):
        calls.append(answers["data"]["path"])
        return Probes("accuracy", {"knn": ProbeScore("knn", 1.0, rows=24, seconds=20.0),
                                   "transfer": ProbeScore("transfer", 1.0, rows=24, seconds=25.0),
                                   "zero-shot": ProbeScore("zero-shot", 0.3, rows=24, seconds=30.0),
                                   "majority": ProbeScore("majority", 0.17, rows=24, seconds=1.0)},
                      {}, 24, 76.0)

    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}},
                   start_at="recommendation", probe=True, prober=prober)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: ranked(app))
        assert "knn 1.000 ±0.07 (24 rows, 20 s)" in shown(app, "#probes")
        assert [c.strategy for c in app.screen.ranking.ranked[:2]] == ["knn", "transfer"]
        assert {"knn", "transfer"} <= ticks_shown(app)
        await pilot.press("escape")  # back to the goals, then forward: no second measurement
        await until(pilot, lambda: screen_name(app) != "RecommendationScreen")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: ranked(app))
        assert "knn 1.000" in shown(app, "#probes")
    assert calls == [SAMPLE]
async def test_save_config_writes_the_run_it_would_start_for_bench_config(tmp_path):
    """Save config (w) on the recommendation screen, then run: `bench --config` of the saved
    file is the plan the TUI ran."""
    from advisor import bench_cli

    runner = ScriptedRunner([scripted_record("majority", "baseline", 0.17, 500, 2.0),
                             scripted_record("knn", "transfer", 0.6, 700, 4.0)])
    config = tmp_path / "saved" / "run.yaml"
    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}},
                   runner=runner, start_at="recommendation", config_to=str(config),
                   model="tiny-llama", encoder="tiny-bert")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ranked(app))
        await tick_only(pilot, {"majority", "knn"})
        await pilot.press("w")
        await until(pilot, config.exists)
        await pilot.click("#save-config")  # the button does the same
        await pilot.press("ctrl+r")
        await until(pilot, lambda: results_shown(app))
    args = bench_cli.new_parser().parse_args(["--config", str(config)])
    again = bench_cli.plan_from_args(args)
    ran = runner.plans[0]
    assert sorted(again.strategies) == ["knn", "majority"] and again.model == "tiny-llama"
    for name in ("data", "task", "strategies", "model", "encoder", "preset", "out", "columns"):
        assert getattr(again, name) == getattr(ran, name), name


async def test_save_config_without_ticks_says_so_and_writes_nothing(tmp_path):
    config = tmp_path / "run.yaml"
    app = make_app(tmp_path, {"task": "classification", "data": {"path": SAMPLE}},
                   start_at="recommendation", config_to=str(config))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: ranked(app))
        await tick_only(pilot, set())
        await pilot.press("w")
        await pilot.pause()
    assert not config.exists()
