"""The event outbox: every state change others must learn of, written with the change, delivered
at least once and in an order no late commit can overtake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printsrv import outbox
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import OutboxEvent, Record, RecordState
from printsrv.records import transition
from tests.station.conftest import OFFICE, make_rig, stock_station

ROOT = Path(__file__).resolve().parents[2]


def _events(settings: Settings, topic: str | None = None) -> list[OutboxEvent]:
    with unit_of_work(settings) as session:
        stmt = select(OutboxEvent).order_by(OutboxEvent.tx, OutboxEvent.id)
        if topic:
            stmt = stmt.where(OutboxEvent.topic == topic)
        return list(session.scalars(stmt))


def _import(settings: Settings, tmp: Path, count: int, *, held: int = 0) -> None:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    batch = write_demo_batch(settings, count, tmp / "batch", seed=11, batch_id="OUTBOX-1",
                             office_codes=[OFFICE], held=held)
    result = import_batch(settings, batch)
    assert result.accepted, result.problems


def test_import_publishes_every_record_entering(settings: Settings, tmp_path: Path) -> None:
    _import(settings, tmp_path, 6, held=2)
    events = _events(settings, "record.state")
    with unit_of_work(settings) as session:
        states = {r.request_id: r.state.value for r in session.scalars(select(Record))}
    assert len(events) == 6 and len({e.event_id for e in events}) == 6
    assert {e.subject: e.payload["to"] for e in events} == states
    assert Counter(states.values()) == {"queued": 4, "held": 2}
    assert all(e.payload["from"] is None and e.office_code == OFFICE for e in events)


def test_a_change_rolled_back_publishes_nothing(settings: Settings, tmp_path: Path) -> None:
    _import(settings, tmp_path, 2)
    before = len(_events(settings))
    with pytest.raises(RuntimeError), unit_of_work(settings) as session:
        record = session.scalars(select(Record)).first()
        assert record is not None
        transition(session, record, RecordState.HELD, actor="t", reason="check")
        assert len(session.scalars(select(OutboxEvent)).all()) == before + 1  # inside: there
        raise RuntimeError("the change fails after its event was written")
    assert len(_events(settings)) == before
    with unit_of_work(settings) as session:
        record = session.scalars(select(Record)).first()
        assert record is not None
        transition(session, record, RecordState.HELD, actor="t", reason="check")
        transition(session, record, RecordState.QUEUED, actor="t", reason="released")
        transition(session, record, RecordState.CANCELLED, actor="t", reason="duplicate")
    moves = [(e.payload["from"], e.payload["to"]) for e in _events(settings, "record.state")]
    assert moves[-3:] == [("queued", "held"), ("held", "queued"), ("queued", "cancelled")]


def test_a_station_publishes_issues_and_every_movement(settings: Settings,
                                                       tmp_path: Path) -> None:
    with make_rig(settings, tmp_path, records=3, blanks=4) as rig:
        rig.station().run(until_empty=True)
    issued = [e for e in _events(settings, "record.state") if e.payload["to"] == "issued"]
    assert len(issued) == 3
    blanks = _events(settings, "blank.movement")
    kinds = Counter(e.payload["kind"] for e in blanks)
    assert kinds["receive"] == 4 and kinds["load"] == 4 and kinds["issue"] == 3
    issue_events = [e for e in blanks if e.payload["kind"] == "issue"]
    assert {e.payload["request_id"] for e in issue_events} == {e.subject for e in issued}
    assert all(e.payload["station"] == "st1" and e.payload["stock_type"] for e in issue_events)
    ribbon = _events(settings, "ribbon.movement")
    actions = Counter(e.payload["action"] for e in ribbon)
    assert actions["ledger:ribbon:usage"] == 3 and actions["ledger:ribbon:load"] == 1
    # Positions are strictly increasing and ids stable: what a consumer's cursor relies on.
    everything = _events(settings)
    positions = [(e.tx, e.id) for e in everything]
    assert positions == sorted(set(positions))


def _apply_into(seen: list[str]) -> outbox.Handler:
    def handler(_session: Any, events: list[outbox.Event]) -> None:
        seen.extend(e.event_id for e in events)

    return handler


def test_delivery_is_at_least_once_and_a_failure_is_shown(settings: Settings,
                                                          tmp_path: Path) -> None:
    _import(settings, tmp_path, 5)
    uow = lambda: unit_of_work(settings)  # noqa: E731
    with uow() as session:
        outbox.register(session, "sms")
    seen: list[str] = []

    def failing(_session: Any, events: list[outbox.Event]) -> None:
        seen.extend(e.event_id for e in events)
        raise ConnectionError("gateway down")

    with pytest.raises(ConnectionError):
        outbox.deliver(uow, "sms", failing, limit=3)
    with uow() as session:
        [state] = outbox.status(session)
    assert state.pending == 5 and state.delivered == 0 and "gateway down" in (state.error or "")
    again: list[str] = []
    assert outbox.deliver(uow, "sms", _apply_into(again), limit=3) == 3
    assert again == seen  # the same events, in the same order
    assert outbox.deliver(uow, "sms", _apply_into(again), limit=3) == 2
    assert outbox.deliver(uow, "sms", _apply_into(again), limit=3) == 0
    all_ids = [e.event_id for e in _events(settings)]
    assert again == all_ids
    with uow() as session:
        [state] = outbox.status(session)
    assert (state.pending, state.delivered, state.error) == (0, 5, None)


def test_a_late_commit_is_never_skipped(settings: Settings, tmp_path: Path) -> None:
    """PostgreSQL takes ids before commit: an event with a smaller id may commit after a larger
    one. The consumer must neither skip it nor see the larger one first."""
    if not settings.is_postgres:
        pytest.skip("SQLite writers take turns; ids are commit order")
    uow = lambda: unit_of_work(settings)  # noqa: E731
    with uow() as session:
        outbox.register(session, "sync")
    first_written = threading.Event()
    may_commit = threading.Event()

    def slow_writer() -> None:
        with uow() as session:
            outbox.publish(session, "test.slow", office_code=None, subject="slow", payload={})
            first_written.set()
            assert may_commit.wait(10)

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert first_written.wait(10)
    with uow() as session:
        outbox.publish(session, "test.fast", office_code=None, subject="fast", payload={})
    seen: list[str] = []

    def record_subjects(_session: Any, events: list[outbox.Event]) -> None:
        seen.extend(e.subject or "" for e in events)

    # The fast event has committed, but an older transaction is still open: nothing yet.
    assert outbox.deliver(uow, "sync", record_subjects) == 0
    may_commit.set()
    writer.join(10)
    assert outbox.deliver(uow, "sync", record_subjects) == 2
    assert seen == ["slow", "fast"]
    with uow() as session:
        ids = {e.subject: e.id for e in session.scalars(select(OutboxEvent))}
    assert ids["slow"] < ids["fast"]  # the id order that a naive cursor would have trusted


CONSUMER = r"""
import json, os, sys
from pathlib import Path
from printsrv import outbox
from printsrv.config import load_settings
from printsrv.db import unit_of_work

