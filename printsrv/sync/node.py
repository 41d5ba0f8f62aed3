"""The node's side of the kecamatan sync (a server on SQLite at a kecamatan office).

* :func:`enrol` makes the node key in its token, registers it with the server, and returns the
  one-time pairing code an admin confirms there.
* :func:`sync_once` is one exchange: ship the node's outbox events (consumer
  :data:`CONSUMER`) in ordered chunks and move the cursor only up to what the server says it
  applied; pull what is handed down (records, recalls) and apply each down item once, in order.
  A link that drops at any point costs a repeat, never a loss or a double: the server applies
  each event id once and the node each down sequence number once.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from printsrv import outbox
from printsrv.config import Settings
from printsrv.db import unit_of_work
from printsrv.errors import NotFound, PrintSrvError, StateError
from printsrv.keys import KeyStore
from printsrv.models import (
    Batch,
    MediaKind,
    Record,
    RecordKey,
    RecordMedia,
    RecordState,
)
from printsrv.offices import ensure_office
from printsrv.sync import bundle, protocol
from printsrv.sync.client import Refused, ServerClient, post_signed
from printsrv.sync.models import NodeIdentity
from printsrv.sync.protocol import AuthError, SyncError, WrappedKey
from printsrv.sync.server import RECALL_ANSWER

#: The node's outbox consumer that ships its events to the server.
CONSUMER = "kabupaten-sync"
#: Events in one push at most (one bundle: sent in chunks when large, resumed after a cut).
CHUNK = 1000
#: Stripes of a bundle fetched at once (each on its own connection), and their size.
PARALLEL = 3
STRIPE = 64 * 1024
#: Stripes ahead of the part file's end that may be held in memory.
AHEAD = 8
#: Attempts in a row that move no byte before a transfer gives up until the next sync.
RETRIES = 3
ACTOR = "sync"
#: States in which a node answers a recall with the card's fate instead of releasing it.
FATES = frozenset({RecordState.ISSUED, RecordState.AT_DESK, RecordState.COLLECTED,
                   RecordState.CANCELLED})


def _now() -> datetime:
    return datetime.now(UTC)


def identity(session: Session) -> NodeIdentity:
    node = session.scalar(select(NodeIdentity))
    if node is None:
        raise NotFound("this instance is not a node: run 'python run.py node enroll'")
    return node


def is_node(settings: Settings) -> bool:
    """Whether this instance is enrolled as a kecamatan node."""
    with unit_of_work(settings) as session:
        return session.scalar(select(NodeIdentity.node_id)) is not None


@dataclass(frozen=True)
class Enrolment:
    node_id: str
    pairing_code: str


def enrol(settings: Settings, server_url: str, office: str, *, name: str = "") -> Enrolment:
    """Make the node key (in the token), send its public half, and keep the node id; the
    returned pairing code is shown to the operator, who reads it to the server's admin."""
    import requests

    with unit_of_work(settings) as session:
        if session.scalar(select(NodeIdentity)) is not None:
            raise StateError("this node is already enrolled")
        ensure_office(session, office, actor=ACTOR)
    code = protocol.new_pairing_code()
    with KeyStore.open(settings) as keys:
        public = protocol.public_key_pem(keys.node_public_key(create=True))
        signer = keys.node_signer()
        http = requests.Session()
        answer = post_signed(
            http, server_url.rstrip("/"), "/enrol",
            {"office": office, "public_key": public, "pairing_hash": protocol.pairing_hash(code),
             "name": name}, "", signer.sign, 0)
    node_id = str(answer["node_id"])
    with unit_of_work(settings) as session:
        session.add(NodeIdentity(node_id=node_id, server_url=server_url.rstrip("/"),
                                 office_code=office, enrolled_at=_now(), request_counter=0,
                                 down_applied=0))
        outbox.register(session, CONSUMER, from_now=True)
    return Enrolment(node_id, code)


