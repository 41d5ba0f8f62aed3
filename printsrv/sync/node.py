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
import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
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
#: Stripes of a bundle fetched at once (each on its own connection), and their size at most
#: (a stripe is one request: each new one costs its connection a round trip idle).
PARALLEL = 3
STRIPE = 512 * 1024
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
    """Make the node key (in the token), send its public half with this instance's audit
    checkpoint key (bound to the node when the admin approves it), and keep the node id; the
    returned pairing code is shown to the operator, who reads it to the server's admin."""
    import requests

    with unit_of_work(settings) as session:
        if session.scalar(select(NodeIdentity)) is not None:
            raise StateError("this node is already enrolled")
        ensure_office(session, office, actor=ACTOR)
    code = protocol.new_pairing_code()
    from printsrv import checkpoints

    key_file = checkpoints.public_key_file(settings)  # made by 'keys init'
    if not key_file.exists():
        raise StateError(f"no audit checkpoint key ({key_file}): run 'python run.py keys init' "
                         "before enrolling")
    with KeyStore.open(settings) as keys:
        public = protocol.public_key_pem(keys.node_public_key(create=True))
        signer = keys.node_signer()
        http = requests.Session()
        answer = post_signed(
            http, server_url.rstrip("/"), "/enrol",
            {"office": office, "public_key": public, "pairing_hash": protocol.pairing_hash(code),
             "name": name, "audit_key": key_file.read_text()}, "", signer.sign, 0)
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
    # stripes of at most STRIPE bytes, as many as a multiple of PARALLEL, all of a length:
    # the connections finish together instead of one carrying the tail alone
    rounds = -(-size // (PARALLEL * STRIPE))
    stripe_len = -(-size // (PARALLEL * rounds))
    held: dict[int, tuple[int, bytearray]] = {}  # stripe number -> (first offset, bytes)

    def fetch(stripe: int) -> None:
        start, data = held[stripe]
        end = min((stripe + 1) * stripe_len, size)
        for piece in client.fetch(f"/fetch/{sha}", {"offset": start + len(data),
                                                    "length": end - start - len(data)}):
            data += piece

    def unfinished(stripe: int) -> bool:
        start, data = held[stripe]
        return start + len(data) < min((stripe + 1) * stripe_len, size)

    def flush(busy: set[int]) -> None:
        """Write what is held in order from the end of the part file (blocks checked)."""
        while not part.complete:
            stripe = part.received // stripe_len
            if stripe in busy or stripe not in held or held[stripe][0] != part.received:
                return
            start, data = held.pop(stripe)
            if data:
                part.write(start, [bytes(data)])
            if start + len(data) < min((stripe + 1) * stripe_len, size):
                return  # a stripe cut midway: asked again from its end

    def step() -> None:
        part.settle()
        running: dict[Future[None], int] = {}
        failed: BaseException | None = None
        with ThreadPoolExecutor(PARALLEL) as pool:
            while not part.complete:
                first = part.received // stripe_len
                for stripe in range(first, min(first + AHEAD, -(-size // stripe_len))):
                    if failed is not None or len(running) >= PARALLEL:
                        break
                    if stripe in running.values():
                        continue
                    held.setdefault(stripe, (max(stripe * stripe_len, part.received), bytearray()))
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


def _pull(settings: Settings, client: ServerClient, keys: KeyStore,
          asks: dict[str, Any] | None = None) -> tuple[int, bool, dict[str, Any]]:
    """:func:`pull_once`, whether the server has more, and the answers to ``asks`` (what
    the pull asks besides: see ``sync_api._side_answers``)."""
    with unit_of_work(settings) as session:
        after = identity(session).down_applied
    answer = client.call("/pull", {"after": after, "bundle": True, **(asks or {})})
    side = {k: answer[k] for k in (asks or {}) if k in answer}
    manifest = None
    if "bundle" in answer:  # a large answer: fetched in chunks, resumable
        manifest = bundle.Manifest.from_json(answer["bundle"])
        answer = bundle.unpack(download(settings, client, manifest), manifest.encoding)
        if not isinstance(answer, dict):
            raise SyncError("pull bundle: a JSON object is expected")
    blobs = answer.get("blobs", [])
    agree = functools.cache(keys.node_agree)  # one ECDH in the token per ephemeral key
    memo: dict[tuple[str, str], Any] = {}
    applied = 0
    # one transaction for the answer (a commit per item cost more than the link's round
    # trip); an error rolls it all back and the next pull hands the same items again
    with unit_of_work(settings) as session:
        node = identity(session)
        for item in answer.get("items", []):
            seq = int(item["seq"])
            if seq <= node.down_applied:
                continue
            if seq != node.down_applied + 1:
                raise SyncError(f"down item {seq} arrived before {node.down_applied + 1}")
            if item["kind"] == "record":
                _receive_record(session, keys, item["record"], blobs, agree, memo)
            elif item["kind"] == "bast":
                _receive_bast(session, item["bast"], node.office_code)
            elif item["kind"] == "recall":
                if not _answer_recall(session, str(item["request_id"])):
                    break  # the card is on a station now: answer when its fate is known
            else:
                raise SyncError(f"down item {seq}: unknown kind {item['kind']!r}")
            node.down_applied = seq
            applied += 1
    if manifest is not None:
        bundle.Part(bundle.spool(settings.instance_dir, "node", "down"), manifest).discard()
    return applied, bool(answer.get("more", True)), side


def _receive_record(session: Session, keys: KeyStore, data: dict[str, Any],
                    blobs: list[str | bytes], agree: Callable[[bytes], bytes],
                    memo: dict[tuple[str, str], Any]) -> None:
    """Insert a record handed down as a queued record (once per request id); its data key is
    unwrapped with the node key inside the token and re-wrapped with this node's storage key.
    A medium's ciphertext is in the answer's ``blobs`` when it names one; ``agree`` is the
    token's ECDH with an ephemeral key (an answer's records share one); ``memo`` keeps the
    offices and batches an answer's records share. Core inserts: a hundred records a pull
    cost no ORM flush each."""
    request_id = str(data["request_id"])
    with session.no_autoflush:  # the identity row's cursor moves per item: flushed at commit
        if session.scalar(select(Record.id).where(Record.request_id == request_id)):
            return
    office = memo.get(("office", str(data["office"])))
    if office is None:
        office = memo["office", str(data["office"])] = ensure_office(
            session, str(data["office"]), actor=ACTOR)
    b = data["batch"]
    batch_id = memo.get(("batch", str(b["batch_id"])))
    if batch_id is None:
        batch = session.scalar(select(Batch).where(Batch.batch_id == b["batch_id"]))
        if batch is None:
            batch = Batch(batch_id=b["batch_id"], issuer=b["issuer"],
                          created_at=datetime.fromisoformat(b["created_at"]),
                          record_count=int(b["record_count"]), imported_count=0,
                          rejected_count=0, manifest_sha256=b["manifest_sha256"],
                          signer=b["signer"], imported_by=ACTOR)
            session.add(batch)
            session.flush()
        batch_id = memo["batch", str(b["batch_id"])] = batch.id
    conn = session.connection()
    # constant statements, the values as parameters: compiled once, from the cache after
    record_id = conn.execute(insert(Record).returning(Record.id), {
        "request_id": request_id, "batch_id": batch_id, "line_no": int(data["line_no"]),
        "nik": data["nik"], "nama": data["nama"], "card_type": data["card_type"],
        "office_id": office.id, "state": RecordState.QUEUED, "data": data["data"],
        "failure_count": 0}).scalar_one()
    conn.execute(update(Batch).where(Batch.id == bindparam("batch"))
                 .values(imported_count=Batch.imported_count + 1), {"batch": batch_id})
    if data.get("key"):
        wrapped = WrappedKey.from_json(data["key"])
        data_key = protocol.unwrap_with_shared(
            wrapped, agree(wrapped.ephemeral), request_id)
        conn.execute(insert(RecordKey), {
            "record_id": record_id, "key_label": "storage-kek",
            "wrapped_key": keys.wrap_data_key(data_key, request_id.encode())})
        del data_key
        media = [{"record_id": record_id, "kind": MediaKind(m["kind"]),
                  "nonce": base64.b64decode(m["nonce"]), "ciphertext": _blob(blobs, m)}
                 for m in data.get("media", [])]
        if media:
            conn.execute(insert(RecordMedia), media)
    outbox.publish(session, outbox.Topic.RECORD_STATE, office_code=office.code,
                   subject=request_id,
                   payload=outbox.record_state_payload(request_id, office.code, None,
                                                       RecordState.QUEUED, "from-server"))


def _blob(blobs: list[str | bytes], medium: dict[str, Any]) -> bytes:
    """A medium's ciphertext: its own (base64), or the answer's blob it names (raw bytes from
    a packed bundle, base64 in an inline answer)."""
    if "blob" not in medium:
        return base64.b64decode(medium["ciphertext"])
    blob = blobs[int(medium["blob"])]
    return blob if isinstance(blob, bytes) else base64.b64decode(blob)


def _receive_bast(session: Session, data: dict[str, Any], office: str) -> None:
    """Receive a handover from the server, in transit until an operator here accepts it
    (:func:`accept_handover`); once per handover number."""
    from printsrv.ledger.blanks import receive_listed
    from printsrv.ledger.models import Consumable, ConsumableKind, HandoverRecord
    from printsrv.ledger.ribbons import receive_consumable

    number = str(data["number"])
    if session.scalar(select(HandoverRecord.id).where(HandoverRecord.number == number)):
        return
    party = f"kabupaten {data.get('from') or ''}".strip()
    if data.get("blanks"):
        receive_listed(session, office_code=office, handover_number=number,
                       blanks=[(b["serial"], b["stock_type"], b.get("carton"))
                               for b in data["blanks"]],
                       actor=ACTOR, from_party=party, giver=str(data.get("giver") or ""),
                       receiver=str(data.get("receiver") or ""), note=data.get("note"),
                       in_transit=True)
    for roll in data.get("ribbons", []):
        kind = ConsumableKind(roll["kind"])
        if session.scalar(select(Consumable.id).where(Consumable.kind == kind,
                                                      Consumable.serial == roll["serial"])):
            continue
        receive_consumable(session, kind=kind, office_code=office, serial=roll["serial"],
                           type_=roll["type"], capacity=int(roll["capacity"]), actor=ACTOR,
                           reference=number, set_panels=int(roll["set_panels"]),
                           in_transit=True)


@dataclass(frozen=True)
class Acceptance:
    blanks: int
    ribbons: int


def accept_handover(settings: Settings, number: str, *, actor: str) -> Acceptance:
    """The node's operator confirms the handover ``number`` arrived: its blanks and rolls go
    from in transit into the store room here; the movements go up on the next sync, and the
    server moves its copy the same way (the node's acknowledgement)."""
    from printsrv.ledger.blanks import accept_blanks
    from printsrv.ledger.models import (
        Blank,
        BlankState,
        Consumable,
        ConsumableState,
        HandoverRecord,
    )
    from printsrv.ledger.ribbons import accept_consumable

    with unit_of_work(settings) as session:
        handover = session.scalar(select(HandoverRecord).where(HandoverRecord.number == number))
        rolls = session.scalars(select(Consumable).where(
            Consumable.reference == number,
            Consumable.state == ConsumableState.IN_TRANSIT)).all()
        if handover is None and not rolls:
            raise NotFound(f"no handover {number!r} here (has it been synced down?)")
        serials = [] if handover is None else list(session.scalars(
            select(Blank.serial).where(Blank.handover_id == handover.id,
                                       Blank.state == BlankState.IN_TRANSIT)))
        moved = accept_blanks(session, serials, actor=actor, reference=number) if serials else []
        for roll in rolls:
            accept_consumable(session, kind=roll.kind, serial=roll.serial, actor=actor)
        return Acceptance(len(moved), len(rolls))


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


# ----------------------------------------------------------------------------------- audit

#: Audit events in one chunk up.
AUDIT_CHUNK = 500


def audit_ask(settings: Settings) -> dict[str, Any]:
    """What asks the server how far it holds this node's audit log (and gives it the node's
    checkpoint key): the body of an empty ``/audit``, or a pull's ``audit``."""
    from printsrv import checkpoints

    key_file = checkpoints.public_key_file(settings)
    return {"audit_key": key_file.read_text() if key_file.exists() else None}


def push_audit(settings: Settings, client: ServerClient,
               cursor: dict[str, Any] | None = None) -> int:
    """Send the audit events and signed checkpoints the server does not hold yet (it says how
    far it holds them: ``cursor`` when a pull asked already), with this node's checkpoint key;
    returns how many events went up."""
    from printsrv.models import AuditCheckpoint, AuditEvent

    audit_key = audit_ask(settings)["audit_key"]
    if cursor is None:
        cursor = client.call("/audit", {"audit_key": audit_key})
    sent = 0
    while True:
        with unit_of_work(settings) as session:
            rows = session.scalars(select(AuditEvent).where(
                AuditEvent.seq > int(cursor["through"])).order_by(AuditEvent.seq)
                .limit(AUDIT_CHUNK)).all()
            events = [{"seq": e.seq, "chain": e.chain, "chain_seq": e.chain_seq,
                       "at": (e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)).isoformat(),
                       "tag": e.tag, "actor": e.actor, "office_code": e.office_code,
                       "subject": e.subject, "details": e.details, "prev_hash": e.prev_hash,
                       "hash": e.hash} for e in rows]
            marks = [] if len(rows) == AUDIT_CHUNK else [
                {"number": c.id, "body": c.body, "signature": c.signature}
                for c in session.scalars(select(AuditCheckpoint).where(
                    AuditCheckpoint.id > int(cursor["checkpoint"])).order_by(AuditCheckpoint.id))]
        if not events and not marks:
            return sent
        cursor = client.call("/audit", {"events": events, "checkpoints": marks,
                                        "audit_key": audit_key})
        sent += len(events)
        if not events and len(rows) < AUDIT_CHUNK:
            return sent


# ----------------------------------------------------------------------------------- users


def users_known(settings: Settings) -> str:
    """The digest of this node's copy of its office's users (what ``/users`` compares)."""
    from printsrv.models import User
    from printsrv.sync.server import users_digest

    with unit_of_work(settings) as session:
        node = identity(session)
        office = ensure_office(session, node.office_code, actor=ACTOR)
        mine = {u.username: u for u in session.scalars(
            select(User).where(User.office_id == office.id))}
        known = users_digest([
            {"username": u.username, "full_name": u.full_name, "role": u.role.value,
             "password_hash": u.password_hash, "active": bool(u.active)}
            for u in sorted(mine.values(), key=lambda u: u.username)])
    return known


def pull_users(settings: Settings, client: ServerClient,
               answer: dict[str, Any] | None = None) -> int:
    """Bring this office's users up to the server's copy (password hashes, roles, who is
    revoked), so staff sign in here with the link down; returns how many changed. The server
    is the users' one owner: a user it no longer lists for this office is made inactive.
    ``answer``: the server's, when a pull asked already."""
    from printsrv.models import Role, User

    if answer is None:
        answer = client.call("/users", {"digest": users_known(settings)})
    if answer.get("users") is None:
        return 0
    changed = 0
    with unit_of_work(settings) as session:
        office = ensure_office(session, identity(session).office_code, actor=ACTOR)
        mine = {u.username: u for u in session.scalars(
            select(User).where(User.office_id == office.id))}
        listed = set()
        for data in answer["users"]:
            name = str(data["username"])
            listed.add(name)
            fields = {"full_name": str(data.get("full_name") or ""),
                      "role": Role(str(data["role"])),
                      "password_hash": str(data["password_hash"]),
                      "active": bool(data["active"])}
            user = mine.get(name) or session.scalar(select(User).where(
                func.lower(User.username) == name.lower()))
            if user is None:
                session.add(User(username=name, office_id=office.id, failed_logins=0,
                                 **fields))
                changed += 1
                continue
            if user.office_id != office.id or any(
                    getattr(user, k) != v for k, v in fields.items()):
                user.office_id = office.id
                for k, v in fields.items():
                    setattr(user, k, v)
                changed += 1
        for name, user in mine.items():
            if name not in listed and user.active:
                user.active = False  # gone from the server's list: revoked here too
                changed += 1
        if changed:
            from printsrv import audit
            from printsrv.audit_tags import SyncTag

            audit.record(session, SyncTag.USERS_SYNC, actor=ACTOR, office_code=office.code,
                         details={"changed": changed, "digest": answer.get("digest")})
    return changed


# ----------------------------------------------------------------------------------- stations


def station_reports(session: Session) -> list[dict[str, Any]]:
    """This node's stations as ``run.py station status`` and the station page see them: state,
    the heartbeat's age (measured on this node's clock, so the server can place it on its
    own), the printer's state and supplies, the loaded ribbon and its panels left by the
    ledger's count, the hopper, the card counters."""
    from printsrv.ledger.blanks import blanks_at_station
    from printsrv.ledger.models import ConsumableKind, Station
    from printsrv.ledger.ribbons import loaded_consumable

    now = _now()
    out = []
    for st in session.scalars(select(Station).order_by(Station.name)):
        beat = st.heartbeat_at
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        ribbon = loaded_consumable(session, st, ConsumableKind.RIBBON)
        printer = st.printer_status or {}
        out.append({
            "name": st.name, "state": st.state.value, "pause_reason": st.pause_reason,
            "heartbeat_age_s": round((now - beat).total_seconds(), 1) if beat else None,
            "printer_state": str(printer.get("state", "")),
            "printer_reasons": [str(r) for r in printer.get("reasons", [])],
            "accepting": printer.get("accepting"), "markers": printer.get("markers", []),
            "reader": st.reader, "profile": st.profile,
            "ribbon": ribbon.serial if ribbon else "",
            "ribbon_remaining": ribbon.panels_remaining if ribbon else None,
            "blanks_in_hopper": len(blanks_at_station(session, st)),
            "current_job": st.current_job_id,
            "cards_issued": st.cards_issued, "cards_spoiled": st.cards_spoiled,
        })  # fmt: skip
    return out


def push_stations(settings: Settings, client: ServerClient) -> int:
    """Send the status of this node's stations (each sync); returns how many the server
    kept."""
    with unit_of_work(settings) as session:
        stations = station_reports(session)
    return int(client.call("/stations", {"stations": stations}).get("kept", 0))


# ----------------------------------------------------------------------------------- a round


@dataclass(frozen=True)
class SyncResult:
    pushed: int
    pulled: int


@contextmanager
def _one_exchange_at_a_time(settings: Settings) -> Iterator[None]:
    """Holds the node's exchange lock: two syncs of one node at once (the web app's loop and an
    operator's ``node sync --once``) would send request counters out of order, and the server
    would refuse one as a replay. The second waits for the first to finish."""
    import fcntl

    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    with (Path(settings.instance_dir) / "node-sync.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def sync_once(settings: Settings) -> SyncResult:
    """One full exchange: push until nothing waits, pull until nothing new, push the answers.
    Notes the contact (or since when the link is down) in the node's identity row. One
    exchange of a node at a time (:func:`_one_exchange_at_a_time`)."""
    with _one_exchange_at_a_time(settings):
        return _exchange(settings)


def _exchange(settings: Settings) -> SyncResult:
    pushed = pulled = 0
    try:
        with connect(settings) as (client, keys):
            while (n := push_once(settings, client)) > 0:
                pushed += n
            # the first pull asks for the users and the audit cursor too (two round trips)
            asks: dict[str, Any] | None = {"users": users_known(settings),
                                           "audit": audit_ask(settings)}
            side: dict[str, Any] = {}
            more = True
            while more:
                n, more, said = _pull(settings, client, keys, asks)
                side = side or said
                asks = None
                pulled += n
                more = more and n > 0
            pull_users(settings, client, side.get("users"))
            push_stations(settings, client)
            push_audit(settings, client, side.get("audit"))
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
        _pause(stop, wait)
    return 0


def _pause(stop: threading.Event, seconds: float) -> None:
    """Wait ``seconds`` or until ``stop`` is set, in short sleeps: ``Event.wait``'s timed
    wait hung for hours in a node whose clock is moved (libfaketime in the fault test), where
    ``time.sleep`` and ``time.monotonic`` follow the moved clock consistently."""
    deadline = time.monotonic() + seconds
    while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.2))
