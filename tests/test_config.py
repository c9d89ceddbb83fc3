"""Run config files (advisor/config.py): `tunewise bench --config`, the config each run folder
keeps, `advise --write-config`, the TUI's Save config, --json on bench and the old spellings."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from advisor import bench_cli
from advisor.cli import main
from bench import service
from bench.errors import TunewiseError
from bench.runner import BenchPlan
from fake_strategies import register_fakes

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "bench" / "samples" / "banking_support"
ANSWERS = ROOT / "advisor" / "samples" / "classification.yaml"
# what a plan carries besides the run's choices: not part of a config
NOT_CONFIG = ("command", "estimates")


def plan_of(*argv: str) -> BenchPlan:
    """The plan `tunewise bench ARGV` would run (parsed as cli.main parses it)."""
    return bench_cli.plan_from_args(bench_cli.new_parser().parse_args(list(argv)))


def write(path: Path, config: dict | str) -> Path:
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config),
                    encoding="utf-8")
    return path


def assert_same_plan(a: BenchPlan, b: BenchPlan) -> None:
    for field in dataclasses.fields(BenchPlan):
        if field.name not in NOT_CONFIG:
            assert getattr(a, field.name) == getattr(b, field.name), field.name


class Refuse:
    """bench.service.run_plan that records the plan and refuses it (nothing runs)."""

    def __init__(self):
        self.plans: list[BenchPlan] = []

    def __call__(self, plan, **kwargs):
        self.plans.append(plan)
        return service.RunOutcome(error="refused by the test")


@pytest.fixture
def refuse(monkeypatch) -> Refuse:
    spy = Refuse()
    monkeypatch.setattr(service, "run_plan", spy)
    monkeypatch.setattr(bench_cli, "fill_estimates", lambda plan: None)
    return spy


# ---------------------------------------------------------------------- reading a config


def test_every_key_reaches_its_option_and_the_file_is_as_good_as_the_flags(tmp_path):
    config = write(tmp_path / "run.yaml", {
        "data": [str(SAMPLE), "other.csv"], "columns": {"text": "body", "label": "team"},
        "task": "classification", "strategies": ["lora", "knn"], "model": "tiny-llama",
        "preset": "full", "set": {"lora.r": 16, "epochs": 2, "knn": {"k": 3}}, "seed": 3,
        "seeds": 2, "timeout": 90, "max-memory": 4000, "max_train_rows": 500,
        "peft_args": {"lora_dropout": 0.1}, "trust_remote_code": True,
        "learning_curve": [16, 64], "metric": ["bleu"], "out": "elsewhere"})
    from_file = plan_of("--config", str(config))
    from_flags = plan_of(
        "--data", str(SAMPLE), "--data", "other.csv", "--text-col", "body", "--label-col", "team",
        "--task", "classification", "--strategies", "lora,knn", "--model", "tiny-llama",
        "--preset", "full", "--set", "lora.r=16", "--set", "epochs=2", "--set", "knn.k=3",
        "--seed", "3", "--seeds", "2", "--timeout", "90", "--max-memory", "4000",
        "--max-train-rows", "500", "--peft-args", '{"lora_dropout": 0.1}',
        "--trust-remote-code", "--learning-curve", "16,64", "--metric", "bleu", "--out",
        "elsewhere")
    assert_same_plan(from_file, from_flags)
    assert from_file.overrides == {"lora": {"r": "16"}, "*": {"epochs": "2"}, "knn": {"k": "3"}}
    assert from_file.more_data == ["other.csv"] and from_file.timeout_s == 90.0


def test_flags_on_the_command_line_win_over_the_file(tmp_path):
    config = write(tmp_path / "run.yaml", {
        "data": str(SAMPLE), "strategies": "majority,knn", "preset": "full", "seed": 5,
        "set": {"knn.k": 3, "epochs": 2}})
    plan = plan_of("--config", str(config), "--preset", "quick", "--strategies", "majority",
                   "--set", "epochs=4")
    # --preset quick is the default, given explicitly: it still wins over the file's full
    assert plan.preset == "quick" and plan.strategies == ["majority"]
    assert plan.seed == 5  # not given: the file's
    assert plan.overrides == {"knn": {"k": "3"}, "*": {"epochs": "4"}}  # merged, the flag last
    other = plan_of("--config", str(config), "--data", "b.csv")
    assert (other.data, other.more_data) == ("b.csv", [])  # --data replaces the file's data


def test_relative_paths_are_read_from_the_config_files_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.csv").write_text("text,label\na,b\n")
    config = write(folder / "run.yaml", {"data": "data/train.csv", "test": "missing.csv"})
    monkeypatch.chdir(tmp_path)
    plan = plan_of("--config", str(config))
    assert Path(plan.data) == folder / "data" / "train.csv"
    assert plan.test == "missing.csv"  # not there either: as given, for the loader to refuse


def test_an_option_added_to_bench_is_a_config_key_without_more_code(tmp_path, monkeypatch):
    """Options map to keys through bench's own parser: a new flag needs no config code."""
    original = bench_cli.add_arguments

    def with_new_option(parser):
        parser.add_argument("--log-to", choices=("none", "wandb-offline"), default="none")
        original(parser)

    monkeypatch.setattr(bench_cli, "add_arguments", with_new_option)
    config = write(tmp_path / "run.yaml", {"data": "x.csv", "log_to": "wandb-offline"})
    args = bench_cli.resolve_config(bench_cli.new_parser().parse_args(["--config", str(config)]))
    assert args.log_to == "wandb-offline"
    bad = write(tmp_path / "bad.yaml", {"data": "x.csv", "log-to": "wandb-ofline"})
    with pytest.raises(TunewiseError, match="did you mean 'wandb-offline'"):
        bench_cli.resolve_config(bench_cli.new_parser().parse_args(["--config", str(bad)]))


