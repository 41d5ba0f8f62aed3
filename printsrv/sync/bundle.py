"""Resumable, chunked, compressed transfers between a node and its server.

A transfer carries one **bundle**: a JSON document (a pull's answer, a push's events)
compressed with deflate (zlib) and named by the SHA-256 of its compressed bytes. Its
:class:`Manifest` gives the size, the whole hash, and the SHA-256 of each block of
:data:`BLOCK` bytes. Either end keeps what it has received in a ``.part`` file in its spool
(``<instance>/sync-spool/{server,node}/...``); every block is checked against the manifest as
soon as it is complete (a bad block is cut off and refused), and the whole against its name
at the end. A transfer cut at any byte continues at the end of the part file: the downloader
keeps every byte that reached it (the last, incomplete block is checked once it completes);
the uploader repeats at most the one chunk that was on the wire (the server keeps only whole
chunks: a request body is applied whole or not at all).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from printsrv.sync.protocol import SyncError

#: Bytes in a block (the unit of the per-chunk hash check).
BLOCK = 32 * 1024
#: Bytes in one upload request (whole blocks).
UP_CHUNK = 2 * BLOCK
#: Bytes asked for in one download request at most (the answer streams; bytes that arrive
#: before a cut are kept).
DOWN_CHUNK = 1024 * 1024
#: A pull answer up to this many bytes compressed comes in one JSON answer, not as a bundle.
INLINE_MAX = UP_CHUNK
#: The largest bundle either end accepts.
MAX_SIZE = 64 * 1024 * 1024
#: Part files older than this are removed (a transfer abandoned for a week).
STALE_SECONDS = 8 * 24 * 3600
ENCODING = "deflate"
#: A pull answer's bundle: its document deflated without its media, then the media raw (see
#: :func:`pack`): ciphertext neither deflates nor needs base64 on the wire.
BLOBS = "deflate+blobs"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ChunkRefused(SyncError):
    """A chunk does not match its block hashes (corrupted on the way): it is cut off and must
    be sent again."""


def is_digest(value: str) -> bool:
    return bool(_HEX64.match(value))


def compress(document: Any) -> tuple[bytes, int]:
    """``document`` as compact JSON, deflated; and the size of the JSON."""
    raw = json.dumps(document, separators=(",", ":")).encode()
    return zlib.compress(raw, 6), len(raw)


def decompress(data: bytes, *, limit: int = 8 * MAX_SIZE) -> Any:
    """The JSON document of a bundle (refused above ``limit`` bytes inflated)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, limit)
        if inflater.unconsumed_tail or not inflater.eof:
            raise SyncError("bundle: not a whole deflate stream, or too large inflated")
        return json.loads(raw)
    except (zlib.error, ValueError) as exc:
        raise SyncError(f"bundle: {exc}") from exc


def pack(document: dict[str, Any]) -> tuple[bytes, int, str]:
    """A document whose ``blobs`` (a list of base64 strings) go apart: the bytes, the size of
    the JSON and the encoding. Without blobs, :func:`compress` (``deflate``); with them,
    ``deflate+blobs``: 4 bytes (big-endian) giving the length of the deflated JSON of the
    document without ``blobs`` but with ``blob_sizes``, that JSON, then every blob raw."""
    blobs = document.get("blobs") or []
    if not blobs:
        data, raw_size = compress(document)
        return data, raw_size, ENCODING
    raw_blobs = [base64.b64decode(b) for b in blobs]
    head, raw_size = compress({**{k: v for k, v in document.items() if k != "blobs"},
                               "blob_sizes": [len(b) for b in raw_blobs]})
    return b"".join([len(head).to_bytes(4, "big"), head, *raw_blobs]), raw_size, BLOBS


def unpack(data: bytes, encoding: str) -> Any:
    """The document of a bundle packed by :func:`pack`; with ``deflate+blobs`` its ``blobs``
    are bytes."""
    if encoding == ENCODING:
        return decompress(data)
    if encoding != BLOBS or len(data) < 4:
        raise SyncError(f"bundle: cannot unpack {encoding!r}")
    end = 4 + int.from_bytes(data[:4], "big")
    document = decompress(data[4:end])
    sizes = document.pop("blob_sizes", None) if isinstance(document, dict) else None
    if not isinstance(sizes, list) or end + sum(int(n) for n in sizes) != len(data):
        raise SyncError("bundle: its blobs do not add up to its size")
    blobs = []
    for n in sizes:
        blobs.append(data[end:end + int(n)])
        end += int(n)
    document["blobs"] = blobs
    return document


