"""`tunewise demo [--tiny] [--out DIR]`: the whole decide → run → measure → present loop on
bundled data, offline, on a CPU (what `make demo` runs).

    tunewise demo               # banking77 intents (240 train / 120 test), ~7 min on 2 cores
                                # (+ the probes: ~35 CPU seconds)
    tunewise demo --tiny        # a 60-train / 24-test slice, baselines + one cheap pick, ~40 s
    tunewise demo --out /tmp/runs
    tunewise demo --no-race     # run every pick on the full budget instead of racing them
    tunewise demo --no-probe    # the advisor's rules alone, no probes first

1. Reads the bundled answers file (advisor/samples/classification.yaml), measures the cheap
   candidates on the validation split (advisor.probes: majority, knn, transfer, zero-shot) and
   shows the advisor's ranking with what they measured and its reasons (falls back to a fixed
   list, and says so, if the advisor cannot run).
2. Races the recommended candidates with the quick preset through bench.service (bench.race:
   successive halving on the validation split, the winner trained on every train row and tested
   once), beside the baselines; `--no-race` runs every candidate in full, as `tunewise bench`
   does. Every candidate runs in its own process, on the same split.
3. Writes the HTML report (with the advisor's ranking beside the measured one) and results.csv,
   prints the results table, and prints the report's path last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError

ANSWERS = Path(__file__).resolve().parent / "samples" / "classification.yaml"
BASELINES = ["majority", "zero-shot"]
# Used when the advisor cannot rank (not installed yet, or it failed): a spread of families.
FALLBACK_CANDIDATES = ["knn", "transfer", "lora"]
FALLBACK_TINY = ["knn", "transfer"]
# Cheap candidates that every default run adds for context when the advisor did not pick them:
# they take seconds and often come close to fine-tuning on small closed label sets.
CHEAP_CONTEXT = ["transfer", "knn"]


class DemoSettings:
    """What separates the default demo from --tiny on 2 CPU cores (idle machine, 2026-12-03, README
    "The demo": 6 min 14 s and 36 s; a shared machine takes several times longer)."""

    def __init__(self, tiny: bool, race: bool = True):
        self.tiny = tiny
        self.race = race
        # fitting advisor picks run besides the baselines: a race can afford twice as many,
        # since most of each rung stop on a fraction of the train rows
        self.top = (2 if race else 1) if tiny else (6 if race else 3)
        # A label-balanced slice: 10 train rows per label leaves one validation row per label
        # (the data layer carves validation from train); 4 test rows per label.
        self.train_rows = 60 if tiny else None
        self.test_rows = 24 if tiny else None
        # Per candidate: a stuck one cannot eat the demo. Generous, because a shared machine can
        # be several times slower than an idle one; the idle timings are in the README.
        self.timeout_s = 600.0 if tiny else 900.0
        # Only the advisor's picks it estimates to take under this run: cheap ones for --tiny;
        # a third of the budget otherwise (on a CPU, QLoRA's dequantisation makes it ~2.5x
        # LoRA's time for no memory gain that matters at 135M parameters).
        self.max_estimate_s = 60.0 if tiny else 300.0
        self.budget = "about a minute" if tiny else "about 7 minutes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tiny", action="store_true",
                        help="a small slice and cheap candidates: about a minute on 2 idle CPU cores")
    parser.add_argument("--out", default="runs", metavar="DIR",
                        help="where the run folder goes (default: runs)")
    parser.add_argument("--answers", default=str(ANSWERS), metavar="FILE",
                        help="answers file for the advisor (default: the bundled classification one)")
    from bench.cli_options import add_probe_and_race_flags

    add_probe_and_race_flags(parser)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from bench import service

    console = Console(highlight=False)
    settings = DemoSettings(args.tiny, race=not getattr(args, "no_race", False))
    started = time.time()
    answers = _load_answers(args.answers)
    data_path = _demo_data(answers, settings, Path(args.out))
    _set(answers, "data.path", str(data_path))
    console.rule("[bold]tunewise demo" + (" --tiny" if settings.tiny else ""))
    console.print(f"data: {data_path} · answers: {args.answers} · budget {settings.budget}", markup=False)

    advice, picks, note = _recommend(answers, settings, console,
                                     probe=not getattr(args, "no_probe", False))
    console.print(note)
    if advice:
        _print_recommendation(console, advice, picks)
        _print_left_out(console, advice, picks, settings)
    strategies = _candidates(picks, settings)
    # the race itself says whether it races (it does not when too few entrants are costly)
    how = "raced where it pays" if settings.race else "each on the full budget"
    console.print(f"running {len(strategies)} candidates ({how}; quick preset, one process "
                  "each): " + ", ".join(strategies))

    outcome = _benchmark(answers, data_path, strategies, advice, settings, args, console)
    refused = service.refusal(outcome)
    if refused is not None:
        return refused
    from advisor.bench_cli import store_config

    store_config(outcome.run_dir)  # RUN_DIR/config.yaml: `tunewise bench --config` reruns it

    from reports.analysis import verdict
    from reports.run_data import load_run
    from reports.tables import results_table

    run_data = load_run(outcome.run_dir)
    console.print(results_table(run_data.records, run_data.manifest))
    console.print(verdict(run_data.records, run_data.manifest, advice).sentence)
    if outcome.resume_hint:
        console.print(f"[yellow]{escape(outcome.resume_hint)}[/]")
    if outcome.report_error:
        console.print(outcome.report_error, markup=False)
    results_csv = outcome.run_dir / "results.csv"
    console.print(f"demo wall time: {time.time() - started:.0f} s"
                  + (f" · results.csv: {results_csv}" if results_csv.exists() else ""), markup=False)
    print(outcome.report_path or outcome.run_dir)  # last, so scripts can take the final line
    return outcome.exit_code


# ---------------------------------------------------------------- data and answers

def _load_answers(path: str) -> dict[str, Any]:
    try:
        from advisor.answers import load_answers
    except ImportError:  # the advisor's loader is not there: read the YAML plainly
        import yaml

        try:
            return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TunewiseError(f"cannot read answers file {path}: {exc}") from None
    return load_answers(path)


def _set(answers: dict[str, Any], dotted: str, value: Any) -> None:
    node = answers
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _demo_data(answers: dict[str, Any], settings: DemoSettings, out: Path) -> Path:
    """The bundled classification sample, or for --tiny a label-balanced slice of it written
    under OUT/demo-data (so the profile, the split and the report all describe what ran)."""
    from bench.data import SAMPLES

    source = Path(SAMPLES["classification"])
    if not settings.tiny:
        return source
    target = out / "demo-data" / f"{source.name}_tiny"
    target.mkdir(parents=True, exist_ok=True)
    for part, rows in (("train", settings.train_rows), ("test", settings.test_rows)):
        lines = (source / f"{part}.jsonl").read_text(encoding="utf-8").splitlines()
        (target / f"{part}.jsonl").write_text("\n".join(_balanced(lines, rows)) + "\n", encoding="utf-8")
    (target / "SOURCE.txt").write_text(
        f"A label-balanced slice of {source} for `tunewise demo --tiny`: the first "
        f"{settings.train_rows} train and {settings.test_rows} test rows, taken in turn from each label.\n",
        encoding="utf-8")
    return target


def _balanced(lines: list[str], count: int) -> list[str]:
    """`count` JSON lines taken round-robin across labels, in file order within a label."""
    by_label: dict[str, list[str]] = {}
    for line in lines:
        if line.strip():
            by_label.setdefault(str(json.loads(line).get("label")), []).append(line)
    picked: list[str] = []
    queues = list(by_label.values())
    while len(picked) < count and any(queues):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


# ---------------------------------------------------------------- the recommendation

def _recommend(answers: dict[str, Any], settings: DemoSettings, console=None, *,
               probe: bool = True) -> tuple[dict | None, list[str], str]:
    """(advice JSON with the answers, the advisor's fitting picks, a line saying where they came
    from). The advisor is imported lazily: the demo still runs, on a fixed list, without it.
    It first probes the data (advisor.probes), one progress line per probe."""
    from rich.markup import escape

    fallback = list(FALLBACK_TINY if settings.tiny else FALLBACK_CANDIDATES)
    try:
        from advisor.recommend import recommend
    except ImportError as exc:
        return None, fallback, (f"[yellow]the advisor is not available ({escape(str(exc))}); "
                                "running a fixed candidate list[/]")
    try:
        result = recommend(answers, probe=probe,
                           on_probe_event=_probe_printer(console) if console else None)
    except TunewiseError as exc:
        return None, fallback, (
            f"[yellow]the advisor could not rank these answers ({escape(str(exc))}); "
            "running a fixed candidate list[/]")
    advice = result.ranking.as_dict()
    advice["answers"] = answers
    from advisor.probes import summary_line

    probes = summary_line(advice.get("probes"))
    return advice, advisor_picks(advice, settings), (
        "the advisor's ranking for these answers (before the run"
        + (f"; probes: {escape(probes)}" if probes else "") + "):")


def _probe_printer(console):
    """A line per probe as it finishes: what the advice waits for."""
    from bench.events import CandidateFinished, CandidateStarted

    def on_event(event) -> None:
        if isinstance(event, CandidateStarted):
            console.print(f"probe {event.strategy} (validation split) ...", markup=False,
                          style="dim")
        elif isinstance(event, CandidateFinished):
            record = event.record
            value = (record.get("metrics") or {}).get(record.get("primary_metric"))
            shown = f"{value:.3f}" if isinstance(value, (int, float)) else record.get("status")
            console.print(f"  {event.strategy}: {shown}", markup=False, style="dim")

    return on_event


def advisor_picks(advice: dict, settings: DemoSettings) -> list[str]:
    """The best-ranked fitting candidates besides the baselines that the advisor estimates to
    take under the demo's per-candidate time (unknown estimates are not known to be cheap)."""
    return [name for name, seconds in _fitting(advice).items()
            if not _over_time(seconds, settings)][:settings.top]


