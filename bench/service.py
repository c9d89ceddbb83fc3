"""One way to run a plan, for every front door: `tunewise bench`, `advise --run`, the demo, the TUI.

    from bench.service import run_plan
    from reports.html import write_report
    outcome = run_plan(plan, advice=ranking_json, on_event=display, write_report=write_report)
    outcome.records, outcome.report_path, outcome.exit_code
    outcome = run_plan(plan, race=RaceSettings(), ...)   # race the candidates (bench.race)

In: a BenchPlan, optionally the advisor's ranking (saved beside the records and shown in the
report), an executor, and `race` settings to race the candidates by successive halving on the
validation split instead of running every one on the full budget (bench.race). Out: the records, the run folder, the report's path. Progress is the
one event stream of bench.events. The report writer is passed in because reports sit above
bench in the layering (strategies <- bench <- reports <- advisor).

One error policy, whatever the door:
- the user's input is refused (TunewiseError or StrategyError: bad data, unknown strategy,
  bad --set) -> `error` holds the message, nothing ran, no run folder; exit code 2;
- a candidate failed or timed out -> its record is kept with the reason; exit code 1;
- Ctrl-C or cancel -> every finished record is kept, the rest can be resumed; exit code 130;
- the report cannot be written -> `report_error` says why; the records are safe in the run folder.
Never a traceback for any of these, never a lost record.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from bench.errors import TunewiseError
from bench.events import EventHandler
from bench.executors import Executor
from bench.plan import BenchPlan
from bench.race import RaceExecutor, RaceSettings
from bench.race import check_plan as check_race
from bench.runner import run_benchmark

EXIT_OK = 0
EXIT_CANDIDATE_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
FAILED_STATUSES = ("failed", "timeout")

ReportWriter = Callable[..., Any]  # write_report(run_dir, advice=...) -> the report's path
Benchmark = Callable[..., Any]  # run_benchmark's call; tests pass a scripted one


@dataclass
class RunOutcome:
    """What a run left behind, and the exit code a command line gives for it."""

    run_dir: Path | None = None  # None: refused or interrupted before the folder was made
    records: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    report_path: Path | None = None
    error: str | None = None  # the input was refused: nothing ran
    report_error: str | None = None  # the report could not be written (records are safe)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("status") in FAILED_STATUSES]

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return EXIT_BAD_INPUT
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_CANDIDATE_FAILED if self.failed else EXIT_OK

    @property
    def resume_hint(self) -> str | None:
        """How to finish an interrupted run, when there is a run folder to finish."""
        if self.interrupted and self.run_dir is not None:
            return f"interrupted: finish with `tunewise bench --resume {self.run_dir}`"
        return None


def run_plan(plan: BenchPlan, *, advice: dict[str, Any] | None = None,
             on_event: EventHandler | None = None, cancel: threading.Event | None = None,
             executor: Executor | None = None, write_report: ReportWriter | None = None,
             benchmark: Benchmark = run_benchmark, race: RaceSettings | None = None
             ) -> RunOutcome:
    """Run the plan under the module's error policy; write the report when given a writer.
    With `race`, the candidates race (bench.race) through `executor` (default: local)."""
    from strategies.base import StrategyError

    try:
        if race is not None:
            check_race(plan)
            executor = RaceExecutor(executor, race)
        extra = {"executor": executor} if executor is not None else {}
        result = benchmark(plan, on_event=on_event, cancel=cancel, **extra)
    except (TunewiseError, StrategyError) as exc:
        return RunOutcome(error=str(exc))
    except KeyboardInterrupt:  # while the data was read: no run folder yet, nothing to keep
        return RunOutcome(interrupted=True)
    outcome = RunOutcome(run_dir=Path(result.run_dir), records=list(result.records),
                         interrupted=result.interrupted)
    if write_report is not None:
        _write_report(outcome, write_report, advice)
    return outcome


def _write_report(outcome: RunOutcome, write_report: ReportWriter,
                  advice: dict[str, Any] | None) -> None:
    try:
        outcome.report_path = Path(write_report(outcome.run_dir, advice=advice))
    except KeyboardInterrupt:
        outcome.interrupted = True
        outcome.report_error = (f"interrupted while writing the report; the records are in "
                                f"{outcome.run_dir}/results.jsonl (`tunewise report` writes it)")
    except Exception as exc:  # noqa: BLE001 - the records are safe; a report bug must not hide them
        outcome.report_error = (f"the HTML report could not be written ({type(exc).__name__}: "
                                f"{exc}); the records are in {outcome.run_dir}/results.jsonl")


def refusal(outcome: RunOutcome, stream: TextIO | None = None) -> int | None:
    """For a command line: when nothing ran (refused, or interrupted before the run folder
    existed) say so on stderr, as `tunewise` says every error, and return the exit code;
    None when there are records to show."""
    if outcome.run_dir is not None:
        return None
    stream = stream or sys.stderr
    if outcome.error is not None:
        print(f"tunewise: error: {outcome.error}", file=stream)
    else:
        print("tunewise: interrupted", file=stream)
    return outcome.exit_code
