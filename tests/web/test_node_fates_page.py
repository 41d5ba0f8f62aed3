"""The unknown fates of a lost kecamatan node on the web (``/nodes/fates``): a supervisor of
the office's scope settles each one with a reason (CSRF-protected, audited as ``run.py nodes
settle`` is); admins and auditors only read; operators, and supervisors of another regency,
are refused; Indonesian first, English on the switch, times in the office's zone."""

from __future__ import annotations

import re

from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import AuditEvent, Record, RecordState
from printsrv.sync import protocol, recovery, server
from printsrv.sync.models import UnknownFate
from tests.web.conftest import World, sign_in

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _lost_node(settings: Settings, world: World) -> dict[str, int]:
    """A node of 35.26.01 that held two records (queued, held), declared lost: request id →
    fate id."""
    pem = protocol.public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    with unit_of_work(settings) as session:
        node_id = server.enrol(
            session,
            office="35.26.01",
            public_key_pem=pem,
            pairing_hash=protocol.pairing_hash("ABCD2345"),
        ).node_id
        for key in ("own_queued", "own_held"):
            record = session.get(Record, world.records[key])
            assert record is not None
            record.owner_node = node_id
    with unit_of_work(settings) as session:
        recovery.declare_lost(session, node_id, actor="spv-cli", reason="disk died")
    with unit_of_work(settings) as session:
        return {f.subject: f.id for f in session.scalars(select(UnknownFate))}


def _token(client: FlaskClient, path: str = "/nodes/fates") -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = CSRF.search(page.get_data(as_text=True))
    assert found
    return found.group(1)


def _record(settings: Settings, record_id: int) -> tuple[RecordState, str | None]:
    with unit_of_work(settings) as session:
        record = session.get(Record, record_id)
        assert record is not None
        return record.state, record.owner_node


def test_a_supervisor_settles_unknown_fates_on_the_page(
    app: Flask, settings: Settings, world: World
) -> None:
    fates = _lost_node(settings, world)
    queued, held = (f"PC-352601-{n:06d}" for n in (1, 2))
    assert set(fates) == {queued, held}
    client = app.test_client()
    sign_in(client, settings, "supervisor_reg")
    page = client.get("/nodes/fates").get_data(as_text=True)
    assert "Nasib kartu yang tidak diketahui" in page
    assert queued in page and held in page and "WIB" in page  # reported, in the office's time
    assert "antre" in page and "Tetapkan" in page
    token = _token(client)

    # without the CSRF token: refused, nothing settled
    assert (
        client.post(
            f"/nodes/fates/{fates[queued]}/settle", data={"decision": "recovered", "reason": "x"}
        ).status_code
        == 400
    )
    # the card was found issued in the out tray
    done = client.post(
        f"/nodes/fates/{fates[queued]}/settle",
        data={"decision": "recovered", "reason": "ditemukan di baki keluaran", "csrf_token": token},
    )
    assert done.status_code == 303
    assert _record(settings, world.records["own_queued"]) == (RecordState.ISSUED, None)
    # the held one was not found: it stays held for review, released from the lost node
    client.post(
        f"/nodes/fates/{fates[held]}/settle",
        data={"decision": "lost", "reason": "tidak ditemukan", "csrf_token": token},
    )
    assert _record(settings, world.records["own_held"]) == (RecordState.HELD, None)
    # a settled fate cannot be settled again
    again = client.post(
        f"/nodes/fates/{fates[queued]}/settle",
        data={"decision": "lost", "reason": "lagi", "csrf_token": token},
        follow_redirects=True,
    )
    assert "sudah ditetapkan sebelumnya" in again.get_data(as_text=True)
    with unit_of_work(settings) as session:
        settled = {
            f.subject: (f.decision.value if f.decision else None, f.settled_by, f.reason)
            for f in session.scalars(select(UnknownFate))
        }
        events = [
            (e.tag, e.actor, e.subject, e.details["decision"])
            for e in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.tag == "sync:fate:settle")
                .order_by(AuditEvent.seq)
            )
        ]
    assert settled == {
        queued: ("recovered", "supervisor_reg", "ditemukan di baki keluaran"),
        held: ("lost", "supervisor_reg", "tidak ditemukan"),
    }
    assert events == [
        ("sync:fate:settle", "supervisor_reg", queued, "recovered"),
        ("sync:fate:settle", "supervisor_reg", held, "lost"),
    ]
    assert "Tidak ada nasib kartu" in client.get("/nodes/fates").get_data(as_text=True)
    history = client.get("/nodes/fates?all=1").get_data(as_text=True)
    assert "ditemukan di baki keluaran" in history and "tidak ditemukan" in history

    client.post("/lang", data={"lang": "en", "next": "/nodes/fates", "csrf_token": token})
    english = client.get("/nodes/fates?all=1").get_data(as_text=True)
    assert "Unknown card fates" in english and "not found" in english


def test_who_may_see_and_settle_unknown_fates(
    app: Flask, app_nocsrf: Flask, settings: Settings, world: World
) -> None:
    fates = _lost_node(settings, world)
    fate = next(iter(fates.values()))
    settle = {"decision": "recovered", "reason": "ditemukan"}
    for role, view, post in (
        ("auditor_reg", 200, 403),
        ("admin_reg", 200, 403),
        ("operator_reg", 403, 403),
        ("supervisor_own", 200, None),
    ):
        client = app_nocsrf.test_client()
        sign_in(client, settings, role)
        page = client.get("/nodes/fates")
        assert page.status_code == view, role
        if view == 200:
            text = page.get_data(as_text=True)
            assert "PC-352601-000001" in text
            assert ("/settle" in text) is (role == "supervisor_own"), role
        if post is not None:
            assert client.post(f"/nodes/fates/{fate}/settle", data=settle).status_code == post
    # a supervisor of another regency neither sees nor settles them
    other = app_nocsrf.test_client()
    sign_in(other, settings, "supervisor_other")
    assert "PC-352601" not in other.get("/nodes/fates").get_data(as_text=True)
    assert other.post(f"/nodes/fates/{fate}/settle", data=settle).status_code == 404
    with unit_of_work(settings) as session:
        assert all(f.decision is None for f in session.scalars(select(UnknownFate)))
    # a reason of blanks only is refused by the service, as on the command line
    own = app_nocsrf.test_client()
    sign_in(own, settings, "supervisor_own")
    refused = own.post(
        f"/nodes/fates/{fate}/settle",
        data={"decision": "lost", "reason": "  "},
        follow_redirects=True,
    )
    assert refused.status_code in (200, 400)
    with unit_of_work(settings) as session:
        assert all(f.decision is None for f in session.scalars(select(UnknownFate)))
