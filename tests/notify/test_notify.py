"""Pickup SMS: one message per issued card, the pickup day, quiet hours, retries, delivery
reports; through Kannel's bearerbox + smsbox and its fake SMSC."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import ConfigError
from printsrv.models import Record
from printsrv.notify import phone
from printsrv.notify.gateways import Handover
from printsrv.notify.models import Notification, NotificationState
from printsrv.notify.rules import pickup_rules, sms_settings
from printsrv.notify.sender import apply_report, collect, quiet_until, send_due
from tests.station.conftest import OFFICE, make_rig

ROOT = Path(__file__).resolve().parents[2]
N = NotificationState
# The rounds' clock: a day after the pickup day of any card these tests issue today (a fixed
# date would stop working once the wall clock passes it).
DAY = datetime.combine(datetime.now(UTC).date() + timedelta(days=10), datetime.min.time(),
                       tzinfo=UTC)
PHONES = ["+6281234500001", "0812-3450-0002", "62 812 3450 0003", "021-555-1234", None]


# ------------------------------------------------------------------------------------ numbers


@given(st.from_regex(r"8[1-9][0-9]{7,10}", fullmatch=True),
       st.sampled_from(["0{}", "62{}", "+62{}", "+62 {}", "0{}-"]))
def test_every_written_form_of_a_mobile_number_is_one_e164(national: str, form: str) -> None:
    written = form.format(national)
    if written.endswith("-"):
        written = written[:5] + "-" + written[5:-1]
    assert phone.normalise(written) == "+62" + national


@pytest.mark.parametrize("bad", ["", "12345", "+6521234567", "021-555-1234", "+62812",
                                 "08123456789012345", "0812abc45678"])
def test_numbers_that_are_not_indonesian_mobiles_are_refused(bad: str) -> None:
    with pytest.raises(phone.InvalidPhone):
        phone.normalise(bad)


# ------------------------------------------------------------------------------------ settings


def test_pickup_rules_overlay_and_refuse_unknown_keys(settings: Settings) -> None:
    s = dataclasses.replace(settings, pickup={
        "default": {"days": ["Mon", "Wed"], "hours": "08:00-12:00"},
        "35.26": {"per_day": 7},
        OFFICE: {"address": "Jl. Trunojoyo 1", "closed": ["2026-12-09"]},
    })
    rules = pickup_rules(s, OFFICE)
    assert rules.days == (0, 2) and rules.hours == "08.00-12.00" and rules.per_day == 7
    assert rules.address == "Jl. Trunojoyo 1" and date(2026, 12, 9) in rules.closed
    assert pickup_rules(s, "35.27.01").per_day == 100
    with pytest.raises(ConfigError, match=r"pickup.35.26.perday"):
        pickup_rules(dataclasses.replace(s, pickup={"35.26": {"perday": 3}}), OFFICE)
    with pytest.raises(ConfigError, match=r"sms.usr"):
        sms_settings(dataclasses.replace(s, sms={"usr": "x"}))
    with pytest.raises(ConfigError, match=r"sms.backend"):
        sms_settings(dataclasses.replace(s, sms={"backend": "pigeon"}))


# ------------------------------------------------------------------------------- from the outbox


def _issue(settings: Settings, tmp: Path, count: int) -> list[str]:
    """Issue ``count`` cards at station st1 with the phones of :data:`PHONES`, in order."""
    with make_rig(settings, tmp, records=count, blanks=count + 1) as rig:
        with unit_of_work(settings) as session:
            records = session.scalars(select(Record).order_by(Record.id)).all()
            for n, record in enumerate(records):
                data = dict(record.data)
                data.pop("phone", None)
                if PHONES[n % len(PHONES)]:
                    data["phone"] = PHONES[n % len(PHONES)]
                session.execute(update(Record).where(Record.id == record.id).values(data=data))
            ids = [r.request_id for r in records]
        rig.station().run(until_empty=True)
    return ids


def _notes(settings: Settings) -> list[Notification]:
    with unit_of_work(settings) as session:
        return list(session.scalars(select(Notification).order_by(Notification.id)))


def test_one_message_per_issued_card_with_a_pickup_day_and_no_personal_data(
    settings: Settings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, pickup={
        OFFICE: {"address": "Jl. Trunojoyo 1", "per_day": 2, "hours": "08:00-14:00",
                 "bring": "bukti permohonan"}})  # fmt: skip
    ids = _issue(settings, tmp_path, 5)
    assert collect(settings) > 0
    assert collect(settings) == 0  # read once
    notes = _notes(settings)
    assert sorted(n.request_id for n in notes) == sorted(ids)
    by_id = {n.request_id: n for n in notes}
    assert [by_id[i].phone for i in ids] == ["+6281234500001", "+6281234500002",
                                             "+6281234500003", None, None]
    assert [by_id[i].state for i in ids] == [N.PENDING] * 3 + [N.INVALID] * 2
    assert "not an Indonesian mobile" in (by_id[ids[3]].error or "")
    assert by_id[ids[4]].error == "no phone number on the record"
    # Two a day: the five cards fill the first two open days and start a third.
    days = sorted(n.pickup_day for n in notes if n.pickup_day)
    assert days[0] == days[1] < days[2] == days[3] < days[4]
    assert all(d.weekday() < 5 for d in days)
    with unit_of_work(settings) as session:
        records = {r.request_id: r for r in session.scalars(select(Record))}
    for note in notes:
        record = records[note.request_id]
        assert "KTP-el Anda sudah jadi" in note.text and "Jl. Trunojoyo 1" in note.text
        assert "08.00-14.00 WIB" in note.text and "bukti permohonan" in note.text
        assert f"{note.pickup_day:%d-%m-%Y}" in note.text
        assert note.request_id[-8:].upper() in note.text
        assert record.nik not in note.text and record.nama not in note.text
        assert len(note.text) <= 306  # two SMS parts at most


class ScriptedGateway:
    """A gateway that answers from a script (unit tests of the sending rounds)."""

    name = "scripted"

    def __init__(self, *replies: Handover) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[str, str]] = []

    def send(self, message_id: str, phone_number: str, text: str) -> Handover:
        self.sent.append((message_id, phone_number))
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def test_quiet_hours_wait_for_the_office_morning(settings: Settings) -> None:
    sms = sms_settings(settings)
    wib_night = datetime(2026, 12, 5, 15, 30, tzinfo=UTC)  # 22:30 WIB, 00:30 WIT
    assert quiet_until(sms, "35.26.01", wib_night) == datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
    assert quiet_until(sms, "91.01.01", wib_night) == datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    wib_evening = datetime(2026, 12, 5, 13, 30, tzinfo=UTC)  # 20:30 WIB, 22:30 WIT
    assert quiet_until(sms, "35.26.01", wib_evening) is None
    assert quiet_until(sms, "91.01.01", wib_evening) == datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    assert quiet_until(sms, "35.26.01", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)) is None


def test_rounds_defer_at_night_retry_with_backoff_and_give_up(settings: Settings,
                                                              tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, sms={"max_attempts": 3, "first_retry_seconds": 60})
    _issue(settings, tmp_path, 3)
    collect(settings)
    night = DAY.replace(hour=15)  # 22:00 WIB
    down = ScriptedGateway(Handover(False, True, "gateway unreachable"))
    result = send_due(settings, gateway=down, now=night)
    assert (result.deferred, result.handed_over, down.sent) == (3, 0, [])
    morning = DAY + timedelta(days=1)  # 07:00 WIB
    assert {n.next_attempt_at.replace(tzinfo=UTC) for n in _notes(settings)
            if n.state is N.PENDING} == {morning}
    assert send_due(settings, gateway=down, now=morning).retry == 3
    notes = [n for n in _notes(settings) if n.phone]
    assert {n.next_attempt_at.replace(tzinfo=UTC) - morning for n in notes} == {
        timedelta(seconds=60)}
    assert send_due(settings, gateway=down, now=morning + timedelta(seconds=30)).retry == 0
    assert send_due(settings, gateway=down, now=morning + timedelta(seconds=61)).retry == 3
    assert send_due(settings, gateway=down, now=morning + timedelta(seconds=300)).failed == 3
    assert {(n.state, n.attempts) for n in _notes(settings) if n.phone} == {(N.FAILED, 3)}
    assert all("unreachable" in (n.error or "") for n in _notes(settings) if n.phone)


def test_a_refusal_that_cannot_pass_fails_at_once(settings: Settings, tmp_path: Path) -> None:
    _issue(settings, tmp_path, 1)
    collect(settings)
    gateway = ScriptedGateway(Handover(False, False, "403 Authorization failed"))
    assert send_due(settings, gateway=gateway, now=DAY.replace(hour=3)).failed == 1


def test_reports_never_move_a_message_backwards(settings: Settings, tmp_path: Path) -> None:
    _issue(settings, tmp_path, 1)
    collect(settings)
    ok = ScriptedGateway(Handover(True, False, "0: Accepted for delivery"))
    send_due(settings, gateway=ok, now=DAY.replace(hour=3))
    [note] = _notes(settings)
    assert note.state is N.SENT
    assert apply_report(settings, note.message_id, 1) is N.DELIVERED
    assert apply_report(settings, note.message_id, 8) is N.DELIVERED  # late SMSC ack
    assert apply_report(settings, note.message_id, 16) is N.DELIVERED
    with pytest.raises(ValueError):
        apply_report(settings, note.message_id, 3)


# ----------------------------------------------------------------------- through Kannel for real


@pytest.fixture
def kannel() -> Iterator[Any]:
    from printsrv.devstack.kannel import KannelStack, missing_tools

    missing = missing_tools()
    if missing:
        pytest.fail(f"Kannel missing: {', '.join(missing)} (scripts/setup.sh installs it)")
    with KannelStack() as stack:
        yield stack


@pytest.fixture
def web_callback(settings: Settings) -> Iterator[str]:
    """The web app on a free loopback port, for Kannel's delivery reports."""
    from werkzeug.serving import make_server

    from printsrv.web import create_app

    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/sms/report"
    server.shutdown()


