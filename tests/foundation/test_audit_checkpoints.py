"""The audit log survives someone who can write the database: every tampering below passes
the hash chains alone (or is caught by them), and every one fails against the signed
checkpoints, in the project and in the stand-alone offline verifier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from printsrv import PROJECT_ROOT, audit, checkpoints
from printsrv.audit import GENESIS_HASH, event_hash
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.keys import KeyStore
from printsrv.models import AuditCheckpoint, AuditEvent, AuditHead

STATION = "station:st1"
APPROVALS = "user:supervisor1"


def _log(settings: Settings) -> None:
    """Events on three chains (the main one, a station's, a supervisor's), then a checkpoint."""
    with unit_of_work(settings) as session:
        for n in range(3):
            audit.record(session, "intake:record:import", actor="cli", subject=f"PC-{n}")
    with unit_of_work(settings, audit_chain=STATION) as session:
        for n in range(4):
            audit.record(session, "station:card:issue", actor="st1", subject=f"PC-{n}",
                         details={"blank_serial": f"KTP-{n:06d}"})
    with unit_of_work(settings, audit_chain=APPROVALS) as session:
        audit.record(session, "web:reprint:approve", actor="supervisor1", subject="PC-1")
    with KeyStore.open(settings) as keys:
        checkpoints.checkpoint_now(settings, keys, reason="test")


def _verify(settings: Settings) -> tuple[bool, list[str]]:
    with unit_of_work(settings) as session:
        chains = audit.verify(session)
        anchored = checkpoints.verify(session, settings)
    return chains.ok and anchored.ok, [p.reason for p in chains.problems] + anchored.problems


def _rehash(session: Any, chain: str) -> None:
    """What a forger with database access does after an edit: recompute every hash."""
    previous = GENESIS_HASH
    events = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain)
                             .order_by(AuditEvent.chain_seq)).all()
    for ev in events:
        ev.prev_hash = previous
        ev.hash = event_hash(chain, ev.chain_seq, ev.at, ev.tag, ev.actor, ev.office_code,
                             ev.subject, ev.details, previous)
        previous = ev.hash
    session.execute(update(AuditHead).where(AuditHead.chain == chain).values(
        last_seq=events[-1].chain_seq if events else 0, last_hash=previous))


def _cut_tail(session: Any) -> None:
    session.execute(delete(AuditEvent).where(AuditEvent.chain == STATION,
                                             AuditEvent.chain_seq > 2))
    _rehash(session, STATION)


def _drop_chain(session: Any) -> None:
    session.execute(delete(AuditEvent).where(AuditEvent.chain == APPROVALS))
    session.execute(delete(AuditHead).where(AuditHead.chain == APPROVALS))


def _edit_and_rehash(session: Any) -> None:
    ev = session.scalars(select(AuditEvent).where(AuditEvent.chain == STATION,
                                                  AuditEvent.chain_seq == 2)).one()
    ev.details = {"blank_serial": "KTP-999999"}
    session.flush()
    _rehash(session, STATION)


def _edit_only(session: Any) -> None:
    session.execute(update(AuditEvent).where(AuditEvent.chain == STATION,
                                             AuditEvent.chain_seq == 1)
                    .values(actor="someone else"))


def _reorder(session: Any) -> None:
    one, two = session.scalars(select(AuditEvent).where(
        AuditEvent.chain == STATION, AuditEvent.chain_seq.in_([1, 2]))
        .order_by(AuditEvent.chain_seq)).all()
    one.subject, two.subject = two.subject, one.subject
    one.details, two.details = two.details, one.details


TAMPERINGS = {
    "delete a chain's tail and move its head back": _cut_tail,
    "delete a whole chain with its head row": _drop_chain,
    "edit an event and recompute every hash": _edit_and_rehash,
    "edit an event": _edit_only,
    "reorder events": _reorder,
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_every_tampering_fails_verify(settings: Settings, tampering: str) -> None:
    _log(settings)
    assert _verify(settings) == (True, [])
    with unit_of_work(settings) as session:
        TAMPERINGS[tampering](session)
    ok, problems = _verify(settings)
    assert not ok and problems, tampering


def test_the_rehashed_forgeries_pass_the_chains_alone(settings: Settings) -> None:
    """Without checkpoints these three would go unseen: the reason for the anchor."""
    for tampering in ("delete a chain's tail and move its head back",
                      "delete a whole chain with its head row",
                      "edit an event and recompute every hash"):
        _log(settings)
        with unit_of_work(settings) as session:
            TAMPERINGS[tampering](session)
            assert audit.verify(session).ok, tampering
        with unit_of_work(settings) as session:
            session.execute(delete(AuditEvent))
            session.execute(delete(AuditHead))
            session.execute(delete(AuditCheckpoint))
        checkpoints.anchor_file(settings).unlink()


def test_checkpoints_deleted_or_edited_are_seen(settings: Settings) -> None:
    _log(settings)
    path = checkpoints.anchor_file(settings)
    with unit_of_work(settings) as session:
        session.execute(delete(AuditCheckpoint))
    ok, problems = _verify(settings)
    assert not ok and any("deleted from the database" in p for p in problems)
    entry = json.loads(path.read_text().splitlines()[-1])
    body = json.loads(entry["body"])
    body["heads"][STATION]["seq"] = 1  # a forged, shorter anchor
    entry["body"] = json.dumps(body)
    path.write_text(json.dumps(entry) + "\n")
    ok, problems = _verify(settings)
    assert any("signature does not verify" in p for p in problems)


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url}
    env.pop("PRINTSRV_CONFIG", None)
    return subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_export_verifies_offline_and_fails_when_tampered(settings: Settings,
                                                         tmp_path: Path) -> None:
    _log(settings)
    done = _cli(settings, "run.py", "audit", "checkpoint", "--reason", "shift_end")
    assert done.returncode == 0, done.stderr
    assert _cli(settings, "run.py", "audit", "verify").returncode == 0
    good = tmp_path / "good"
    assert _cli(settings, "run.py", "audit", "export", "--out", str(good)).returncode == 0
    offline = subprocess.run([sys.executable, "-I", str(PROJECT_ROOT / "scripts" /
                              "verify_audit_export.py"), str(good)],
                             capture_output=True, text=True, timeout=120)
    assert offline.returncode == 0 and offline.stdout.startswith("OK"), offline.stdout
    with unit_of_work(settings) as session:
        _cut_tail(session)
    verify = _cli(settings, "run.py", "audit", "verify")
    assert verify.returncode == 1 and "shorter than checkpoint" in verify.stderr
    bad = tmp_path / "bad"
    assert _cli(settings, "run.py", "audit", "export", "--out", str(bad)).returncode == 0
    offline = subprocess.run([sys.executable, "-I", str(PROJECT_ROOT / "scripts" /
                              "verify_audit_export.py"), str(bad)],
                             capture_output=True, text=True, timeout=120)
    assert offline.returncode == 1 and "shorter than signed" in offline.stdout
