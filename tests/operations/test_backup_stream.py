"""The sealed backup stream: what goes in comes out, and any change, cut or wrong key fails."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from printsrv import backup
from printsrv.backup import BackupError, _OpenedReader, _SealedWriter

KEY = bytes(range(32))


def _seal(data: bytes, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    writer = _SealedWriter(out, key, {"format": backup.FORMAT})
    writer.write(data)
    writer.finish()
    return out.getvalue()


def _open(sealed: bytes, key: bytes = KEY) -> bytes:
    return _OpenedReader(io.BytesIO(sealed), key).read()


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_round_trip_at_every_chunk_boundary(data: bytes, chunk: int) -> None:
    original = backup.CHUNK
    backup.CHUNK = chunk
    try:
        assert _open(_seal(data)) == data
    finally:
        backup.CHUNK = original


def test_no_plaintext_in_the_file() -> None:
    secret = b"NIK 3526014101900001 " * 100
    assert b"3526014101900001" not in _seal(secret)


@pytest.mark.parametrize("where", [len(backup.MAGIC) + 5, -1, -20, 80])
def test_any_changed_byte_fails(where: int) -> None:
    sealed = bytearray(_seal(b"x" * 5000))
    sealed[where] ^= 0x01
    with pytest.raises(BackupError):
        _open(bytes(sealed))


def test_a_damaged_nonce_prefix_in_the_header_is_a_backup_error() -> None:
    sealed = bytearray(_seal(b"x" * 500))
    at = sealed.index(b'"nonce_prefix": "') + len(b'"nonce_prefix": "')
    sealed[at] = ord("g")  # not a hex digit (a flipped bit can make one)
    with pytest.raises(BackupError, match="nonce prefix"):
        _open(bytes(sealed))


def test_a_cut_file_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "CHUNK", 100)
    sealed = _seal(b"y" * 1000)
    # Cut after a whole chunk: every remaining chunk authenticates, but the final one is gone.
    first_chunk_end = sealed.index(b"\n", len(backup.MAGIC)) + 1 + 4 + 100 + 16
    with pytest.raises(BackupError, match="truncated"):
        _open(sealed[:first_chunk_end])
    with pytest.raises(BackupError, match="after the backup's final chunk"):
        _open(sealed + b"\0")


def test_chunks_cannot_be_reordered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "CHUNK", 100)
    sealed = _seal(b"a" * 100 + b"b" * 100 + b"c" * 10)
    head = sealed.index(b"\n", len(backup.MAGIC)) + 1
    size = 4 + 100 + 16
    one, two, rest = sealed[head:head + size], sealed[head + size:head + 2 * size], sealed[
        head + 2 * size:]
    with pytest.raises(BackupError, match="does not authenticate"):
        _open(sealed[:head] + two + one + rest)


def test_wrong_key_is_named() -> None:
    with pytest.raises(BackupError, match="wrong backup key"):
        _open(_seal(b"z"), key=bytes(32))


def test_not_a_backup() -> None:
    with pytest.raises(BackupError, match="bad magic"):
        _open(b"PK\x03\x04 a zip file")


def test_key_file_is_created_private_and_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys" / "backup.key"
    with pytest.raises(BackupError, match="not found"):
        backup.load_key(path)
    key = backup.load_key(path, create=True)
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert backup.load_key(path) == key
    path.write_text("abcd\n")
    with pytest.raises(BackupError, match="2 bytes"):
        backup.load_key(path)