def _wait(predicate: Any, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_messages_reach_the_smsc_and_reports_come_back(
    settings: Settings, tmp_path: Path, kannel: Any, web_callback: str
) -> None:
    settings = dataclasses.replace(settings, sms=kannel.sms_settings(callback_url=web_callback))
    ids = _issue(settings, tmp_path, 5)
    collect(settings)
    result = send_due(settings, now=DAY.replace(hour=3))
    assert (result.sent, result.failed) == (3, 0)
    got = kannel.wait_received(3)
    notes = {n.phone: n for n in _notes(settings) if n.phone}
    assert sorted(m.to for m in got) == sorted(notes)
    for message in got:
        assert message.sender == "DUKCAPIL" and message.text == notes[message.to].text
    assert _wait(lambda: all(n.state is N.DELIVERED for n in _notes(settings) if n.phone)), (
        kannel.logs())
    assert {n.report for n in _notes(settings) if n.phone} == {"delivered"}
    assert len(kannel.received()) == 3  # nothing twice
    import urllib.error
    import urllib.request

    forged = f"{web_callback}?m={notes['+6281234500001'].message_id}&sig=00&s=2"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(forged)
    assert err.value.code == 403
    err.value.close()
    assert ids


KILLED_SENDER = r"""
import os, sys, json
import dataclasses
from datetime import datetime, UTC
from printsrv.config import load_settings
from printsrv.notify import gateways
from printsrv.notify.sender import send_due

settings = load_settings(overrides={"instance_dir": sys.argv[1], "database_url": sys.argv[2],
                                    "sms": json.loads(sys.argv[3])})
real = gateways.KannelGateway.send

def send_then_die(self, message_id, phone, text):
    reply = real(self, message_id, phone, text)
    assert reply.accepted, reply
    os.kill(os.getpid(), 9)  # the gateway has it; our books do not know yet

gateways.KannelGateway.send = send_then_die
send_due(settings, workers=1, now=datetime.fromisoformat(sys.argv[4]))
"""


def test_a_sender_killed_mid_send_does_not_send_twice(
    settings: Settings, tmp_path: Path, kannel: Any, web_callback: str
) -> None:
    import json

    sms = kannel.sms_settings(callback_url=web_callback, unconfirmed_seconds=120)
    settings = dataclasses.replace(settings, sms=sms)
    _issue(settings, tmp_path, 1)
    collect(settings)
    script = tmp_path / "sender.py"
    script.write_text(KILLED_SENDER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # outside the office's quiet hours, whenever the test runs
    now = datetime.now(UTC)
    day = quiet_until(sms_settings(settings), "35.26.01", now) or now
    run = subprocess.run([sys.executable, str(script), str(settings.instance_dir),
                          settings.database_url, json.dumps(sms), day.isoformat()],
                         env=env, capture_output=True, timeout=120)  # fmt: skip
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    assert len(kannel.wait_received(1)) == 1
    # The report settles the message the dead sender left "sending"...
    assert _wait(lambda: _notes(settings)[0].state is N.DELIVERED), kannel.logs()
    # ...and the next rounds do not hand it over again, now or after the grace period.
    assert send_due(settings).handed_over == 0
    later = day + timedelta(seconds=600)
    assert send_due(settings, now=later).handed_over == 0
    assert len(kannel.received()) == 1
    [note] = _notes(settings)
    assert note.attempts == 1


def test_without_any_report_a_message_is_sent_again_after_the_grace_period(
    settings: Settings, tmp_path: Path
) -> None:
    settings = dataclasses.replace(settings, sms={"unconfirmed_seconds": 120})
    _issue(settings, tmp_path, 1)
    collect(settings)
    t0 = DAY.replace(hour=3)
    with unit_of_work(settings) as session:  # what a sender killed after its intent leaves
        session.execute(update(Notification).values(state=N.SENDING, attempts=1,
                                                    attempted_at=t0))
    gateway = ScriptedGateway(Handover(True, False, "ok"))
    assert send_due(settings, gateway=gateway, now=t0 + timedelta(seconds=60)).handed_over == 0
    assert send_due(settings, gateway=gateway, now=t0 + timedelta(seconds=121)).sent == 1
    [note] = _notes(settings)
    assert gateway.sent == [(note.message_id, note.phone)] and note.attempts == 2


def test_notify_commands_with_the_file_gateway(settings: Settings, tmp_path: Path) -> None:
    outgoing = settings.instance_dir / "sms" / "outgoing.txt"
    outgoing.unlink(missing_ok=True)  # the instance folder is shared by the test session
    _issue(settings, tmp_path, 3)
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.database_url}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "run.py"), "notify", *argv],
                              env=env, capture_output=True, text=True, timeout=60)

    out = run("send-pending")
    assert out.returncode == 0, out.stderr
    # Sent, or waiting for the morning if this runs at night in WIB.
    assert "3 new cards read" in out.stdout
    status = run("status")
    assert status.returncode == 0 and "invalid" in status.stdout
    [first] = [n for n in _notes(settings) if n.phone == "+6281234500001"]
    one = run("status", "--request-id", first.request_id)
    assert "+6281234500001" in one.stdout and f"{first.pickup_day:%d-%m-%Y}" in one.stdout
    if first.state is N.SENT or _notes(settings)[0].state is N.SENT:
        assert outgoing.read_text().count("KTP-el Anda sudah jadi") == 3