@pytest.mark.parametrize("text, message", [
    ("data: x.csv\nstrategis: [majority]\n", "unknown key 'strategis' (did you mean 'strategies'?)"),
    ("data: x.csv\nmax_rows: 10\n", "did you mean 'max_train_rows'"),
    ("data: x.csv\nseeds: many\n", "seeds: expected a whole number, got 'many'"),
    ("data: x.csv\nseeds: 2.5\n", "seeds: expected a whole number, got 2.5"),
    ("data: x.csv\ntimeout: yes\n", "timeout: expected a number, got True"),
    ("data: x.csv\npreset: ful\n", "preset: 'ful' is not one of quick, full (did you mean 'full'?)"),
    ("data: x.csv\ntask: [qa, generation]\n", "task: expected one value, got a list"),
    ("data: x.csv\ncolumns: {txt: body}\n", "unknown role 'txt' (did you mean 'text'?)"),
    ("data: x.csv\ncolumns: body\n", "columns: expected a mapping of role to column"),
    ("data: x.csv\nset: 3\n", "set: expected a mapping"),
    ("data: x.csv\ntrust_remote_code: please\n", "trust_remote_code: expected true or false"),
    ("data: x.csv\nresume: runs/x\n", "resume: not a config key"),
    ("data: x.csv\nstrategies: [majority\n", "not valid YAML"),
    ("- data\n- x.csv\n", "expected a mapping of options"),
    ("data: x.csv\npeft_args: [1]\n", "peft_args: expected one value, got a list"),
    ("data: x.csv\nout: [a, b]\n", "out: expected one value, got a list"),  # though --out wins
    ("data: {a: 1}\n", "data: expected text"),
    ("data: []\n", "data: expected a path or a list of paths"),
    ("data: x.csv\nset: [1, 2]\n", "set: a list of KEY=VALUE texts"),
    ("data: x.csv\nmodel: smolm2\n", "model: unknown model 'smolm2' (did you mean 'smollm2-135m'?)"),
    ("data: x.csv\nmodel: tiny-llama,tiny-lama\n", "did you mean 'tiny-llama'"),
    ("data: x.csv\nencoder: minilm\n", "encoder: unknown model 'minilm' (did you mean 'minilm-l6'?)"),
])
def test_a_bad_config_exits_2_with_the_file_and_key_in_the_message(tmp_path, capsys, text,
                                                                   message):
    config = write(tmp_path / "run.yaml", text)
    assert main(["bench", "--config", str(config), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(config) in err
    assert "Traceback" not in err


def test_a_missing_config_or_a_folder_without_one_exits_2(tmp_path, capsys):
    assert main(["bench", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config file" in capsys.readouterr().err
    assert main(["bench", "--config", str(tmp_path)]) == 2
    assert "a folder without config.yaml or manifest.json" in capsys.readouterr().err
    write(tmp_path / "run.yaml", {"data": str(SAMPLE)})
    assert main(["bench", "--config", str(tmp_path / "run.yaml"), "--resume", "runs/x"]) == 2
    assert "give one of them" in capsys.readouterr().err
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00data")
    assert main(["bench", "--config", str(tmp_path / "binary.yaml")]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{broken")
    assert main(["bench", "--config", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"plan": {"data": "x", "preset": "huge"}}))
    assert main(["bench", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'huge'" in err and "Traceback" not in err


# ---------------------------------------------------------------------- writing a config


def test_a_plan_written_as_config_reads_back_as_the_same_plan(tmp_path):
    from advisor.config import write_plan_config

    plan = BenchPlan(data=str(SAMPLE), task="classification", test="test.csv", corpus="docs/",
                     columns={"text": "body", "label": "team"}, strategies=["lora", "peft:vera"],
                     model="smollm2-135m", encoder="minilm-l6", preset="full", out="elsewhere",
                     seed=3, seeds=2, timeout_s=90.5, max_memory_mb=4000.0,
                     overrides={"lora": {"r": "16", "target_modules": "q_proj,v_proj"},
                                "*": {"epochs": "2", "learning_rate": "1e-4"}},
                     options={"peft_args": {"r": 256}, "trust_remote_code": True},
                     price_as="h100", metrics=["bleu"], max_train_rows=500, device="cpu",
                     prices="my_prices.toml", tune=4, learning_curve=[16, 64],
                     more_data=["other.csv"], gpus_per_candidate=2, test_size=0.3, val_size=0.15)
    path = write_plan_config(plan, tmp_path / "run.yaml", bench_cli.new_parser())
    written = yaml.safe_load(path.read_text())
    assert written["set"]["lora.r"] == 16 and written["strategies"] == ["lora", "peft:vera"]
    assert written["columns"] == {"text": "body", "label": "team"}
    assert "tunewise bench --config" in path.read_text().splitlines()[1]
    assert_same_plan(plan_of("--config", str(path)), plan)


def test_bench_json_prints_only_json_and_the_run_folder_keeps_a_config_that_reruns_it(
        tmp_path, capsys):
    register_fakes()
    config = write(tmp_path / "run.yaml", {
        "data": str(SAMPLE), "strategies": ["fake-constant", "fake-skip"], "model": "tiny-llama",
        "encoder": "tiny-bert", "set": {"label": "card_arrival"}, "out": str(tmp_path / "runs"),
        "no_report": True})
    assert main(["bench", "--config", str(config), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout is the JSON and nothing else
    assert "[fake-constant]" in captured.err  # the progress went to stderr
    assert [(r["strategy"], r["status"]) for r in summary["records"]] == [
        ("fake-constant", "ok"), ("fake-skip", "skipped")]
    assert summary["records"][0]["primary"] == summary["records"][0]["metrics"]["accuracy"]
    assert summary["exit_code"] == 0 and summary["report"] is None
    run_dir = Path(summary["run_dir"])
    assert summary["config"] == str(run_dir / "config.yaml")

    from reports.reproduce import reproduce_command

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert reproduce_command(manifest, [])["config"] == f"tunewise bench --config {run_dir}"

    assert main(["bench", "--config", str(run_dir / "config.yaml"), "--no-report"]) == 0
    again = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert again != run_dir and again.parent == run_dir.parent
    first, second = (json.loads((d / "manifest.json").read_text())["plan"]
                     for d in (run_dir, again))
    for key in NOT_CONFIG:
        first.pop(key), second.pop(key)
    assert first == second


def test_a_run_folder_without_config_yaml_reruns_from_its_manifest(tmp_path, refuse, capsys):
    plan = BenchPlan(data=str(SAMPLE), strategies=["majority"], model="tiny-llama", seed=7)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "manifest.json").write_text(json.dumps(
        {"plan": dataclasses.asdict(plan), "strategies": ["majority"]}))
    assert main(["bench", "--config", str(run_dir)]) == 2  # refused by the spy, after parsing
    assert_same_plan(refuse.plans[0], plan)


def test_advise_write_config_then_bench_config_runs_the_plan_advise_run_would(
        tmp_path, refuse, capsys):
    path = tmp_path / "run.yaml"
    assert main(["advise", "--answers", str(ANSWERS), "--no-measure", "--no-domain", "--top", "2",
                 "--out", str(tmp_path / "runs"), "--write-config", str(path), "--json",
                 "--run"]) == 2  # the spy refuses --run's plan
    captured = capsys.readouterr()
    json.loads(captured.out)  # --json's stdout is still the ranking alone
    assert f"run config: {path}" in captured.err
    advised = refuse.plans[0]
    assert {"majority", "zero-shot"} <= set(advised.strategies) and len(advised.strategies) >= 3
    assert main(["bench", "--config", str(path)]) == 2
    assert_same_plan(refuse.plans[1], advised)


def test_advise_write_config_needs_data(tmp_path, capsys):
    write(tmp_path / "answers.yaml", {"task": "classification"})
    assert main(["advise", "--answers", str(tmp_path / "answers.yaml"), "--no-measure",
                 "--write-config", str(tmp_path / "run.yaml")]) == 2
    assert "--write-config needs data" in capsys.readouterr().err


# ---------------------------------------------------------------------- one spelling per option


def test_old_spellings_still_work_hidden_and_with_a_one_line_warning(capsys):
    assert main(["data", "check", str(SAMPLE), "--max-rows", "30", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["splits"]["train"] == 30
    assert captured.err.strip() == ("tunewise: warning: --max-rows is deprecated; "
                                    "use --max-train-rows")
    assert main(["estimate", "--strategy", "lora", "--model", "tiny-llama", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["strategy"] == "lora"
    assert "--strategy is deprecated; use --strategies" in captured.err
    plan = plan_of("--data", "x.csv", "--strategy", "knn", "--max-rows", "50")
    assert plan.strategies == ["knn"] and plan.max_train_rows == 50


def test_bench_splits_as_data_check_does_with_the_same_shares(tmp_path, capsys):
    register_fakes()
    assert main(["data", "check", str(SAMPLE), "--val-size", "0.25", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)["splits"]
    assert main(["bench", "--data", str(SAMPLE), "--val-size", "0.25", "--strategies",
                 "fake-noop", "--out", str(tmp_path), "--no-report", "--json"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out)["run_dir"])
    sizes = json.loads((run_dir / "manifest.json").read_text())["split"]["sizes"]
    assert sizes == {"train": checked["train"], "validation": checked["validation"],
                     "test": checked["test"]}
    assert checked["validation"] > 0.2 * (checked["train"] + checked["validation"])
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["val_size"] == 0.25


def test_estimate_takes_several_strategies_like_bench(capsys):
    assert main(["estimate", "--strategies", "lora,qlora", "--model", "tiny-llama",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["strategy"] for r in rows] == ["lora", "qlora"]
    assert main(["estimate", "--strategies", "lora", "--set", "knn.k=2"]) == 2
    assert "not among --strategies" in capsys.readouterr().err


def test_no_command_shows_an_old_spelling_in_its_help():
    """One spelling per option: --max-train-rows, --strategies, and --config only for a run
    config (estimate's model config.json is --model-config)."""
    from advisor.cli import COMMANDS, DATA_COMMANDS, command_parser

    old = {"--max-rows", "--strategy"}
    words = [[name] for name in COMMANDS] + [["data", name] for name in DATA_COMMANDS]
    for command in words:
        parser, _, _ = command_parser(command)
        shown = {flag for action in parser._actions if action.help is not argparse.SUPPRESS
                 for flag in action.option_strings}
        assert not shown & old, (command, shown & old)
        if "--config" in shown:
            assert command == ["bench"], command


def test_bench_json_stdout_is_json_alone_in_a_real_process(tmp_path):
    """Children, libraries and the display all stay off stdout (not only what capsys sees)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "bench", "--data", str(SAMPLE), "--strategies",
         "majority", "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["records"][0]["status"] == "ok" and Path(summary["report"]).is_file()
    assert "[majority]" in done.stderr and "Traceback" not in done.stderr