def over_time(advice: dict, settings: DemoSettings) -> list[str]:
    """Fitting candidates the demo leaves out because their estimate exceeds its time."""
    return [name for name, seconds in _fitting(advice).items() if _over_time(seconds, settings)]


def _fitting(advice: dict) -> dict[str, float | None]:
    """Fitting candidates besides the baselines, best-ranked first, with their estimated seconds."""
    return {entry.get("strategy"): (entry.get("estimate") or {}).get("time_s")
            for entry in advice.get("ranked", [])
            if entry.get("strategy") not in BASELINES and entry.get("fits", True)}


def _over_time(seconds: float | None, settings: DemoSettings) -> bool:
    return settings.max_estimate_s is not None and (seconds is None or seconds > settings.max_estimate_s)


def _print_left_out(console, advice: dict, picks: list[str], settings: DemoSettings) -> None:
    """Say which better-ranked candidates the demo does not run because of its time."""
    from reports import format as fmt

    fitting = _fitting(advice)
    ranked = list(fitting)
    last_pick = max((ranked.index(p) for p in picks), default=-1)
    skipped = [name for name in ranked[:last_pick] if _over_time(fitting[name], settings)]
    if skipped:
        console.print("not run by the demo (estimated over " + fmt.fmt_seconds(settings.max_estimate_s)
                      + " each; run them with `tunewise bench`): "
                      + ", ".join(name if fitting[name] is None
                                  else f"{name} ~{fmt.fmt_seconds(fitting[name])}" for name in skipped),
                      markup=False)


