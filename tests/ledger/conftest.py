"""Ledger fixtures: the CLI run in-process against the test database, and records to print."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

import printsrv.ledger.models  # noqa: F401  (registers the ledger tables for the cleaner)
from printsrv.config import Settings
from printsrv.models import Batch, Record, RecordState


@pytest.fixture
def cli(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """Run ``run.py ARGS`` in-process on the test's database; returns (status, stdout, stderr)."""
    from printsrv.cli import main

    monkeypatch.setenv("PRINTSRV_INSTANCE_DIR", str(settings.instance_dir))
    monkeypatch.setenv("PRINTSRV_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.delenv("PRINTSRV_CONFIG", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        else:
            code = 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def make_records(session: Session, office_id: int, count: int, *, tag: str = "t") -> list[int]:
    """``count`` queued records at ``office_id`` (one batch); returns their ids."""
    batch = Batch(
        batch_id=f"ledger-{tag}",
        issuer="test",
        created_at=datetime.now(UTC),
        record_count=count,
        manifest_sha256="0" * 64,
        signer="test",
    )
    session.add(batch)
    session.flush()
    records = [
        Record(
            request_id=f"{tag}-{i}",
            batch_id=batch.id,
            line_no=i,
            nik=f"35260145089{i:05d}",
            nama=f"WARGA {i}",
            card_type="KTP",
            office_id=office_id,
            state=RecordState.QUEUED,
            data={},
        )
        for i in range(1, count + 1)
    ]
    session.add_all(records)
    session.flush()
    return [r.id for r in records]
