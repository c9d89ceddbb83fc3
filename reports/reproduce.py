"""The `tunewise bench ...` command that would rerun a run, rebuilt from its manifest's plan.

    from reports.reproduce import reproduce_command
    reproduce_command(manifest, records)["text"]
    # 'tunewise bench --data bench/samples/banking_support --strategies majority,lora ...'
    reproduce_command(manifest, records)["config"]
    # 'tunewise bench --config runs/20261203-101500-ab12' (the run folder's config.yaml)

The manifest keeps the plan the harness ran (bench.runner.BenchPlan as a dict) beside the command
line that started it. The command line is not always a rerun: `tunewise demo` or the TUI started
the run, or `--resume` finished it. The plan is, so the command is built from it, with every
choice spelled out (model, preset, seed) so that later changes of a default do not change it.
Older manifests without a plan fall back to the stored command, then to the manifest's facts.
"""

from __future__ import annotations

import json
import shlex
from pathlib import PurePath
from typing import Any

from reports.analysis import as_list, dig

DEFAULT_OUT = "runs"


def reproduce_command(manifest: dict, records: list[dict]) -> dict[str, Any]:
    """{"text": the command, "source": "plan" | "command" | "facts",
    "invoked": the command line that started the run when it differs from text,
    and, when the manifest stores its plan and run id, "config": the same rerun through the
    run folder's config}."""
    stored = manifest.get("command")
    if isinstance(stored, list):
        stored = " ".join(str(part) for part in stored)
    stored = str(stored) if stored else None
    plan = manifest.get("plan")
    if isinstance(plan, dict) and plan.get("data"):
        text = shlex.join(["tunewise", "bench", *plan_arguments(plan, manifest)])
        source = "plan"
    elif stored and " --resume" not in f" {stored}" and stored.startswith("tunewise bench"):
        text, source = stored, "command"
    else:
        text, source = _from_facts(manifest, records), "facts"
    command = {"text": text, "source": source,
               "invoked": stored if stored and stored != text else None}
    config = _config_command(manifest, plan)
    if config:
        command["config"] = config
    return command


def _config_command(manifest: dict, plan: Any) -> str | None:
    """`tunewise bench --config RUN_DIR`: reruns the run folder's config.yaml (or, without one,
    the plan in its manifest.json); None when the manifest does not say where the folder is."""
    run_id = manifest.get("run_id")
    if not run_id or not isinstance(plan, dict) or not plan.get("data"):
        return None
    return shlex.join(["tunewise", "bench", "--config",
                       str(PurePath(str(plan.get("out") or DEFAULT_OUT), str(run_id)))])


def plan_arguments(plan: dict, manifest: dict | None = None) -> list[str]:
    """bench's command-line arguments for a stored plan (advisor/bench_cli.py's flags)."""
    manifest = manifest or {}
    args = ["--data", str(plan["data"])]
    for extra in as_list(plan.get("more_data")):
        args += ["--data", str(extra)]
    for flag, key in (("--test", "test"), ("--corpus", "corpus"), ("--task", "task")):
        if plan.get(key):
            args += [flag, str(plan[key])]
    columns = plan.get("columns") if isinstance(plan.get("columns"), dict) else {}
    for role, column in columns.items():
        args += [f"--{role}-col", str(column)]
    if plan.get("max_train_rows"):
        args += ["--max-train-rows", str(plan["max_train_rows"])]
    for flag, key, default in (("--test-size", "test_size", 0.2), ("--val-size", "val_size", 0.1)):
        if plan.get(key) not in (None, default):
            args += [flag, f"{plan[key]:g}"]
    # The names the run resolved (`all` becomes the list it meant then).
    names = as_list(manifest.get("strategies")) or as_list(plan.get("strategies"))
    args += ["--strategies", ",".join(str(name) for name in names)]
    for flag, key in (("--model", "model"), ("--encoder", "encoder"), ("--preset", "preset")):
        if plan.get(key):
            value = plan[key]
            args += [flag, ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    args += _set_arguments(plan.get("overrides"))
    args += _prompt_arguments(plan, manifest)
    options = plan.get("options") if isinstance(plan.get("options"), dict) else {}
    if options.get("peft_args"):
        args += ["--peft-args", json.dumps(options["peft_args"], separators=(",", ":"))]
    if options.get("trust_remote_code"):
        args.append("--trust-remote-code")
    if options.get("forgetting") is False:
        args.append("--no-forgetting")
    augment = options.get("augment")
    if isinstance(augment, dict) and augment.get("method"):
        args += ["--augment", f"{augment['method']}:{augment.get('per_row', 2)}"]
    if plan.get("tune"):
        args += ["--tune", str(plan["tune"])]
    if as_list(plan.get("learning_curve")):
        args += ["--learning-curve", ",".join(str(n) for n in plan["learning_curve"])]
    if plan.get("out") and plan["out"] != DEFAULT_OUT:
        args += ["--out", str(plan["out"])]
    args += ["--seed", str(plan.get("seed", 0))]
    if (plan.get("seeds") or 1) > 1:
        args += ["--seeds", str(plan["seeds"])]
    for flag, key in (("--timeout", "timeout_s"), ("--max-memory", "max_memory_mb")):
        if plan.get(key) is not None:
            args += [flag, f"{plan[key]:g}" if isinstance(plan[key], (int, float)) else str(plan[key])]
    if plan.get("device") and plan["device"] != "auto":
        args += ["--device", str(plan["device"])]
    for flag, key in (("--price-as", "price_as"), ("--prices", "prices")):
        if plan.get(key):
            args += [flag, str(plan[key])]
    for metric in as_list(plan.get("metrics")):
        args += ["--metric", str(metric)]
    if (plan.get("gpus_per_candidate") or 1) > 1:
        args += ["--gpus-per-candidate", str(plan["gpus_per_candidate"])]
    return args


def _prompt_arguments(plan: dict, manifest: dict) -> list[str]:
    """The user's instruction and template as the run read them (a file may have changed since),
    and --report-to."""
    prompt = manifest.get("prompt") if isinstance(manifest.get("prompt"), dict) else {}
    args = []
    if prompt.get("instruction_source") == "user" and prompt.get("instruction"):
        args += ["--instruction", str(prompt["instruction"])]
    elif plan.get("instruction"):
        args += ["--instruction", str(plan["instruction"])]
    template = prompt.get("template") or plan.get("prompt_template")
    if template:
        args += ["--prompt-template", str(template)]
    if plan.get("report_to") not in (None, "", "none"):
        args += ["--report-to", str(plan["report_to"])]
    return args


def _set_arguments(overrides: Any) -> list[str]:
    """--set KEY=VALUE (every candidate that has KEY) and --set STRATEGY.KEY=VALUE."""
    if not isinstance(overrides, dict):
        return []
    args = []
    for target, values in overrides.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            name = key if target == "*" else f"{target}.{key}"
            args += ["--set", f"{name}={set_text(value)}"]
    return args


def set_text(value: Any) -> str:
    """The text --set reads back into the same value (strategies.base._coerce)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _from_facts(manifest: dict, records: list[dict]) -> str:
    data = dig(manifest, "data", "path") or "DATA"
    names = ",".join(str(r.get("strategy")) for r in records) or "STRATEGIES"
    parts = ["tunewise", "bench", "--data", str(data), "--strategies", names]
    for flag, key in (("--model", "model"), ("--encoder", "encoder"), ("--preset", "preset"),
                      ("--seed", "seed")):
        if manifest.get(key) not in (None, ""):
            parts += [flag, str(manifest[key])]
    return shlex.join(parts)
