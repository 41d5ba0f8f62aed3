"""Audit verify hashes the stored canonical bytes; logs written before (details stored through
the JSON type's serializer) keep verifying, and migration 0021 rewrites them canonically."""

from __future__ import annotations

import importlib
import json

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import text

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import session_factory, unit_of_work

DETAILS = {"name": "Siti Nurhaliza — Kab. Blitar", "b": [1, 2.5, None], "a": {"z": 1, "y": "ü"}}


def _stored_details(settings: Settings) -> list[str]:
    with session_factory(settings)() as s:
        col = "details::text" if s.connection().dialect.name == "postgresql" else "details"
        return list(s.scalars(text(f"SELECT {col} FROM audit_event ORDER BY seq")))


def _verify(settings: Settings) -> audit.ChainReport:
    with session_factory(settings)() as s:
        return audit.verify(s)


def test_details_are_stored_as_the_canonical_json_that_was_hashed(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        audit.record(s, "test:chain:event", actor="t", details=DETAILS)
    assert _stored_details(settings)[-1] == audit.canonical_json(DETAILS)
    assert _verify(settings).ok


def test_legacy_details_verify_and_the_migration_makes_them_canonical(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        audit.record(s, "test:chain:event", actor="t", details=DETAILS)
        audit.record(s, "test:chain:event", actor="t", details={"i": 2})
    legacy = json.dumps(json.loads(audit.canonical_json(DETAILS)))  # ", " and \u escapes
    with unit_of_work(settings) as s:
        cast = "CAST(:d AS json)" if s.connection().dialect.name == "postgresql" else ":d"
        s.execute(text(f"UPDATE audit_event SET details = {cast} WHERE tag = 'test:chain:event'"
                       " AND chain_seq = (SELECT max(chain_seq) - 1 FROM audit_event)"),
                  {"d": legacy})
    assert legacy in _stored_details(settings)
    assert _verify(settings).ok  # the slow, exact path for a row not stored canonically

    migration = importlib.import_module(
        "printsrv.migrations.versions.0028_audit_canonical_details")
    with unit_of_work(settings) as s:
        conn = s.connection()
        with Operations.context(MigrationContext.configure(conn)):
            migration.upgrade()
    assert legacy not in _stored_details(settings)
    assert audit.canonical_json(DETAILS) in _stored_details(settings)
    assert _verify(settings).ok


def test_an_edit_of_the_stored_details_is_still_found(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        audit.record(s, "test:chain:event", actor="t", details={"nik": "3505010101900001"})
    with unit_of_work(settings) as s:
        cast = "CAST(:d AS json)" if s.connection().dialect.name == "postgresql" else ":d"
        s.execute(text(f"UPDATE audit_event SET details = {cast} WHERE tag = 'test:chain:event'"),
                  {"d": '{"nik": "3505010101900002"}'})
    report = _verify(settings)
    assert not report.ok and "edited" in report.problems[0].reason


def test_progress_counts_every_event_and_event_count_agrees(settings: Settings) -> None:
    with unit_of_work(settings) as s:
        for i in range(7):
            audit.record(s, "test:chain:event", actor="t", details={"i": i},
                         chain=None if i % 2 else "station:st-x")
    steps: list[int] = []
    with session_factory(settings)() as s:
        report = audit.verify(s, progress=steps.append)
        expected = audit.event_count(s)
    assert report.ok and sum(steps) == report.events == expected >= 7
