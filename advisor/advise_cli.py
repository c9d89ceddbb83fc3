"""`tunewise advise`: rank the candidates for your answers and data, with reasons and estimates.

    tunewise advise --answers advisor/samples/classification.yaml            # a table
    tunewise advise --answers answers.yaml --data my.csv --json              # the JSON ranking
    tunewise advise --answers answers.yaml --probe                           # zero-shot probe first
    tunewise advise --answers answers.yaml --run --out runs                  # then benchmark
    tunewise advise --answers answers.yaml --no-domain          # skip the domain measurement

`--json` prints {"ranked": [{"strategy", "family", "score", "reasons": [{"rule", "text",
"evidence"}], "estimate": {"peak_memory_gb", "time_s", "cost_usd"}, "fits"}], "excluded":
[{"strategy", "why"}]}, plus "notes" when the ranking had to set a limit aside; a reason's
evidence is the numbers and references behind its rule (advisor/evidence.py). With data, the
base model's perplexity and the encoder's similarity measure how far it lies from general text
(bench.domain; `--no-domain` skips it). `--run`
benchmarks the baselines and the best candidates that fit and are registered, through
bench.service (the run service every front door uses).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError

PROBE_ROWS = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--answers", metavar="FILE", help="answers YAML (every key optional)")
    parser.add_argument("--data", metavar="PATH", help="data file or folder (overrides data.path)")
    parser.add_argument("--label-names", metavar="FILE",
                        help="classification: a description per label (JSON object or CSV "
                             "label,description), used by the probe's and --run's LM candidates")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    parser.add_argument("--probe", action="store_true",
                        help="first score the base model zero-shot on a validation slice; above "
                             "goals.target_metric moves fine-tuning down")
    parser.add_argument("--run", action="store_true",
                        help="benchmark the baselines and the top fitting candidates")
    parser.add_argument("--top", type=int, default=3, help="candidates to run besides the "
                        "baselines (default 3)")
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
    if args.top < 0:
        raise TunewiseError("--top must be 0 or more")
    label_names = getattr(args, "label_names", None)
    if label_names:  # a bad file fails before anything is measured
        from bench.data.label_names import read_label_names

        read_label_names(label_names)
    probe_score = None
    if args.probe:
        if not get(answers, "data.path"):
            raise TunewiseError("--probe needs data: give --data PATH or data.path in the answers")
        probe_score = probe_zero_shot(answers, args.out, label_names=label_names)
    result = recommend(answers, measure=not args.no_measure, probe_score=probe_score,
                       preset=args.preset, domain=not args.no_domain)
    check_label_names(label_names, result.profile)
    if args.json:
        print(json.dumps(result.ranking.as_dict(), indent=1))
    else:
        print_table(result, probe_score)
    if not args.run:
        return 0
    return run_recommended(result, answers, args)


def check_label_names(path: str | None, profile: dict[str, Any] | None) -> None:
    """--label-names against the data's labels (a label the data lacks is an error)."""
    if not path or not profile or not profile.get("labels"):
        return
    from bench.data.label_names import names_for_labels, read_label_names

    names_for_labels(read_label_names(path), list(profile["labels"]), path)


def print_table(result, probe_score: float | None = None) -> None:
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
    if probe_score is not None:
        console.print(f"[bold]probe[/] zero-shot on {PROBE_ROWS} validation rows: {probe_score:.3f}")
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
    from advisor.answers import get
    from bench import service
    from bench.runner import BenchPlan
    from reports.html import write_report

    path = get(answers, "data.path")
    if not path:
        raise TunewiseError("--run needs data: give --data PATH or data.path in the answers")
    names = runnable(result.ranking.recommended(args.top))
    estimates = {c.strategy: c.estimate for c in result.ranking.ranked
                 if c.strategy in names and c.estimate}
    plan = BenchPlan(data=path, task=result.facts.task, corpus=get(answers, "data.corpus"),
                     strategies=names, model=result.model, preset=args.preset, out=args.out,
                     estimates=estimates, command=" ".join(["tunewise", "advise", *sys.argv[2:]]),
                     label_names=getattr(args, "label_names", None))
    outcome = service.run_plan(plan, advice=result.ranking.as_dict(), on_event=_print_event,
                               write_report=write_report)
    refused = service.refusal(outcome)
    if refused is not None:
        return refused
    if outcome.report_path is not None:
        print(f"report: {outcome.report_path}", file=sys.stderr)
    elif outcome.report_error:
        print(f"tunewise: {outcome.report_error}", file=sys.stderr)
    if outcome.resume_hint:
        print(outcome.resume_hint, file=sys.stderr)
    print(outcome.run_dir)
    return outcome.exit_code


def _print_event(event) -> None:
    from bench.events import CandidateFinished, CandidateStarted

    if isinstance(event, CandidateStarted):
        print(f"running {event.strategy} ...", file=sys.stderr)
    elif isinstance(event, CandidateFinished):
        record = event.record
        metric = record.get("primary_metric")
        value = (record.get("metrics") or {}).get(metric)
        shown = f"{metric}={value:.3f}" if isinstance(value, (int, float)) else record.get("status")
        print(f"  {event.strategy}: {shown}", file=sys.stderr)


def probe_zero_shot(answers: dict[str, Any], out: str, label_names: str | None = None
                    ) -> float | None:
    """The base model's zero-shot score on a validation slice, through the harness (its own
    child process, measured like every candidate). None when the probe could not score."""
    from advisor.answers import get
    from bench.data import load_task_data
    from bench.runner import BenchPlan, run_benchmark

    loaded = load_task_data(get(answers, "data.path"), task=get(answers, "task"),
                            corpus_path=get(answers, "data.corpus"),
                            label_names=label_names)
    split = loaded.split
    slice_rows = (split.validation or split.train)[:PROBE_ROWS]
    with tempfile.TemporaryDirectory(prefix="tunewise-probe-") as tmp:
        folder = Path(tmp) / "probe"
        folder.mkdir()
        _write_jsonl(folder / "train.jsonl", split.train)
        _write_jsonl(folder / "test.jsonl", slice_rows)
        if split.corpus:
            _write_jsonl(folder / "corpus.jsonl", split.corpus)
        plan = BenchPlan(data=str(folder), task=split.task, strategies=["zero-shot"],
                         model=get(answers, "model.base") or "smollm2-135m",
                         out=str(Path(tmp) / "runs"), label_names=label_names)
        outcome = run_benchmark(plan)
    for record in outcome.records:
        if record.get("status") == "ok":
            return (record.get("metrics") or {}).get(record.get("primary_metric"))
    return None


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
