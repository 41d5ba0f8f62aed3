"""What a node's operator sees with the link down: the banner on every page of the node's web
app (office local time, events waiting, last good exchange), in Bahasa Indonesia and English;
printing goes on through the node's virtual station; ``run.py serve`` on a node runs the sync
beside the web app and finds the link down by itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from printsrv import PROJECT_ROOT, schema
from printsrv.config import Settings, load_settings
from printsrv.db import unit_of_work
from printsrv.sync.models import NodeIdentity
from tests.sync.test_node_sync import (
    OFFICE,
    Link,
    _enrolled,
    _forget_node_key,
    _import,
    _print_at_node,
    _states,
    free_port,
    link,  # noqa: F401  (fixture)
)

PASSWORD = "correct horse battery"


@pytest.fixture
def node_key(instance_dir: Path) -> Iterator[None]:
    """A node key in the shared token (as ``node enroll`` makes it), removed afterwards."""
    from printsrv.keys import KeyStore

    settings = load_settings(overrides={"instance_dir": instance_dir})
    with KeyStore.open(settings) as keys:
        keys.node_public_key(create=True)
    try:
        yield
    finally:
        _forget_node_key(settings)


def _unreachable() -> str:
    """A URL on which nothing listens (a port just freed)."""
    return f"http://127.0.0.1:{free_port()}"


def _point_at(settings: Settings, url: str) -> None:
    with unit_of_work(settings) as session:
        node = session.scalar(select(NodeIdentity))
        assert node is not None
        node.server_url = url


def _web_client(settings: Settings, role: str = "operator") -> FlaskClient:
    from printsrv.models import Role
    from printsrv.offices import ensure_office
    from printsrv.web import create_app
    from printsrv.web.auth_service import complete_login, create_user

    with unit_of_work(settings) as session:
        office = ensure_office(session, OFFICE, actor="test")
        user = create_user(session, f"{role}-kec", Role(role), office, PASSWORD, actor="test")
        token = complete_login(session, user)
    client = create_app(settings, {"TESTING": True, "SESSION_COOKIE_SECURE": False}
                        ).test_client()
    with client.session_transaction() as sess:
        sess.update({"stage": "full", "sid": token})
    return client


def _banner(page: str) -> str | None:
    found = re.search(r'<div class="offline-banner"[^>]*>(.*?)</div>', page, re.S)
    return re.sub(r"<[^>]+>", " ", found[1]) if found else None


def test_the_offline_banner_names_the_office_time_the_waiting_events_and_the_last_sync(
        settings: Settings, node_key: None) -> None:
    from printsrv import outbox
    from printsrv.sync import node
    from printsrv.sync.protocol import SyncError

    with unit_of_work(settings) as session:
        session.add(NodeIdentity(node_id=f"{OFFICE}-feedbeef", server_url=_unreachable(),
                                 office_code=OFFICE, enrolled_at=datetime.now(UTC),
                                 request_counter=0, down_applied=0))
        outbox.register(session, node.CONSUMER, from_now=True)
    client = _web_client(settings)
    assert _banner(client.get("/queue").get_data(as_text=True)) is None  # never tried yet

    with pytest.raises(SyncError):
        node.sync_once(settings)
    with unit_of_work(settings) as session:
        identity = node.identity(session)
        assert identity.offline_since is not None and identity.last_error
        # fixed moments to read the office time on the page: 07:03 UTC is 14:03 WIB
        identity.offline_since = datetime(2026, 12, 5, 7, 3, tzinfo=UTC)
        identity.last_contact_at = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)
        for n in range(3):
            outbox.publish(session, "blank.movement", office_code=OFFICE, subject=f"B{n}",
                           payload={"n": n})
    pages = ["/queue", "/held", "/desk"]
    for path in pages:
        page = client.get(path, follow_redirects=True)
        assert page.status_code == 200, path
        text = _banner(page.get_data(as_text=True))
        assert text is not None, path
        assert "Luring sejak 5 Des 2026 14:03 WIB" in text
        assert "kartu tetap dicetak dan akan dikirim saat tersambung" in text
        assert "3 kejadian menunggu" in text
        assert "sinkron terakhir berhasil: 5 Des 2026 06:30 WIB" in text
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    english = _banner(client.get("/queue").get_data(as_text=True))
    assert english is not None
    assert "Offline since 5 Dec 2026 14:03 WIB" in english
    assert "3 events waiting" in english and "last successful sync: 5 Dec 2026 06:30" in english
    anonymous = create_app_client(settings).get("/login").get_data(as_text=True)
    assert "Luring sejak" in (_banner(anonymous) or "")

    with unit_of_work(settings) as session:  # the link is back
        identity = node.identity(session)
        identity.offline_since = None
        identity.last_contact_at = datetime.now(UTC)
    assert _banner(client.get("/queue").get_data(as_text=True)) is None


def create_app_client(settings: Settings) -> FlaskClient:
    from printsrv.web import create_app

    return create_app(settings, {"TESTING": True, "SESSION_COOKIE_SECURE": False}).test_client()


def test_a_server_shows_no_banner(settings: Settings) -> None:
    client = _web_client(settings, "admin")
    assert _banner(client.get("/queue").get_data(as_text=True)) is None


def test_a_node_whose_server_is_unreachable_prints_and_catches_up(link: Link,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    from printsrv.sync import node
    from printsrv.sync.protocol import SyncError

    _import(link.server, tmp_path, 3)
    _enrolled(link)
    assert node.sync_once(link.node).pulled == 3
    _point_at(link.node, _unreachable())  # the link is down
    with pytest.raises(SyncError):
        node.sync_once(link.node)

    _print_at_node(link.node, tmp_path, blanks=4)  # claims and prints with the link down
    assert set(_states(link.node).values()) == {"issued"}
    assert set(_states(link.server).values()) == {"queued"}
    offline = node.status(link.node)
    assert offline.offline_since is not None and offline.events_pending_up > 0
    client = _web_client(link.node)
    text = _banner(client.get("/queue").get_data(as_text=True))
    assert text is not None and f"{offline.events_pending_up} kejadian menunggu" in text

    _point_at(link.node, link.url)  # the link is back
    assert node.sync_once(link.node).pushed == offline.events_pending_up
    assert set(_states(link.server).values()) == {"issued"}
    assert node.status(link.node).offline_since is None
    assert _banner(client.get("/queue").get_data(as_text=True)) is None


def test_the_sync_loop_backs_off_and_stops_when_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from printsrv.sync import node
    from printsrv.sync.protocol import AuthError, SyncError

    assert [node.backoff(n, 60, 600) for n in range(6)] == [60, 60, 120, 240, 480, 600]
    assert node.backoff(3, 60, 10) == 60  # never below the interval

    outcomes: list[Exception | None] = [SyncError("down"), SyncError("down"), SyncError("down"),
                                        None, SyncError("down"), AuthError("revoked", 403)]

    def exchange(settings: object) -> node.SyncResult:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return node.SyncResult(2, 1)

    waits: list[float] = []
    monkeypatch.setattr(node, "sync_once", exchange)
    monkeypatch.setattr(node, "_pause", lambda stop, seconds: waits.append(float(seconds)))
    lines: list[tuple[str, bool]] = []
    stop = threading.Event()
    assert node.sync_forever(None, stop, interval=1.0, ceiling=3.0,  # type: ignore[arg-type]
                             report=lambda line, failed: lines.append((line, failed))) == 1
    assert waits == [1.0, 2.0, 3.0, 1.0, 1.0]  # doubling up to the ceiling; back to 1
    assert [failed for _, failed in lines] == [True, True, True, False, True, True]
    assert lines[3][0] == "sync: 2 events up, 1 items down"
    assert "refused by the server (403)" in lines[-1][0]


@pytest.mark.parametrize("workers", ["1", "2"])  # waitress; gunicorn (forks)
def test_serve_on_a_node_syncs_by_itself_and_shows_the_link_down(
        instance_dir: Path, tmp_path: Path, node_key: None, workers: str) -> None:
    """``run.py serve`` on a node whose server does not answer: its own sync finds the link
    down within a few seconds, and the login page says so."""
    import requests

    from printsrv import outbox
    from printsrv.sync import node

    node_settings = load_settings(overrides={"instance_dir": instance_dir,
                                             "database_url": f"sqlite:///{tmp_path / 'n.db'}"})
    schema.upgrade(node_settings)
    with unit_of_work(node_settings) as session:
        session.add(NodeIdentity(node_id=f"{OFFICE}-0badc0de", server_url=_unreachable(),
                                 office_code=OFFICE, enrolled_at=datetime.now(UTC),
                                 request_counter=0, down_applied=0))
        outbox.register(session, node.CONSUMER, from_now=True)
    port = free_port()
    env = {**os.environ, "PRINTSRV_INSTANCE_DIR": str(instance_dir),
           "PRINTSRV_DATABASE_URL": node_settings.sqlalchemy_url,
           "PRINTSRV_NODE_SYNC_INTERVAL": "1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(PROJECT_ROOT / "run.py"), "serve",
                                 "--workers", workers, "--port", str(port),
                                 "--insecure-cookies"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        page = ""
        while time.monotonic() < deadline:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/login", timeout=2).text
            except requests.RequestException:
                page = ""
            if "Luring sejak" in page:
                break
            assert proc.poll() is None, log.read_text()
            time.sleep(0.3)
        assert "Luring sejak" in page, log.read_text()[-3000:]
        assert node.status(node_settings).last_error
        assert "syncing with the server every 1 s" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(15)
    time.sleep(0.5)
    assert "sync failed (retry in" in log.read_text()


def test_the_sync_loops_pause_ends_when_stopped() -> None:
    import threading
    import time

    from printsrv.sync import node

    stop = threading.Event()
    started = time.monotonic()
    node._pause(stop, 0.3)
    assert 0.3 <= time.monotonic() - started < 2
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    node._pause(stop, 30)
    assert time.monotonic() - started < 2
