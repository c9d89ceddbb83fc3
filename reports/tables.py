"""The results table for the terminal (rich), shared by `tunewise bench`, the demo and the TUI.

    from rich.console import Console
    from reports.tables import results_table
    Console().print(results_table(records))

Finished candidates first, best primary metric on top (with its 95% interval), then the ones
that failed, were skipped or timed out, with their reason. Text from records is passed as
`rich.text.Text`, never as markup, so a strategy name or error holding "[bold]" prints as is.
"""

from __future__ import annotations

from rich import box
from rich.table import Table
from rich.text import Text

from reports import analysis as an
from reports import format as fmt

REASON_LIMIT = 90  # characters of an error shown in the terminal; the report has the full text


def results_table(records: list[dict], manifest: dict | None = None, title: str | None = None) -> Table:
    """Finished candidates ranked by the primary metric, compact enough for 80 columns; the
    candidates that did not finish are listed with their reason in the caption."""
    manifest = manifest or {}
    metric = an.primary_metric(records, manifest)
    columns = {c.key: c for c in an.table_columns(records, manifest)}
    memory_key = "peak_cuda_mb" if "peak_cuda_mb" in columns else "peak_rss_mb"
    shown = [(metric, f"{metric} [95% CI]"), (memory_key, "peak mem"), ("adapt_s", "adapt"),
             ("predict_s", "predict"), ("cost_per_1k_usd", "$/1k req")]
    shown = [(key, header) for key, header in shown if key in columns]
    best = an.best_values(records, list(columns.values()))

    table = Table(title=title or f"results, ranked by {metric}", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False, caption=_unfinished_caption(records), caption_justify="left")
    table.add_column("candidate", style="bold", min_width=12, overflow="fold")
    for _, header in shown:
        table.add_column(header, justify="right", no_wrap=True)
    for record in an.measured_ranking(records, metric):
        cells = []
        for key, _ in shown:
            value = fmt.as_number(columns[key].get(record))
            text = columns[key].show(value)
            interval = an.metric_ci(record, key) if key == metric else None
            if interval:
                text += f" [{interval[0]:.2f}–{interval[1]:.2f}]"
            if key == metric and an.is_degenerate(record):
                text += f" {an.DEGENERATE_MARK}"
            cells.append(Text(text, style="bold green" if value is not None and best.get(key) == value else ""))
        table.add_row(Text(str(record.get("strategy"))), *cells)
    return table


def _unfinished_caption(records: list[dict]) -> Text | None:
    unfinished = an.unfinished_records(records)
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