@dataclass(frozen=True)
class Manifest:
    """What a receiver checks a bundle against."""

    sha256: str
    size: int
    blocks: tuple[str, ...]
    block: int = BLOCK
    encoding: str = ENCODING
    raw_size: int = 0

    @classmethod
    def of(cls, data: bytes, *, raw_size: int = 0, block: int = BLOCK,
           encoding: str = ENCODING) -> Manifest:
        return cls(hashlib.sha256(data).hexdigest(), len(data),
                   tuple(hashlib.sha256(data[i:i + block]).hexdigest()
                         for i in range(0, len(data), block)),
                   block, encoding, raw_size)

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "block": self.block,
                "blocks": list(self.blocks), "encoding": self.encoding,
                "raw_size": self.raw_size}

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        try:
            manifest = cls(str(data["sha256"]), int(data["size"]),
                           tuple(str(b) for b in data["blocks"]), int(data["block"]),
                           str(data.get("encoding", ENCODING)), int(data.get("raw_size", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SyncError(f"malformed manifest: {exc}") from exc
        if not is_digest(manifest.sha256) or not all(is_digest(b) for b in manifest.blocks):
            raise SyncError("manifest: hashes must be 64 hex digits")
        if manifest.encoding not in (ENCODING, BLOBS):
            raise SyncError(f"manifest: unknown encoding {manifest.encoding!r}")
        if not 0 < manifest.size <= MAX_SIZE or not 1024 <= manifest.block <= 1024 * 1024:
            raise SyncError("manifest: size or block size out of bounds")
        if len(manifest.blocks) != -(-manifest.size // manifest.block):
            raise SyncError("manifest: the block hashes do not cover the size")
        return manifest


class Part:
    """A bundle being received into ``<folder>/<sha256>.part`` (renamed ``.bundle`` once whole
    and checked)."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.manifest = manifest
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{manifest.sha256}.part"
        self.done = folder / f"{manifest.sha256}.bundle"

    @property
    def received(self) -> int:
        """Bytes held (whole when the bundle is complete)."""
        if self.done.exists():
            return self.manifest.size
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    @property
    def complete(self) -> bool:
        return self.done.exists()

    def settle(self) -> None:
        """Check and rename a part file that holds every byte (a process that ended between
        its last write and the rename); :class:`ChunkRefused` if it does not check."""
        if not self.complete and self.received == self.manifest.size:
            self.write(self.manifest.size, [])

    def write(self, offset: int, pieces: Iterable[bytes]) -> int:
        """Append ``pieces`` at ``offset`` (which must be :attr:`received`); every block
        completed is checked, and the whole at the end. Bytes written before an exception in
        ``pieces`` (a cut link) are kept. Returns the new length; :class:`ChunkRefused` (the
        bad block cut off) when a block does not match."""
        if self.complete:
            return self.manifest.size
        if offset != self.received:
            raise SyncError(f"bundle {self.manifest.sha256[:12]}: offset {offset}, "
                            f"{self.received} bytes held")
        block = self.manifest.block
        checked = offset - offset % block
        with self.path.open("ab") as out:
            try:
                for piece in pieces:
                    if offset + len(piece) > self.manifest.size:
                        raise ChunkRefused("bundle: more bytes than its manifest says")
                    out.write(piece)
                    offset += len(piece)
                    if offset - checked >= block or offset == self.manifest.size:
                        out.flush()
                        checked = self._check(checked, offset)
            finally:
                out.flush()
                os.fsync(out.fileno())
        self._check(checked, offset)
        if offset == self.manifest.size:
            self._finish()
        return offset

    def _check(self, start: int, end: int) -> int:
        """Check the whole blocks (and the last one) in [start, end); returns where checking
        stopped. A bad block is cut off."""
        block = self.manifest.block
        with self.path.open("rb") as data:
            data.seek(start)
            while start < end and (end - start >= block or end == self.manifest.size):
                piece = data.read(min(block, end - start))
                if hashlib.sha256(piece).hexdigest() != self.manifest.blocks[start // block]:
                    os.truncate(self.path, start)
                    raise ChunkRefused(f"bundle {self.manifest.sha256[:12]}: block "
                                       f"{start // block} does not match its hash: refused")
                start += len(piece)
        return start

    def _finish(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as data:
            while piece := data.read(1 << 20):
                digest.update(piece)
        if digest.hexdigest() != self.manifest.sha256:
            self.path.unlink()
            raise ChunkRefused(f"bundle {self.manifest.sha256[:12]}: the whole does not match")
        os.replace(self.path, self.done)

    def read(self) -> bytes:
        return self.done.read_bytes()

    def discard(self) -> None:
        for path in (self.path, self.done):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def spool(instance_dir: Path, side: str, *parts: str) -> Path:
    """``<instance>/sync-spool/<side>/<parts...>`` (side: ``server`` or ``node``)."""
    folder = instance_dir / "sync-spool" / side
    for part in parts:
        folder = folder / part.replace("/", "_")
    return folder


def sweep(folder: Path, *, keep: Iterable[str] | None = None,
          max_age: float = STALE_SECONDS) -> None:
    """Remove the files in ``folder`` but those named in ``keep``; with ``keep`` None, only
    those older than ``max_age`` seconds."""
    if not folder.is_dir():
        return
    names = set(keep) if keep is not None else None
    now = time.time()
    for path in folder.iterdir():
        if not path.is_file() or (names is not None and path.name in names):
            continue
        with contextlib.suppress(FileNotFoundError):
            if names is not None or now - path.stat().st_mtime > max_age:
                path.unlink()
