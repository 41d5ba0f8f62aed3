"""Resumable, chunked, compressed transfers (printsrv.sync.bundle) between a node and
``run.py serve``, through a TCP proxy that cuts the link at chosen byte offsets and counts every
byte it carries: a cut transfer continues where it stopped (nothing that arrived is sent
again) and a corrupted chunk is refused."""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.models import RecordMedia
from printsrv.sync import bundle
from printsrv.sync.protocol import SyncError
from tests.sync import test_node_sync
from tests.sync.test_node_sync import OFFICE, Link, _import, _states

link = test_node_sync.link  # the fixture: a server (run.py serve) and a node database


class CuttingLink:
    """``127.0.0.1:port`` → ``upstream``, counting the bytes of each direction. ``cuts_down``
    / ``cuts_up``: offsets in the running count of a direction at which the connection is cut
    (the bytes before the offset get through); ``corrupt_body``: flip one byte inside the body
    of the next answer (``down``) or request (``up``) whose head contains that marker."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.count = {"down": 0, "up": 0}
        self.cuts: dict[str, list[int]] = {"down": [], "up": []}
        self.made = {"down": 0, "up": 0}
        self.heads = {"down": 0, "up": 0}  # HTTP answers that came down
        self.corrupt: dict[str, bytes | None] = {"down": None, "up": None}
        self.corrupted = {"down": 0, "up": 0}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=10)
            for src, dst, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(target=self._pump, args=(src, dst, way), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        # where to flip a byte on this connection (the stripes of a download are parallel
        # connections: the flip belongs to the one whose answer named the mark)
        flip: int | None = None
        try:
            while chunk := src.recv(4096):
                cut = False
                with self._lock:
                    start = self.count[way]
                    mark = self.corrupt[way]
                    # the head that names ``mark`` ends after it (a chunk may also hold the
                    # end of the previous answer on the kept-alive connection)
                    end = chunk.find(b"\r\n\r\n", chunk.find(mark)) if mark else -1
                    if mark is not None and mark in chunk and end >= 0:
                        self.corrupt[way] = None  # 50 bytes into the body: flip one
                        flip = end + 4 + 50
                    at = flip
                    if at is not None:
                        if at < len(chunk):
                            chunk = chunk[:at] + bytes([chunk[at] ^ 0x5A]) + chunk[at + 1:]
                            flip = None
                            self.corrupted[way] += 1
                        else:
                            flip = at - len(chunk)
                    due = [c for c in self.cuts[way] if start < c <= start + len(chunk)]
                    if due:
                        chunk = chunk[: due[0] - start]
                        self.cuts[way].remove(due[0])
                        self.made[way] += 1
                        cut = True
                    self.count[way] += len(chunk)
                    self.heads[way] += chunk.count(b"HTTP/1.1 ") if way == "down" else 0
                dst.sendall(chunk)
                if cut:
                    break
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def proxied(link: Link) -> Iterator[tuple[Link, CuttingLink]]:
    port = int(link.url.rsplit(":", 1)[1])
    proxy = CuttingLink(("127.0.0.1", port))
    try:
        yield Link(link.server, link.node, proxy.url), proxy
    finally:
        proxy.close()


def _enrol(link: Link) -> str:
    from printsrv.sync import node, server

    enrolment = node.enrol(link.node, link.url, OFFICE)
    with unit_of_work(link.server) as session:
        server.approve(session, enrolment.node_id, enrolment.pairing_code, actor="admin")
    return enrolment.node_id


def _counter(settings: Settings) -> int:
    from printsrv.sync.node import identity

    with unit_of_work(settings) as session:
        return identity(session).request_counter


def _sync_until_done(settings: Settings, attempts: int = 12) -> int:
    """``sync_once`` until it succeeds (a cut fails a round only after its retries); the
    number of failed rounds."""
    from printsrv.sync import node

    failed = 0
    for _ in range(attempts):
        try:
            node.sync_once(settings)
            return failed
        except SyncError:
            failed += 1
    raise AssertionError(f"no successful sync in {attempts} rounds")


def _media(settings: Settings) -> dict[str, bytes]:
    with unit_of_work(settings) as session:
        return {f"{m.record_id}:{m.kind}": m.ciphertext
                for m in session.scalars(select(RecordMedia))}


def _manifest_of_the_pull(settings: Settings, node_id: str) -> bundle.Manifest:
    import json

    (index,) = list(bundle.spool(settings.instance_dir, "server", "down", node_id).glob("*.json"))
    return bundle.Manifest.from_json(json.loads(index.read_text()))


def test_a_download_cut_at_random_bytes_continues_where_it_stopped(
        proxied: tuple[Link, CuttingLink], tmp_path: Path) -> None:
    link, proxy = proxied
    _import(link.server, tmp_path, 30)
    node_id = _enrol(link)
    rng = random.Random(16)
    start = proxy.count["down"]
    # five cuts at random byte offsets of what flows down (~300 kB of media and records)
    proxy.cuts["down"] = sorted(start + rng.randrange(2_000, 250_000) for _ in range(5))
    heads = proxy.heads["down"]

    failed = _sync_until_done(link.node)

    manifest = _manifest_of_the_pull(link.server, node_id)
    assert manifest.size > 200_000 and len(manifest.blocks) > 6
    assert proxy.made["down"] == 5, proxy.cuts
    requests = proxy.heads["down"] - heads  # answers (range reads have no counter)
    assert requests >= 5
    wire = proxy.count["down"] - start
    # every byte of the bundle crossed once; what else crossed: the answers' heads and small
    # JSON answers (≤ 2 kB a request) and, per cut, at most the 4 kB the client was reading
    assert wire <= manifest.size + 2048 * requests + 4096 * 5, (wire, manifest.size, requests)
    # had each cut restarted the download, the bytes before each cut would cross again
    assert wire < manifest.size * 1.2
    assert failed <= 2
    # everything arrived intact: same records, same ciphertexts as at the server
    assert _states(link.node).keys() == _states(link.server).keys()
    assert len(_states(link.node)) == 30
    node_media = sorted(_media(link.node).values())
    assert node_media == sorted(_media(link.server).values())
    # the node's part file is gone once the bundle was applied
    assert not list(bundle.spool(link.node.instance_dir, "node", "down").glob("*"))


def test_a_corrupted_download_chunk_is_refused_and_fetched_again(
        proxied: tuple[Link, CuttingLink], tmp_path: Path) -> None:
    from printsrv.sync import node

    link, proxy = proxied
    _import(link.server, tmp_path, 12)
    _enrol(link)
    proxy.corrupt["down"] = b"application/octet-stream"
    with node.connect(link.node) as (client, keys):
        assert node.pull_once(link.node, client, keys) == 12
        assert client.refused == 1  # the block with the flipped byte
    assert proxy.corrupted["down"] == 1
    assert sorted(_media(link.node).values()) == sorted(_media(link.server).values())


def _noise(settings: Settings, count: int) -> None:
    """``count`` events at the node's outbox, as a week offline leaves them (the server keeps
    them as applied events)."""
    import uuid

    from printsrv import outbox

    rng = random.Random(3)
    with unit_of_work(settings) as session:
        for i in range(count):
            outbox.publish(session, "blank.movement", office_code=OFFICE,
                           subject=f"KTP-{i:06d}",
                           payload={"kind": "issue", "serial": f"KTP-{i:06d}",
                                    "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                                    "station": "kec1", "note": rng.randbytes(24).hex()})


def test_an_upload_cut_at_random_bytes_resends_at_most_the_chunk_on_the_wire(
        proxied: tuple[Link, CuttingLink], monkeypatch: pytest.MonkeyPatch) -> None:
    from printsrv.sync import node
    from printsrv.sync.models import AppliedEvent

    link, proxy = proxied
    monkeypatch.setattr(bundle, "UP_CHUNK", 16 * 1024)  # the node's chunks (≤ the server's)
    _enrol(link)
    _noise(link.node, 1000)
    with unit_of_work(link.node) as session:
        from printsrv import outbox

        events = outbox.fetch(session, node.CONSUMER, limit=node.CHUNK)
    data, raw = bundle.compress({"events": [node._event_json(e) for e in events]})
    assert len(data) > 3 * bundle.UP_CHUNK  # chunked, and deflate earns its keep on events
    assert raw / len(data) > 1.8, (raw, len(data))
    rng = random.Random(7)
    start = proxy.count["up"]
    proxy.cuts["up"] = sorted(start + rng.randrange(5_000, len(data)) for _ in range(4))
    requests_before = _counter(link.node)

    _sync_until_done(link.node)

    assert proxy.made["up"] == 4
    requests = _counter(link.node) - requests_before
    wire = proxy.count["up"] - start
    assert wire <= len(data) + 4 * bundle.UP_CHUNK + 1500 * requests, (wire, len(data))
    with unit_of_work(link.server) as session:
        applied = session.scalars(select(AppliedEvent.event_id)).all()
    assert sorted(applied) == sorted(e.event_id for e in events)
    assert node.status(link.node).events_pending_up == 0


def test_a_corrupted_upload_chunk_is_refused_and_sent_again(
        proxied: tuple[Link, CuttingLink], monkeypatch: pytest.MonkeyPatch) -> None:
    from printsrv.sync import node
    from printsrv.sync.models import AppliedEvent

    link, proxy = proxied
    _enrol(link)
    monkeypatch.setattr(bundle, "UP_CHUNK", 16 * 1024)
    _noise(link.node, 600)
    proxy.corrupt["up"] = b"/upload/"  # a chunk request, its body altered after signing
    with node.connect(link.node) as (client, _keys):
        assert node.push_once(link.node, client) == 600
        assert client.refused == 1
    assert proxy.corrupted["up"] == 1
    with unit_of_work(link.server) as session:
        assert len(session.scalars(select(AppliedEvent.event_id)).all()) == 600


def test_a_chunk_that_does_not_match_its_block_hash_is_cut_off(tmp_path: Path) -> None:
    data = zlib.compress(random.Random(1).randbytes(100_000), 0)
    manifest = bundle.Manifest.of(data, block=4096)
    part = bundle.Part(tmp_path, manifest)
    assert part.write(0, [data[:10_000]]) == 10_000  # two blocks checked, a third begun
    bad = bytearray(data[10_000:20_000])
    bad[3000] ^= 1  # inside block 3 (12288..16383)
    with pytest.raises(bundle.ChunkRefused, match="block 3"):
        part.write(10_000, [bytes(bad)])
    assert part.received == 12_288  # the bad block cut off, the good ones kept
    part.write(12_288, [data[12_288:]])
    assert part.complete and part.read() == data
    with pytest.raises(SyncError, match="block hashes"):
        bundle.Manifest.from_json({**manifest.to_json(), "blocks": manifest.blocks[:-1]})


def test_json_travels_deflated_both_ways(link: Link, tmp_path: Path) -> None:
    import json

    import requests

    from printsrv.keys import KeyStore
    from printsrv.sync import protocol
    from printsrv.sync.client import encode_json, signed_headers

    _import(link.server, tmp_path, 3)
    node_id = _enrol(link)
    body = {"after": 0, "pad": "x" * 2000}  # above COMPRESS_ABOVE: the request is deflated
    raw, encoding = encode_json(body)
    assert encoding == "deflate" and len(raw) < 200
    with KeyStore.open(link.node) as keys:
        headers = signed_headers("/pull", raw, node_id, keys.node_signer().sign, 10**6)
    headers.update({"Content-Type": "application/json", "Content-Encoding": "deflate",
                    "Accept-Encoding": "deflate"})
    answer = requests.post(link.url + protocol.PREFIX + "/pull", data=raw, headers=headers,
                           stream=True, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Encoding"] == "deflate"
    on_wire = answer.raw.read(decode_content=False)
    document = json.loads(zlib.decompress(on_wire))
    assert len(document["items"]) == 3
    assert len(on_wire) < len(json.dumps(document)) * 0.9  # media compress little, the rest well


def test_a_part_file_that_holds_every_byte_is_settled(tmp_path: Path) -> None:
    """A process that ended between the last write and the rename: the next one checks the
    part and renames it (a bad one is cut off, not taken)."""
    data = random.Random(2).randbytes(10_000)
    manifest = bundle.Manifest.of(data, block=4096)
    part = bundle.Part(tmp_path, manifest)
    part.path.write_bytes(data)
    part.settle()
    assert part.complete and part.read() == data
    part.discard()
    part.path.write_bytes(data[:9_000] + bytes(1_000))
    with pytest.raises(bundle.ChunkRefused):
        part.settle()
    assert part.received == 8_192 and not part.complete


def test_a_range_read_is_replayable_but_only_by_an_active_node(link: Link,
                                                               tmp_path: Path) -> None:
    from printsrv.sync import node, server
    from printsrv.sync.protocol import AuthError

    _import(link.server, tmp_path, 12)
    node_id = _enrol(link)
    with node.connect(link.node) as (client, _keys):
        answer = client.call("/pull", {"after": 0, "bundle": True})
        manifest = bundle.Manifest.from_json(answer["bundle"])
        ask = {"offset": 0, "length": 1000}
        first = b"".join(client.fetch(f"/fetch/{manifest.sha256}", ask))
        again = b"".join(client.fetch(f"/fetch/{manifest.sha256}", ask))  # counter 0 again
        assert first == again and len(first) == 1000
        whole = b"".join(client.fetch(f"/fetch/{manifest.sha256}",
                                      {"offset": 0, "length": manifest.size}))
        assert hashlib.sha256(whole).hexdigest() == manifest.sha256
        with unit_of_work(link.server) as session:
            server.revoke(session, node_id, actor="admin")
        with pytest.raises(AuthError) as revoked:
            b"".join(client.fetch(f"/fetch/{manifest.sha256}", ask))
        assert revoked.value.status == 403


def test_a_sync_asks_users_and_audit_with_its_pull_and_audits_on_the_nodes_chain(
        link: Link, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first pull of a sync carries the ``/users`` and ``/audit`` questions (two round
    trips saved); a pull that hands everything down says there is no more (no empty pull
    after it); the media come as blobs apart from the records' text and arrive intact; what
    the node's requests audit at the server goes to the node's own chain."""
    from printsrv import audit
    from printsrv.audit_tags import SyncTag
    from printsrv.models import AuditEvent
    from printsrv.sync import client, node

    _import(link.server, tmp_path, 3)
    node_id = _enrol(link)
    paths: list[str] = []
    post = client.ServerClient._post

    def counted(self: client.ServerClient, path: str, *args: object, **kw: object) -> object:
        paths.append(path)
        return post(self, path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(client.ServerClient, "_post", counted)
    assert node.sync_once(link.node).pulled == 3
    assert paths.count("/pull") == 1 and "/users" not in paths, paths
    arrived = sorted(_media(link.node).values())
    assert len(arrived) == len(_media(link.server)) > 0
    assert arrived == sorted(_media(link.server).values())
    paths.clear()
    node.sync_once(link.node)
    assert paths[0] == "/pull" and paths.count("/pull") == 1 and "/users" not in paths, paths
    with unit_of_work(link.server) as session:
        chains = set(session.scalars(select(AuditEvent.chain).where(
            AuditEvent.tag == str(SyncTag.RECORD_ASSIGN))))
    assert chains == {audit.node_chain(node_id)}


def test_a_pull_bundle_carries_its_media_raw_after_the_deflated_text() -> None:
    import base64
    import os

    media = [os.urandom(n) for n in (7000, 1900, 300)]
    document = {"items": [{"seq": i, "media": [{"blob": i}]} for i in range(3)],
                "more": False, "blobs": [base64.b64encode(m).decode() for m in media]}
    data, _, encoding = bundle.pack(document)
    assert encoding == bundle.BLOBS
    assert len(data) < len(bundle.compress(document)[0])  # no base64 left to deflate
    assert sum(len(m) for m in media) < len(data) < sum(len(m) for m in media) + 200
    assert bundle.unpack(data, encoding) == {**document, "blobs": media}
    with pytest.raises(SyncError, match="add up"):
        bundle.unpack(data[:-1], encoding)
    assert bundle.pack({"items": [], "blobs": []})[2] == bundle.ENCODING
