"""`tunewise advise`: rank the candidates for your answers and data, with reasons and estimates.

    tunewise advise --answers advisor/samples/classification.yaml            # a table
    tunewise advise --answers answers.yaml --data my.csv --json              # the JSON ranking
    tunewise advise --answers answers.yaml --no-probe            # the rules alone, no probes
    tunewise advise --answers answers.yaml --run --out runs          # then race the picks
    tunewise advise --answers answers.yaml --run --no-race           # or run every pick in full
    tunewise advise --answers answers.yaml --no-domain          # skip the domain measurement
    tunewise advise --answers answers.yaml --write-config run.yaml   # then: bench --config run.yaml

`--json` prints {"ranked": [{"strategy", "family", "score", "reasons": [{"rule", "text",
"evidence"}], "estimate": {"peak_memory_gb", "time_s", "cost_usd"}, "fits"}], "excluded":
[{"strategy", "why"}]}, plus "notes" when the ranking had to set a limit aside; a reason's
evidence is the numbers and references behind its rule (advisor/evidence.py). With data, the
base model's perplexity and the encoder's similarity measure how far it lies from general text
(bench.domain; `--no-domain` skips it). With data, the cheap candidates (majority, knn,
transfer, zero-shot on a validation slice) are first measured on the validation split
(advisor.probes) and rank by what they measured; the others by their chance to beat the best
probe and what finding out costs ("probes" in --json; `--no-probe` ranks by the rules alone).
When the best probe leaves room, the rules' top fitting LLM-training candidate is probed too, on
a short budget (a lower bound of its full run; advisor.probes).
`--run` races the best candidates that fit and are registered (bench.race: successive halving
on the validation split, the winner tested once) beside the baselines, through bench.service
(the run service every front door uses); `--no-race` runs each of them on the full budget instead.
`--write-config FILE` saves that same run (data, model, preset, the baselines and the top fitting
candidates) as a run config for `tunewise bench --config FILE` (advisor/config.py), to edit or
rerun later.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.errors import TunewiseError

# Candidates besides the baselines that --run takes: a race can afford twice as many as a
# run-all, because most of each rung stop on a fraction of the train rows.
TOP_RUN_ALL = 3
TOP_RACE = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers", metavar="FILE", help="answers YAML (every key optional)")
    parser.add_argument("--data", metavar="PATH", help="data file or folder (overrides data.path)")
    parser.add_argument("--label-names", metavar="FILE",
                        help="classification: a description per label (JSON object or CSV "
                             "label,description), used by the probe's and --run's LM candidates")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    parser.add_argument("--no-probe", action="store_true",
                        help="rank by the rules alone: do not first measure the cheap candidates "
                             "(majority, knn, transfer, zero-shot) on the validation split")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # the default now
    parser.add_argument("--run", action="store_true",
                        help="race the top fitting candidates beside the baselines and "
                        "report them (--no-race: run each in full)")
    parser.add_argument("--top", type=int, default=None,
                        help="candidates to run besides the baselines (default: "
                        f"{TOP_RACE} racing, {TOP_RUN_ALL} with --no-race)")
    parser.add_argument("--no-race", action="store_true",
                        help="with --run: run every candidate on the full budget and the test "
                        "split, instead of racing them on the validation split")
    parser.add_argument("--write-config", metavar="FILE",
                        help="save the run --run would start (the baselines and the top "
                        "fitting candidates) as a config for `tunewise bench --config FILE`")
    parser.add_argument("--out", default="runs", help="run folder root for --run (default runs)")
    parser.add_argument("--preset", default="quick", choices=("quick", "full"),
                        help="the bench preset for --run; the estimates apply its step cap "
                             "(default quick)")
    parser.add_argument("--no-measure", action="store_true",
                        help="use the reference CPU throughput instead of measuring this CPU")
    parser.add_argument("--no-domain", action="store_true",
                        help="skip measuring how far the data lies from general text (the base "
                             "model's perplexity and the encoder's similarity; seconds on a CPU)")


def load(args: argparse.Namespace) -> dict[str, Any]:
    from advisor.answers import load_answers, put

    answers = load_answers(args.answers) if args.answers else {}
    if args.data:
        put(answers, "data.path", args.data)
    return answers


def run(args: argparse.Namespace) -> int:
    from advisor.answers import get
    from advisor.recommend import recommend

    answers = load(args)
    if args.top is not None and args.top < 0:
        raise TunewiseError("--top must be 0 or more")
    if args.probe and args.no_probe:
        raise TunewiseError("--probe and --no-probe: choose one (probing is the default)")
    if args.probe and not get(answers, "data.path"):
        raise TunewiseError("--probe needs data: give --data PATH or data.path in the answers")
    if args.write_config and not get(answers, "data.path"):
        raise TunewiseError("--write-config needs data: give --data PATH or data.path in the "
                            "answers")
    label_names = getattr(args, "label_names", None)
    if label_names:  # a bad file fails before anything is measured
        from bench.data.label_names import read_label_names

        read_label_names(label_names)
        answers.setdefault("data", {})["label_names"] = label_names  # the probes use them too
    result = recommend(answers, measure=not args.no_measure, preset=args.preset,
                       domain=not args.no_domain, probe=not args.no_probe,
                       on_probe_event=_print_probe_event)
    check_label_names(label_names, result.profile)
    if args.json:
        print(json.dumps(result.ranking.as_dict(), indent=1))
    else:
        print_table(result)
    if args.write_config:
        write_run_config(result, answers, args)
    if not args.run:
        return 0
    return run_recommended(result, answers, args)


def write_run_config(result, answers: dict[str, Any], args: argparse.Namespace) -> None:
    """The run --run would start, saved for `tunewise bench --config` (said on stderr, so that
    --json keeps stdout to itself)."""
    from advisor.bench_cli import new_parser
    from advisor.config import write_plan_config

    path = write_plan_config(recommended_plan(result, answers, args), args.write_config,
                             new_parser())
    print(f"run config: {path} (run it: tunewise bench --config {path})", file=sys.stderr)


def check_label_names(path: str | None, profile: dict[str, Any] | None) -> None:
    """--label-names against the data's labels (a label the data lacks is an error)."""
    if not path or not profile or not profile.get("labels"):
        return
    from bench.data.label_names import names_for_labels, read_label_names

    names_for_labels(read_label_names(path), list(profile["labels"]), path)