def _next_counter(settings: Settings) -> Callable[[], int]:
    def take() -> int:
        with unit_of_work(settings) as session:
            node = identity(session)
            node.request_counter += 1
            return node.request_counter
    return take


@contextmanager
def connect(settings: Settings) -> Iterator[tuple[ServerClient, KeyStore]]:
    """A client for this node's server, signing with the node key in the token."""
    with unit_of_work(settings) as session:
        node = identity(session)
        node_id, url = node.node_id, node.server_url
    with KeyStore.open(settings) as keys:
        signer = keys.node_signer()
        client = ServerClient(url, node_id, signer.sign, _next_counter(settings))
        try:
            yield client, keys
        finally:
            client.close()


# ----------------------------------------------------------------------------------- up


def _event_json(event: outbox.Event) -> dict[str, Any]:
    # On SQLite (a node's database) the outbox id is the commit order: the node's sequence.
    return {"seq": event.id, "event_id": event.event_id, "topic": event.topic,
            "subject": event.subject, "payload": event.payload}


def push_once(settings: Settings, client: ServerClient, *, limit: int = CHUNK) -> int:
    """Ship the next chunk of events; returns how many the server confirmed (0: none wait).

    The events are read, sent, and the cursor moved after the answer, in separate
    transactions: the node's database is never locked while the link is slow."""
    folder = bundle.spool(settings.instance_dir, "node", "up")
    pending = _pending_upload(folder)
    with unit_of_work(settings) as session:
        events = outbox.fetch(session, CONSUMER, limit=int(pending.get("count", limit)))
    if not events:
        return 0
    body = {"events": [_event_json(e) for e in events]}
    data, raw_size = bundle.compress(body)
    if len(data) <= bundle.UP_CHUNK:
        answer = client.call("/push", body)  # one request (deflated on the wire)
    else:
        manifest = bundle.Manifest.of(data, raw_size=raw_size)
        # the same events make the same bytes: a push cut before now resumes where it stopped
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pending.json").write_text(json.dumps(
            {"sha256": manifest.sha256, "count": len(events)}))
        upload(client, manifest, data)
        answer = client.call("/push", {"bundle": manifest.sha256})
        (folder / "pending.json").unlink(missing_ok=True)
    applied = int(answer.get("through", 0))
    done = [e for e in events if e.id <= applied]
    if done:
        with unit_of_work(settings) as session:
            outbox.acknowledge(session, CONSUMER, done[-1], count=len(done))
    if len(done) < len(events):
        raise SyncError(f"server applied up to {applied}, not {events[-1].id}")
    return len(done)


def _pending_upload(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "pending.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _retrying(client: ServerClient, held: Callable[[], int],
              step: Callable[[], None]) -> None:
    """Run ``step`` until it raises nothing; a link error or a refused chunk is retried (after
    a short pause) while attempts move bytes, and given up after :data:`RETRIES` in a row
    that move none."""
    idle = 0
    while True:
        before = held()
        try:
            step()
            return
        except protocol.AuthError:
            raise
        except SyncError as exc:
            if isinstance(exc, bundle.ChunkRefused | Refused):
                client.refused += 1
            idle = 0 if held() > before else idle + 1
            if idle >= RETRIES:
                raise
            time.sleep(0.2 * 2 ** idle)


def upload(client: ServerClient, manifest: bundle.Manifest, data: bytes) -> None:
    """Send a bundle in chunks of :data:`bundle.UP_CHUNK` from where the server's copy ends."""
    sha = manifest.sha256
    offset = 0

    def held() -> int:
        return offset

    def step() -> None:
        nonlocal offset
        offset = int(client.call("/upload", {"manifest": manifest.to_json()})["offset"])
        while offset < manifest.size:
            try:
                answer = client.send(f"/upload/{sha}/{offset}",
                                     data[offset:offset + bundle.UP_CHUNK])
            except Refused as exc:  # 409: the server holds another length; 422: corrupted
                offset = int(exc.answer.get("offset", offset))
                raise
            offset = int(answer["offset"])

    _retrying(client, held, step)


