"""Blanks and ribbons handed down to a kecamatan node under a BAST (in transit in both ledgers
until the node accepts them), the node's card fates moving the server's copy of its blanks, and
the kabupaten's monthly report counting the node's cards: a server (``run.py serve``) and a
node over real HTTP, as in ``test_node_sync``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.ledger.models import Blank, BlankState, Consumable, ConsumableState, SpoilCause
from tests.station.conftest import FAKE_PDF
from tests.sync.test_node_sync import OFFICE, Link, _enrolled, _import, _states, link

__all__ = ["link"]  # the fixture

KABUPATEN = "35.26"
BAST = "BAST/35.26/0007"


def _blanks(settings: Settings) -> dict[str, tuple[str, str, str | None]]:
    """Every blank: its state, office and spoil cause."""
    from printsrv.models import Office

    with unit_of_work(settings) as session:
        return {serial: (state.value, code, cause.value if cause else None)
                for serial, state, code, cause in session.execute(
                    select(Blank.serial, Blank.state, Office.code, Blank.spoil_cause)
                    .join(Office, Office.id == Blank.office_id))}


def _roll(settings: Settings, serial: str) -> tuple[ConsumableState, str]:
    from printsrv.models import Office

    with unit_of_work(settings) as session:
        state, code = session.execute(
            select(Consumable.state, Office.code).join(Office, Office.id == Consumable.office_id)
            .where(Consumable.serial == serial)).one()
        return state, code


def _check(settings: Settings) -> None:
    from printsrv.ledger.check import check_ledger

    with unit_of_work(settings) as session:
        result = check_ledger(session)
    assert result.ok, result.as_dict()["problems"]


def _print_from_stock(node: Settings, tmp: Path, blanks: int) -> None:
    """A virtual station at the node loads ``blanks`` of the office's stock (what the BAST
    brought) and the ribbon, and prints everything the node holds."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv.keys import KeyStore
    from printsrv.ledger.blanks import get_or_create_station, load_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable
    from printsrv.station.daemon import Station
    from printsrv.station.devices import FakeEncoder, StationConfig

    config = StationConfig(name="kec1", office=OFFICE, profile="virtual-ipp-card",
                           cups_queue="Card1", reader="Virtual PCD 00 00", poll_interval=0.05,
                           printer="directory")
    with unit_of_work(node) as session:
        station = get_or_create_station(session, "kec1", office_code=OFFICE, cups_queue="Card1",
                                        reader="Virtual PCD 00 00", profile="virtual-ipp-card",
                                        actor="test")
        load_blanks(session, station, actor="test", count=blanks)
        load_consumable(session, station, kind=ConsumableKind.RIBBON, serial="RIB-K1",
                        actor="test")
    printer = DirectoryPrinter(tmp / "cards", get_profile(config.profile), name="kec1")
    with KeyStore.open(node) as keys:
        Station(node, config, printer, FakeEncoder(), keys=keys, idle_sleep=0.01,
                render=lambda card: FAKE_PDF).run(until_empty=True)


