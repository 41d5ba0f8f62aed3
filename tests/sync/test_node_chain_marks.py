"""The node listing (``nodes`` / ``/nodes``) verifies only the node audit events new since it
last looked, from a mark per chain (seq and hash of the last event verified), and says how far
it verified; the full check (``nodes verify`` / :func:`server.check_node_chains`) still catches
an already-verified event rewritten since."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update

from printsrv import audit
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.sync import protocol, server
from printsrv.sync.models import NodeAuditEvent, NodeAuditKey, NodeCheckpoint

OFFICE = "35.26.01"
START = datetime(2026, 12, 1, tzinfo=UTC)


def _node(settings: Settings) -> tuple[str, ec.EllipticCurvePrivateKey]:
    signer = ec.generate_private_key(ec.SECP256R1())
    pem = protocol.public_key_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    with unit_of_work(settings) as session:
        node = server.enrol(
            session,
            office=OFFICE,
            public_key_pem=pem,
            pairing_hash=protocol.pairing_hash("ABCD2345"),
            audit_key=protocol.public_key_pem(signer.public_key()),
        )
        server.approve(session, node.node_id, "ABCD2345", actor="admin")
        return node.node_id, signer


def _append(settings: Settings, node_id: str, chain: str, count: int) -> tuple[int, str]:
    """``count`` more events on ``chain`` of the server's copy, hash-linked; its new head."""
    with unit_of_work(settings) as session:
        last = session.scalars(
            select(NodeAuditEvent)
            .where(NodeAuditEvent.node_id == node_id, NodeAuditEvent.chain == chain)
            .order_by(NodeAuditEvent.chain_seq.desc())
            .limit(1)
        ).first()
        seq, prev = (last.chain_seq, last.hash) if last else (0, audit.GENESIS_HASH)
        top = (
            session.scalars(
                select(NodeAuditEvent.node_seq)
                .where(NodeAuditEvent.node_id == node_id)
                .order_by(NodeAuditEvent.node_seq.desc())
                .limit(1)
            ).first()
            or 0
        )
        for n in range(count):
            seq += 1
            at = START + timedelta(seconds=seq)
            details = {"n": seq}
            digest = audit.event_hash(
                chain, seq, at, "ops:station:start", "operator", OFFICE, f"S-{seq}", details, prev
            )
            session.add(
                NodeAuditEvent(
                    node_id=node_id,
                    node_seq=top + n + 1,
                    chain=chain,
                    chain_seq=seq,
                    at=at,
                    tag="ops:station:start",
                    actor="operator",
                    office_code=OFFICE,
                    subject=f"S-{seq}",
                    details=details,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        return seq, prev


def _checkpoint(
    settings: Settings,
    node_id: str,
    signer: ec.EllipticCurvePrivateKey,
    number: int,
    heads: dict[str, tuple[int, str]],
) -> None:
    body = json.dumps(
        {"checkpoint": number, "heads": {c: {"seq": s, "hash": h} for c, (s, h) in heads.items()}}
    )
    signature = base64.b64encode(signer.sign(body.encode(), ec.ECDSA(hashes.SHA256()))).decode()
    with unit_of_work(settings) as session:
        session.add(
            NodeCheckpoint(
                node_id=node_id,
                number=number,
                body=body,
                signature=signature,
                received_at=datetime.now(UTC),
            )
        )


def _listing(settings: Settings) -> server.NodeStatus:
    with unit_of_work(settings) as session:
        (listed,) = server.status(session)
        return listed


def _set_main_actor(settings: Settings, node_id: str, seq: int, actor: str) -> None:
    """Rewrite the actor of event ``seq`` of the node's main chain in the server's copy."""
    with unit_of_work(settings) as session:
        session.execute(
            update(NodeAuditEvent)
            .where(
                NodeAuditEvent.node_id == node_id,
                NodeAuditEvent.chain == "main",
                NodeAuditEvent.chain_seq == seq,
            )
            .values(actor=actor)
        )


def test_the_listing_verifies_only_new_events_and_the_full_check_still_catches_a_rewrite(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    real = server._event_problems
    monkeypatch.setattr(
        server,
        "_event_problems",
        lambda e, seq, prev: checked.append(e.chain_seq) or real(e, seq, prev),
    )
    node_id, signer = _node(settings)
    with unit_of_work(settings) as session:
        key = session.get(NodeAuditKey, node_id)
        assert key is not None and key.bound == "enrolment"
    main = _append(settings, node_id, "main", 3000)
    station = _append(settings, node_id, "station:kec1", 500)
    _checkpoint(settings, node_id, signer, 1, {"main": main, "station:kec1": station})

    first = _listing(settings)
    assert first.chain_ok is True
    assert (first.chain_checked, first.chain_verified, first.checkpoint_verified) == (3500, 3500, 1)
    assert len(checked) == 3500

    checked.clear()
    main = _append(settings, node_id, "main", 7)
    _checkpoint(settings, node_id, signer, 2, {"main": main, "station:kec1": station})
    second = _listing(settings)
    assert second.chain_ok is True
    assert (second.chain_checked, second.chain_verified, second.checkpoint_verified) == (7, 3507, 2)
    assert checked == list(range(3001, 3008))  # only the new events were read and hashed

    # an event verified before is rewritten in the server's copy
    _set_main_actor(settings, node_id, 10, "someone-else")
    checked.clear()
    third = _listing(settings)
    assert (third.chain_ok, third.chain_checked, checked) == (True, 0, [])  # not re-read
    with unit_of_work(settings) as session:
        report = server.check_node_chains(session, node_id)  # the full check
    assert not report.ok and report.events == 3507
    assert "chain main: event 10 does not match its hash" in report.problems
    assert _listing(settings).chain_ok is False  # its verdict is kept for the listing
    _set_main_actor(settings, node_id, 10, "operator")
    with unit_of_work(settings) as session:
        assert server.check_node_chains(session, node_id).ok
    assert _listing(settings).chain_ok is True


def test_a_broken_new_event_stops_the_mark_and_stays_reported(settings: Settings) -> None:
    node_id, _signer = _node(settings)
    _append(settings, node_id, "main", 20)
    assert _listing(settings).chain_verified == 20
    _append(settings, node_id, "main", 5)
    with unit_of_work(settings) as session:  # arrives rewritten
        session.execute(
            update(NodeAuditEvent)
            .where(NodeAuditEvent.node_id == node_id, NodeAuditEvent.chain_seq == 23)
            .values(subject="forged")
        )
    listed = _listing(settings)
    assert listed.chain_ok is False and listed.chain_verified == 22  # through 22, not past
    again = _listing(settings)
    assert again.chain_ok is False and again.chain_checked == 3  # 23..25 read again