def download(settings: Settings, client: ServerClient, manifest: bundle.Manifest) -> bytes:
    """A bundle the server handed this node, fetched into the node's spool from where a cut
    download stopped (every byte that arrived is kept; each block is checked).

    :data:`PARALLEL` stripes of :data:`STRIPE` bytes are fetched at once (within the next
    :data:`AHEAD`), each on its own connection: on a lossy link with a long round trip one
    TCP connection stalls at each lost segment, and the others keep the link busy meanwhile.
    Each stripe's bytes are held in memory as they come and written to the part file in
    order; a stripe cut midway keeps what came and is asked again from there (bytes of later
    stripes held in memory are lost only if the process ends before the stripes before them
    arrive)."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    folder = bundle.spool(settings.instance_dir, "node", "down")
    part = bundle.Part(folder, manifest)
    bundle.sweep(folder, keep=(part.path.name, part.done.name))
    size, sha = manifest.size, manifest.sha256
    held: dict[int, tuple[int, bytearray]] = {}  # stripe number -> (first offset, bytes)

    def fetch(stripe: int) -> None:
        start, data = held[stripe]
        end = min((stripe + 1) * STRIPE, size)
        for piece in client.fetch(f"/fetch/{sha}", {"offset": start + len(data),
                                                    "length": end - start - len(data)}):
            data += piece

    def unfinished(stripe: int) -> bool:
        start, data = held[stripe]
        return start + len(data) < min((stripe + 1) * STRIPE, size)

    def flush(busy: set[int]) -> None:
        """Write what is held in order from the end of the part file (blocks checked)."""
        while not part.complete:
            stripe = part.received // STRIPE
            if stripe in busy or stripe not in held or held[stripe][0] != part.received:
                return
            start, data = held.pop(stripe)
            if data:
                part.write(start, [bytes(data)])
            if start + len(data) < min((stripe + 1) * STRIPE, size):
                return  # a stripe cut midway: asked again from its end

    def step() -> None:
        part.settle()
        running: dict[Future[None], int] = {}
        failed: BaseException | None = None
        with ThreadPoolExecutor(PARALLEL) as pool:
            while not part.complete:
                first = part.received // STRIPE
                for stripe in range(first, min(first + AHEAD, -(-size // STRIPE))):
                    if failed is not None or len(running) >= PARALLEL:
                        break
                    if stripe in running.values():
                        continue
                    held.setdefault(stripe, (max(stripe * STRIPE, part.received), bytearray()))
                    if unfinished(stripe):
                        running[pool.submit(fetch, stripe)] = stripe
                if not running:
                    before = part.received
                    flush(set())
                    if failed is not None:
                        raise failed
                    if part.received == before and not part.complete:
                        raise SyncError(f"bundle {sha[:12]}: download stalled at {before}")
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    failed = failed or future.exception()
                flush(set(running.values()))

    def progress() -> int:
        return part.received + sum(len(d) for _, d in held.values())

    _retrying(client, progress, step)
    return part.read()


# ----------------------------------------------------------------------------------- down


def pull_once(settings: Settings, client: ServerClient, keys: KeyStore) -> int:
    """Ask for what is handed down after the last applied item and apply it; returns how many
    items were applied (0: nothing new)."""
    return _pull(settings, client, keys)[0]


def _pull(settings: Settings, client: ServerClient, keys: KeyStore) -> tuple[int, bool]:
    """:func:`pull_once`, and whether the server may have more (its answer was full)."""
    with unit_of_work(settings) as session:
        after = identity(session).down_applied
    answer = client.call("/pull", {"after": after, "bundle": True})
    manifest = None
    if "bundle" in answer:  # a large answer: fetched in chunks, resumable
        manifest = bundle.Manifest.from_json(answer["bundle"])
        answer = bundle.decompress(download(settings, client, manifest))
        if not isinstance(answer, dict):
            raise SyncError("pull bundle: a JSON object is expected")
    applied = 0
    for item in answer.get("items", []):
        with unit_of_work(settings) as session:
            node = identity(session)
            seq = int(item["seq"])
            if seq <= node.down_applied:
                continue
            if seq != node.down_applied + 1:
                raise SyncError(f"down item {seq} arrived before {node.down_applied + 1}")
            if item["kind"] == "record":
                _receive_record(session, keys, item["record"])
            elif item["kind"] == "recall":
                if not _answer_recall(session, str(item["request_id"])):
                    break  # the card is on a station now: answer when its fate is known
            else:
                raise SyncError(f"down item {seq}: unknown kind {item['kind']!r}")
            node.down_applied = seq
            applied += 1
    if manifest is not None:
        bundle.Part(bundle.spool(settings.instance_dir, "node", "down"), manifest).discard()
    return applied, bool(answer.get("more", True))


def _receive_record(session: Session, keys: KeyStore, data: dict[str, Any]) -> None:
    """Insert a record handed down as a queued record (once per request id); its data key is
    unwrapped with the node key inside the token and re-wrapped with this node's storage key."""
    request_id = str(data["request_id"])
    if session.scalar(select(Record.id).where(Record.request_id == request_id)) is not None:
        return
    office = ensure_office(session, str(data["office"]), actor=ACTOR)
    b = data["batch"]
    batch = session.scalar(select(Batch).where(Batch.batch_id == b["batch_id"]))
    if batch is None:
        batch = Batch(batch_id=b["batch_id"], issuer=b["issuer"],
                      created_at=datetime.fromisoformat(b["created_at"]),
                      record_count=int(b["record_count"]), imported_count=0, rejected_count=0,
                      manifest_sha256=b["manifest_sha256"], signer=b["signer"],
                      imported_by=ACTOR)
        session.add(batch)
        session.flush()
    record = Record(request_id=request_id, batch_id=batch.id, line_no=int(data["line_no"]),
                    nik=data["nik"], nama=data["nama"], card_type=data["card_type"],
                    office_id=office.id, state=RecordState.QUEUED, data=data["data"],
                    failure_count=0)
    session.add(record)
    session.flush()
    batch.imported_count += 1
    if data.get("key"):
        wrapped = WrappedKey.from_json(data["key"])
        data_key = protocol.unwrap_with_shared(
            wrapped, keys.node_agree(wrapped.ephemeral), request_id)
        session.add(RecordKey(record_id=record.id, key_label="storage-kek",
                              wrapped_key=keys.wrap_data_key(data_key, request_id.encode())))
        del data_key
        for m in data.get("media", []):
            session.add(RecordMedia(record_id=record.id, kind=MediaKind(m["kind"]),
                                    nonce=base64.b64decode(m["nonce"]),
                                    ciphertext=base64.b64decode(m["ciphertext"])))
    outbox.publish(session, outbox.Topic.RECORD_STATE, office_code=office.code,
                   subject=request_id,
                   payload=outbox.record_state_payload(request_id, office.code, None,
                                                       RecordState.QUEUED, "from-server"))


