"""A second, empty instance to restore into (same backend as the ``settings`` under test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from printsrv.config import Settings, load_settings


@pytest.fixture
def empty_instance(
    settings: Settings, tmp_path: Path, postgres_admin_url: str | None
) -> Iterator[Settings]:
    """A fresh instance folder and an empty database, like a replacement machine's."""
    from printsrv.db import engine_for

    folder = tmp_path / "restored"
    if not settings.is_postgres:
        yield load_settings(overrides={"instance_dir": folder,
                                       "database_url": f"sqlite:///{folder / 'printsrv.db'}"})
        return
    assert postgres_admin_url is not None
    name = f"ktp_restore_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    yield load_settings(overrides={"instance_dir": folder, "database_url": url})
    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
