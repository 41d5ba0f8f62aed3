"""The node's HTTP transport: every request signed by the node key, a fresh counter each."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import requests

from printsrv.sync import protocol
from printsrv.sync.protocol import AuthError, SyncError

#: Seconds to wait for the server (connect, read).
TIMEOUT = (5.0, 30.0)

Signer = Callable[[bytes], bytes]


class ServerClient:
    """Talks to one kabupaten server as one node.

    ``next_counter`` hands out the request counters (the node keeps the last one in its
    database, committed before the request goes out, so a counter is never used twice)."""

    def __init__(self, base_url: str, node_id: str, sign: Signer,
                 next_counter: Callable[[], int]) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_id = node_id
        self._sign = sign
        self._next_counter = next_counter
        self._http = requests.Session()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` (JSON) to ``PREFIX + path``; the answer's JSON. :class:`AuthError`
        for 401/403, :class:`SyncError` for anything else that is not a success."""
        return post_signed(self._http, self.base_url, path, body, self.node_id, self._sign,
                           self._next_counter())


def post_signed(http: requests.Session, base_url: str, path: str, body: dict[str, Any],
                node_id: str, sign: Signer, counter: int) -> dict[str, Any]:
    full = protocol.PREFIX + path
    raw = json.dumps(body, separators=(",", ":")).encode()
    digest = protocol.body_digest(raw)
    signature = sign(protocol.signing_text("POST", full, digest, node_id, counter))
    headers = {
        "Content-Type": "application/json",
        protocol.H_NODE: node_id,
        protocol.H_COUNTER: str(counter),
        protocol.H_BODY: digest,
        protocol.H_SIGNATURE: base64.b64encode(signature).decode(),
    }
    try:
        response = http.post(base_url + full, data=raw, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise SyncError(f"link to {base_url}: {type(exc).__name__}") from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code in (401, 403):
        raise AuthError(str(answer.get("error", response.reason)), response.status_code)
    if response.status_code != 200 or not isinstance(answer, dict):
        said = answer.get("error", response.reason) if isinstance(answer, dict) else ""
        raise SyncError(f"server answered {response.status_code}: {said}")
    return answer