def _answer_recall(session: Session, request_id: str) -> bool:
    """Release the record (cancelled here, its media shredded) or refuse with its fate;
    ``False`` while it is on a station (asked again on the next sync)."""
    from printsrv.records import transition

    record = session.scalar(select(Record).where(Record.request_id == request_id))
    if record is None:
        answer = {"request_id": request_id, "released": True, "fate": None}
    elif record.state is RecordState.PRINTING:
        return False
    elif record.state in FATES:
        answer = {"request_id": request_id, "released": False, "fate": record.state.value}
    else:
        answer = {"request_id": request_id, "released": True, "fate": None}
    # the answer first: the server hears of the release before the cancellation it causes
    outbox.publish(session, RECALL_ANSWER, office_code=None, subject=request_id, payload=answer)
    if record is not None and answer["released"]:
        transition(session, record, RecordState.CANCELLED, actor=ACTOR, reason="recalled")
    return True


# ----------------------------------------------------------------------------------- a round


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    pulled: int


def sync_once(settings: Settings) -> SyncResult:
    """One full exchange: push until nothing waits, pull until nothing new, push the answers.
    Notes the contact (or since when the link is down) in the node's identity row."""
    pushed = pulled = 0
    try:
        with connect(settings) as (client, keys):
            while (n := push_once(settings, client)) > 0:
                pushed += n
            more = True
            while more:
                n, more = _pull(settings, client, keys)
                pulled += n
                more = more and n > 0
            while (n := push_once(settings, client)) > 0:
                pushed += n
    except SyncError as exc:
        with unit_of_work(settings) as session:
            node = identity(session)
            node.offline_since = node.offline_since or _now()
            node.last_error = str(exc)[:1000]
        raise
    with unit_of_work(settings) as session:
        node = identity(session)
        node.last_contact_at = _now()
        node.offline_since = None
        node.last_error = None
    return SyncResult(pushed, pulled)


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    server_url: str
    office_code: str
    last_contact_at: datetime | None
    offline_since: datetime | None
    last_error: str | None
    events_pending_up: int
    down_applied: int
    records_queued: int