def _print_recommendation(console, advice: dict, picks: list[str], shown: int = 8) -> None:
    from rich.table import Table
    from rich.text import Text

    from reports import format as fmt

    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for column in ("#", "candidate", "score", "est. time", "est. memory", "fits"):
        table.add_column(column, justify="right" if column not in ("candidate", "fits") else "left")
    for rank, entry in enumerate(advice["ranked"][:shown], 1):
        estimate = entry.get("estimate") or {}
        memory = fmt.as_number(estimate.get("peak_memory_gb"))
        table.add_row(str(rank), Text(entry["strategy"], style="bold" if entry["strategy"] in picks else ""),
                      f"{entry.get('score', 0):.0f}", fmt.fmt_seconds(estimate.get("time_s")),
                      fmt.fmt_mb(memory * 1024) if memory is not None else "—",
                      "yes" if entry.get("fits") else "no")
    console.print(table)
    for entry in advice["ranked"]:
        if entry["strategy"] in picks and entry.get("reasons"):
            reason = entry["reasons"][0]
            console.print(Text(f"  {entry['strategy']}: {reason.get('text')} [{reason.get('rule')}]"))


def _candidates(picks: list[str], settings: DemoSettings) -> list[str]:
    """Baselines + the advisor's picks (+ cheap context candidates), only those registered now,
    with the CUDA-only ones kept: they show up as skipped, with the reason, in the report."""
    from strategies import registry

    names = BASELINES + [p for p in picks if p not in BASELINES]
    if not settings.tiny:
        names += [c for c in CHEAP_CONTEXT if c not in names]
    return [name for name in names if registry.is_known(name)]


