"""Intake streams: records are read line by line and stored in chunks in one transaction, so a
batch of any size imports in bounded memory and is still all or nothing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from printsrv.config import Settings
from printsrv.db import session_factory
from printsrv.intake import pipeline
from printsrv.intake.pipeline import MAX_LINE_BYTES, _split_lines, import_batch
from printsrv.models import Batch, Record
from tests.intake.conftest import edit_records, resign


def _records(settings: Settings) -> int:
    with session_factory(settings)() as s:
        return int(s.scalar(select(func.count()).select_from(Record)) or 0)


def _blocks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


@given(
    lengths=st.lists(st.sampled_from([0, 1, 2, 300, MAX_LINE_BYTES, MAX_LINE_BYTES + 5]),
                     max_size=8),
    final_newline=st.booleans(),
    block=st.sampled_from([7, 1000, 1 << 20]),
)
@hypothesis_settings(deadline=None, max_examples=60)
def test_lines_are_the_same_whatever_the_block_size(
    lengths: list[int], final_newline: bool, block: int
) -> None:
    lines = [bytes([97 + n % 26]) * length for n, length in enumerate(lengths)]
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = list(_split_lines(_blocks(data, block)))
    expected = [
        (n, None if len(line) > MAX_LINE_BYTES else line, len(line))
        for n, line in enumerate(data.split(b"\n"), 1)
    ]
    if data.endswith(b"\n") or not data:
        expected = expected[:-1]
    assert got == expected


def test_an_over_long_line_is_never_held_whole() -> None:
    huge = [b"{" + b"x" * 4096] * 1000 + [b"}\n{}\n"]  # one 4 MB line, in 4 KB blocks
    seen = list(_split_lines(huge))
    assert [(n, line) for n, line, _ in seen] == [(1, None), (2, b"{}")]
    assert seen[0][2] == 4097 * 1000 + 1


def test_a_problem_after_stored_chunks_leaves_nothing(
    settings: Settings, batch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two records are written before the last record's problem is read: the
    batch is refused and none of them (nor the batch row) stays."""
    monkeypatch.setattr(pipeline, "CHUNK", 2)
    edit_records(batch, lambda lines: lines[-1].__setitem__("penunggalan", "GANDA"))
    resign(batch, settings.keys_dir)
    result = import_batch(settings, batch)
    assert not result.accepted and result.imported == 0
    assert any("penunggalan" in str(p) for p in result.problems)
    assert _records(settings) == 0
    with session_factory(settings)() as s:
        assert s.scalar(select(func.count()).select_from(Batch)) == 0
    accepted = import_batch(settings, batch, accept_valid=True)
    assert accepted.accepted and accepted.imported == 5 and _records(settings) == 5


def test_records_not_matching_their_hash_are_rolled_back(
    settings: Settings, batch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's hash is known only at its end, after chunks were stored."""
    monkeypatch.setattr(pipeline, "CHUNK", 2)
    path = batch / "records.jsonl"
    path.write_text(path.read_text().replace('"rt": "0', '"rt": "9', 1))
    result = import_batch(settings, batch)
    assert not result.accepted and result.imported == 0 and _records(settings) == 0
    assert [str(p) for p in result.problems] == [
        str(p) for p in result.problems if "records.jsonl" in str(p) and "SHA-256" in str(p)
    ]


def test_a_manifest_over_ten_megabytes_is_read(settings: Settings, batch: Path) -> None:
    """The manifest of a 30,000-record batch is ~13 MB; the former 10 MB cap refused it. Here
    a small batch's manifest is padded (whitespace is valid JSON) past 10 MB."""
    manifest = json.loads((batch / "manifest.json").read_text())
    raw = json.dumps(manifest, indent=1).encode()
    raw = raw[:-1] + b" " * 10_500_000 + raw[-1:]
    (batch / "manifest.json").write_bytes(raw)
    from printsrv.intake.signature import sign_detached

    keys = settings.keys_dir
    (batch / "manifest.sig").write_bytes(sign_detached(
        raw, (keys / "registry-signer.pem").read_bytes(),
        (keys / "registry-signer-key.pem").read_bytes()))
    result = import_batch(settings, batch)
    assert result.accepted, [str(p) for p in result.problems]
    with session_factory(settings)() as s:
        stored = s.scalar(select(Batch.manifest_sha256))
    assert stored == hashlib.sha256(raw).hexdigest()
