"""`tunewise strategies [NAME ...] [--task T] [--json]`: what can run, and the options of each.

    tunewise strategies                   # one line per strategy: family, tasks, trains or not
    tunewise strategies lora qlora        # their config options: quick and full defaults, help
    tunewise strategies --task qa --json  # for scripts

The option names are the ones `tunewise bench --set NAME=VALUE` (or `--set lora.NAME=VALUE`)
takes, with the defaults of the `quick` and `full` presets, read from each strategy's config class.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

TASKS = ("classification", "generation", "qa", "preference")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="strategies whose config options to show (default: list them all)")
    parser.add_argument("--task", choices=TASKS, help="only the strategies that support this task")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def describe(name: str) -> dict[str, Any]:
    """One strategy as the command shows it; the options come from its config class."""
    from strategies import registry
    from strategies.base import config_help

    spec = registry.get(name)
    return {"name": name, "family": registry.family_of(name), "tasks": sorted(spec.tasks),
            "trainable": bool(spec.trainable), "description": spec.description,
            "options": config_help(spec.config_cls)}


def _chosen(args: argparse.Namespace) -> list[str]:
    from bench.errors import TunewiseError
    from strategies import registry

    for name in args.names:
        if not registry.is_known(name):
            raise TunewiseError(registry.unknown_message(name))
    names = args.names or registry.names()
    return [n for n in names if args.task is None or args.task in registry.get(n).tasks]


def _summary_lines(rows: list[dict[str, Any]]) -> list[str]:
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'strategy':<{width}}  {'family':<11}  {'trains':<6}  tasks / what it does"]
    for r in rows:
        lines.append(f"{r['name']:<{width}}  {r['family']:<11}  {'yes' if r['trainable'] else 'no':<6}"
                     f"  {', '.join(r['tasks'])}")
        lines.append(f"{'':<{width}}  {r['description']}")
    lines += ["", "Also: peft:<type> (any peft method by its type name, e.g. peft:vera) and "
              "<trainable>+rag (e.g. lora+rag: fine-tuned with retrieved passages).",
              "`tunewise strategies NAME` shows a strategy's options for `bench --set`."]
    return lines


def _option_lines(row: dict[str, Any]) -> list[str]:
    lines = [f"{row['name']} ({row['family']}; tasks: {', '.join(row['tasks'])})",
             f"  {row['description']}"]
    if not row["options"]:
        return lines + ["  no options"]
    width = max(len(o["name"]) for o in row["options"])
    lines.append(f"  {'option':<{width}}  {'quick':>10}  {'full':>10}  help")
    for o in row["options"]:
        lines.append(f"  {o['name']:<{width}}  {o['default']!s:>10}  {o['full']!s:>10}  {o['help']}")
    return lines


def run(args: argparse.Namespace) -> int:
    rows = [describe(name) for name in _chosen(args)]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no strategy supports the task {args.task!r}")
        return 0
    if not args.names:
        print("\n".join(_summary_lines(rows)))
        return 0
    print("\n\n".join("\n".join(_option_lines(row)) for row in rows))
    return 0
