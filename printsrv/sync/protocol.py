"""The node ↔ server wire protocol: request signing and the data-key envelope for a node.

Every request from a node carries four headers: ``X-Node-Id``, ``X-Node-Counter`` (strictly
increasing per node: the server refuses a counter it has seen, so a captured request cannot
be replayed), ``X-Node-Body-SHA256`` and ``X-Node-Signature``: base64 of the node key's DER
ECDSA P-256 signature over :func:`signing_text` (method, path, body hash, node id, counter).

A record's data key travels to a node wrapped for the node's public key (ECIES): an ephemeral
P-256 key, ECDH with the node key, HKDF-SHA256 bound to the request id, AES-256-GCM. The node
does its half of the agreement inside its token and re-wraps the key with its own storage key.
Media travel as they are stored: AES-GCM ciphertext under that data key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from printsrv.errors import PrintSrvError

#: The API prefix on the server.
PREFIX = "/sync/v1"
PROTOCOL_VERSION = 1
#: JSON bodies (either way) above this many bytes travel deflated (``Content-Encoding``).
COMPRESS_ABOVE = 1024

H_NODE = "X-Node-Id"
H_COUNTER = "X-Node-Counter"
H_BODY = "X-Node-Body-SHA256"
H_SIGNATURE = "X-Node-Signature"

_WRAP_INFO = b"ktp-printsrv node data-key v1|"


class SyncError(PrintSrvError):
    """A sync exchange failed (the link, the peer's answer, a refused request)."""

    retryable = True


class AuthError(SyncError):
    """The server refused the node's credentials (unknown, pending, revoked, bad signature,
    replayed counter)."""

    retryable = False

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class AuditKeyRefused(SyncError):
    """An audit upload carrying, or signed by, a key other than the node's checkpoint key
    (audited at the server, which answers 409)."""


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signing_text(method: str, path: str, body_sha256: str, node_id: str, counter: int) -> bytes:
    """What a node signs for one request."""
    return "\n".join(
        ["ktp-node-request-v1", method.upper(), path, body_sha256, node_id, str(counter)]
    ).encode()


def public_key_pem(key: ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """A node's P-256 public key from PEM; :class:`SyncError` for anything else."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise SyncError(f"not a public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SyncError("a node key must be EC P-256")
    return key


def key_fingerprint(pem: str) -> str:
    """SHA-256 of a public key's DER SubjectPublicKeyInfo (hex): the same key in any PEM
    layout has the same fingerprint."""
    der = load_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def verify_signature(public_pem: str, signature_b64: str, text: bytes) -> bool:
    try:
        load_public_key(public_pem).verify(
            base64.b64decode(signature_b64, validate=True), text, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def pairing_hash(code: str) -> str:
    """What the server keeps of a one-time pairing code."""
    return hashlib.sha256(("ktp-node-pairing|" + code.strip().upper()).encode()).hexdigest()


def new_pairing_code() -> str:
    """A one-time pairing code an operator reads out (8 characters, no look-alikes)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = os.urandom(8)
    return "".join(alphabet[b % len(alphabet)] for b in raw)


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped for one node."""

    ephemeral: bytes  # uncompressed P-256 point
    nonce: bytes
    ciphertext: bytes

    def to_json(self) -> dict[str, str]:
        return {k: base64.b64encode(v).decode() for k, v in
                (("ephemeral", self.ephemeral), ("nonce", self.nonce),
                 ("ciphertext", self.ciphertext))}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> WrappedKey:
        return cls(*(base64.b64decode(data[k]) for k in ("ephemeral", "nonce", "ciphertext")))


def _kek(shared: bytes, request_id: str) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=_WRAP_INFO + request_id.encode()).derive(
        shared
    )


class Wrapping:
    """Wraps data keys for one node with one ephemeral key (one ECDH for a whole answer: the
    key-encryption key is still each record's own, bound to its request id by the HKDF)."""

    def __init__(self, node_public: ec.EllipticCurvePublicKey) -> None:
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        self._shared = ephemeral.exchange(ec.ECDH(), node_public)
        self._point = ephemeral.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def wrap(self, data_key: bytes, request_id: str) -> WrappedKey:
        nonce = os.urandom(12)
        ct = AESGCM(_kek(self._shared, request_id)).encrypt(nonce, data_key,
                                                            request_id.encode())
        return WrappedKey(self._point, nonce, ct)


def wrap_for_node(data_key: bytes, node_public: ec.EllipticCurvePublicKey,
                  request_id: str) -> WrappedKey:
    """Wrap ``data_key`` so that only the holder of the node key can unwrap it."""
    return Wrapping(node_public).wrap(data_key, request_id)


def unwrap_with_shared(wrapped: WrappedKey, shared: bytes, request_id: str) -> bytes:
    """The data key, given the ECDH secret the node's token computed for ``wrapped.ephemeral``."""
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(_kek(shared, request_id)).decrypt(
            wrapped.nonce, wrapped.ciphertext, request_id.encode()
        )
    except InvalidTag as exc:
        raise SyncError(f"record {request_id}: the data key does not unwrap") from exc
