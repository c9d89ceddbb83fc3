"""Number formatting shared by the HTML report, the terminal table and the plots.

Every formatter takes whatever a record holds (a number, None, a string from an old record) and
returns text; a missing value is an em dash, never "None" or "nan".
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def as_number(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / nan values."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_metric(value: Any) -> str:
    number = as_number(value)
    return MISSING if number is None else f"{number:.3f}"


def fmt_ci(interval: Any) -> str:
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return ""
    low, high = as_number(interval[0]), as_number(interval[1])
    if low is None or high is None:
        return ""
    return f"[{low:.3f}, {high:.3f}]"


def fmt_mb(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    if number >= 1024:
        return f"{number / 1024:.2f} GB"
    return f"{number:,.0f} MB" if number >= 10 else f"{number:.1f} MB"


def fmt_seconds(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    if number < 1:
        return f"{number * 1000:.0f} ms" if number > 0 else "0 s"
    if number < 60:
        return f"{number:.1f} s"
    minutes, seconds = divmod(round(number), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_count(value: Any) -> str:
    """Parameter counts: 0, 4,608, 1.2 M, 1.3 B."""
    number = as_number(value)
    if number is None:
        return MISSING
    if abs(number) >= 1e9:
        return f"{number / 1e9:.2f} B"
    if abs(number) >= 1e6:
        return f"{number / 1e6:.2f} M"
    return f"{number:,.0f}"


def fmt_rate(value: Any) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    return f"{number:,.0f}" if number >= 100 else f"{number:.1f}"


def fmt_usd(value: Any) -> str:
    """Dollars with enough digits to tell small costs apart: $0, $0.00042, $0.012, $1.25, $1,234."""
    number = as_number(value)
    if number is None:
        return MISSING
    if number == 0:
        return "$0"
    if abs(number) >= 100:
        return f"${number:,.0f}"
    if abs(number) >= 1:
        return f"${number:.2f}"
    if abs(number) < 1e-6:
        return "<$0.000001"
    # Two significant digits in plain decimals: $0.012, $0.00042 (readers misread 4.2e-4).
    decimals = -math.floor(math.log10(abs(number))) + 1
    return f"${number:.{decimals}f}"


def fmt_ms(value: Any) -> str:
    """Milliseconds (a request's latency): sub-millisecond values keep a decimal."""
    number = as_number(value)
    if number is None:
        return MISSING
    if number >= 1000:
        return fmt_seconds(number / 1000)
    return f"{number:.0f} ms" if number >= 10 else f"{number:.1f} ms"


def fmt_percent(value: Any, signed: bool = False) -> str:
    number = as_number(value)
    if number is None:
        return MISSING
    return f"{number:+.0%}" if signed else f"{number:.0%}"


def fmt_value(value: Any) -> str:
    """Config and info values: numbers compactly, lists and dicts as short JSON-ish text."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}={fmt_value(item)}" for key, item in value.items())
    return MISSING if value is None else str(value)