def print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from rich.markup import escape

    from advisor.estimate import fmt_bytes_gb, fmt_seconds

    console = Console()
    facts = result.facts
    shape = f" (estimated as {result.shape})" if getattr(result, "shape", None) else ""
    console.print(f"[bold]task[/] {facts.task or '?'} · labelled examples "
                  f"{facts.labeled_examples if facts.labeled_examples is not None else '?'} · model "
                  f"{result.model}{shape} · {result.machine.kind} ({result.machine.source})",
                  highlight=False)
    data = data_line(facts)
    if data:
        console.print(f"[bold]data[/] {data}", highlight=False)
    from advisor.probes import summary_line

    probes = summary_line(result.ranking.probes)
    if probes:
        console.print(f"[bold]probes[/] {probes}", highlight=False)
    table = Table(show_lines=False)
    for column in ("#", "strategy", "family", "score", "memory", "time", "cost", "fits"):
        table.add_column(column, no_wrap=True)
    table.add_column("top reason", overflow="fold", min_width=24)
    for i, candidate in enumerate(result.ranking.ranked, 1):
        est = candidate.estimate or {}
        reason = candidate.reasons[0] if candidate.reasons else None
        fits = "yes" if candidate.fits else "[red]no[/]"
        why = "; ".join(candidate.why_not) if candidate.why_not else (
            f"[{reason.rule}] {reason.text}" if reason else "")
        why = escape(why)  # "[rule]" is text, not rich markup
        table.add_row(str(i), candidate.strategy, candidate.family, f"{candidate.score:.0f}",
                      fmt_bytes_gb(est["peak_memory_gb"]) if est else "?",
                      fmt_seconds(est["time_s"]) if est else "?",
                      f"${est['cost_usd']:.3f}" if est else "?", fits, why)
    console.print(table)
    if result.ranking.excluded:
        console.print("[dim]excluded: " + ", ".join(f"{e['strategy']} ({e['why']})"
                                                   for e in result.ranking.excluded) + "[/]")
    for note in [*result.ranking.notes, *result.notes]:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    print_evidence(console, result.ranking)
    console.print("recommended run: " + ", ".join(result.ranking.recommended()))


def data_line(facts) -> str:
    """What the data profile measured and the rules read: classes, examples per class,
    imbalance, lengths."""
    parts = []
    if facts.classes:
        parts.append(f"{facts.classes} classes, ~{facts.per_class_median:g} labelled examples per "
                     f"class (median; fewest ~{facts.per_class_min:g})")
        if facts.imbalance and facts.imbalance > 1:
            parts.append(f"largest / smallest class {facts.imbalance:g}x")
    if facts.length_p50 is not None:
        p90 = f", p90 {facts.length_p90:.0f}" if facts.length_p90 is not None else ""
        parts.append(f"~{facts.length_p50:.0f} tokens per row (median{p90})")
    if facts.domain_perplexity_ratio is not None:
        parts.append(f"perplexity {facts.domain_perplexity_ratio:.2f}x general text")
    return " · ".join(parts)


