"""`tunewise bench`: run candidates on your data, measure them, write the report.

    tunewise bench --data bench/samples/banking_support --strategies majority,zero-shot,knn
    tunewise bench --data tickets.csv --text-col body --label-col team --strategies all
    tunewise bench --data qa.jsonl --corpus docs/ --strategies zero-shot,rag --preset full
    tunewise bench --data train.csv --strategies lora,qlora --set lora.r=16 --set epochs=2
    tunewise bench --data train.csv --strategies lora --seeds 3 --timeout 1800 --max-memory 8000
    tunewise bench --resume runs/20261126-190339-5e71        # finish an interrupted run
    tunewise bench ... --price-as h100                       # price as if on an H100 (projection)
    tunewise bench --data train.csv --strategies lora --tune 8          # Optuna on validation
    tunewise bench --data train.csv --strategies few-shot,lora --learning-curve 16,64,256
    tunewise bench --data a.csv --data b.csv --strategies lora          # multi-task adapter
    tunewise bench --config run.yaml --preset full     # a run config file; flags win over it
    tunewise bench --config runs/20261126-190339-5e71/config.yaml      # rerun a run
    tunewise bench --config run.yaml --json            # the records' summary as JSON on stdout

Prints the results table (best primary metric first, with 95% bootstrap intervals) and the run
folder's path last; with --json, only a JSON summary on stdout (progress goes to stderr). The run
folder keeps the resolved options as config.yaml (advisor/config.py has the format). Exit 0 when
every candidate finished or was skipped, 1 when one failed or timed out, 2 for bad input, 130
when interrupted (resume with --resume RUN_DIR).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from bench.cli_options import add_deprecated_alias
from bench.errors import TunewiseError
from strategies.base import PRESETS, TASK_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.data import ROLE_SYNONYMS, role_flag

    parser.add_argument("--config", metavar="FILE",
                        help="a run config YAML (keys: these options without the dashes, plus "
                        "`columns` and `set` as mappings), or a run folder to rerun; options "
                        "given here win over the file")
    data = parser.add_argument_group("data")
    data.add_argument("--data", metavar="PATH", action=_DataPaths,
                      help="a CSV/TSV/JSON/JSONL/Parquet file, a folder with train.* [test.* "
                      "corpus.*], or a datasets.save_to_disk folder; given again, the trainable "
                      "candidates also train one model on all datasets at once (multi-task)")
    parser.set_defaults(more_data=[])
    data.add_argument("--test", metavar="PATH", help="a separate test file (else one is carved)")
    data.add_argument("--corpus", metavar="PATH", help="documents for RAG")
    data.add_argument("--task", choices=TASK_KINDS, help="the task kind (default: detected)")
    data.add_argument("--label-names", metavar="FILE",
                      help="classification: a description per label (JSON object label -> "
                           "description, or CSV label,description) for the LM candidates' prompts")
    data.add_argument("--max-train-rows", type=int, metavar="N",
                      help="cap the train split (stratified), for a quicker run")
    data.add_argument("--test-size", type=float, default=0.2, metavar="SHARE",
                      help="share of rows held out for test when no --test file is given "
                      "(default 0.2)")
    data.add_argument("--val-size", type=float, default=0.1, metavar="SHARE",
                      help="share of rows for validation, of train when a --test file is given "
                      "(default 0.1)")
    for role, synonyms in ROLE_SYNONYMS.items():
        data.add_argument(role_flag(role), dest=f"{role}_col", metavar="COLUMN",
                          help=f"the {role} column (detected: {'/'.join(synonyms)})")

    from strategies import registry

    what = parser.add_argument_group("candidates")
    what.add_argument("--strategies", default="majority,zero-shot", metavar="A,B|all",
                      help="comma-separated candidate names, or `all` for every one that "
                      "supports the task (default: majority,zero-shot); known: "
                      f"{', '.join(registry.names())}, peft:<type>")
    what.add_argument("--model", default="smollm2-135m",
                      help="base LLM: smollm2-135m (bundled), a hub id or a local folder; "
                      "A,B runs every LLM candidate once per model on the same split")
    what.add_argument("--encoder", default="minilm-l6",
                      help="sentence encoder for RAG / kNN / transfer (default minilm-l6)")
    what.add_argument("--preset", choices=PRESETS, default="quick",
                      help="budget of every candidate: quick (minutes on a CPU) or full")
    what.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config option: STRATEGY.KEY=VALUE for one candidate, "
                      "KEY=VALUE for every candidate that has KEY (repeatable)")
    what.add_argument("--peft-args", metavar="JSON",
                      help="keyword arguments for the peft config (peft's names), as a JSON "
                      "object, on top of the settings of every PEFT candidate: lora, qlora, dora, "
                      "ia3, loha, adalora, prompt-tuning, prefix-tuning, peft:<type> and their "
                      "+rag pairs; not read by full, freeze or the preference candidates")
    what.add_argument("--trust-remote-code", action="store_true",
                      help="allow custom model code from the hub (off by default)")

    side = parser.add_argument_group("forgetting and augmentation (bench.forgetting, "
                                     "bench.augment)")
    side.add_argument("--no-forgetting", action="store_true",
                      help="do not score trained LLM candidates on the bundled general-text "
                      "probe (perplexity vs the base model; about 10-60 s per candidate)")
    side.add_argument("--augment", metavar="paraphrase[:N]",
                      help="add N paraphrases (default 2) of every train row, written by the "
                      "base model and cached per data; validation and test are never augmented")

    sweeps = parser.add_argument_group("sweeps (bench.sweeps)")
    sweeps.add_argument("--tune", type=int, default=0, metavar="N",
                        help="N Optuna trials per trainable candidate on the validation split; "
                        "the best config is refit and tested once on test")
    sweeps.add_argument("--learning-curve", metavar="N,N,...",
                        help="also run every candidate on nested, stratified train subsets of "
                        "these sizes (e.g. 16,64,256): a data-efficiency curve")

    _add_prompt_and_tracking_arguments(parser)

    run = parser.add_argument_group("run")
    run.add_argument("--out", default="runs", help="parent folder of the run folder")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="finish a run: skip candidates that finished (ok or skipped)")
    run.add_argument("--seed", type=int, default=0, help="seed of the split and the candidates")
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help="repeat each candidate with N seeds; report mean and std")
    run.add_argument("--timeout", type=float, metavar="S", help="seconds per candidate run")
    run.add_argument("--max-memory", type=float, metavar="MB",
                     help="stop a candidate whose process RSS exceeds this")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--price-as", metavar="ROW",
                     help="price with this row of the price table (e.g. h100): a projection")
    run.add_argument("--prices", metavar="TOML", help="your own price table")
    run.add_argument("--metric", dest="metrics", action="append", default=[], metavar="NAME",
                     help="an extra `evaluate` metric by name or local path (repeatable)")
    run.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    run.add_argument("--plain", action="store_true",
                     help="plain progress lines even on a terminal")
    run.add_argument("--json", action="store_true",
                     help="print only a JSON summary of the records on stdout (the progress "
                     "goes to stderr)")
    run.add_argument("--gpus-per-candidate", type=int, default=1, metavar="N",
                     help="CUDA: give each trainable candidate N GPUs and train it across them "
                     "(DDP for adapters, FSDP for full fine-tuning); default 1")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: child processes on this machine (default); ray: each "
                     "candidate a Ray task (see the README's scale-out section)")
    run.add_argument("--address", metavar="ADDR",
                     help="with --executor ray: join this running Ray cluster (auto, "
                     "HOST:6379 or ray://HOST:10001); without it a local Ray is started")
    # the spellings other commands used to have (one spelling per option across tunewise)
    add_deprecated_alias(parser, "--strategy", "--strategies")
    add_deprecated_alias(parser, "--max-rows", "--max-train-rows")
    _config_aware(parser)


def _config_aware(parser: argparse.ArgumentParser) -> None:
    """Mark every default, after the last option is added, so that --config can tell an option
    given on the command line (it wins) from one left at its default (the file's value wins)."""
    from advisor.config import mark_defaults

    mark_defaults(parser)


def new_parser() -> argparse.ArgumentParser:
    """bench's argument parser on its own (the config file's keys, a plan's config)."""
    parser = argparse.ArgumentParser(prog="tunewise bench")
    add_arguments(parser)
    return parser


def resolve_config(args: argparse.Namespace) -> argparse.Namespace:
    """The options as the run uses them: the command line, then --config's file, then the
    defaults (advisor.config.resolve)."""
    from advisor.config import resolve

    return resolve(args, new_parser())


class _DataPaths(argparse.Action):
    """The first --data is the dataset; each further one goes to `more_data` (multi-task)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None):
            namespace.more_data = [*(getattr(namespace, "more_data", None) or []), values]
        else:
            setattr(namespace, self.dest, values)


def parse_sets(sets: list[str]) -> dict[str, dict[str, Any]]:
    """`lora.r=16` -> {"lora": {"r": "16"}}; `epochs=2` -> {"*": {"epochs": "2"}}.
    Values stay strings: each config field converts them to its own type. Whether STRATEGY is
    in the run is checked with the other --strategies checks (bench.plan)."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TunewiseError(f"--set {item!r}: expected KEY=VALUE or STRATEGY.KEY=VALUE")
        target, dot, field_name = key.rpartition(".")
        if not dot:
            target, field_name = "*", key
        overrides.setdefault(target, {})[field_name] = value.strip()
    return overrides


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.peft_args:
        try:
            peft_args = json.loads(args.peft_args)
        except json.JSONDecodeError as exc:
            raise TunewiseError(f"--peft-args is not valid JSON: {exc}") from None
        if not isinstance(peft_args, dict):
            raise TunewiseError("--peft-args must be a JSON object, e.g. '{\"lora_dropout\": 0.1}'")
        options["peft_args"] = peft_args
    if args.trust_remote_code:
        options["trust_remote_code"] = True
    if getattr(args, "no_forgetting", False):
        options["forgetting"] = False  # bench.forgetting reads it in each child
    if getattr(args, "augment", None):
        from bench.augment import parse_augment

        options["augment"] = parse_augment(args.augment)  # bench.augment runs it at prepare
    return options


def peft_args_unread_by(strategies: list[str]) -> list[str]:
    """The chosen candidates when none of them reads --peft-args (only the peft family does:
    lora, qlora, ..., peft:<type> and their +rag pairs); [] when one does, or when the names
    are not all known yet (`all`, a misspelling: the plan's checks speak to those)."""
    from strategies import catalogue

    entries = [catalogue.entry(name) for name in strategies]
    if not entries or any(e is None or e.family == "peft" for e in entries):
        return []
    return list(strategies)


def warn_unread_peft_args(strategies: list[str]) -> None:
    """--peft-args with only candidates that ignore it: say so, and run on."""
    from strategies import catalogue

    unread = peft_args_unread_by(strategies)
    if unread:
        readers = [name for name in catalogue.names() if catalogue.entry(name).family == "peft"]
        print(f"tunewise: warning: --peft-args is ignored: none of the chosen candidates "
              f"({', '.join(unread)}) reads it; the PEFT candidates do ({', '.join(readers)}, "
              "peft:<type> and their +rag pairs)", file=sys.stderr)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise TunewiseError(f"--seeds {args.seeds}: needs at least 1")
    for flag, value in (("--timeout", args.timeout), ("--max-memory", args.max_memory),
                        ("--max-train-rows", args.max_train_rows)):
        if value is not None and value <= 0:
            raise TunewiseError(f"{flag} {value:g}: must be positive")


def plan_from_args(args: argparse.Namespace):
    from bench.data_cli import column_overrides
    from bench.runner import BenchPlan

    resolve_config(args)
    if args.config and args.resume:
        raise TunewiseError("--config starts a run and --resume finishes one with its stored "
                            "plan: give one of them")
    if not args.data and not args.resume:
        raise TunewiseError("--data PATH is required (or --resume RUN_DIR to finish a run, "
                            "or --config FILE)")
    _check_numbers(args)
    # Parsed here, once; bench.plan checks the names (once, before any data is read).
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    plan = BenchPlan(
        data=args.data or "", task=args.task, test=args.test, corpus=args.corpus,
        columns=column_overrides(args), strategies=strategies, model=args.model,
        encoder=args.encoder, preset=args.preset, out=args.out, resume=args.resume,
        seed=args.seed, seeds=args.seeds, timeout_s=args.timeout,
        max_memory_mb=args.max_memory, overrides=parse_sets(args.sets),
        options=_options(args), price_as=args.price_as, metrics=list(args.metrics),
        max_train_rows=args.max_train_rows, test_size=args.test_size, val_size=args.val_size,
        device=args.device,
        command=shlex.join(["tunewise", *sys.argv[1:]]) if sys.argv else "tunewise bench",
        prices=args.prices, gpus_per_candidate=getattr(args, "gpus_per_candidate", 1),
        label_names=getattr(args, "label_names", None),
    )
    if plan.gpus_per_candidate < 1:
        raise TunewiseError("--gpus-per-candidate must be at least 1")
    _add_sweeps(plan, args)
    _add_prompt_and_tracking(plan, args)
    return plan


def _add_sweeps(plan, args: argparse.Namespace) -> None:
    """--tune, --learning-curve and a second --data (bench.sweeps.check_plan checks them once,
    when the run starts, before any data is read)."""
    from bench import sweeps

    plan.tune = getattr(args, "tune", 0) or 0
    curve = getattr(args, "learning_curve", None)
    plan.learning_curve = sweeps.parse_sizes(curve) if curve is not None else []
    plan.more_data = list(getattr(args, "more_data", None) or [])
    if (plan.tune or plan.learning_curve or plan.more_data) and args.resume:
        raise TunewiseError("--tune, --learning-curve and a second --data start a new run; "
                            "--resume finishes one with its stored plan")


def print_results(console, records: list[dict], run_dir) -> None:
    """The report engineer's table when it is there, else the harness's compact one."""
    from bench import journal

    from bench.progress import finished_table

    try:
        from reports.tables import results_table

        table = results_table(records, journal.read_json(run_dir / journal.MANIFEST))
    except Exception:  # noqa: BLE001 - the records are safe; show them even if the table breaks
        table = finished_table(records)
    console.print(table)
    if any(len(r.get("metrics_ci", {}).get(r.get("primary_metric"), [])) == 2 for r in records):
        console.print("Intervals are 95% bootstrap over test rows: candidates whose intervals "
                      "overlap are not shown to differ.", highlight=False)


def _print_crossover(console, records: list[dict]) -> None:
    """Where fine-tuning overtakes prompting on the learning curve, when both ran."""
    from bench.sweeps import crossover_message, curve_lines

    lines = curve_lines(records)
    if lines:
        metric = next((r["primary_metric"] for r in records if r.get("primary_metric")), "")
        console.print(f"learning curve ({metric} by train rows):\n" + "\n".join(lines),
                      highlight=False)
    message = crossover_message(records)
    if message:
        console.print(message, highlight=False)


def _report_writer():
    from reports.html import write_report

    return write_report


def print_report_line(console, outcome) -> None:
    """Where the report is, or why it could not be written (the records are safe either way)."""
    if outcome.report_path is not None:
        console.print(f"report: {outcome.report_path}", highlight=False)
    elif outcome.report_error:
        console.print(outcome.report_error, highlight=False)


def make_executor(args: argparse.Namespace, plan):
    """None (the runner's local default) or a RayExecutor whose tasks ask for the advisor's
    estimates (advisor is above bench, so the CLI fills BenchPlan.estimates for it)."""
    executor = getattr(args, "executor", "local")
    if executor != "ray":
        if getattr(args, "address", None):
            raise TunewiseError("--address needs --executor ray")
        return None
    from bench.ray_executor import RayExecutor, import_ray

    import_ray()  # a clear message now when Ray is missing, before any data is read
    fill_estimates(plan)  # the tasks' resource requests
    return RayExecutor(address=args.address)


def fill_estimates(plan) -> None:
    if not plan.estimates and not plan.resume:
        plan.estimates = _estimates_for_plan(plan)


def _estimates_for_plan(plan) -> dict[str, dict]:
    """The advisor's per-candidate estimates for this data and model, recorded beside what is
    measured (the report's estimate-vs-measured table; the Ray tasks' resource requests).
    {} when it cannot estimate: Ray tasks then ask for one CPU and no memory."""
    from advisor.estimate import (preset_max_steps, shape_for, this_machine,
                                  workload_from_profile)
    from advisor.recommend import estimates_for, load_profile
    from bench.hardware import probe

    try:
        profile = load_profile(plan.data, task=plan.task)
        encoder = shape_for(plan.encoder)
        try:
            shape = shape_for(plan.model)
        except (TunewiseError, OSError, ValueError):
            shape = None
        # The CPU's FLOP/s is measured once per machine and cached (< 1 s).
        machine = this_machine(probe(), cpu_only=plan.device == "cpu", measure=True,
                               prices_path=plan.prices)
        names = [name for name in plan.strategies if name != "all"]
        work = workload_from_profile(profile, max_steps=preset_max_steps(plan.preset))
        return estimates_for(names, shape, work, machine, encoder, preset=plan.preset,
                             overrides=plan.overrides)
    except (TunewiseError, OSError, ValueError, KeyError):
        return {}


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench import service
    from bench.progress import make_display

    plan = plan_from_args(args)
    if plan.options.get("peft_args") and not args.resume:
        warn_unread_peft_args(plan.strategies)
    # --json: stdout carries the JSON alone; everything a person reads goes to stderr
    console = Console(highlight=False, stderr=bool(args.json))
    with make_display(console, live=False if args.plain else None) as display:
        executor = make_executor(args, plan)
        fill_estimates(plan)  # recorded beside the measured numbers, whatever the executor
        outcome = service.run_plan(plan, on_event=display, executor=executor,
                                   write_report=None if args.no_report else _report_writer())
    refused = service.refusal(outcome)
    if refused is not None:
        return refused
    config_path = store_config(outcome.run_dir)
    if args.json:
        print(json.dumps(json_summary(outcome, config_path), indent=1, default=str))
        return outcome.exit_code
    from bench.sweeps import is_curve_point

    # learning-curve points are summarised below the table, not ranked as candidates
    print_results(console, [r for r in outcome.records if not is_curve_point(r)], outcome.run_dir)
    _print_crossover(console, outcome.records)
    if outcome.resume_hint:
        console.print(outcome.resume_hint)
    print_report_line(console, outcome)
    print(outcome.run_dir)  # last, so scripts can take the final line
    return outcome.exit_code


def store_config(run_dir):
    """RUN_DIR/config.yaml: the run's resolved options, for `bench --config` to rerun it
    (every front door that runs a plan calls this once the run folder exists)."""
    from advisor.config import store_in_run_folder

    return store_in_run_folder(run_dir, new_parser(),
                               warn=lambda message: print(message, file=sys.stderr))


# The fields of each record that --json prints (results.jsonl in the run folder has them all).
SUMMARY_FIELDS = ("strategy", "family", "status", "error", "primary_metric", "metrics",
                  "metrics_ci", "metrics_std", "seeds", "peak_memory_mb", "time_s", "cost_usd",
                  "trainable_params", "artifact_mb")


def json_summary(outcome, config_path=None) -> dict[str, Any]:
    """What --json prints: where the run is, how it ended and each record's headline fields;
    `primary` is the record's primary metric value (null when it did not finish)."""
    from bench.sweeps import is_curve_point

    records = []
    for record in outcome.records:
        summary = {key: record[key] for key in SUMMARY_FIELDS if key in record}
        summary["primary"] = (record.get("metrics") or {}).get(record.get("primary_metric"))
        if is_curve_point(record):
            summary["learning_curve"] = record["info"]["learning_curve"]
        records.append(summary)
    return {"run_dir": str(outcome.run_dir), "exit_code": outcome.exit_code,
            "interrupted": outcome.interrupted,
            "report": str(outcome.report_path) if outcome.report_path else None,
            "report_error": outcome.report_error,
            "config": str(config_path) if config_path else None, "records": records}


def _add_prompt_and_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """The user's prompt (issue 17) and the Trainers' loggers."""
    prompt = parser.add_argument_group("prompt and tracking")
    prompt.add_argument("--instruction", metavar="TEXT|FILE",
                        help="the task instruction every LM candidate's prompt starts with "
                        "(zero-shot, few-shot, rag, fine-tuned); a file path reads the file")
    prompt.add_argument("--prompt-template", metavar="TEXT|FILE",
                        help="the user turn of every LM prompt with the row's fields in braces, "
                        "e.g. 'Ticket: {text}' (classification: {text}; generation: "
                        "{instruction} {input} {passages}; qa: {question} {context} {passages})")
    prompt.add_argument("--report-to", choices=("none", "tensorboard", "mlflow"),
                        default="none", help="log the Hugging Face Trainers to files in the run "
                        "folder (tracking/): TensorBoard event files or an MLflow file store")


def _add_prompt_and_tracking(plan, args: argparse.Namespace) -> None:
    """Checked in bench.plan with the data (a template's fields depend on the task)."""
    plan.instruction = getattr(args, "instruction", None)
    plan.prompt_template = getattr(args, "prompt_template", None)
    plan.report_to = getattr(args, "report_to", None) or "none"