# ---------------------------------------------------------------- the run and the report

def _benchmark(answers, data_path, strategies, advice, settings, args, console):
    """The run, through bench.service: one error policy, the report with the advisor's ranking."""
    from bench import service
    from bench.race import RaceSettings
    from bench.runner import BenchPlan
    from reports.html import write_report

    estimates = {e["strategy"]: e["estimate"] for e in (advice or {}).get("ranked", [])
                 if e.get("strategy") in strategies and e.get("estimate")}
    plan = BenchPlan(data=str(data_path), task="classification", strategies=strategies,
                     model=(answers.get("model") or {}).get("base") or "smollm2-135m",
                     preset="quick", out=args.out, timeout_s=settings.timeout_s,
                     estimates=estimates,
                     command="tunewise demo" + (" --tiny" if settings.tiny else "")
                             + ("" if settings.race else " --no-race")
                             + (f" --out {args.out}" if args.out != "runs" else ""))
    return service.run_plan(plan, advice=advice, on_event=_progress_printer(console),
                            write_report=write_report,
                            race=RaceSettings() if settings.race else None)


def _progress_printer(console):
    """Plain progress lines (one per candidate start, phase change and finish): readable in a
    terminal, a CI log or a pipe alike."""
    from bench.events import CandidateFinished, CandidateProgress, CandidateStarted
    from bench.race import RaceStarted, RungFinished, race_plan_line, rung_line
    from reports import format as fmt

    phases: dict[str, str] = {}

    def on_event(event) -> None:
        if isinstance(event, RaceStarted):
            console.print(race_plan_line(event), markup=False)
        elif isinstance(event, RungFinished):
            console.print(rung_line(event), markup=False, style="bold")
        elif isinstance(event, CandidateStarted):
            where = f" ({event.index}/{event.total})" if event.total else ""
            console.print(f"→ {event.strategy}{where}", markup=False)
        elif isinstance(event, CandidateProgress) and phases.get(event.strategy) != event.phase:
            phases[event.strategy] = event.phase
            console.print(f"  {event.strategy}: {event.phase}", markup=False, style="dim")
        elif isinstance(event, CandidateFinished):
            record = event.record
            metric = record.get("primary_metric") or "accuracy"
            value = (record.get("metrics") or {}).get(metric)
            total = (record.get("time_s") or {}).get("total")
            shown = (f"{metric} {fmt.fmt_metric(value)}" if record.get("status") == "ok"
                     else f"{record.get('status')}: {record.get('error')}")
            console.print(f"  {event.strategy}: {shown} in {fmt.fmt_seconds(total)}", markup=False)

    return on_event
