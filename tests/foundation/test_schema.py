"""The migrations create exactly what the models declare, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from printsrv.config import Settings
from printsrv.db import engine_for
from printsrv.models import Base


# SQLAlchemy cannot reflect an index on an expression (lower(username)) from SQLite; the
# test below checks that one by name.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_match_models(settings: Settings) -> None:
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_user_names_have_their_case_blind_unique_index(settings: Settings) -> None:
    sql = ("SELECT sql FROM sqlite_master WHERE name = :n" if not settings.is_postgres
           else "SELECT indexdef FROM pg_indexes WHERE indexname = :n")
    with engine_for(settings.sqlalchemy_url).connect() as conn:
        definition = conn.execute(text(sql), {"n": "uq_app_user_username_lower"}).scalar()
    assert definition is not None and "UNIQUE" in definition.upper()
    assert "lower(" in definition.lower() and "username" in definition.lower()
