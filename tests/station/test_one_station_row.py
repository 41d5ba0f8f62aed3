"""A station is one row: migration 0029 moves the daemon's former runtime row onto the ledger's
station row, and the daemon, the requests and the pages all read and write that row."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from printsrv.config import Settings
from printsrv.db import engine_for, unit_of_work
from printsrv.ledger.blanks import get_or_create_station
from printsrv.ledger.models import Station, StationState
from printsrv.schema import alembic_config
from printsrv.station.requests import add_batch_request, request_resume


def _migrate(settings: Settings, target: str, *, down: bool = False) -> None:
    cfg = alembic_config(settings.sqlalchemy_url)
    with engine_for(settings.sqlalchemy_url).begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)


def test_migration_0029_moves_the_runtime_onto_the_station_row(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        for name in ("ST-A", "ST-B", "ST-C"):
            get_or_create_station(s, name, office_code="35.05", cups_queue="q", reader="r",
                                  profile="virtual")
    _migrate(settings, "0028", down=True)
    engine = engine_for(settings.sqlalchemy_url)
    with engine.begin() as conn:
        assert inspect(conn).has_table("station_runtime")
        conn.execute(text("UPDATE station SET state = 'idle' WHERE name = 'ST-C'"))
        conn.execute(text(
            "INSERT INTO station_runtime (name, mode, reason, pid, heartbeat_at, current_job_id,"
            " cards_issued, cards_spoiled, details, updated_at) VALUES"
            " ('ST-A', 'paused', 'cover open', 77, '2026-12-05 01:02:03+00', 9, 12, 3,"
            " '{\"batch\": 4, \"on_request\": true}', '2026-12-05 01:02:03+00'),"
            " ('GONE', 'stopped', NULL, 78, NULL, NULL, 1, 0, '{}', '2026-12-05 01:02:03+00')"))
    _migrate(settings, "head")
    with engine.begin() as conn:
        assert not inspect(conn).has_table("station_runtime")
    with unit_of_work(settings) as s:
        rows = {r.name: r for r in s.scalars(select(Station))}
        a = rows["ST-A"]
        assert (a.state, a.pause_reason, a.pid, a.current_job_id) == (
            StationState.PAUSED, "cover open", 77, 9)
        assert (a.cards_issued, a.cards_spoiled) == (12, 3)
        assert a.details == {"batch": 4, "on_request": True} and a.has_run
        assert rows["ST-B"].state is StationState.OFFLINE and not rows["ST-B"].has_run
        assert rows["ST-B"].details == {} and rows["ST-B"].cards_issued == 0
        assert rows["ST-C"].state is StationState.STOPPED  # "idle" was never a daemon's word
        assert "GONE" not in rows  # a runtime row without a station held no blank


def test_requests_go_to_a_station_that_has_run_and_nowhere_else(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        row = get_or_create_station(s, "ST-A", office_code="35.05", cups_queue="q",
                                    reader="r", profile="virtual")
        # registered, never started: a request would wait for nobody
        assert add_batch_request(s, "ST-A", 2, actor="siti") is None
        assert request_resume(s, "ST-A") is False
        assert add_batch_request(s, "NOPE", 2, actor="siti") is None
        row.pid, row.state = 4242, StationState.RUNNING
        assert add_batch_request(s, "ST-A", 2, actor="siti") == 2
        assert add_batch_request(s, "ST-A", 3, actor="siti") == 5
        assert request_resume(s, "ST-A") is True
    with unit_of_work(settings) as s:
        row = s.scalars(select(Station).where(Station.name == "ST-A")).one()
        assert row.details == {"batch": 5, "operator": "siti", "resume": True}