def _print_probe_event(event) -> None:
    """One line per probe on stderr (the table or the JSON goes to stdout)."""
    from bench.events import CandidateFinished, CandidateStarted

    if isinstance(event, CandidateStarted):
        print(f"probing {event.strategy} on the validation split ...", file=sys.stderr)
    elif isinstance(event, CandidateFinished):
        record = event.record
        value = (record.get("metrics") or {}).get(record.get("primary_metric"))
        shown = (f"{record.get('primary_metric')}={value:.3f}" if isinstance(value, (int, float))
                 else str(record.get("status")))
        print(f"  {event.strategy}: {shown}", file=sys.stderr)


def print_evidence(console, ranking, shown: int = 3) -> None:
    """Why the top pick is on top: its strongest reasons, each with the numbers and the
    references behind it (the JSON and the report carry every reason's full references)."""
    from rich.markup import escape

    from advisor.evidence import lookup

    top = next((c for c in ranking.ranked if c.fits and not c.baseline), None)
    reasons = [r for r in (top.reasons if top else []) if r.delta][:shown]
    if not reasons:
        return
    console.print(f"[bold]why {escape(top.strategy)}[/] (score {top.score:.0f}):")
    for reason in reasons:
        console.print(f"  {reason.delta:+.0f} [bold]{escape(reason.rule)}[/]: "
                      f"{escape(reason.text)}", highlight=False)
        for entry in lookup(reason.sources):
            ref = entry.reference
            console.print(f"      [dim]· {escape(ref.short())} ({escape(ref.where)}): "
                          f"{escape(entry.numbers)}[/]", highlight=False)


def runnable(names: list[str]) -> list[str]:
    """Only candidates registered now (some planned ones land later)."""
    from strategies import registry

    return [name for name in names if registry.is_known(name)]


def run_recommended(result, answers: dict[str, Any], args: argparse.Namespace) -> int:
    """Benchmark the recommended candidates through bench.service: its records, its report
    (with the advisor's ranking beside the measurements) and its exit code."""
    from bench import service
    from bench.race import RaceSettings
    from reports.html import write_report

    plan = recommended_plan(result, answers, args)
    outcome = service.run_plan(plan, advice=result.ranking.as_dict(), on_event=_print_event,
                               write_report=write_report,
                               race=None if args.no_race else RaceSettings())
    refused = service.refusal(outcome)
    if refused is not None:
        return refused
    from advisor.bench_cli import store_config

    store_config(outcome.run_dir)
    if outcome.report_path is not None:
        print(f"report: {outcome.report_path}", file=sys.stderr)
    elif outcome.report_error:
        print(f"tunewise: {outcome.report_error}", file=sys.stderr)
    if outcome.resume_hint:
        print(outcome.resume_hint, file=sys.stderr)
    print(outcome.run_dir)
    return outcome.exit_code


def recommended_plan(result, answers: dict[str, Any], args: argparse.Namespace):
    """The BenchPlan of the baselines and the top fitting registered candidates, on the
    answers' data, with the ranking's model and the advisor's estimates."""
    from advisor.answers import get
    from bench.runner import BenchPlan

    path = get(answers, "data.path")
    if not path:
        raise TunewiseError("--run needs data: give --data PATH or data.path in the answers")
    top = args.top if args.top is not None else (TOP_RUN_ALL if args.no_race else TOP_RACE)
    names = runnable(result.ranking.recommended(top))
    estimates = {c.strategy: c.estimate for c in result.ranking.ranked
                 if c.strategy in names and c.estimate}
    return BenchPlan(data=path, task=result.facts.task, corpus=get(answers, "data.corpus"),
                     strategies=names, model=result.model, preset=args.preset, out=args.out,
                     estimates=estimates, command=" ".join(["tunewise", "advise", *sys.argv[2:]]),
                     label_names=getattr(args, "label_names", None))


def _print_event(event) -> None:
    from bench.events import CandidateFinished, CandidateStarted
    from bench.race import (RaceStarted, RungFinished, race_outcome, race_plan_line,
                            rung_line)

    if isinstance(event, RaceStarted):
        print(race_plan_line(event), file=sys.stderr)
    elif isinstance(event, RungFinished):
        print(rung_line(event), file=sys.stderr)
    elif isinstance(event, CandidateStarted):
        print(f"running {event.strategy} ...", file=sys.stderr)
    elif isinstance(event, CandidateFinished):
        record = event.record
        metric = record.get("primary_metric")
        value = (record.get("metrics") or {}).get(metric)
        shown = f"{metric}={value:.3f}" if isinstance(value, (int, float)) else record.get("status")
        if race_outcome(record) in ("winner", "stopped"):
            shown += f" ({race_outcome(record)} in the race)"
        print(f"  {event.strategy}: {shown}", file=sys.stderr)