def test_a_bast_is_in_transit_in_both_ledgers_until_the_node_accepts_it_and_node_fates_reach_the_report(  # noqa: E501
        link: Link, tmp_path: Path) -> None:
    from printsrv.ledger.blanks import get_or_create_station, load_blanks, receive_blanks
    from printsrv.ledger.errors import LedgerError
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.reports import stock_report
    from printsrv.ledger.ribbons import receive_consumable
    from printsrv.ledger.serials import serial_range
    from printsrv.sync import node, server
    from printsrv.sync.models import Recall

    with unit_of_work(link.server) as session:
        receive_blanks(session, office_code=KABUPATEN, first="KTP-000001", last="KTP-000010",
                       handover_number="BAST-PUSAT-1", actor="test")
        receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=KABUPATEN,
                           serial="RIB-K1", type_="YMCKOK", capacity=200, actor="test")
    _import(link.server, tmp_path, 3)
    node_id = _enrolled(link)
    sent = serial_range("KTP-000001", "KTP-000006")
    with unit_of_work(link.server) as session:
        server.transfer_to_node(session, node_id, from_office=KABUPATEN, handover_number=BAST,
                                actor="admin", serials=sent,
                                ribbons=[(ConsumableKind.RIBBON, "RIB-K1")],
                                giver="ADI / NIP 1", receiver="BUDI / NIP 2")

    # at the server: in transit at the node's office, out of reach of the server's stations
    at_server = _blanks(link.server)
    assert {at_server[s] for s in sent} == {("in_transit", OFFICE, None)}
    assert at_server["KTP-000007"] == ("in_stock", KABUPATEN, None)
    assert _roll(link.server, "RIB-K1") == (ConsumableState.IN_TRANSIT, OFFICE)
    with unit_of_work(link.server) as session, pytest.raises(LedgerError, match="node"):
        station = get_or_create_station(session, "server-at-kec", office_code=OFFICE,
                                        cups_queue="X", reader="Y", profile="virtual-ipp-card")
        load_blanks(session, station, actor="test", serials=["KTP-000001"])
    _check(link.server)

    # the node receives it in transit: nothing to load until an operator accepts it
    node.sync_once(link.node)
    at_node = _blanks(link.node)
    assert {at_node[s] for s in sent} == {("in_transit", OFFICE, None)}
    assert set(at_node) == set(sent)
    assert _roll(link.node, "RIB-K1") == (ConsumableState.IN_TRANSIT, OFFICE)
    with unit_of_work(link.node) as session, pytest.raises(LedgerError):
        station = get_or_create_station(session, "kec0", office_code=OFFICE, cups_queue="X",
                                        reader="Y", profile="virtual-ipp-card")
        load_blanks(session, station, actor="test", count=1)
    node.sync_once(link.node)  # the BAST is handed down once
    assert set(_blanks(link.node)) == set(sent)
    assert {_blanks(link.server)[s][0] for s in sent} == {"in_transit"}  # not accepted yet
    with unit_of_work(link.server) as session:
        listed = {n.node_id: n for n in server.status(session)}[node_id]
    assert (listed.blanks_in_transit, listed.blanks_held) == (6, 0)

    accepted = node.accept_handover(link.node, BAST, actor="operator")
    assert (accepted.blanks, accepted.ribbons) == (6, 1)
    assert {_blanks(link.node)[s][0] for s in sent} == {"in_stock"}
    assert {_blanks(link.server)[s][0] for s in sent} == {"in_transit"}  # until the sync
    node.sync_once(link.node)
    assert {_blanks(link.server)[s] for s in sent} == {("in_stock", OFFICE, None)}
    assert _roll(link.server, "RIB-K1") == (ConsumableState.IN_STOCK, OFFICE)
    _check(link.server)

    # the node prints its three records on the blanks it was given, spoils one with a cause
    _print_from_stock(link.node, tmp_path, blanks=5)
    from printsrv.ledger.blanks import blank_by_serial, spoil_blank

    with unit_of_work(link.node) as session:
        spoilt = next(b for b in session.scalars(select(Blank).order_by(Blank.serial))
                      if b.state is BlankState.IN_HOPPER)
        spoil_blank(session, spoilt, cause=SpoilCause.HANDLING_DAMAGE, actor="operator")
        spoilt_serial = spoilt.serial
    node.sync_once(link.node)

    at_node, at_server = _blanks(link.node), _blanks(link.server)
    assert sorted(s for s, v in at_node.items() if v[0] == "issued") == sent[:3]
    # every blank the node has is in exactly the same state, office and cause at the server
    assert {s: at_server[s] for s in at_node} == at_node
    assert at_server[spoilt_serial] == ("spoiled", OFFICE, "handling_damage")
    _check(link.server)
    _check(link.node)
    with unit_of_work(link.server) as session:
        blank = blank_by_serial(session, sent[0])
        assert blank.record_id is not None
    assert set(_states(link.server).values()) == {"issued"}

    # the kabupaten's monthly report counts the node's cards (and its spoil with the cause)
    month = datetime.now(UTC).strftime("%Y-%m")
    with unit_of_work(link.server) as session:
        report = stock_report(session, KABUPATEN, month)
    assert report["issued"] == 3
    assert report["spoiled"]["handling_damage"] == 1
    assert report["balanced"]
    kec = next(o for o in report["offices"] if o["code"] == OFFICE)
    assert (kec["transferred_in"], kec["issued"]) == (6, 3)

    # a recall of a card printed offline fails with its fate
    printed = next(iter(_states(link.server)))
    with unit_of_work(link.server) as session:
        server.recall(session, printed, actor="admin")
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        asked = session.scalar(select(Recall).where(Recall.request_id == printed))
        assert asked is not None
        assert (asked.state.value, asked.fate) == ("refused", "issued")


