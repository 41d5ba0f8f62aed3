"""The node's HTTP transport: every request signed by the node key, a fresh counter each."""

from __future__ import annotations

import base64
import json
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import requests

from printsrv.sync import protocol
from printsrv.sync.protocol import AuthError, SyncError

#: Seconds to wait for the server (connect, read).
TIMEOUT = (5.0, 30.0)

Signer = Callable[[bytes], bytes]


class Refused(SyncError):
    """The server answered a request with an error (not 401/403): its status and answer."""

    def __init__(self, message: str, status: int, answer: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.answer = answer


class ServerClient:
    """Talks to one kabupaten server as one node.

    ``next_counter`` hands out the request counters (the node keeps the last one in its
    database, committed before the request goes out, so a counter is never used twice).
    ``sent`` and ``received`` count the bytes of request bodies as sent and of answer bodies
    as decoded (a fetched chunk as on the wire), for the transfer tests and the benchmark."""

    def __init__(self, base_url: str, node_id: str, sign: Signer,
                 next_counter: Callable[[], int]) -> None:
        self.base_url = base_url.rstrip("/")
        self.node_id = node_id
        self._sign = sign
        self._next_counter = next_counter
        self._local = threading.local()  # a connection per thread (parallel ranges)
        self._count = threading.Lock()
        self._sessions: list[requests.Session] = []
        self.sent = 0
        self.received = 0
        self.refused = 0  # chunks refused (a block that did not match its hash) either way

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` (JSON) to ``PREFIX + path``; the answer's JSON. :class:`AuthError`
        for 401/403, :class:`SyncError` for anything else that is not a success."""
        raw, encoding = encode_json(body)
        response = self._post(path, raw, "application/json", encoding)
        self.received += len(response.content)
        return answer_json(response, self.base_url)

    def send(self, path: str, data: bytes) -> dict[str, Any]:
        """POST raw bytes (a chunk of a bundle); the answer's JSON (:class:`Refused` with it
        for a refusal)."""
        response = self._post(path, data, "application/octet-stream", None)
        self.received += len(response.content)
        return answer_json(response, self.base_url)

    def fetch(self, path: str, body: dict[str, Any]) -> Iterator[bytes]:
        """POST ``body`` and yield the answer's bytes as they arrive (a link cut while they
        arrive raises :class:`SyncError` after the bytes that came). For a replayable read
        (a bundle's range; the server does not check its counter): safe from any thread, on
        that thread's own connection."""
        raw, encoding = encode_json(body)
        response = self._post(path, raw, "application/json", encoding, stream=True,
                              counter=0)
        with response:
            if response.status_code != 200:
                answer_json(response, self.base_url)
            try:
                for piece in response.iter_content(4096):
                    with self._count:
                        self.received += len(piece)
                    yield piece
            except requests.RequestException as exc:
                raise SyncError(f"link to {self.base_url}: {type(exc).__name__}") from exc

    def _session(self) -> requests.Session:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
            with self._count:
                self._sessions.append(http)
        return http

    def close(self) -> None:
        """Close every connection this client opened (from any thread)."""
        with self._count:
            sessions, self._sessions = self._sessions, []
        for http in sessions:
            http.close()

    def _post(self, path: str, raw: bytes, content_type: str, encoding: str | None,
              *, stream: bool = False, counter: int | None = None) -> requests.Response:
        number = self._next_counter() if counter is None else counter
        with self._count:  # one signature at a time on the token's session
            headers = signed_headers(path, raw, self.node_id, self._sign, number)
        headers["Content-Type"] = content_type
        if encoding:
            headers["Content-Encoding"] = encoding
        with self._count:
            self.sent += len(raw)
        try:
            return self._session().post(self.base_url + protocol.PREFIX + path, data=raw,
                                   headers=headers, timeout=TIMEOUT, stream=stream)
        except requests.RequestException as exc:
            raise SyncError(f"link to {self.base_url}: {type(exc).__name__}") from exc


def encode_json(body: dict[str, Any]) -> tuple[bytes, str | None]:
    """A JSON body as sent: deflated above :data:`protocol.COMPRESS_ABOVE` bytes."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    if len(raw) > protocol.COMPRESS_ABOVE:
        return zlib.compress(raw, 6), "deflate"
    return raw, None


def signed_headers(path: str, raw: bytes, node_id: str, sign: Signer,
                   counter: int) -> dict[str, str]:
    """The four signature headers of a POST of ``raw`` to ``PREFIX + path``."""
    digest = protocol.body_digest(raw)
    signature = sign(protocol.signing_text("POST", protocol.PREFIX + path, digest, node_id,
                                           counter))
    return {
        protocol.H_NODE: node_id,
        protocol.H_COUNTER: str(counter),
        protocol.H_BODY: digest,
        protocol.H_SIGNATURE: base64.b64encode(signature).decode(),
    }


def answer_json(response: requests.Response, base_url: str) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    except requests.RequestException as exc:  # the answer cut on the way
        raise SyncError(f"link to {base_url}: {type(exc).__name__}") from exc
    if response.status_code in (401, 403):
        raise AuthError(str(answer.get("error", response.reason)), response.status_code)
    if response.status_code != 200 or not isinstance(answer, dict):
        said = answer.get("error", response.reason) if isinstance(answer, dict) else ""
        raise Refused(f"server answered {response.status_code}: {said}", response.status_code,
                      answer if isinstance(answer, dict) else {})
    return answer


def post_signed(http: requests.Session, base_url: str, path: str, body: dict[str, Any],
                node_id: str, sign: Signer, counter: int) -> dict[str, Any]:
    """One signed JSON request outside a :class:`ServerClient` (enrolment, tests)."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = signed_headers(path, raw, node_id, sign, counter)
    headers["Content-Type"] = "application/json"
    try:
        response = http.post(base_url + protocol.PREFIX + path, data=raw, headers=headers,
                             timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise SyncError(f"link to {base_url}: {type(exc).__name__}") from exc
    return answer_json(response, base_url)
