"""Cost arithmetic and the price table."""

from __future__ import annotations

import pytest

from bench import cost
from bench.errors import TunewiseError

CPU_BOX = {"cores": 2, "gpu": None}
H100_BOX = {"cores": 16, "gpu": "NVIDIA H100 80GB HBM3"}


def test_bundled_table_has_the_documented_rows():
    prices = cost.load_prices()
    assert {"cpu", "laptop", "t4", "l4", "a10g", "a100", "h100", "h200"} <= set(prices)


def test_candidate_cost_arithmetic():
    row = cost.PriceRow("h100", usd_per_hour=3.6)  # $0.001 per second
    result = cost.candidate_cost(adapt_s=100, predict_s=20, test_rows=200, row=row)
    assert result["adapt"] == pytest.approx(0.1)
    assert result["predict"] == pytest.approx(0.02)
    # 0.1 s per request -> 100 s per 1,000 requests -> $0.10
    assert result["per_1k_requests"] == pytest.approx(0.1)
    assert cost.candidate_cost(adapt_s=0, predict_s=5, test_rows=0, row=row)[
        "per_1k_requests"] == 0.0


def test_cpu_row_scales_with_cores():
    prices = cost.load_prices()
    row = cost.price_row_for(CPU_BOX, prices)
    assert row.name == "cpu" and not row.projected
    assert row.usd_per_hour == pytest.approx(2 * prices["cpu"]["usd_per_core_hour"])


def test_gpu_detected_by_name_and_price_as_projects():
    prices = cost.load_prices()
    assert cost.price_row_for(H100_BOX, prices).name == "h100"
    projected = cost.price_row_for(CPU_BOX, prices, price_as="H100")
    assert projected.name == "h100" and projected.projected
    assert projected.usd_per_hour == prices["h100"]["usd_per_hour"]
    # pricing an H100 machine "as h100" is not a projection
    assert not cost.price_row_for(H100_BOX, prices, price_as="h100").projected


def test_unknown_row_suggests_the_closest():
    with pytest.raises(TunewiseError, match="Did you mean 'a100'"):
        cost.price_row_for(CPU_BOX, cost.load_prices(), price_as="a1000")


def test_user_table_replaces_the_bundled_one(tmp_path, monkeypatch):
    table = tmp_path / "prices.toml"
    table.write_text('[cpu]\nusd_per_hour = 7.2\n[mygpu]\nusd_per_hour = 36\nmatch = "RTX"\n')
    prices = cost.load_prices(table)
    assert cost.price_row_for({"cores": 4, "gpu": "NVIDIA RTX 4090"}, prices).name == "mygpu"
    row = cost.price_row_for(CPU_BOX, prices)
    assert cost.dollars(3600, row) == pytest.approx(7.2)
    monkeypatch.setenv("TUNEWISE_PRICES", str(table))
    assert set(cost.load_prices()) == {"cpu", "mygpu"}


def test_bad_tables_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[cpu\n")
    with pytest.raises(TunewiseError, match="not valid TOML"):
        cost.load_prices(bad)
    bad.write_text('[cpu]\nusd_per_hour = "cheap"\n')
    with pytest.raises(TunewiseError, match="needs usd_per_hour"):
        cost.load_prices(bad)
    with pytest.raises(TunewiseError, match="not found"):
        cost.load_prices(tmp_path / "missing.toml")
