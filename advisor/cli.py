"""The `tunewise` command line.

    tunewise                                   # the TUI: questions -> ranking -> run -> results
    tunewise data check data.csv --json        # profile and check a dataset
    tunewise advise --answers answers.yaml     # ranked candidates with reasons and estimates
    tunewise estimate --model smollm2-135m --strategies lora
    tunewise bench --data data.csv --strategies zero-shot,lora --out runs
    tunewise report runs/<run-id>              # the self-contained HTML report
    tunewise export runs/<run-id> lora out/    # a model transformers / peft can load
    tunewise demo [--tiny]                     # bundled samples, quick preset, report
    tunewise strategies [NAME]                 # every strategy, its family, tasks and options

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
they are imported only when chosen, so `tunewise --help` and the TUI start fast.
Exit codes: 0 done, 1 a candidate failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "advise": ("advisor.advise_cli", "rank the candidates for your answers and data"),
    "estimate": ("advisor.estimate_cli", "estimate peak memory, time and cost before a run"),
    "bench": ("advisor.bench_cli", "run candidates on your data, measure them, write the report"),
    "report": ("reports.cli", "render the HTML report of a run folder"),
    "export": ("bench.export", "export a trained candidate as a loadable model or adapter"),
    "predict": ("advisor.predict_cli", "answer new rows with an exported candidate"),
    "demo": ("advisor.demo", "bundled samples, recommended candidates, quick preset, report"),
    "strategies": ("advisor.strategies_cli",
                   "list every strategy with its family, tasks and config options"),
    "tui": ("advisor.tui.app", "the interactive questionnaire (also: tunewise with no command)"),
}
DATA_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("bench.data_cli", "check a dataset and print its profile"),
}


def top_level_help() -> str:
    lines = ["usage: tunewise [COMMAND] [options]", "",
             "Decide how to adapt a language model, then prove it on your data.", "",
             "commands:"]
    for name, (_, help_text) in COMMANDS.items():
        lines.append(f"  {name:<12} {help_text}")
    for name, (_, help_text) in DATA_COMMANDS.items():
        lines.append(f"  data {name:<7} {help_text}")
    lines += ["", "Run `tunewise COMMAND --help` for a command's options; no command opens the TUI",
              "(in a terminal). `tunewise --version` prints the version."]
    return "\n".join(lines)


def version() -> str:
    """The installed distribution's version (the source tree's pyproject when not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("tunewise")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _data_usage(rest: list[str]) -> str:
    """`tunewise data` alone, with --help, or with an unknown subcommand."""
    lines = ["usage: tunewise data SUBCOMMAND [options]", "", "subcommands:"]
    lines += [f"  {name:<7} {help_text}" for name, (_, help_text) in DATA_COMMANDS.items()]
    lines += ["", "Run `tunewise data SUBCOMMAND --help` for its options."]
    if rest and rest[0] not in ("-h", "--help"):
        close = difflib.get_close_matches(rest[0], list(DATA_COMMANDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        lines = [f"tunewise: error: unknown data subcommand {rest[0]!r}.{hint}", ""] + lines
    return "\n".join(lines)


def command_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, str, list[str]]:
    """The parser of the chosen command (its module adds the arguments) and the rest of argv."""
    if argv[0] == "data":
        if len(argv) < 2 or argv[1] not in DATA_COMMANDS:
            raise SystemExit(_data_usage(argv[1:]))
        words, (module_name, help_text) = argv[:2], DATA_COMMANDS[argv[1]]
    elif argv[0] in COMMANDS:
        words, (module_name, help_text) = argv[:1], COMMANDS[argv[0]]
    else:
        close = difflib.get_close_matches(argv[0], [*COMMANDS, "data"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise SystemExit(f"tunewise: error: unknown command {argv[0]!r}.{hint}\n\n{top_level_help()}")
    parser = argparse.ArgumentParser(prog=f"tunewise {' '.join(words)}", description=help_text)
    importlib.import_module(module_name).add_arguments(parser)
    return parser, module_name, argv[len(words):]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # A script or a pipe: the TUI would wait forever for keys nobody will press.
            print("tunewise: no command given and no terminal to open the TUI in\n\n"
                  + top_level_help(), file=sys.stderr)
            return 2
        argv = ["tui"]
    if argv[0] in ("-h", "--help"):
        print(top_level_help())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"tunewise {version()}")
        return 0
    if argv[:2] == ["data", "--help"] or argv[:2] == ["data", "-h"]:
        print(_data_usage(argv[1:]))
        return 0
    try:
        parser, module_name, rest = command_parser(argv)
    except SystemExit as exc:  # unknown command: message, usage, exit 2
        print(exc, file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:  # argparse already printed the usage error or --help
        return int(exc.code or 0)
    from bench.errors import TunewiseError
    from strategies.base import StrategyError

    try:
        return int(importlib.import_module(module_name).run(args) or 0)
    except (TunewiseError, StrategyError) as exc:
        print(f"tunewise: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tunewise: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tunewise strategies | head`: the reader left; say nothing more (Python's docs' recipe:
        # point stdout at devnull so the interpreter's final flush does not raise again).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
