"""Office time: zones by province (overridable), local card dates around midnight in all three
zones, local month boundaries of the stock report, and local times on pages and documents."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from printsrv import localtime
from printsrv.config import Settings, load_settings
from printsrv.errors import ConfigError
from printsrv.localtime import WIB, WIT, WITA, month_bounds, office_zone


@pytest.mark.parametrize(
    ("code", "zone"),
    [("11.01", WIB), ("35.26.01", WIB), ("36.71", WIB), ("61.71", WIB), ("62.01", WIB),
     ("51.71.01", WITA), ("53.01", WITA), ("63.71", WITA), ("64.72.01", WITA), ("65.01", WITA),
     ("71.71", WITA), ("76.01", WITA), ("81.71", WIT), ("82.01", WIT), ("91.71.01", WIT),
     ("96.01", WIT)],
)
def test_zone_by_province(code: str, zone: localtime.OfficeZone) -> None:
    assert office_zone(code, {}) is zone


def test_settings_override_the_longest_code_first(tmp_path: Path) -> None:
    overrides = {"62": "WITA", "62.01": "wit"}
    assert office_zone("62.01.05", overrides) is WIT
    assert office_zone("62.02", overrides) is WITA
    assert office_zone("35.26", overrides) is WIB
    conf = tmp_path / "p.toml"
    conf.write_text('[office_time_zones]\n"35.26" = "GMT"\n')
    with pytest.raises(ConfigError, match="WIB, WITA or WIT"):
        load_settings(conf)


def test_month_bounds_are_local() -> None:
    assert month_bounds("2026-12", WIB) == (datetime(2026, 11, 30, 17, tzinfo=UTC),
                                            datetime(2026, 12, 31, 17, tzinfo=UTC))
    assert month_bounds("2026-12", WIT)[0] == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert month_bounds("2026-12", WITA)[1] == datetime(2026, 12, 31, 16, tzinfo=UTC)


def test_format_names_the_zone() -> None:
    moment = datetime(2026, 12, 4, 23, 50, tzinfo=UTC)
    assert WIB.format(moment) == "2026-12-05 06:50 WIB"
    assert WITA.format(moment.replace(tzinfo=None)) == "2026-12-05 07:50 WITA"  # naive = UTC
    assert WIT.format(moment, seconds=True) == "2026-12-05 08:50:00 WIT"


# The card's issue date through the path a station takes (record → card input), with the
# clock frozen around midnight in each zone.
@pytest.mark.parametrize(
    ("office", "utc", "issued"),
    [
        ("35.26.01", "2026-12-04T23:50:00", date(2026, 12, 5)),   # 06:50 WIB
        ("35.26.01", "2026-12-04T16:59:00", date(2026, 12, 4)),   # 23:59 WIB
        ("35.26.01", "2026-12-04T17:00:00", date(2026, 12, 5)),   # 00:00 WIB
        ("51.71.01", "2026-12-04T15:59:00", date(2026, 12, 4)),   # 23:59 WITA
        ("51.71.01", "2026-12-04T16:00:00", date(2026, 12, 5)),   # 00:00 WITA
        ("91.71.01", "2026-12-04T14:59:00", date(2026, 12, 4)),   # 23:59 WIT
        ("91.71.01", "2026-12-04T15:00:00", date(2026, 12, 5)),   # 00:00 WIT
    ],
)
def test_card_issue_date_is_the_office_date(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    office: str, utc: str, issued: date,
) -> None:
    from sqlalchemy import select

    from printsrv.db import unit_of_work
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch
    from printsrv.keys import KeyStore
    from printsrv.layout.compose import field_values
    from printsrv.layout.render import template_for
    from printsrv.layout.template import load_template
    from printsrv.models import Record
    from printsrv.records import card_input_for

    batch = write_demo_batch(settings, 1, tmp_path / "b", seed=5, batch_id=f"TZ-{office}",
                             office_codes=[office])
    assert import_batch(settings, batch).accepted
    monkeypatch.setattr(localtime, "now_utc",
                        lambda: datetime.fromisoformat(utc).replace(tzinfo=UTC))
    with KeyStore.open(settings) as keys, unit_of_work(settings) as session:
        record = session.scalars(select(Record)).one()
        card = card_input_for(session, keys, record, actor="test", purpose="render")
    assert card.issue_date == issued
    values = field_values(load_template(template_for(card)), card)
    assert values["tanggal_terbit"] == issued.strftime("%d-%m-%Y")


def test_stock_report_months_are_the_office_months(settings: Settings) -> None:
    from sqlalchemy import update

    from printsrv.db import unit_of_work
    from printsrv.ledger.blanks import receive_blanks
    from printsrv.ledger.models import BlankMovement
    from printsrv.ledger.reports import stock_report
    from printsrv.offices import ensure_office

    with unit_of_work(settings) as session:
        ensure_office(session, "35.26.01", actor="test")
        ensure_office(session, "91.71.01", actor="test")
        for office, first in (("35.26.01", 1), ("91.71.01", 11)):
            receive_blanks(session, office_code=office, first=f"KTP-{first:06d}",
                           last=f"KTP-{first + 4:06d}", handover_number=f"BAST-{office}",
                           actor="test")
        # 30 November 16:30 UTC: 23:30 WIB on the 30th, 01:30 WIT on 1 December.
        session.execute(update(BlankMovement).values(at=datetime(2026, 11, 30, 16, 30,
                                                                 tzinfo=UTC)))
    with unit_of_work(settings) as session:
        assert stock_report(session, "35.26.01", "2026-11")["received"] == 5
        assert stock_report(session, "35.26.01", "2026-12")["received"] == 0
        assert stock_report(session, "91.71.01", "2026-11")["received"] == 0
        december = stock_report(session, "91.71.01", "2026-12")
        assert december["received"] == 5
        assert december["period"]["start"].startswith("2026-12-01T00:00:00+09:00")
