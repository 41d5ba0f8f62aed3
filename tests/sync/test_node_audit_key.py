"""A node's audit checkpoint key is bound at enrolment: sent with the pairing, pinned when the
admin approves, and every audit upload carrying or signed by another key is refused (409) and
audited, over real HTTP. A node enrolled before keys were bound pins the first key it sends,
once."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from printsrv import checkpoints
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import AuditEvent
from printsrv.sync import node, protocol, server
from printsrv.sync.models import NodeAuditEvent, NodeAuditKey, NodeCheckpoint, SyncNode
from printsrv.sync.protocol import SyncError
from tests.sync.test_node_sync import OFFICE, Link, _enrolled, _import, link

__all__ = ["link"]  # the fixture


def _tags(settings: Settings, tag: str) -> list[dict[str, object]]:
    with unit_of_work(settings) as session:
        return [
            e.details
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.tag == tag).order_by(AuditEvent.seq)
            )
        ]


def _other_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, protocol.public_key_pem(key.public_key())


def test_the_checkpoint_key_is_bound_at_enrolment_and_another_is_refused(link: Link) -> None:
    own = checkpoints.public_key_file(link.node).read_text()
    node_id = node.enrol(link.node, link.url, OFFICE)
    with unit_of_work(link.server) as session:
        pending = server.get_node(session, node_id.node_id)
        assert pending.audit_key == own  # sent with the pairing
        assert session.get(NodeAuditKey, node_id.node_id) is None  # not before approval
        server.approve(session, node_id.node_id, node_id.pairing_code, actor="admin")
    with unit_of_work(link.server) as session:
        bound = session.get(NodeAuditKey, node_id.node_id)
        assert bound is not None and bound.bound == "enrolment" and bound.public_key == own
    node.sync_once(link.node)  # its own key: accepted
    with unit_of_work(link.server) as session:
        held = session.scalar(select(func.count()).select_from(NodeAuditEvent))
    assert held

    # an upload that carries another key: refused whole, audited
    _, other_pem = _other_key()
    with node.connect(link.node) as (client, _keys), pytest.raises(SyncError, match="refused"):
        client.call("/audit", {"events": [], "checkpoints": [], "audit_key": other_pem})
    # a checkpoint signed by another key, under the node's own key: refused, not kept
    other, _ = _other_key()
    body = json.dumps({"checkpoint": 999, "heads": {}})
    forged = {
        "number": 999,
        "body": body,
        "signature": base64.b64encode(
            other.sign(body.encode(), ec.ECDSA(hashes.SHA256()))
        ).decode(),
    }
    with (
        node.connect(link.node) as (client, _keys),
        pytest.raises(SyncError, match="checkpoint 999 is not signed"),
    ):
        client.call("/audit", {"events": [], "checkpoints": [forged], "audit_key": own})
    # the same key asked beside a pull: the pull still answers (records keep coming down),
    # without the audit side answer; only the node's own /audit is refused and audited
    with node.connect(link.node) as (client, _keys):
        answer = client.call("/pull", {"after": 0, "audit": {"audit_key": other_pem}})
    assert "items" in answer and "audit" not in answer, answer
    refused = _tags(link.server, "sync:audit:reject")
    assert [d["offered"] is not None for d in refused] == [True, False]
    assert all(d["bound"] == "enrolment" for d in refused)
    with unit_of_work(link.server) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(NodeCheckpoint).where(NodeCheckpoint.number == 999)
            )
            == 0
        )
        key = session.get(NodeAuditKey, node_id.node_id)
        assert key is not None and key.public_key == own  # unchanged
    assert _tags(link.server, "sync:keys:accept") == []  # nothing taken on first sight


def test_a_node_enrolled_before_keys_were_bound_pins_its_first_key_once(settings: Settings) -> None:
    _, node_pem = _other_key()
    _, first_pem = _other_key()
    with unit_of_work(settings) as session:  # as enrolled before migration 0035: no audit key
        enrolled = server.enrol(
            session,
            office=OFFICE,
            public_key_pem=node_pem,
            pairing_hash=protocol.pairing_hash("ABCD2345"),
        )
        server.approve(session, enrolled.node_id, "ABCD2345", actor="admin")
        node_id = enrolled.node_id
    with unit_of_work(settings) as session:
        assert session.get(NodeAuditKey, node_id) is None
        row = session.get(SyncNode, node_id)
        assert row is not None
        server.receive_audit(session, row, events=[], checkpoints=[], audit_key=first_pem)
    with unit_of_work(settings) as session:
        pinned = session.get(NodeAuditKey, node_id)
        assert pinned is not None and pinned.bound == "first-sight"
        row = session.get(SyncNode, node_id)
        assert row is not None
        server.receive_audit(session, row, events=[], checkpoints=[], audit_key=first_pem)
    _, second_pem = _other_key()
    with unit_of_work(settings) as session, pytest.raises(protocol.AuditKeyRefused):
        row = session.get(SyncNode, node_id)
        assert row is not None
        server.receive_audit(session, row, events=[], checkpoints=[], audit_key=second_pem)
    assert [d["bound"] for d in _tags(settings, "sync:keys:accept")] == ["first-sight"]


def test_enrolment_needs_the_checkpoint_key(link: Link, tmp_path: Path) -> None:
    key_file = checkpoints.public_key_file(link.node)
    saved = key_file.read_bytes()
    key_file.unlink()
    try:
        with pytest.raises(Exception, match="keys init"):
            node.enrol(link.node, link.url, OFFICE)
    finally:
        key_file.write_bytes(saved)
    _import(link.server, tmp_path, 1)  # nothing else broke: an enrolment goes through after
    assert _enrolled(link)