def test_the_offices_users_sync_down_and_a_revocation_reaches_the_node(link: Link) -> None:
    from printsrv.models import Role, User
    from printsrv.offices import ensure_office
    from printsrv.sync import node
    from printsrv.web.auth_service import (
        LoginOutcome,
        check_password,
        create_user,
        set_role,
        user_by_name,
    )

    with unit_of_work(link.server) as session:
        kec = ensure_office(session, OFFICE, actor="test")
        kab = ensure_office(session, KABUPATEN, actor="test")
        create_user(session, "siti", Role.OPERATOR, kec, "kata-sandi-siti-1", actor="admin")
        create_user(session, "joko", Role.SUPERVISOR, kec, "kata-sandi-joko-1", actor="admin")
        create_user(session, "kadis", Role.ADMIN, kab, "kata-sandi-kadis-1", actor="admin")
    _enrolled(link)
    node.sync_once(link.node)

    with unit_of_work(link.node) as session:
        here = {u.username: (u.role.value, u.active) for u in session.scalars(select(User))}
        assert here == {"siti": ("operator", True), "joko": ("supervisor", True)}
        # offline sign-in at the node with the password set at the server
        assert check_password(session, "siti", "kata-sandi-siti-1").outcome is LoginOutcome.OK
        assert check_password(session, "siti", "wrong").outcome is not LoginOutcome.OK

    with unit_of_work(link.server) as session:
        siti = user_by_name(session, "siti")
        assert siti is not None
        siti.active = False  # revoked at the server
        joko = user_by_name(session, "joko")
        assert joko is not None
        set_role(session, joko, Role.ADMIN, actor="admin")
    node.sync_once(link.node)
    with unit_of_work(link.node) as session:
        here = {u.username: (u.role.value, u.active) for u in session.scalars(select(User))}
        assert here == {"siti": ("operator", False), "joko": ("admin", True)}
        assert check_password(session, "siti", "kata-sandi-siti-1").outcome is not (
            LoginOutcome.OK)
    from printsrv.sync.node import connect, pull_users

    with connect(link.node) as (client, _keys):
        assert pull_users(link.node, client) == 0  # current: nothing sent, nothing changed


