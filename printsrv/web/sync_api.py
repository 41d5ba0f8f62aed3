"""The kecamatan sync API (``/sync/v1``): nodes dial out to it. Thin over
:mod:`printsrv.sync.server`; each request is signed by the node key (see
:mod:`printsrv.sync.protocol`), no cookie, no CSRF token."""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from printsrv.errors import NotFound, PrintSrvError, StateError
from printsrv.sync import protocol
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
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SyncError("a JSON object is expected")
    return data


def _node() -> SyncNode:
    headers = request.headers
    return sync.authenticate(
        db(), node_id=headers.get(protocol.H_NODE, ""),
        counter=headers.get(protocol.H_COUNTER, ""),
        body_sha256=headers.get(protocol.H_BODY, ""),
        signature=headers.get(protocol.H_SIGNATURE, ""),
        method=request.method, path=request.path, body=request.get_data(cache=True),
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
                      name=str(data.get("name", "")))
    return jsonify({"node_id": node.node_id, "state": node.state.value,
                    "protocol": protocol.PROTOCOL_VERSION})


@bp.post("/pull")
def pull() -> Any:
    from printsrv.keys import KeyStore

    node = _node()
    after = int(_json().get("after", 0))
    with _TOKEN, KeyStore.open(current_app.config["PRINTSRV_SETTINGS"]) as keys:
        return jsonify(sync.pull(db(), keys, node, after=after))


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
    return jsonify(sync.receive_audit(db(), node, events=events, checkpoints=marks,
                                      audit_key=body.get("audit_key")))


@bp.post("/push")
def push() -> Any:
    node = _node()
    events = _json().get("events", [])
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
