"""Money from measured seconds, with an editable price table (bench/prices.toml).

    prices = load_prices()                       # or load_prices("my_prices.toml")
    row = price_row_for(hardware, prices)        # detected: "cpu", "h100", ...
    row = price_row_for(hardware, prices, price_as="h100")   # a projection
    cost = candidate_cost(adapt_s=120, predict_s=30, test_rows=300, row=row)
    # {"adapt": 0.0028, "predict": 0.0007, "per_1k_requests": 0.0024}

Serving cost per 1,000 requests comes from the measured prediction latency per test row, so
candidates with long prompts (few-shot, RAG) pay for them here.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import TunewiseError

DEFAULT_PRICES = Path(__file__).with_name("prices.toml")


@dataclass(frozen=True)
class PriceRow:
    name: str
    usd_per_hour: float
    description: str = ""
    projected: bool = False  # priced with --price-as rather than the detected hardware


def load_prices(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The price table: `path`, else $TUNEWISE_PRICES, else the bundled prices.toml."""
    chosen = Path(path or os.environ.get("TUNEWISE_PRICES") or DEFAULT_PRICES)
    try:
        table = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TunewiseError(f"price table {chosen} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise TunewiseError(f"price table {chosen} is not valid TOML: {exc}") from None
    for name, row in table.items():
        if not isinstance(row, dict) or not any(
                isinstance(row.get(key), (int, float))
                for key in ("usd_per_hour", "usd_per_core_hour")):
            raise TunewiseError(f"price table {chosen}: row [{name}] needs usd_per_hour "
                                "(or usd_per_core_hour) as a number")
    return table


def _row(name: str, entry: dict[str, Any], cores: int, projected: bool) -> PriceRow:
    if "usd_per_hour" in entry:
        per_hour = float(entry["usd_per_hour"])
    else:
        per_hour = float(entry["usd_per_core_hour"]) * max(cores, 1)
    return PriceRow(name, per_hour, str(entry.get("description", "")), projected)


def detected_row_name(hardware: dict[str, Any], prices: dict[str, dict[str, Any]]) -> str:
    """The row whose `match` appears in the GPU's name; `cpu` without a GPU."""
    gpu = (hardware.get("gpu") or "").upper()
    if gpu:
        for name, entry in prices.items():
            match = str(entry.get("match", "")).upper()
            if match and match in gpu:
                return name
    return "cpu" if "cpu" in prices else next(iter(prices))


def price_row_for(hardware: dict[str, Any], prices: dict[str, dict[str, Any]],
                  price_as: str | None = None) -> PriceRow:
    cores = int(hardware.get("cores") or 1)
    if price_as:
        key = price_as.lower()
        if key not in prices:
            close = difflib.get_close_matches(key, list(prices), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TunewiseError(f"--price-as {price_as!r} is not a row of the price table.{hint} "
                                f"Rows: {', '.join(prices)}")
        detected = detected_row_name(hardware, prices)
        return _row(key, prices[key], cores, projected=key != detected)
    name = detected_row_name(hardware, prices)
    return _row(name, prices[name], cores, projected=False)


def dollars(seconds: float, row: PriceRow) -> float:
    return max(seconds, 0.0) * row.usd_per_hour / 3600.0


def candidate_cost(*, adapt_s: float, predict_s: float, test_rows: int,
                   row: PriceRow) -> dict[str, float]:
    """Cost of adapting, of predicting the test split, and per 1,000 served requests."""
    per_request_s = predict_s / test_rows if test_rows else 0.0
    return {
        "adapt": dollars(adapt_s, row),
        "predict": dollars(predict_s, row),
        "per_1k_requests": dollars(per_request_s * 1000, row),
    }