def test_node_audit_chains_go_up_verify_at_the_server_and_a_tampered_one_is_caught(
        link: Link, tmp_path: Path) -> None:
    from sqlalchemy import update

    from printsrv import checkpoints
    from printsrv.keys import KeyStore
    from printsrv.models import AuditEvent
    from printsrv.sync import node, server
    from printsrv.sync.models import NodeAuditEvent, NodeCheckpoint

    _import(link.server, tmp_path, 2)
    node_id = _enrolled(link)
    node.sync_once(link.node)  # the records' arrival is audited at the node
    with KeyStore.open(link.node) as keys:
        checkpoints.checkpoint_now(link.node, keys, reason="test")
    node.sync_once(link.node)
    with unit_of_work(link.node) as session:
        at_node = session.scalar(select(func.count()).select_from(AuditEvent))
    with unit_of_work(link.server) as session:
        report = server.verify_node_chains(session, node_id)
        held = session.scalar(select(func.count()).select_from(NodeAuditEvent))
        assert session.scalar(select(func.count()).select_from(NodeCheckpoint)) == 1
        listed = {n.node_id: n.chain_ok for n in server.status(session)}
    assert report.ok, report.problems
    assert held == at_node and report.checkpoints == 1
    assert listed == {node_id: True}
    node.sync_once(link.node)  # nothing new: nothing doubled
    with unit_of_work(link.server) as session:
        assert session.scalar(select(func.count()).select_from(NodeAuditEvent)) == held

    # someone rewrites an event in the server's copy: its hash, and the checkpoint, disagree
    with unit_of_work(link.server) as session:
        first = session.scalars(select(NodeAuditEvent).order_by(NodeAuditEvent.id)).first()
        assert first is not None
        original = first.actor
        session.execute(update(NodeAuditEvent).where(NodeAuditEvent.id == first.id)
                        .values(actor="someone-else"))
    run = __import__("tests.sync.test_node_sync", fromlist=["_run"])._run
    with unit_of_work(link.server) as session:
        report = server.verify_node_chains(session, node_id)
        assert not report.ok
        assert any("does not match its hash" in p for p in report.problems), report.problems
        # the listing reads only what is new since it last verified: the rewritten event was
        # verified before, so it is the full check that catches it
        (listed,) = server.status(session)
        assert listed.chain_ok is True and listed.chain_checked == 0
    verified = run(link.server, "nodes", "verify")
    assert verified.returncode == 1 and "does not match its hash" in verified.stdout
    listed_cli = run(link.server, "nodes", "--json")  # the full check's verdict is kept
    assert '"audit chain": "BROKEN"' in listed_cli.stdout, listed_cli.stderr
    with unit_of_work(link.server) as session:
        session.execute(update(NodeAuditEvent).where(NodeAuditEvent.id == first.id)
                        .values(actor=original))
        assert server.verify_node_chains(session, node_id).ok
    assert run(link.server, "nodes", "verify", node_id).returncode == 0
    with unit_of_work(link.server) as session:
        assert [n.chain_ok for n in server.status(session)] == [True]

    # a node whose own log was rewritten before it went up is caught the same way
    from printsrv import audit
    from printsrv.audit_tags import SyncTag

    with unit_of_work(link.node) as session:
        newest = session.scalar(select(func.max(AuditEvent.seq)))
        for n in range(3):
            audit.record(session, SyncTag.USERS_SYNC, actor="operator", office_code=OFFICE,
                         details={"n": n})
    with unit_of_work(link.node) as session:
        # rewritten offline, before the next sync (its owner bypassing the log's guard)
        session.execute(update(AuditEvent).where(AuditEvent.seq == newest + 2)
                        .values(subject="forged"))
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        report = server.verify_node_chains(session, node_id)
        (listed,) = server.status(session)  # new events: the listing reads and catches it
    assert [p for p in report.problems if "forged" in p or "hash" in p], report.problems
    assert not report.ok
    assert listed.chain_ok is False and listed.chain_checked == 3


def test_the_commands_transfer_to_a_node_and_accept_there(link: Link) -> None:
    import json

    from printsrv.ledger.blanks import receive_blanks
    from tests.sync.test_node_sync import _run

    with unit_of_work(link.server) as session:
        receive_blanks(session, office_code=KABUPATEN, first="KTP-000101", last="KTP-000104",
                       handover_number="BAST-PUSAT-2", actor="test")
    node_id = _enrolled(link)
    sent = _run(link.server, "nodes", "transfer", node_id, "--from", KABUPATEN, "--bast",
                "BAST/CLI/1", "--first", "KTP-000101", "--last", "KTP-000103")
    assert sent.returncode == 0, sent.stderr
    assert "3 blanks" in sent.stdout
    again = _run(link.server, "nodes", "transfer", node_id, "--from", KABUPATEN, "--bast",
                 "BAST/CLI/1", "--first", "KTP-000104", "--last", "KTP-000104")
    assert again.returncode != 0  # a handover number is used once
    assert _run(link.node, "node", "sync", "--once").returncode == 0
    early = _run(link.node, "node", "accept", "BAST/CLI/404")
    assert early.returncode != 0
    accepted = _run(link.node, "node", "accept", "BAST/CLI/1")
    assert accepted.returncode == 0, accepted.stderr
    assert "3 blanks" in accepted.stdout
    listed = json.loads(_run(link.server, "nodes", "--json").stdout)
    assert (listed[0]["blanks held"], listed[0]["blanks in transit"]) == (0, 3)
    assert _run(link.node, "node", "sync", "--once").returncode == 0
    listed = json.loads(_run(link.server, "nodes", "--json").stdout)
    assert (listed[0]["blanks held"], listed[0]["blanks in transit"]) == (3, 0)
    assert listed[0]["audit chain"] == "verifies"
    assert _blanks(link.server)["KTP-000104"] == ("in_stock", KABUPATEN, None)
