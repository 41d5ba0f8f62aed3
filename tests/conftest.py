"""Shared fixtures: an instance folder with a SoftHSM token and demo keys (once per session),
and a clean database per test, on SQLite and on PostgreSQL.

PostgreSQL is used when ``PRINTSRV_TEST_POSTGRES_URL`` is set (default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` is tried when reachable); under
``CI=true`` an unreachable PostgreSQL is an error, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from printsrv.config import Settings, load_settings

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _postgres_admin_url() -> str | None:
    url = os.environ.get("PRINTSRV_TEST_POSTGRES_URL", DEFAULT_PG)
    if url.lower() in {"", "0", "off", "none"}:
        return None
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return url
    except Exception as exc:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"PostgreSQL required in CI but not reachable at {url}") from exc
        return None


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance folder with a fresh token, demo registry PKI and document signer."""
    from printsrv.keys import create_demo_registry_pki, init_token

    path = tmp_path_factory.mktemp("instance")
    settings = load_settings(overrides={"instance_dir": path})
    init_token(settings)
    create_demo_registry_pki(settings.keys_dir)
    return path


@pytest.fixture(scope="session")
def postgres_admin_url() -> str | None:
    return _postgres_admin_url()


@contextmanager
def scratch_postgres(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``admin_url``'s, dropped afterwards (its
    pooled connections closed first); yields its URL."""
    from printsrv.db import dispose_engine

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        dispose_engine(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str | None,
) -> Iterator[str]:
    """One migrated database per backend per test session."""
    from printsrv import schema

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'printsrv.db'}"
        schema.upgrade(load_settings(overrides={"database_url": url}))
        yield url
        return
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL not reachable (set PRINTSRV_TEST_POSTGRES_URL)")
    with scratch_postgres(postgres_admin_url, "ktp_test") as url:
        schema.upgrade(load_settings(overrides={"database_url": url}))
        yield url


def _clean(url: str) -> None:
    from printsrv.db import engine_for
    from printsrv.models import Base
    from printsrv.offices import forget_codes

    engine = engine_for(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    forget_codes()  # office ids may come back with other codes


@pytest.fixture
def settings(instance_dir: Path, database_url: str) -> Iterator[Settings]:
    """Settings for one test: the shared instance (keys) and an emptied database."""
    _clean(database_url)
    # The checkpoints file outside the database belongs with the database just emptied.
    (instance_dir / "audit" / "checkpoints.jsonl").unlink(missing_ok=True)
    yield load_settings(overrides={"instance_dir": instance_dir, "database_url": database_url})


@pytest.fixture
def sqlite_settings(instance_dir: Path, tmp_path: Path) -> Settings:
    """Settings with a private, freshly migrated SQLite database (for CLI subprocess tests)."""
    from printsrv import schema

    s = load_settings(
        overrides={"instance_dir": instance_dir, "database_url": f"sqlite:///{tmp_path / 'p.db'}"}
    )
    schema.upgrade(s)
    (instance_dir / "audit" / "checkpoints.jsonl").unlink(missing_ok=True)
    return s