settings = load_settings(overrides={"instance_dir": sys.argv[1], "database_url": sys.argv[2]})
sent = Path(sys.argv[3])
kill_after = int(sys.argv[4])

def send(_session, events):
    done = set(sent.read_text().split()) if sent.exists() else set()
    for n, event in enumerate(events):
        if event.event_id not in done:  # the peer applies each id once
            with sent.open("a") as out:
                out.write(event.event_id + "\n")
                out.flush()
                os.fsync(out.fileno())
        if kill_after and n + 1 == kill_after:
            os.kill(os.getpid(), 9)  # killed after sending, before the cursor moved

while outbox.deliver(lambda: unit_of_work(settings), "peer", send, limit=4):
    pass
"""


def test_a_consumer_killed_mid_delivery_loses_and_doubles_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    _import(settings, tmp_path, 10)
    with unit_of_work(settings) as session:
        outbox.register(session, "peer")
    sent = tmp_path / "sent.txt"
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, str(script), str(settings.instance_dir), settings.database_url,
            str(sent)]
    killed = subprocess.run([*args, "3"], env=env, capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert len(sent.read_text().split()) == 3
    with unit_of_work(settings) as session:
        [state] = outbox.status(session)
    assert state.pending == 10  # the cursor never moved: the three come again
    done = subprocess.run([*args, "0"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    ids = sent.read_text().split()
    assert ids == [e.event_id for e in _events(settings)]  # each once, in order
    with unit_of_work(settings) as session:
        [state] = outbox.status(session)
    assert state.pending == 0 and state.delivered == 10


def test_outbox_status_lists_consumers_and_lag(settings: Settings, tmp_path: Path) -> None:
    stock_station(settings, tmp_path, records=2, blanks=2)
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.database_url}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "run.py"), "outbox", *argv],
                              env=env, capture_output=True, text=True, timeout=60)

    assert "no consumers registered" in run("status").stdout
    assert run("register", "sms").returncode == 0
    assert run("register", "kecamatan-sync", "--from-now").returncode == 0
    total = len(_events(settings))
    out = run("status")
    assert out.returncode == 0, out.stderr
    assert f"outbox: {total} events" in out.stdout
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:] if line}
    assert lines["sms"][1] == str(total) and lines["kecamatan-sync"][1] == "0"
    data = json.loads(run("status", "--json").stdout)
    lag = {c["name"]: c for c in data["consumers"]}
    assert lag["sms"]["pending"] == total and lag["sms"]["lag_seconds"] > 0
    assert lag["kecamatan-sync"]["pending"] == 0 and lag["kecamatan-sync"]["lag_seconds"] == 0


def test_prune_keeps_what_a_consumer_has_not_had(settings: Settings, tmp_path: Path) -> None:
    _import(settings, tmp_path, 4)
    uow = lambda: unit_of_work(settings)  # noqa: E731
    with uow() as session:
        assert outbox.prune(session, older_than=timedelta(0)) == 0  # nobody registered yet
        outbox.register(session, "fast")
        outbox.register(session, "slow")
    outbox.deliver(uow, "fast", _apply_into([]))
    outbox.deliver(uow, "slow", _apply_into([]), limit=1)
    with uow() as session:
        assert outbox.prune(session, older_than=timedelta(days=1)) == 0  # too young
        assert outbox.prune(session, older_than=timedelta(0)) == 1  # slow has had one
    assert len(_events(settings)) == 3
    left: list[str] = []
    outbox.deliver(uow, "slow", _apply_into(left))
    assert left == [e.event_id for e in _events(settings)]
