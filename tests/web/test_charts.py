"""Charts drawn on the server as SVG (no script, no CDN): cards per day, spoilage rates with
the outlier threshold, the ribbon's panels left with the forecast."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger import ribbons
from printsrv.ledger.models import ConsumableKind, Station
from printsrv.station.journal import CardJob, CardOutcome, CardPhase
from printsrv.web import charts
from tests.web.conftest import World, sign_in
from tests.web.stockdata import make_stock


def test_daily_bars_stack_issued_and_spoiled() -> None:
    svg = str(charts.daily_cards([(date(2026, 12, 1), 8, 2), (date(2026, 12, 2), 0, 0)],
                                 title="Kartu", issued_label="Terbit", spoiled_label="Rusak"))
    assert svg.startswith("<svg") and "<script" not in svg and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    issued = re.search(r'class="bar-issued" data-day="2026-12-01" data-n="8"[^>]*'
                       r'y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    spoiled = re.search(r'class="bar-spoiled" data-day="2026-12-01" data-n="2"[^>]*'
                        r'y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    assert issued and spoiled
    assert float(issued[2]) == pytest.approx(4 * float(spoiled[2]))  # 8 vs 2 cards
    assert float(spoiled[1]) + float(spoiled[2]) == pytest.approx(float(issued[1]))  # stacked


def test_rate_chart_draws_the_threshold_and_flags() -> None:
    svg = str(charts.spoilage_rates(
        [charts.RateBar("ST-1", 0.05, 20, 1, False), charts.RateBar("ST-<2>", 0.5, 20, 10, True)],
        title="Rusak", threshold=0.2, threshold_label="ambang", median=0.1, median_label="median"))
    assert 'class="threshold" data-rate="0.2000"' in svg
    assert 'class="rate flagged" data-subject="ST-&lt;2&gt;"' in svg  # escaped
    assert "ambang 20%" in svg and "<2>" not in svg
    x = {m[0]: float(m[1]) for m in re.findall(r'class="(threshold|median)"[^>]*x1="([\d.]+)"',
                                                svg)}
    assert x["threshold"] > x["median"]


def test_level_forecast_runs_to_zero() -> None:
    svg = str(charts.level_forecast([(0, 100), (1, 80), (2, 60)], [(2, 60), (5, 0)],
                                    title="Pita", x_labels=[(0, "01-12")], y_max=100,
                                    measured_label="tercatat", forecast_label="prakiraan"))
    assert 'class="measured"' in svg and 'class="forecast"' in svg
    last = re.search(r'class="forecast"[^>]*points="[^"]* ([\d.]+),([\d.]+)"', svg)
    assert last and float(last[2]) == pytest.approx(160.0)  # zero panels: the floor


@pytest.fixture
def busy(settings: Settings, world: World) -> dict[str, dict[str, str]]:
    """Three stations at 35.26.01 (20 cards each: 1, 10 and 1 spoiled), ST-OWN's ribbon
    used."""
    stock = make_stock(settings)
    now = datetime.now(UTC)
    with unit_of_work(settings) as s:
        own = s.scalars(select(Station).where(Station.name == "ST-OWN")).one()
        for name in ("ST-TWO", "ST-THREE"):
            s.add(Station(name=name, office_id=own.office_id, printer_status={}))
        record = world.records["own_issued"]
        for name, spoiled in (("ST-OWN", 1), ("ST-TWO", 10), ("ST-THREE", 1)):
            for i in range(20):
                s.add(CardJob(station=name, record_id=record, phase=CardPhase.FINISHED,
                              outcome=CardOutcome.SPOILED if i < spoiled else CardOutcome.ISSUED,
                              operator=f"op-{name}", finished_at=now - timedelta(hours=i)))
        ribbons.load_consumable(s, own, kind=ConsumableKind.RIBBON, serial="RIB-A1", actor="t",
                                at=now - timedelta(days=3))
        for day in range(3):
            for _ in range(10):
                ribbons.record_ribbon_usage(s, own, record_id=None, blank_serial="X",
                                            panels=5, printer_level=None, actor="t",
                                            at=now - timedelta(days=2 - day, hours=1))
    return stock


def test_pages_show_the_charts(app_nocsrf: Flask, settings: Settings,
                               busy: dict[str, dict[str, str]]) -> None:
    client = app_nocsrf.test_client()
    sign_in(client, settings, "supervisor_own")
    page = client.get("/ledger").get_data(as_text=True)
    chart = page.split('id="chart-daily"', 1)[1].split("</figure>", 1)[0]
    assert sum(int(n) for n in re.findall(r'class="bar-issued"[^>]*data-n="(\d+)"', chart)) == 48
    assert sum(int(n) for n in re.findall(r'class="bar-spoiled"[^>]*data-n="(\d+)"', chart)) == 12

    page = client.get("/anomalies").get_data(as_text=True)
    charts_part = page.split('id="rate-charts"', 1)[1].split("</section>", 1)[0]
    assert charts_part.count("<svg") == 2  # stations, operators (one stock type)
    assert 'class="rate flagged" data-subject="ST-TWO"' in charts_part
    assert 'class="rate" data-subject="ST-OWN"' in charts_part
    limit = re.search(r'class="threshold" data-rate="([\d.]+)"', charts_part)
    assert limit and float(limit[1]) == pytest.approx(0.1)  # 2 × the median 5 %

    page = client.get(f"/stations/{busy['own']['station']}").get_data(as_text=True)
    chart = page.split('id="chart-ribbon"', 1)[1].split("</figure>", 1)[0]
    assert "RIB-A1" in chart and 'class="forecast"' in chart
    empty_on = re.search(r"pita habis sekitar (\d\d-\d\d-\d{4})", chart)
    with unit_of_work(settings) as s:
        capacity = ribbons.consumable_by_serial(s, ConsumableKind.RIBBON, "RIB-A1").capacity_panels
    # 150 panels used in the three days since it was loaded (about 50 a day)
    assert empty_on
    day = datetime.strptime(empty_on[1], "%d-%m-%Y").date()
    expected = (capacity - 150) / (150 / (3 - 1 / 24))
    assert abs((day - date.today()).days - expected) <= 1.5
