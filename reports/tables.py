"""The results table: built once from the records (`results_grid`), drawn everywhere.

    from rich.console import Console
    from reports.tables import results_grid, results_table
    Console().print(results_table(records))     # the terminal (`tunewise bench`, the demo)
    grid = results_grid(records, manifest)       # the HTML report's table, the TUI's results

Finished candidates first, best primary metric on top (with its 95% interval), then the ones
that failed, were skipped or timed out, with their reason. Text from records is passed as
`rich.text.Text`, never as markup, so a strategy name or error holding "[bold]" prints as is.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

from reports import analysis as an
from reports import format as fmt
from reports.run_data import with_variant_name

REASON_LIMIT = 90  # characters of an error shown in the terminal; the report has the full text


# ---------------------------------------------------------------- the one results table


@dataclass(frozen=True)
class Cell:
    """One value of the results table, raw and formatted."""

    key: str  # the column's key (results.csv header)
    value: float | None  # None: missing, or the candidate did not finish
    text: str  # formatted; "" for a candidate that did not finish
    interval: tuple[float, float] | None  # 95% interval, quality columns of finished candidates
    best: bool  # the best value of its column among finished candidates
    group: str  # quality | memory | time | size | cost

    @property
    def sort(self) -> str:
        """The sort key an HTML table column sorts by."""
        return "" if self.value is None else repr(self.value)

    @property
    def ci(self) -> str:
        return f"{self.interval[0]:.3f}–{self.interval[1]:.3f}" if self.interval else ""


@dataclass(frozen=True)
class ResultRow:
    """One candidate: its record, what the table shows of it, one cell per column."""

    record: dict
    strategy: str
    family: str
    status: str
    error: str
    projected: bool  # cost priced with another hardware's price row (--price-as)
    cells: list[Cell]
    model: str = ""  # the base LLM it ran on, when the run compared several ("" otherwise)

    def cell(self, key: str) -> Cell | None:
        return next((cell for cell in self.cells if cell.key == key), None)

    def value(self, key: str) -> float | None:
        cell = self.cell(key)
        return cell.value if cell else None


@dataclass(frozen=True)
class ResultsGrid:
    """The results table as data: its columns (reports.analysis.Column) and its rows, finished
    candidates ranked best first by the primary metric, then the others in run order. The
    terminal table, the TUI's results screen and the HTML report all draw this one."""

    metric: str
    columns: list[an.Column]
    rows: list[ResultRow]

    @property
    def memory_key(self) -> str:
        """The memory that limits where a candidate runs: CUDA when measured, else RSS."""
        return "peak_cuda_mb" if any(c.key == "peak_cuda_mb" for c in self.columns) else "peak_rss_mb"

    @property
    def finished(self) -> list[ResultRow]:
        return [row for row in self.rows if row.status == "ok"]


def results_grid(records: list[dict], manifest: dict | None = None) -> ResultsGrid:
    manifest = manifest or {}
    # one row per candidate: `lora@SmolLM2-135M` and `lora@tiny` when several models ran
    records = [with_variant_name(record) for record in records]
    metric = an.primary_metric(records, manifest)
    columns = an.table_columns(records, manifest)
    best = an.best_values(records, columns)
    ordered = an.measured_ranking(records, metric) + an.unfinished_records(records)
    several = len(an.run_models(records, manifest)) > 1
    return ResultsGrid(metric, columns, [_row(record, columns, best, several)
                                         for record in ordered])


def _row(record: dict, columns: list[an.Column], best: dict[str, float],
         several_models: bool = False) -> ResultRow:
    finished = record.get("status") == "ok"
    cells = []
    for column in columns:
        value = fmt.as_number(column.get(record)) if finished else None
        interval = an.metric_ci(record, column.key) if finished and column.group == "quality" else None
        text = column.show(value) if finished else ""
        if finished and column is columns[0] and an.is_degenerate(record):
            text += f" {an.DEGENERATE_MARK}"  # collapsed predictions: no evidence either way
        cells.append(Cell(column.key, value, text, interval,
                          finished and value is not None and best.get(column.key) == value,
                          column.group))
    model = record.get("model") if several_models and isinstance(record.get("model"), str) else ""
    return ResultRow(record, str(record.get("strategy")), record.get("family") or "",
                     record.get("status") or "unknown", record.get("error") or "",
                     bool(record.get("cost_projected")), cells, model)


# ---------------------------------------------------------------- the terminal


def results_table(records: list[dict], manifest: dict | None = None, title: str | None = None) -> Table:
    """Finished candidates ranked by the primary metric, compact enough for 80 columns; the
    candidates that did not finish are listed with their reason in the caption."""
    grid = results_grid(records, manifest)
    metric = grid.metric
    shown = [(metric, f"{metric} [95% CI]"), (grid.memory_key, "peak mem"), ("adapt_s", "adapt"),
             ("predict_s", "predict"), ("latency_p50_ms", "p50 req"), ("cost_per_1k_usd", "$/1k req")]
    keys = {column.key for column in grid.columns}
    shown = [(key, header) for key, header in shown if key in keys]

    table = Table(title=title or f"results, ranked by {metric}", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False,
                  caption=_unfinished_caption(records), caption_justify="left")
    table.add_column("candidate", style="bold", min_width=12, overflow="fold")
    for _, header in shown:
        table.add_column(header, justify="right", no_wrap=True)
    for row in grid.finished:
        cells = []
        for key, _ in shown:
            cell = row.cell(key)
            text = cell.text
            if key == metric and cell.interval:
                text += f" [{cell.interval[0]:.2f}–{cell.interval[1]:.2f}]"
            cells.append(Text(text, style="bold green" if cell.best else ""))
        table.add_row(Text(row.strategy), *cells)
    return table


def _unfinished_caption(records: list[dict]) -> Text | None:
    unfinished = an.unfinished_records([with_variant_name(record) for record in records])
    if not unfinished:
        return None
    caption = Text("did not finish:")
    for record in unfinished:
        status = str(record.get("status") or "unknown")
        reason = " ".join(str(record.get("error") or "no reason recorded").split())
        if len(reason) > REASON_LIMIT:
            reason = reason[:REASON_LIMIT - 1] + "…"
        caption.append(f"\n  {record.get('strategy')} ", style="bold")
        caption.append(status, style="yellow" if status == "skipped" else "red")
        caption.append(f": {reason}", style="dim")
    return caption
