"""The kecamatan node against a kabupaten server over real HTTP (``run.py serve`` in its own
process): enrolment, records handed down with their keys re-wrapped,
printing at the node, its events applied once at the server, recall and revocation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from printsrv import PROJECT_ROOT, schema
from printsrv.config import Settings, load_settings
from printsrv.db import unit_of_work
from printsrv.devstack.cups import free_port
from printsrv.models import Record
from printsrv.sync.linkproxy import serving
from tests.station.conftest import FAKE_PDF

OFFICE = "35.26.01"


@dataclass
class Link:
    server: Settings
    node: Settings
    url: str


@pytest.fixture
def link(settings: Settings, tmp_path: Path) -> Iterator[Link]:
    node = load_settings(overrides={"instance_dir": settings.instance_dir,
                                    "database_url": f"sqlite:///{tmp_path / 'node.db'}"})
    schema.upgrade(node)
    port = free_port()
    try:
        with serving(settings, port):
            yield Link(settings, node, f"http://127.0.0.1:{port}")
    finally:
        _forget_node_key(settings)


def _forget_node_key(settings: Settings) -> None:
    """The token is shared by the tests: drop the node key so the next test makes its own."""
    from printsrv.keys import NODE_KEY, KeyStore, _pkcs11

    pkcs11 = _pkcs11()
    with KeyStore.open(settings) as keys:
        for obj in keys._session.get_objects({pkcs11.Attribute.LABEL: NODE_KEY}):
            obj.destroy()


def _import(settings: Settings, tmp: Path, count: int, batch: str = "NODE-1",
            seed: int = 5) -> None:
    from printsrv.intake.demo import write_demo_batch
    from printsrv.intake.pipeline import import_batch

    path = write_demo_batch(settings, count, tmp / batch, seed=seed, batch_id=batch,
                            office_codes=[OFFICE])
    assert import_batch(settings, path).accepted


def _enrolled(link: Link) -> str:
    from printsrv.sync import node, server

    enrolment = node.enrol(link.node, link.url, OFFICE, name="Kec. Test")
    with unit_of_work(link.server) as session, pytest.raises(Exception, match="pairing code"):
        server.approve(session, enrolment.node_id, "WRONGCODE", actor="admin")
    with unit_of_work(link.server) as session:
        server.approve(session, enrolment.node_id, enrolment.pairing_code, actor="admin")
    return enrolment.node_id


def _states(settings: Settings) -> dict[str, str]:
    with unit_of_work(settings) as session:
        return {r: s.value for r, s in session.execute(select(Record.request_id, Record.state))}


def _print_at_node(node_settings: Settings, tmp: Path, blanks: int) -> None:
    """Stock a virtual station at the node and print everything it holds."""
    from printers.directory import DirectoryPrinter
    from printers.profiles import get_profile
    from printsrv.keys import KeyStore
    from printsrv.ledger.blanks import get_or_create_station, load_blanks, receive_blanks
    from printsrv.ledger.models import ConsumableKind
    from printsrv.ledger.ribbons import load_consumable, receive_consumable
    from printsrv.station.daemon import Station
    from printsrv.station.devices import FakeEncoder, StationConfig

    config = StationConfig(name="kec1", office=OFFICE, profile="virtual-ipp-card",
                           cups_queue="Card1", reader="Virtual PCD 00 00", poll_interval=0.05,
                           printer="directory")
    with unit_of_work(node_settings) as session:
        receive_blanks(session, office_code=OFFICE, first="KTP-000001",
                       last=f"KTP-{blanks:06d}", handover_number="BAST-N1", actor="test")
        station = get_or_create_station(session, "kec1", office_code=OFFICE, cups_queue="Card1",
                                        reader="Virtual PCD 00 00", profile="virtual-ipp-card",
                                        actor="test")
        load_blanks(session, station, actor="test", count=blanks)
        receive_consumable(session, kind=ConsumableKind.RIBBON, office_code=OFFICE,
                           serial="RIB-N1", type_="YMCKOK", capacity=200, actor="test")
        load_consumable(session, station, kind=ConsumableKind.RIBBON, serial="RIB-N1",
                        actor="test")
    printer = DirectoryPrinter(tmp / "cards", get_profile(config.profile), name="kec1")
    with KeyStore.open(node_settings) as keys:
        Station(node_settings, config, printer, FakeEncoder(), keys=keys, idle_sleep=0.01,
                render=lambda card: FAKE_PDF).run(until_empty=True)


def test_a_node_prints_what_it_was_handed_and_the_server_learns_each_fate_once(
        link: Link, tmp_path: Path) -> None:
    from printsrv.outbox import Topic
    from printsrv.station.claim import claim_next, office_ids
    from printsrv.sync import node, server
    from printsrv.sync.models import AppliedEvent

    _import(link.server, tmp_path, 4)
    node_id = _enrolled(link)

    first = node.sync_once(link.node)
    assert first.pulled == 4
    assert set(_states(link.node).values()) == {"queued"}
    assert _states(link.node).keys() == _states(link.server).keys()
    with unit_of_work(link.server) as session:
        held = session.scalars(select(Record.owner_node)).all()
        assert held == [node_id] * 4
        # the server's own stations never claim what the node holds
        assert claim_next(session, office_ids(session, OFFICE), "server-st") is None

    _print_at_node(link.node, tmp_path, blanks=6)  # decrypts media: the re-wrapped key works
    assert set(_states(link.node).values()) == {"issued"}
    assert set(_states(link.server).values()) == {"queued"}  # offline so far

    second = node.sync_once(link.node)
    assert second.pushed > 0
    assert set(_states(link.server).values()) == {"issued"}
    assert node.status(link.node).events_pending_up == 0

    with unit_of_work(link.server) as session:
        applied = session.scalar(select(func.count()).select_from(AppliedEvent))
        issued_twice = session.execute(
            select(AppliedEvent.subject, func.count())
            .where(AppliedEvent.topic == str(Topic.RECORD_STATE))
            .group_by(AppliedEvent.subject).having(func.count() > 2)).all()
        assert issued_twice == []
        ledger = server.node_ledger(session, node_id)
    kinds = [m["kind"] for m in ledger]
    assert kinds.count("issue") == 4 and kinds.count("receive") == 6

    # the same events shipped again (an answer lost on the way back) change nothing
    from printsrv.models import OutboxEvent
    with unit_of_work(link.server) as session:
        shipped = set(session.scalars(select(AppliedEvent.event_id)))
    with unit_of_work(link.node) as session:
        again = [server.NodeEvent(e.id, e.event_id, e.topic, e.subject, e.payload)
                 for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
                 if e.event_id in shipped]
    assert len(again) == applied
    with unit_of_work(link.server) as session:
        n = server.get_node(session, node_id, lock=True)
        before = n.up_applied
        assert server.push(session, n, again) == again[-1].seq
        assert n.up_applied == before
    with unit_of_work(link.server) as session:
        assert session.scalar(select(func.count()).select_from(AppliedEvent)) == applied


def test_a_recall_releases_a_queued_record_and_fails_with_an_issued_cards_fate(
        link: Link, tmp_path: Path) -> None:
    from printsrv.sync import node, server
    from printsrv.sync.models import Recall

    _import(link.server, tmp_path, 1, batch="NODE-A")
    _enrolled(link)
    node.sync_once(link.node)
    _print_at_node(link.node, tmp_path, blanks=2)
    printed = next(iter(_states(link.node)))
    _import(link.server, tmp_path, 1, batch="NODE-B", seed=6)
    node.sync_once(link.node)
    assert len(_states(link.server)) == 2, _states(link.server)
    assert len(_states(link.node)) == 2, _states(link.node)
    waiting = next(r for r, s in _states(link.node).items() if s == "queued")

    with unit_of_work(link.server) as session:
        server.recall(session, printed, actor="admin")
        server.recall(session, waiting, actor="admin")
    node.sync_once(link.node)
    with unit_of_work(link.server) as session:
        answers = {r.request_id: (r.state.value, r.fate) for r in session.scalars(select(Recall))}
        owners = {r: o for r, o in session.execute(select(Record.request_id, Record.owner_node))}
    assert answers == {printed: ("refused", "issued"), waiting: ("released", None)}
    assert owners[waiting] is None
    assert _states(link.node)[waiting] == "cancelled"
    assert _states(link.server) == {printed: "issued", waiting: "queued"}
    node.sync_once(link.node)  # the release is not handed down to the same node again
    assert _states(link.node)[waiting] == "cancelled"


def test_requests_are_signed_counted_and_refused_once_revoked(link: Link) -> None:
    import requests
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from printsrv.keys import KeyStore
    from printsrv.sync import node, server
    from printsrv.sync.client import post_signed
    from printsrv.sync.protocol import AuthError

    enrolment = node.enrol(link.node, link.url, OFFICE)
    with pytest.raises(AuthError) as pending:
        node.sync_once(link.node)
    assert pending.value.status == 403
    with unit_of_work(link.server) as session:
        server.approve(session, enrolment.node_id, enrolment.pairing_code, actor="admin")
    node.sync_once(link.node)
    with KeyStore.open(link.node) as keys:
        sign = keys.node_signer().sign
        http = requests.Session()
        ok = post_signed(http, link.url, "/hello", {}, enrolment.node_id, sign, 1000)
        assert ok["state"] == "active"
        with pytest.raises(AuthError, match="replayed"):  # the same counter again
            post_signed(http, link.url, "/hello", {}, enrolment.node_id, sign, 1000)
        with pytest.raises(AuthError, match="unknown node"):
            post_signed(http, link.url, "/hello", {}, "35.26.01-other", sign, 1001)
        other = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(AuthError, match="signature"):  # a key that is not the node's
            post_signed(http, link.url, "/hello", {}, enrolment.node_id,
                        lambda data: other.sign(data, ec.ECDSA(hashes.SHA256())), 1002)
    with unit_of_work(link.server) as session:
        server.revoke(session, enrolment.node_id, actor="admin")
    with pytest.raises(AuthError) as revoked:
        node.sync_once(link.node)
    assert revoked.value.status == 403
    assert node.status(link.node).offline_since is not None


def _run(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(settings.instance_dir),
           "PRINTSRV_DATABASE_URL": settings.sqlalchemy_url}
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "run.py"), *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_commands_enroll_approve_sync_and_show_status(link: Link, tmp_path: Path) -> None:
    import json
    import re

    _import(link.server, tmp_path, 2)
    enrolled = _run(link.node, "node", "enroll", "--server", link.url, "--office", OFFICE)
    assert enrolled.returncode == 0, enrolled.stderr
    node_id = re.search(r"node id: (\S+)", enrolled.stdout)
    code = re.search(r"pairing code: (\S+)", enrolled.stdout)
    assert node_id and code
    refused = _run(link.node, "node", "sync", "--once")
    assert refused.returncode == 1 and "403" in refused.stderr
    wrong = _run(link.server, "nodes", "approve", node_id[1], "--code", "AAAAAAAA")
    assert wrong.returncode == 1
    assert _run(link.server, "nodes", "approve", node_id[1], "--code", code[1]).returncode == 0
    synced = _run(link.node, "node", "sync", "--once")
    assert synced.returncode == 0, synced.stderr
    assert "2 items down" in synced.stdout
    status = json.loads(_run(link.node, "node", "status", "--json").stdout)
    assert status["offline_since"] is None and status["records_queued"] == 2
    listed = json.loads(_run(link.server, "nodes", "--json").stdout)
    assert [(n["node"], n["state"], n["records held"]) for n in listed] == [
        (node_id[1], "active", 2)]
    assert _run(link.server, "nodes", "revoke", node_id[1]).returncode == 0
    assert _run(link.node, "node", "sync", "--once").returncode == 1


def test_syncs_of_one_node_started_together_take_turns(link: Link, tmp_path: Path) -> None:
    """The web app's background sync and an operator's ``node sync --once`` may overlap: the
    exchanges take turns, so no request counter reaches the server out of order (which the
    server refuses as a replay, 401) and every sync succeeds."""
    _import(link.server, tmp_path, 3)
    _enrolled(link)
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(link.node.instance_dir),
           "PRINTSRV_DATABASE_URL": link.node.sqlalchemy_url}
    procs = [subprocess.Popen([sys.executable, str(PROJECT_ROOT / "run.py"), "node", "sync",
                               "--once"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = [(p.wait(120), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in outcomes] == [0, 0, 0, 0], outcomes
    assert sorted(_states(link.node).values()) == ["queued"] * 3
