"""A stocked station: imported demo records, blanks received and loaded, a ribbon loaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import Record, RecordState
from printsrv.station.devices import FakeEncoder, StationConfig

OFFICE = "35.26.01"
FAKE_PDF = b"%PDF-1.4\n% station test card\n"


def stock_station(
    settings: Settings,
    tmp: Path,
    *,
    records: int,
    blanks: int,
    name: str = "st1",
    office: str = OFFICE,
    seed: int = 3,
    first_serial: int = 1,
    ribbon: bool = True,
) -> StationConfig:
    """Import ``records`` demo records for ``office`` and load ``blanks`` into station ``name``."""
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch
    from printsrv.ledger.blanks import get_or_create_station, load_blanks, receive_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable, receive_consumable

    batch = write_demo_batch(settings, records, tmp / f"batch-{name}-{seed}", seed=seed,
                             batch_id=f"T-{name}-{seed}", office_codes=[office])
    result = import_batch(settings, batch)
    assert result.accepted, result.problems
    config = StationConfig(name=name, office=office, profile="virtual-ipp-card",
                           cups_queue="Card1", reader="Virtual PCD 00 00", poll_interval=0.05,
                           printer="directory")
    with unit_of_work(settings) as session:
        receive_blanks(session, office_code=office, first=f"KTP-{first_serial:06d}",
                       last=f"KTP-{first_serial + blanks - 1:06d}",
                       handover_number=f"BAST-{name}-{first_serial}", actor="test")
        station = get_or_create_station(session, name, office_code=office, cups_queue="Card1",
                                        reader="Virtual PCD 00 00", profile="virtual-ipp-card",
                                        actor="test")
        load_blanks(session, station, actor="test", count=blanks)
        if ribbon:
            receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=office,
                               serial=f"RIB-{name}", type_="YMCKOK", capacity=200, actor="test")
            load_consumable(session, station, kind=ConsumableKind.RIBBON, serial=f"RIB-{name}",
                            actor="test")
    return config


@dataclass
class Rig:
    settings: Settings
    config: StationConfig
    printer: Any
    encoder: FakeEncoder
    keys: Any

    def station(self, **kw: Any) -> Any:
        from printsrv.station.daemon import Station

        kw.setdefault("render", lambda card: FAKE_PDF)
        return Station(self.settings, self.config, self.printer, self.encoder, keys=self.keys,
                       idle_sleep=0.01, **kw)


@contextmanager
def make_rig(settings: Settings, tmp_path: Path, *, records: int = 5,
             blanks: int = 12) -> Iterator[Rig]:
    """Stock a station, then open the token (one logged-in session per process)."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv.keys import KeyStore

    config = stock_station(settings, tmp_path, records=records, blanks=blanks)
    printer = DirectoryPrinter(tmp_path / "cards", get_profile(config.profile), name="st1")
    with KeyStore.open(settings) as keys:
        yield Rig(settings, config, printer, FakeEncoder(), keys)


@pytest.fixture
def rig(settings: Settings, tmp_path: Path) -> Iterator[Rig]:
    """Station ``st1``: 5 queued records, 12 blanks, a directory printer and a fake encoder."""
    with make_rig(settings, tmp_path) as r:
        yield r


def ledger_problems(settings: Settings) -> list[str]:
    """Invariants a station must never break, whatever happened.

    A record is issued on one blank, plus one more for every approved reprint of it while
    issued (issued → queued, reason "reprint"); an issued record's biometrics are shredded,
    or kept with a due time inside the reprint window."""
    from printsrv.audit import AuditTag
    from printsrv.ledger.models import Blank, BlankMovement, BlankState, MovementKind
    from printsrv.models import AuditEvent, RecordKey
    from printsrv.station.journal import CardJob, CardOutcome

    problems: list[str] = []
    with unit_of_work(settings) as session:
        issued = dict(
            session.execute(
                select(BlankMovement.record_id, func.count())
                .join(Blank, Blank.id == BlankMovement.blank_id)
                .where(BlankMovement.kind == MovementKind.ISSUE,
                       Blank.state == BlankState.ISSUED)
                .group_by(BlankMovement.record_id)
            ).all()
        )
        reprints: dict[str, int] = {}
        for subject, details in session.execute(
            select(AuditEvent.subject, AuditEvent.details)
            .where(AuditEvent.tag == AuditTag.RECORD_STATE_CHANGE)
        ):
            if (details.get("from"), details.get("to"), details.get("reason")) == (
                "issued", "queued", "reprint"
            ):
                reprints[subject] = reprints.get(subject, 0) + 1
        for rec in session.scalars(select(Record)):
            n = issued.get(rec.id, 0)
            expected = reprints.get(rec.request_id, 0) + (rec.state is RecordState.ISSUED)
            if n != expected:
                problems.append(f"record {rec.request_id} ({rec.state}) issued on {n} blanks, "
                                f"expected {expected}")
            if rec.state is RecordState.ISSUED and rec.media_purged_at is None:
                if rec.media_purge_due is None:
                    problems.append(f"record {rec.request_id} issued but biometrics kept")
                elif session.get(RecordKey, rec.id) is None:
                    problems.append(f"record {rec.request_id} waits for a purge without a key")
        for blank in session.scalars(select(Blank).where(Blank.state == BlankState.RESERVED)):
            open_job = session.scalar(select(CardJob).where(
                CardJob.blank_serial == blank.serial, CardJob.outcome.is_(None)))
            if open_job is None:
                problems.append(f"blank {blank.serial} reserved without an open card job")
        jobs_issued = session.scalar(select(func.count()).select_from(CardJob).where(
            CardJob.outcome == CardOutcome.ISSUED))
        if jobs_issued != sum(issued.values()):
            problems.append(f"{jobs_issued} issued card jobs vs {sum(issued.values())} blanks")
        printing = session.scalars(select(Record).where(Record.state == RecordState.PRINTING))
        for rec in printing:
            open_job = session.scalar(select(CardJob).where(
                CardJob.record_id == rec.id, CardJob.outcome.is_(None)))
            if open_job is None:
                problems.append(f"record {rec.request_id} printing without an open card job")
    return problems


def counts(settings: Settings) -> dict[str, int]:
    with unit_of_work(settings) as session:
        rows = session.execute(select(Record.state, func.count()).group_by(Record.state)).all()
    return {state.value: n for state, n in rows}
