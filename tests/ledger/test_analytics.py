"""Spoilage outliers: one computation (printsrv.ledger.analytics) for the anomalies page and
the stations page, which used different maths and could disagree."""

from __future__ import annotations

from typing import Any

import pytest

from printsrv.ledger import analytics

# Four stations (an even count): the median is the mean of the middle two (10 % and 20 %).
TOTALS = {"st1": (100, 5), "st2": (100, 10), "st3": (100, 20), "st4": (100, 31)}


def test_the_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert analytics.median([0.05, 0.10, 0.20, 0.31]) == pytest.approx(0.15)
    found = analytics.outliers(TOTALS, factor=2.0)
    assert [o.subject for o in found] == ["st4"]  # 31 % > 2 × 15 %; an upper median (20 %)
    assert found[0].median == pytest.approx(0.15)  # would have said nothing is wrong


def test_few_cards_and_lone_stations_are_not_judged() -> None:
    assert analytics.outliers({"st1": (9, 9), "st2": (100, 1)}) == []
    assert analytics.outliers({"st1": (100, 50)}) == []


def test_both_pages_flag_the_same_stations(monkeypatch: pytest.MonkeyPatch) -> None:
    from printsrv.web import anomalies, ledger_services

    monkeypatch.setattr(analytics, "station_stock_totals",
                        lambda session, ids: {(k, "KTP-EL"): list(v) for k, v in TOTALS.items()})
    monkeypatch.setattr(anomalies, "visible_office_ids", lambda session, office: [1])
    monkeypatch.setattr(ledger_services, "visible_office_ids", lambda session, office: [1])
    office: Any = object()
    page = {f.subject for f in anomalies.station_spoilage(None, office)}  # type: ignore[arg-type]
    stations = {line.split(":")[0] for line in ledger_services.spoilage_flags(None, office)}  # type: ignore[arg-type]
    assert page == stations == {"st4"}
