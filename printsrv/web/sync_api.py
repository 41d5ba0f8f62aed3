"""The kecamatan sync API (``/sync/v1``): nodes dial out to it. Thin over
:mod:`printsrv.sync.server`; each request is signed by the node key (see
:mod:`printsrv.sync.protocol`), no cookie, no CSRF token."""

from __future__ import annotations

import contextlib
import json
import threading
import zlib
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from printsrv import audit
from printsrv.errors import NotFound, PrintSrvError, StateError
from printsrv.sync import bundle, protocol
from printsrv.sync import server as sync
from printsrv.sync.models import SyncNode
from printsrv.sync.protocol import AuthError, SyncError
from printsrv.web import db

bp = Blueprint("sync_api", __name__, url_prefix=protocol.PREFIX)
#: One token session at a time in this process (a second login while one is open fails with
#: UserAlreadyLoggedIn): pulls that re-wrap keys take turns.
_TOKEN = threading.Lock()


def _error(status: int, message: str) -> Any:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.errorhandler(AuthError)
def _auth_error(exc: AuthError) -> Any:
    return _error(exc.status, str(exc))


@bp.errorhandler(SyncError)
def _sync_error(exc: SyncError) -> Any:
    return _error(409, str(exc))


@bp.errorhandler(NotFound)
@bp.errorhandler(StateError)
def _state_error(exc: PrintSrvError) -> Any:
    return _error(409, str(exc))


def _json() -> dict[str, Any]:
    """The request's JSON object (inflated first when the node sent it deflated)."""
    if "json" in g:
        return g.json
    if request.headers.get("Content-Encoding", "").lower() == "deflate":
        data = bundle.decompress(request.get_data(cache=True), limit=bundle.MAX_SIZE)
    else:
        data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SyncError("a JSON object is expected")
    g.json = data
    return data


@bp.after_request
def _deflate(response: Response) -> Response:
    """JSON answers above :data:`protocol.COMPRESS_ABOVE` bytes go deflated to a client that
    accepts it (the node's ``requests`` inflates them transparently)."""
    if (response.mimetype == "application/json" and not response.direct_passthrough
            and "deflate" in request.headers.get("Accept-Encoding", "").lower()
            and response.content_length is not None
            and response.content_length > protocol.COMPRESS_ABOVE):
        response.set_data(zlib.compress(response.get_data(), 6))
        response.headers["Content-Encoding"] = "deflate"
        response.headers["Vary"] = "Accept-Encoding"
    return response


def _spool(*parts: str) -> Path:
    settings = current_app.config["PRINTSRV_SETTINGS"]
    return bundle.spool(settings.instance_dir, "server", *parts)


def _node(*, replayable: bool = False) -> SyncNode:
    """The node the request comes from; what the request audits goes to its own chain."""
    headers = request.headers
    session = db()
    session.info[audit.CHAIN_KEY] = audit.node_chain(headers.get(protocol.H_NODE, ""))
    return sync.authenticate(
        session, node_id=headers.get(protocol.H_NODE, ""),
        counter=headers.get(protocol.H_COUNTER, ""),
        body_sha256=headers.get(protocol.H_BODY, ""),
        signature=headers.get(protocol.H_SIGNATURE, ""),
        method=request.method, path=request.path, body=request.get_data(cache=True),
        replayable=replayable,
    )


@bp.post("/enrol")
def enrol() -> Any:
    """A node asks to join; the request is signed by the key it sends (proof of possession)."""
    body = request.get_data(cache=True)
    data = _json()
    pem = str(data.get("public_key", ""))
    digest = request.headers.get(protocol.H_BODY, "")
    if protocol.body_digest(body) != digest or not protocol.verify_signature(
        pem, request.headers.get(protocol.H_SIGNATURE, ""),
        protocol.signing_text("POST", request.path, digest, "", 0),
    ):
        raise AuthError("the enrolment is not signed by the key it carries", 401)
    node = sync.enrol(db(), office=str(data.get("office", "")), public_key_pem=pem,
                      pairing_hash=str(data.get("pairing_hash", "")),
                      name=str(data.get("name", "")),
                      audit_key=str(data.get("audit_key") or "") or None)
    return jsonify({"node_id": node.node_id, "state": node.state.value,
                    "protocol": protocol.PROTOCOL_VERSION})