def status(settings: Settings) -> NodeStatus:
    """What ``run.py node status`` shows."""
    with unit_of_work(settings) as session:
        return session_status(session, identity(session))


def session_status(session: Session, node: NodeIdentity) -> NodeStatus:
    """:func:`status` of ``node`` read through ``session``."""
    pending = next((c.pending for c in outbox.status(session) if c.name == CONSUMER), 0)
    queued = session.scalar(select(func.count()).select_from(Record).where(
        Record.state == RecordState.QUEUED)) or 0
    return NodeStatus(node.node_id, node.server_url, node.office_code, node.last_contact_at,
                      node.offline_since, node.last_error, pending, node.down_applied,
                      int(queued))


def offline_status(session: Session) -> NodeStatus | None:
    """The node's status when its last exchange failed (what the web app's offline banner
    shows); ``None`` on a server, or on a node whose last exchange succeeded. One small query
    while online."""
    node = session.scalar(select(NodeIdentity))
    if node is None or node.offline_since is None:
        return None
    return session_status(session, node)


# ----------------------------------------------------------------------------------- the loop


def backoff(failures: int, interval: float, ceiling: float) -> float:
    """Seconds to wait after ``failures`` failed exchanges in a row: the interval after a good
    one, then doubling from it up to ``ceiling`` (never below the interval)."""
    if failures <= 0:
        return interval
    return min(interval * 2 ** (failures - 1), max(ceiling, interval))


def sync_forever(settings: Settings, stop: threading.Event, *, interval: float,
                 ceiling: float | None = None,
                 report: Callable[[str, bool], None] | None = None) -> int:
    """Exchange with the server every ``interval`` seconds until ``stop`` is set, waiting
    longer after each failure (:func:`backoff`, up to ``ceiling``, default 10 intervals but at
    most 10 minutes). ``report(line, failed)`` hears of each exchange. Returns 0 when stopped,
    1 when the server refused the node's credentials (revoked, not approved: retrying does not
    help)."""
    ceiling = ceiling if ceiling is not None else min(10 * interval, 600.0)
    failures = 0
    while not stop.is_set():
        try:
            result = sync_once(settings)
        except AuthError as exc:
            if report:
                report(f"sync refused by the server ({exc.status}): {exc}", True)
            return 1
        except (PrintSrvError, SQLAlchemyError) as exc:  # the link, the token, a busy database
            failures += 1
            wait = backoff(failures, interval, ceiling)
            if report:
                report(f"sync failed (retry in {wait:g} s): {exc}", True)
        else:
            failures = 0
            wait = interval
            if report:
                report(f"sync: {result.pushed} events up, {result.pulled} items down", False)
        stop.wait(wait)
    return 0
