"""`tunewise report RUN_DIR [-o FILE] [--advice FILE]`: render a run folder's HTML report.

    tunewise report runs/20261126-190411-banking                # -> runs/<id>/report.html
    tunewise report runs/<id> -o /tmp/decision.html --advice advice.json

Reads the records only (never runs a model); writes results.csv beside the report and prints
the terminal table and the verdict, then the report's path last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import TunewiseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `tunewise bench`")
    parser.add_argument("-o", "--out", metavar="FILE",
                        help="where to write the HTML (default: RUN_DIR/report.html)")
    parser.add_argument("--advice", metavar="FILE",
                        help="the advisor's JSON (`tunewise advise --json`), when the run's manifest "
                             "does not hold it already")
    parser.add_argument("--quiet", action="store_true", help="print only the report's path")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from reports.analysis import verdict
    from reports.html import write_report
    from reports.run_data import load_run
    from reports.tables import results_table

    advice = _read_advice(args.advice) if args.advice else None
    path = write_report(args.run_dir, out=args.out, advice=advice)
    if not args.quiet:
        run_data = load_run(args.run_dir)
        console = Console(highlight=False)
        console.print(results_table(run_data.records, run_data.manifest))
        stored = run_data.manifest.get("advice")  # the --advice given now is saved there too
        sentence = verdict(run_data.records, run_data.manifest,
                           stored if isinstance(stored, dict) else None).sentence
        console.print(sentence, markup=False, soft_wrap=True)
        print(f"results.csv: {path.parent / 'results.csv'}")
    print(path)
    return 0


def _read_advice(path: str) -> dict:
    try:
        advice = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TunewiseError(f"--advice {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise TunewiseError(f"--advice {path}: not readable JSON ({exc})") from None
    if not isinstance(advice, dict) or not isinstance(advice.get("ranked", []), list):
        raise TunewiseError(f"--advice {path}: expected the JSON of `tunewise advise --json` "
                            '({"ranked": [...], "excluded": [...]})')
    return advice