class _TokenOnDemand:
    """The server's token for a pull, opened (one session at a time in this process) only
    when the pull has a data key to re-wrap: most pulls hand nothing down and need no login."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._keys: Any = None

    def unwrap_data_key(self, wrapped: bytes, record_ref: bytes) -> bytes:
        if self._keys is None:
            from printsrv.keys import KeyStore

            self._stack.enter_context(_TOKEN)
            self._keys = self._stack.enter_context(
                KeyStore.open(current_app.config["PRINTSRV_SETTINGS"]))
        return bytes(self._keys.unwrap_data_key(wrapped, record_ref))

    def __enter__(self) -> _TokenOnDemand:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@bp.post("/pull")
def pull() -> Any:
    node = _node()
    data = _json()
    after = int(data.get("after", 0))
    side = _side_answers(node, data)
    if not data.get("bundle"):
        with _TokenOnDemand() as keys:
            return jsonify(sync.pull(db(), keys, node, after=after) | side)
    # A node that takes bundles: a large answer is built once per (node, after), kept in the
    # spool as a compressed bundle the node fetches in chunks (and resumes), and handed again
    # (the same bytes) when the node asks with the same ``after`` after a cut.
    folder = _spool("down", node.node_id)
    index = folder / f"{after}.json"
    if index.exists():
        manifest = bundle.Manifest.from_json(json.loads(index.read_text()))
        if (folder / f"{manifest.sha256}.bundle").exists():
            sync.note_down_applied(node, after)
            return jsonify({"bundle": manifest.to_json()} | side)
    # what the node was handed for an earlier ``after`` is applied (or abandoned): gone
    bundle.sweep(folder, keep=())
    with _TokenOnDemand() as keys:
        answer = sync.pull(db(), keys, node, after=after)
    # committed before the bundle is kept: a cached bundle never names uncommitted down items
    db().commit()
    data_bytes, raw_size, encoding = bundle.pack(answer)
    if len(data_bytes) <= bundle.INLINE_MAX:
        return jsonify(answer | side)  # small: one answer (deflated by _deflate)
    manifest = bundle.Manifest.of(data_bytes, raw_size=raw_size, encoding=encoding)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{manifest.sha256}.tmp"
    tmp.write_bytes(data_bytes)
    tmp.replace(folder / f"{manifest.sha256}.bundle")
    index.write_text(json.dumps(manifest.to_json()))
    return jsonify({"bundle": manifest.to_json()} | side)


def _side_answers(node: SyncNode, data: dict[str, Any]) -> dict[str, Any]:
    """What a pull may ask besides the down items, to save the round trips of ``/users`` and
    the first ``/audit``: ``users`` (the digest of the node's copy) is answered as ``/users``
    answers it, ``audit`` (``{"audit_key": ...}``) as an ``/audit`` with no events."""
    side: dict[str, Any] = {}
    if "users" in data:
        side["users"] = sync.users_for_node(db(), node, known=str(data["users"]))
    if isinstance(data.get("audit"), dict):
        # a refused checkpoint key must not stop the records coming down: the side answer is
        # left out (and its refusal rolled back), the node's own /audit gets the 409, audited
        with contextlib.suppress(protocol.AuditKeyRefused), db().begin_nested():
            side["audit"] = sync.receive_audit(db(), node, events=[], checkpoints=[],
                                               audit_key=data["audit"].get("audit_key"))
    return side


@bp.post("/fetch/<sha>")
def fetch(sha: str) -> Any:
    """Bytes ``offset`` .. ``offset + length`` of a bundle handed to this node by a pull (at
    most :data:`bundle.DOWN_CHUNK`). Ranges may come in parallel, in any order: the request
    counter is not checked (see :func:`sync.authenticate`)."""
    node = _node(replayable=True)
    data = _json()
    offset, length = int(data.get("offset", 0)), int(data.get("length", bundle.DOWN_CHUNK))
    path = _spool("down", node.node_id) / f"{sha}.bundle"
    if not bundle.is_digest(sha) or not path.exists():
        raise SyncError(f"no bundle {sha[:12]} for this node: pull again")
    size = path.stat().st_size
    if not 0 <= offset < size or not 0 < length <= bundle.DOWN_CHUNK:
        raise SyncError(f"bundle {sha[:12]}: range {offset}+{length} outside 0..{size}")
    with path.open("rb") as source:
        source.seek(offset)
        piece = source.read(length)
    return Response(piece, mimetype="application/octet-stream",
                    headers={"X-Bundle-Offset": str(offset)})


@bp.post("/upload")
def upload() -> Any:
    """A node announces a bundle it will upload in chunks (its signed manifest); the answer is
    how many bytes of it the server holds (0, or where a cut upload stopped)."""
    node = _node()
    manifest = bundle.Manifest.from_json(_json().get("manifest"))
    folder = _spool("up", node.node_id)
    # one upload at a time per node: what it sent before and abandoned goes
    bundle.sweep(folder, keep=(f"{manifest.sha256}.part", f"{manifest.sha256}.bundle",
                               f"{manifest.sha256}.json"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{manifest.sha256}.json").write_text(json.dumps(manifest.to_json()))
    part = bundle.Part(folder, manifest)
    with contextlib.suppress(bundle.ChunkRefused):  # cut off: sent again from its end
        part.settle()
    return jsonify({"offset": part.received})


def _upload_part(node: SyncNode, sha: str) -> bundle.Part:
    folder = _spool("up", node.node_id)
    index = folder / f"{sha}.json"
    if not bundle.is_digest(sha) or not index.exists():
        raise SyncError(f"no upload {sha[:12]} announced by this node")
    return bundle.Part(folder, bundle.Manifest.from_json(json.loads(index.read_text())))


@bp.post("/upload/<sha>/<int:offset>")
def upload_chunk(sha: str, offset: int) -> Any:
    """Bytes of an announced bundle at ``offset`` (the body; its digest is signed). Each block
    is checked against the manifest; a bad one is refused (422) and cut off."""
    node = _node()
    part = _upload_part(node, sha)
    body = request.get_data(cache=True)
    if len(body) > bundle.UP_CHUNK:
        raise SyncError(f"a chunk is at most {bundle.UP_CHUNK} bytes")
    if offset != part.received:
        return _at(409, f"offset {offset}: {part.received} bytes held", part.received)
    try:
        held = part.write(offset, [body])
    except bundle.ChunkRefused as exc:
        return _at(422, str(exc), part.received)
    return jsonify({"offset": held})


def _at(status: int, message: str, offset: int) -> Any:
    """A refused chunk: why, and where the node goes on from (no change is committed but the
    request counter's, which a refusal rolls back too: the node never reuses one)."""
    response = jsonify({"error": message, "offset": offset})
    response.status_code = status
    return response


@bp.post("/users")
def users() -> Any:
    """The users of the node's office (hashes, roles, revocations), when its copy differs."""
    node = _node()
    return jsonify(sync.users_for_node(db(), node, known=str(_json().get("digest", ""))))


@bp.post("/audit")
def audit_up() -> Any:
    """The node's audit events and signed checkpoints (a copy kept, verified on demand);
    answers how far the server holds them (an empty body asks just that)."""
    node = _node()
    body = _json()
    events, marks = body.get("events", []), body.get("checkpoints", [])
    if not isinstance(events, list) or not isinstance(marks, list):
        raise SyncError("events, checkpoints: lists are expected")
    try:
        return jsonify(sync.receive_audit(db(), node, events=events, checkpoints=marks,
                                          audit_key=body.get("audit_key")))
    except protocol.AuditKeyRefused:
        g.commit_on_error = True  # the refusal's audit event (nothing of the upload) sticks
        raise


@bp.post("/stations")
def stations() -> Any:
    """The status of the node's stations (state, heartbeat age, printer, ribbon), each sync."""
    node = _node()
    rows = _json().get("stations", [])
    if not isinstance(rows, list):
        raise SyncError("stations: a list is expected")
    return jsonify({"kept": sync.receive_stations(db(), node, rows)})


@bp.post("/push")
def push() -> Any:
    node = _node()
    data = _json()
    if "bundle" in data:  # the events came as an uploaded bundle
        part = _upload_part(node, str(data["bundle"]))
        if not part.complete:
            raise SyncError(f"upload {part.manifest.sha256[:12]}: {part.received} of "
                            f"{part.manifest.size} bytes held")
        data = bundle.decompress(part.read())
        if not isinstance(data, dict):
            raise SyncError("bundle: a JSON object is expected")
    events = data.get("events", [])
    if not isinstance(events, list):
        raise SyncError("events: a list is expected")
    through = sync.push(db(), node, [sync.NodeEvent.from_json(e) for e in events])
    return jsonify({"through": through, "up_applied": node.up_applied})


@bp.post("/hello")
def hello() -> Any:
    """A signed no-op: the node learns whether it is approved (403 while pending)."""
    node = _node()
    return jsonify({"node_id": node.node_id, "state": node.state.value,
                    "down_newest": node.down_seq, "up_applied": node.up_applied})
