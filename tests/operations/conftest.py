"""A second, empty instance to restore into (same backend as the ``settings`` under test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from printsrv.config import Settings, load_settings
from tests.conftest import scratch_postgres


@pytest.fixture
def empty_instance(
    settings: Settings, tmp_path: Path, postgres_admin_url: str | None
) -> Iterator[Settings]:
    """A fresh instance folder and an empty database, like a replacement machine's."""
    folder = tmp_path / "restored"
    if not settings.is_postgres:
        yield load_settings(overrides={"instance_dir": folder,
                                       "database_url": f"sqlite:///{folder / 'printsrv.db'}"})
        return
    assert postgres_admin_url is not None
    with scratch_postgres(postgres_admin_url, "ktp_restore") as url:
        yield load_settings(overrides={"instance_dir": folder, "database_url": url})
