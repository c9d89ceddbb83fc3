"""Old option spellings kept working: one spelling per option across the `tunewise` commands.

    add_deprecated_alias(parser, "--max-rows", "--max-train-rows")

The old spelling is hidden from --help, takes the same value(s) as the new one, stores into the
same destination and prints one line on stderr saying which spelling to use instead.
"""

from __future__ import annotations

import argparse
import sys


class _DeprecatedAlias(argparse.Action):
    """Warns, then does exactly what the option it stands for does."""

    def __init__(self, option_strings, dest, target: argparse.Action, **kwargs):
        self.target = target
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        new = max(self.target.option_strings, key=len)
        print(f"tunewise: warning: {option_string} is deprecated; use {new}", file=sys.stderr)
        self.target(parser, namespace, values, new)


def add_deprecated_alias(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept `old` as a hidden, warning spelling of the already-added option `new`."""
    target = next((a for a in parser._actions if new in a.option_strings), None)
    if target is None:
        raise ValueError(f"{new} is not an option of this parser")
    parser.add_argument(old, dest=target.dest, action=_DeprecatedAlias, target=target,
                        nargs=target.nargs, type=target.type, choices=target.choices,
                        metavar=target.metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_probe_and_race_flags(parser) -> None:
    """--no-probe and --no-race, as the front doors that advise and then run take them (demo,
    tui; advise words its --no-race for --run)."""
    parser.add_argument("--no-race", action="store_true",
                        help="run every candidate on the full budget and the test split instead "
                             "of racing them on the validation split (bench.race)")
    parser.add_argument("--no-probe", action="store_true",
                        help="rank by the rules alone, without first measuring the cheap "
                             "candidates (majority, knn, transfer, zero-shot) on the validation "
                             "split")
