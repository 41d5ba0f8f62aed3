"""The migrations create exactly what the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from printsrv.config import Settings
from printsrv.db import engine_for
from printsrv.models import Base


def test_migrations_match_models(settings: Settings) -> None:
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
