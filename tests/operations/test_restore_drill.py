"""The restore drill: back up mid-batch, restore on a fresh instance, and the audit log, the
ledger check and the monthly report equal the original's; the restored instance does not print
until a supervisor acknowledges."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv import audit, backup
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger.check import check_ledger
from printsrv.ledger.reports import stock_report
from printsrv.models import Record, RecordState
from printsrv.station.journal import CardOutcome
from tests.station.conftest import OFFICE, make_rig

KEY = bytes(range(1, 33))


def _evidence(settings: Settings) -> dict[str, Any]:
    month = datetime.now(UTC).strftime("%Y-%m")
    with unit_of_work(settings) as session:
        chain = audit.verify(session)
        ledger = check_ledger(session)
        return {
            "audit_ok": chain.ok,
            "audit_events": chain.events,
            "ledger": ledger.as_dict(),
            "report": {k: v for k, v in stock_report(session, OFFICE, month).items()
                       if k not in ("generated_at", "generated_at_local")},
            "states": sorted(
                (r.request_id, r.state.value) for r in session.scalars(select(Record))
            ),
        }


def test_restore_mid_batch_equals_the_original(
    settings: Settings, tmp_path: Path, empty_instance: Settings
) -> None:
    with make_rig(settings, tmp_path, records=8, blanks=12) as rig:
        results = rig.station().run(max_cards=3)
        assert [r.outcome for r in results] == [CardOutcome.ISSUED] * 3
    original = _evidence(settings)
    assert original["audit_ok"] and original["ledger"]["ok"]
    assert ("queued" in {s for _, s in original["states"]})  # mid-batch: cards still to make

    path = backup.create_backup(settings, tmp_path / "b.ktpbak", KEY, with_token=True).path
    assert path.stat().st_mode & 0o777 == 0o600
    backup.restore_backup(empty_instance, path, KEY, actor="drill")

    restored = _evidence(empty_instance)
    assert restored["audit_ok"]
    assert restored["audit_events"] == original["audit_events"] + 1  # + the restore event
    assert restored["ledger"] == original["ledger"]
    assert restored["report"] == original["report"]
    assert restored["states"] == original["states"]
    # The token came along: a queued record's biometrics still decrypt.
    from printsrv.keys import KeyStore
    from printsrv.records import decrypt_record_media

    with KeyStore.open(empty_instance) as keys, unit_of_work(empty_instance) as session:
        queued = session.scalars(select(Record).where(Record.state == RecordState.QUEUED)).first()
        assert queued is not None and decrypt_record_media(session, keys, queued)


def test_backup_while_a_station_prints_is_consistent(
    settings: Settings, tmp_path: Path, empty_instance: Settings
) -> None:
    with make_rig(settings, tmp_path, records=10, blanks=12) as rig:
        station = rig.station()
        done = threading.Event()
        worker = threading.Thread(target=lambda: (station.run(until_empty=True), done.set()))
        worker.start()
        try:
            path = backup.create_backup(settings, tmp_path / "live.ktpbak", KEY).path
        finally:
            worker.join(timeout=120)
        assert done.is_set()
    backup.restore_backup(empty_instance, path, KEY)
    restored = _evidence(empty_instance)
    assert restored["audit_ok"], "a backup taken under load must hold whole chains"
    assert restored["ledger"]["ok"], restored["ledger"]["problems"]


def test_restore_refuses_an_instance_with_data(settings: Settings, tmp_path: Path) -> None:
    with make_rig(settings, tmp_path, records=2, blanks=2):
        pass
    path = backup.create_backup(settings, tmp_path / "b.ktpbak", KEY).path
    with pytest.raises(backup.BackupError, match="holds data"):
        backup.restore_backup(settings, path, KEY)


def test_restore_behind_the_anchor_holds_every_station(
    settings: Settings, tmp_path: Path, empty_instance: Settings
) -> None:
    with make_rig(settings, tmp_path, records=6, blanks=10) as rig:
        rig.station().run(max_cards=2)
        old = backup.create_backup(settings, tmp_path / "old.ktpbak", KEY, with_token=True).path
        rig.station().run(max_cards=2)  # two more cards after the backup
        anchor = backup.create_backup(settings, tmp_path / "new.ktpbak", KEY).manifest

    summary = backup.restore_backup(empty_instance, old, KEY, anchor=anchor)
    assert summary.behind, "the restore must see that the ledger went back in time"
    assert "behind the anchor" in summary.hold_reason
    with unit_of_work(empty_instance) as session:
        assert backup.active_hold(session) == summary.hold_reason

    # A station of the restored instance pauses with the hold and prints nothing.
    from printsrv.station.reasons import PRINT_HOLD

    with make_rig_on(empty_instance, rig) as station:
        assert station.device_problem() == PRINT_HOLD + summary.hold_reason
        with unit_of_work(empty_instance) as session:
            assert backup.acknowledge_holds(session, by="supervisor1") == 1
        station._hold_checked_at = float("-inf")
        assert station.device_problem() is None


@contextmanager
def make_rig_on(settings: Settings, rig: Any) -> Iterator[Any]:
    """A station of the restored instance with the original rig's stand-in devices."""
    from printsrv.keys import KeyStore
    from printsrv.station.daemon import Station

    with KeyStore.open(settings) as keys:
        yield Station(settings, rig.config, rig.printer, rig.encoder, keys=keys, idle_sleep=0.01)


def test_the_signed_checkpoints_show_a_rewound_ledger(
    settings: Settings, tmp_path: Path, empty_instance: Settings
) -> None:
    """The checkpoints file outside the database (stations sign one after every card) is the
    anchor: a restore older than it is held, and after the supervisor acknowledges, the old
    file is kept aside and the restored log verifies again."""
    from printsrv import checkpoints

    with make_rig(settings, tmp_path, records=6, blanks=10) as rig:
        rig.station().run(max_cards=2)
        old = backup.create_backup(settings, tmp_path / "old.ktpbak", KEY, with_token=True).path
        rig.station().run(max_cards=2)  # two cards signed after the backup
    # The auditors' copy of the checkpoints travels to the replacement machine.
    anchor = tmp_path / "auditors-checkpoints.jsonl"
    anchor.write_bytes(checkpoints.anchor_file(settings).read_bytes())
    summary = backup.restore_backup(empty_instance, old, KEY, anchor_checkpoints=anchor)
    assert summary.behind.get("station:st1", 0) >= 2, summary.behind
    # Its own file (had the folder survived) is an anchor as well.
    target = checkpoints.anchor_file(empty_instance)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(anchor.read_bytes())
    with unit_of_work(empty_instance) as session:
        assert not checkpoints.verify(session, empty_instance).ok  # it says so
        assert backup.acknowledge_holds(session, by="supervisor1", settings=empty_instance)
    kept = list(target.parent.glob("checkpoints.jsonl.before-restore-*"))
    assert len(kept) == 1 and not target.exists()
    with unit_of_work(empty_instance) as session:
        assert checkpoints.verify(session, empty_instance).ok
