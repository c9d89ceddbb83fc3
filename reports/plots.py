"""Inline SVG plots for the report, written by hand: no network, no JS library, no matplotlib.

Each function returns `markupsafe.Markup` holding one <svg>. Every piece of text that came from
the user's data or the records (strategy names, labels) goes through `escape()`; numbers are
formatted by us. Plots carry axis titles with units, a <title> tooltip per mark, and an
aria-label, so they read on screen, in print and with a screen reader.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 340
LEGEND_ROW = 18  # extra pixels under a scatter plot for its legend
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 16, 52
FAMILY_COLOURS = {
    "baseline": "#7f7f7f", "prompting": "#1f77b4", "rag": "#17becf", "transfer": "#2ca02c",
    "fine-tuning": "#d62728", "peft": "#ff7f0e", "preference": "#9467bd",
}
SERIES_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
PHASE_COLOURS = {"load": "#c7c7c7", "adapt": "#ff7f0e", "predict": "#1f77b4"}


@dataclass
class Point:
    x: float
    y: float
    label: str
    family: str = ""
    note: str = ""  # extra tooltip text


# ---------------------------------------------------------------- scales and ticks

def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (the classic 1-2-5 steps)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks, value = [], start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


class Axis:
    """Maps data values to pixels, linear or log10 (log for values spanning decades)."""

    def __init__(self, values: list[float], pixel_low: float, pixel_high: float, log: bool = False,
                 include_zero: bool = False, unit_interval: bool = False):
        self.log = log
        self.pixel_low, self.pixel_high = pixel_low, pixel_high
        self.zero_tick = False  # log axis: a bottom tick that stands for 0 (free candidates)
        if log:
            positive = [v for v in values if v > 0] or [1.0]
            low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
            if any(v <= 0 for v in values):
                low -= 1
                self.zero_tick = True
            self.floor = 10.0 ** low
            self.ticks = [10.0 ** e for e in range(low, max(high, low + 1) + 1)]
            self.low, self.high = math.log10(self.ticks[0]), math.log10(self.ticks[-1])
        else:
            low, high = (min(values), max(values)) if values else (0.0, 1.0)
            if include_zero:
                low = min(low, 0.0)
            pad = (high - low) * 0.08 or abs(high) * 0.1 or 0.1
            self.ticks = nice_ticks(low - (0 if include_zero and low == 0 else pad), high + pad)
            if unit_interval and 0 <= low and high <= 1:
                # Scores live in [0, 1]: an axis running past 1 (or below 0) only misleads.
                self.ticks = [t for t in self.ticks if 0 <= t <= 1] or [0.0, 1.0]
                self.ticks = sorted(set(self.ticks) | {max(0.0, self.ticks[0]), min(1.0, self.ticks[-1])})
                if self.ticks[-1] < high:
                    self.ticks.append(1.0)
                if self.ticks[0] > low:
                    self.ticks.insert(0, 0.0)
            self.low, self.high = self.ticks[0], self.ticks[-1]

    def labelled_ticks(self) -> list[tuple[float, str]]:
        """(value, text) for each tick; a log axis spanning many decades labels every other."""
        step = 2 if self.log and len(self.ticks) > 7 else 1
        labelled = []
        for index, tick in enumerate(self.ticks):
            text = tick_text(tick, self.log) if index % step == 0 else ""
            if self.zero_tick and index == 0:
                text = "0"
            labelled.append((tick, text))
        return labelled

    def __call__(self, value: float) -> float:
        if self.log:
            value = math.log10(max(value, self.floor))
        share = (value - self.low) / ((self.high - self.low) or 1.0)
        return self.pixel_low + share * (self.pixel_high - self.pixel_low)


def wants_log(values: list[float]) -> bool:
    """Log scale when the positive values span more than ~2 decades (costs often do: a kNN
    vote costs a thousandth of a fine-tune); zeros then sit on a bottom tick labelled 0."""
    positive = [v for v in values if v > 0]
    return len(positive) >= 2 and max(positive) / min(positive) >= 50


def tick_text(value: float, log: bool = False) -> str:
    if log:
        return f"{value:g}"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


# ---------------------------------------------------------------- SVG pieces

def _svg_open(title: str, width: int = WIDTH, height: int = HEIGHT) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>"]


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 11,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {extra}>'
            f"{escape(content)}</text>")


def _axes(x_axis: Axis, y_axis: Axis, x_title: str, y_title: str, width: int, height: int) -> list[str]:
    parts = []
    left, right = MARGIN_LEFT, width - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, height - MARGIN_BOTTOM
    for tick, text in y_axis.labelled_ticks():
        y = y_axis(tick)
        parts.append(f'<line class="grid" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(_text(left - 6, y + 4, text, "end"))
    for tick, text in x_axis.labelled_ticks():
        x = x_axis(tick)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        parts.append(_text(x, bottom + 16, text))
    parts.append(f'<line class="axis" x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}"/>')
    parts.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{bottom}"/>')
    parts.append(_text((left + right) / 2, height - 10, x_title, size=12, extra='class="axis-title"'))
    parts.append(_text(14, (top + bottom) / 2, y_title, size=12,
                       extra=f'class="axis-title" transform="rotate(-90 14 {(top + bottom) / 2:.1f})"'))
    return parts


def _empty(title: str, message: str) -> Markup:
    parts = _svg_open(title, WIDTH, 80)
    parts.append(_text(WIDTH / 2, 44, message, size=13))
    parts.append("</svg>")
    return Markup("".join(parts))


# ---------------------------------------------------------------- the plots

def scatter_with_front(points: list[Point], front: list[str], x_title: str, y_title: str,
                       title: str) -> Markup:
    """Quality (y, higher better) against a resource (x, lower better); the Pareto front joined
    by a dashed line, so the candidates worth considering stand out."""
    if not points:
        return _empty(title, "No finished candidate reports both values.")
    xs = [p.x for p in points]
    log = wants_log(xs)
    x_axis = Axis(xs, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, log=log, include_zero=not log)
    y_axis = Axis([p.y for p in points], HEIGHT - MARGIN_BOTTOM, MARGIN_TOP, unit_interval=True)
    x_label = f"{x_title}{' — log scale' if log else ''}"
    # The legend gets its own row under the axis title, where no point can sit.
    parts = _svg_open(title, WIDTH, HEIGHT + LEGEND_ROW) + _axes(x_axis, y_axis, x_label, y_title, WIDTH, HEIGHT)
    on_front = sorted((p for p in points if p.label in front), key=lambda p: p.x)
    if len(on_front) > 1:
        path = " ".join(f"{x_axis(p.x):.1f},{y_axis(p.y):.1f}" for p in on_front)
        parts.append(f'<polyline class="front" points="{path}"/>')
    centres = [(x_axis(p.x), y_axis(p.y)) for p in points]
    placed: list[tuple[float, float, float, float]] = []
    for point, (x, y) in sorted(zip(points, centres), key=lambda pc: (pc[0].x, pc[0].y)):
        colour = FAMILY_COLOURS.get(point.family, "#444")
        ring = ' stroke="#000" stroke-width="2"' if point.label in front else ""
        tooltip = f"{point.label}: {y_title} {point.y:.3f}, {x_title} {point.x:.4g}{point.note}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{colour}"{ring}>'
                     f"<title>{escape(tooltip)}</title></circle>")
        tx, ty, anchor = _label_position(x, y, point.label, centres, placed)
        parts.append(_text(tx, ty, point.label, anchor, size=11, extra='class="point-label"'))
    parts.append(_legend_front(MARGIN_LEFT, HEIGHT + 2))
    parts.append("</svg>")
    return Markup("".join(parts))


LABEL_OFFSETS = [(8, -7, "start"), (8, 14, "start"), (-8, -7, "end"), (-8, 14, "end"),
                 (8, -19, "start"), (-8, -19, "end"), (8, 26, "start"), (-8, 26, "end")]


def _label_position(x, y, label, centres, placed):
    """The first spot beside a point whose text box hits no other label, point or plot edge
    (greedy; good enough for the dozen candidates a run has)."""
    width, height = 6.3 * len(label), 12
    first = None
    for dx, dy, anchor in LABEL_OFFSETS:
        left = x + dx if anchor == "start" else x + dx - width
        box = (left, y + dy - 10, left + width, y + dy - 10 + height)
        first = first or (x + dx, y + dy, anchor, box)
        inside = MARGIN_LEFT <= box[0] and box[2] <= WIDTH - 2 and MARGIN_TOP - 12 <= box[1] and box[3] <= HEIGHT - MARGIN_BOTTOM
        hits_label = any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)
        hits_point = any(box[0] - 5 < cx < box[2] + 5 and box[1] - 5 < cy < box[3] + 5
                         for cx, cy in centres if (cx, cy) != (x, y))
        if inside and not hits_label and not hits_point:
            placed.append(box)
            return x + dx, y + dy, anchor
    placed.append(first[3])
    return first[0], first[1], first[2]


def _legend_front(x: float, y: float) -> str:
    return (f'<g class="legend"><line class="front" x1="{x}" x2="{x + 22}" y1="{y + 6}" y2="{y + 6}"/>'
            + _text(x + 28, y + 10, "Pareto front: ringed points, joined by the dashed line", "start", 11)
            + "</g>")


def time_breakdown(rows: list[tuple[str, dict[str, float]]], title: str) -> Markup:
    """Horizontal stacked bars, one per candidate: load, adapt and predict seconds."""
    rows = [(name, parts) for name, parts in rows if sum(parts.values()) > 0]
    if not rows:
        return _empty(title, "No finished candidate reports its time.")
    bar, gap, left = 20, 10, 120
    height = MARGIN_TOP + len(rows) * (bar + gap) + MARGIN_BOTTOM + 18
    x_axis = Axis([sum(p.values()) for _, p in rows], left, WIDTH - MARGIN_RIGHT, include_zero=True)
    parts = _svg_open(title, WIDTH, height)
    bottom = height - MARGIN_BOTTOM
    for tick in x_axis.ticks:
        x = x_axis(tick)
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{bottom}"/>')
        parts.append(_text(x, bottom + 16, tick_text(tick)))
    parts.append(_text((left + WIDTH - MARGIN_RIGHT) / 2, bottom + 34, "wall time (seconds)", size=12,
                       extra='class="axis-title"'))
    for row, (name, phases) in enumerate(rows):
        y = MARGIN_TOP + row * (bar + gap)
        parts.append(_text(left - 6, y + bar * 0.7, name, "end"))
        start = 0.0
        for phase in ("load", "adapt", "predict"):
            seconds = phases.get(phase) or 0.0
            if seconds <= 0:
                continue
            x0, x1 = x_axis(start), x_axis(start + seconds)
            parts.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar}" '
                         f'fill="{PHASE_COLOURS[phase]}"><title>{escape(f"{name} {phase}: {seconds:.2f} s")}'
                         f"</title></rect>")
            start += seconds
    parts.append(f'<line class="axis" x1="{left}" x2="{WIDTH - MARGIN_RIGHT}" y1="{bottom}" y2="{bottom}"/>')
    legend_x = left
    for phase, colour in PHASE_COLOURS.items():
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="12" height="10" fill="{colour}"/>')
        parts.append(_text(legend_x + 16, height - 5, phase, "start"))
        legend_x += 80
    parts.append("</svg>")
    return Markup("".join(parts))


def learning_curve(series: dict[str, list[tuple[float, float]]], y_title: str, title: str) -> Markup:
    """Quality against the number of training rows, one line per candidate."""
    series = {name: sorted(points) for name, points in series.items() if points}
    if not series:
        return _empty(title, "This run has no learning-curve points.")
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    log = wants_log(xs)
    x_axis = Axis(xs, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, log=log)
    y_axis = Axis(ys, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP, unit_interval=True)
    x_label = f"training rows (count){' — log scale' if log else ''}"
    parts = _svg_open(title) + _axes(x_axis, y_axis, x_label, y_title, WIDTH, HEIGHT)
    for index, (name, points) in enumerate(series.items()):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        path = " ".join(f"{x_axis(x):.1f},{y_axis(y):.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x_axis(x):.1f}" cy="{y_axis(y):.1f}" r="4" fill="{colour}">'
                         f"<title>{escape(f'{name}: {y:.3f} with {x:g} rows')}</title></circle>")
        legend_y = MARGIN_TOP + 6 + index * 16
        parts.append(f'<rect x="{MARGIN_LEFT + 10}" y="{legend_y}" width="12" height="10" fill="{colour}"/>')
        parts.append(_text(MARGIN_LEFT + 26, legend_y + 9, name, "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass
class ForgettingPoint:
    """A trained candidate: its task score, and its perplexity change on general text (%)
    with the 95% interval."""

    label: str
    family: str
    quality: float
    change_pct: float
    low_pct: float
    high_pct: float


def forgetting(points: list[ForgettingPoint], y_title: str, title: str) -> Markup:
    """Quality on the task (y) against forgetting (x: how much more perplexed by general text
    than the base model, %), with each interval as a horizontal bar; the dashed vertical line
    at 0 is the untouched base model, where every candidate that trains nothing sits."""
    if not points:
        return _empty(title, "No trained candidate has a forgetting measurement.")
    xs = [0.0] + [v for p in points for v in (p.low_pct, p.high_pct, p.change_pct)]
    x_axis = Axis(xs, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, include_zero=True)
    y_axis = Axis([p.quality for p in points], HEIGHT - MARGIN_BOTTOM, MARGIN_TOP,
                  unit_interval=True)
    x_title = "perplexity on general text vs the base model (% change; right = forgets more)"
    parts = _svg_open(title) + _axes(x_axis, y_axis, x_title, y_title, WIDTH, HEIGHT)
    base_x = x_axis(0.0)
    parts.append(f'<line class="front" x1="{base_x:.1f}" x2="{base_x:.1f}" '
                 f'y1="{MARGIN_TOP}" y2="{HEIGHT - MARGIN_BOTTOM}"/>')
    parts.append(_text(base_x + 4, MARGIN_TOP + 10, "base model", "start", 11))
    centres = [(x_axis(p.change_pct), y_axis(p.quality)) for p in points]
    placed: list[tuple[float, float, float, float]] = []
    for point, (x, y) in zip(points, centres):
        colour = FAMILY_COLOURS.get(point.family, "#444")
        parts.append(f'<line x1="{x_axis(point.low_pct):.1f}" x2="{x_axis(point.high_pct):.1f}" '
                     f'y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2"/>')
        tooltip = (f"{point.label}: {y_title} {point.quality:.3f}, perplexity "
                   f"{point.change_pct:+.1f}% [{point.low_pct:+.1f}%, {point.high_pct:+.1f}%]")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{colour}">'
                     f"<title>{escape(tooltip)}</title></circle>")
        tx, ty, anchor = _label_position(x, y, point.label, centres, placed)
        parts.append(_text(tx, ty, point.label, anchor, size=11, extra='class="point-label"'))
    parts.append("</svg>")
    return Markup("".join(parts))


MAX_LINE_POINTS = 400  # a long training log is thinned to this many vertices per line
LOSS_COLOURS = {"train": "#ff7f0e", "validation": "#1f77b4"}


def loss_curve(series: dict[str, list[tuple[float, float]]], title: str,
               best_step: float | None = None) -> Markup:
    """Loss against the optimizer step, one line per series ("train", "validation"); a dashed
    vertical line marks the step whose weights were kept (the best validation loss)."""
    series = {name: sorted(points) for name, points in series.items() if points}
    if not series:
        return _empty(title, "No losses were logged for this candidate.")
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x_axis = Axis(xs, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, include_zero=True)
    y_axis = Axis(ys, HEIGHT - MARGIN_BOTTOM, MARGIN_TOP, log=wants_log(ys))
    y_label = f"loss{' — log scale' if y_axis.log else ''}"
    parts = _svg_open(title) + _axes(x_axis, y_axis, "optimizer step", y_label, WIDTH, HEIGHT)
    if best_step is not None and x_axis.low <= best_step <= x_axis.high:
        x = x_axis(best_step)
        parts.append(f'<line class="front" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" '
                     f'y2="{HEIGHT - MARGIN_BOTTOM}"><title>{escape(f"weights kept from step {best_step:g}")}'
                     f"</title></line>")
    for index, (name, points) in enumerate(series.items()):
        colour = LOSS_COLOURS.get(name, SERIES_COLOURS[index % len(SERIES_COLOURS)])
        stride = max(1, math.ceil(len(points) / MAX_LINE_POINTS))
        shown = points[::stride] if points[-1] in points[::stride] else points[::stride] + [points[-1]]
        path = " ".join(f"{x_axis(x):.1f},{y_axis(y):.1f}" for x, y in shown)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                     f"<title>{escape(f'{name} loss: {len(points)} points')}</title></polyline>")
        if len(points) <= 60:  # few points (evaluations): each gets a mark and a tooltip
            for x, y in points:
                parts.append(f'<circle cx="{x_axis(x):.1f}" cy="{y_axis(y):.1f}" r="3" fill="{colour}">'
                             f"<title>{escape(f'{name} loss {y:.4f} at step {x:g}')}</title></circle>")
        legend_x = WIDTH - MARGIN_RIGHT - 130
        legend_y = MARGIN_TOP + 6 + index * 16
        parts.append(f'<rect x="{legend_x}" y="{legend_y}" width="12" height="10" fill="{colour}"/>')
        parts.append(_text(legend_x + 16, legend_y + 9, f"{name} loss", "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


def confusion_matrix(labels: list[str], matrix: list[list[float]], title: str) -> Markup:
    """Counts per (true, predicted) label; cell shade = share of that true label's rows."""
    size = len(labels)
    if not size or len(matrix) != size or any(len(row) != size for row in matrix):
        return _empty(title, "The confusion matrix in the record is malformed.")
    cell = max(18, min(48, 360 // size))
    left, top = 150, 24
    width = left + cell * size + 24
    height = top + cell * size + 130
    parts = _svg_open(title, width, height)
    for row, true_label in enumerate(labels):
        total = sum(matrix[row]) or 1
        y = top + row * cell
        parts.append(_text(left - 6, y + cell * 0.62, _shorten(true_label), "end"))
        for column in range(size):
            count = matrix[row][column]
            share = count / total
            x = left + column * cell
            colour = f"rgba(31,119,180,{0.08 + 0.92 * share:.3f})"
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" stroke="#fff">'
                         f"<title>{escape(f'true {true_label}, predicted {labels[column]}: {count:g}')}</title></rect>")
            ink = "#fff" if share > 0.55 else "#222"
            parts.append(_text(x + cell / 2, y + cell * 0.62, f"{count:g}", size=11 if cell >= 28 else 9,
                               extra=f'fill="{ink}"'))
    for column, label in enumerate(labels):
        x = left + column * cell + cell / 2
        y = top + size * cell + 8
        parts.append(_text(x, y, _shorten(label), "end", extra=f'transform="rotate(-45 {x:.1f} {y})"'))
    parts.append(_text(left + size * cell / 2, height - 8, "predicted label", size=12, extra='class="axis-title"'))
    parts.append(_text(12, top + size * cell / 2, "true label", size=12,
                       extra=f'class="axis-title" transform="rotate(-90 12 {top + size * cell / 2:.1f})"'))
    parts.append("</svg>")
    return Markup("".join(parts))


def _shorten(text: str, limit: int = 22) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
