"""A node whose disk died: ``run.py nodes lost`` revokes it and reports what it held whose fate
never arrived (records, blanks its ledger left on hand) as unknown fates; a supervisor settles
each (recovered, spoiled, lost: who and why); a fresh node enrols for the office and is handed
the records to print again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from printsrv import schema
from printsrv.config import load_settings
from printsrv.db import unit_of_work
from printsrv.errors import InvalidValue, StateError
from printsrv.models import AuditEvent, Record
from tests.sync.test_node_sync import (
    Link,
    _enrolled,
    _forget_node_key,
    _import,
    _print_at_node,
    _run,
    _states,
    link,  # noqa: F401  (fixture)
)


def _owners(at: Link) -> dict[str, str | None]:
    with unit_of_work(at.server) as session:
        return dict(session.execute(select(Record.request_id, Record.owner_node)).all())


def test_a_lost_nodes_records_and_blanks_become_unknown_fates_a_supervisor_settles(
        link: Link, tmp_path: Path) -> None:  # noqa: F811
    from printsrv.sync import node, recovery
    from printsrv.sync.models import UnknownFate
    from printsrv.sync.protocol import AuthError

    _import(link.server, tmp_path, 2, batch="NODE-A")
    old = _enrolled(link)
    node.sync_once(link.node)
    _print_at_node(link.node, tmp_path, blanks=5)  # 2 issued, 3 blanks left in the hopper
    node.sync_once(link.node)
    printed = set(_states(link.server))
    assert set(_states(link.server).values()) == {"issued"}
    _import(link.server, tmp_path, 3, batch="NODE-B", seed=6)
    assert node.sync_once(link.node).pulled == 3
    held = sorted(set(_states(link.server)) - printed)
    # ... and the node's disk dies (whatever it printed since is unknown to the server)

    bad = _run(link.server, "nodes", "lost", old, "--reason", "")
    assert bad.returncode != 0
    done = _run(link.server, "nodes", "lost", old, "--reason", "disk died", "--actor", "spv")
    assert done.returncode == 0, done.stderr
    assert "3 records, 3 blanks" in done.stdout
    again = _run(link.server, "nodes", "lost", old, "--reason", "disk died", "--actor", "spv")
    assert "0 records, 0 blanks" in again.stdout  # reported once each
    with pytest.raises(AuthError) as refused:
        node.sync_once(link.node)
    assert refused.value.status == 403

    fates = json.loads(_run(link.server, "nodes", "fates", "--json").stdout)
    assert sorted(f["subject"] for f in fates if f["kind"] == "record") == held
    assert {f["last known"] for f in fates if f["kind"] == "record"} == {"queued"}
    assert sorted(f["subject"] for f in fates if f["kind"] == "blank") == [
        "KTP-000003", "KTP-000004", "KTP-000005"]
    assert {f["last known"] for f in fates if f["kind"] == "blank"} == {"in_hopper"}
    ids = {f["subject"]: f["id"] for f in fates}

    recovered, lost, spoiled = held
    settled = _run(link.server, "nodes", "settle", str(ids[recovered]), "--decision",
                   "recovered", "--reason", "card found in the office's out tray",
                   "--actor", "spv-budi")
    assert settled.returncode == 0, settled.stderr
    with unit_of_work(link.server) as session, pytest.raises(InvalidValue):
        recovery.settle(session, ids[lost], "lost", actor="spv-budi", reason=" ")
    with unit_of_work(link.server) as session:
        recovery.settle(session, ids[lost], "lost", actor="spv-budi", reason="not found")
        recovery.settle(session, ids[spoiled], "spoiled", actor="spv-budi",
                        reason="found with a bent chip")
        recovery.settle(session, ids["KTP-000003"], "lost", actor="spv-budi",
                        reason="not in the hopper")
    with unit_of_work(link.server) as session, pytest.raises(StateError, match="settled"):
        recovery.settle(session, ids[lost], "recovered", actor="spv-x", reason="again")

    states = _states(link.server)
    assert states[recovered] == "issued"
    assert states[lost] == states[spoiled] == "queued"
    owners = _owners(link)
    assert owners[recovered] is None and owners[lost] is None and owners[spoiled] is None
    with unit_of_work(link.server) as session:
        decided = {f.subject: (f.decision and f.decision.value, f.settled_by, f.reason)
                   for f in session.scalars(select(UnknownFate))}
        tags = [t for t in session.scalars(select(AuditEvent.tag))]
    assert decided[spoiled] == ("spoiled", "spv-budi", "found with a bent chip")
    assert decided["KTP-000004"] == (None, None, None)  # still open
    assert tags.count("sync:fate:settle") == 4 and tags.count("sync:node:lost") == 2
    still_open = json.loads(_run(link.server, "nodes", "fates", "--json").stdout)
    assert sorted(f["subject"] for f in still_open) == ["KTP-000004", "KTP-000005"]

    # a fresh node (new disk, new key) enrols for the office and gets what must be printed again
    _forget_node_key(link.server)
    fresh = load_settings(overrides={"instance_dir": link.server.instance_dir,
                                     "database_url": f"sqlite:///{tmp_path / 'fresh.db'}"})
    schema.upgrade(fresh)
    new = _enrolled(Link(link.server, fresh, link.url))
    assert new != old
    assert node.sync_once(fresh).pulled == 2
    assert sorted(_states(fresh)) == sorted([lost, spoiled])
    assert {o for r, o in _owners(link).items() if r in (lost, spoiled)} == {new}
