"""Fixtures shared by the foundation tests."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture(scope="module")
def pg(postgres_admin_url: str | None) -> Iterator[psycopg.Connection]:
    """A plain autocommit psycopg connection to the test PostgreSQL server (skips without)."""
    if postgres_admin_url is None:
        pytest.skip("PostgreSQL not reachable (set PRINTSRV_TEST_POSTGRES_URL)")
    dsn = postgres_admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn
