"""Create or upgrade the database schema with Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from printsrv.config import Settings
from printsrv.db import engine_for

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(settings: Settings) -> str:
    """Bring the database to the newest revision; return that revision."""
    engine = engine_for(settings.sqlalchemy_url)
    cfg = alembic_config(settings.sqlalchemy_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        # "heads": branches of parallel work merge into one history later (a merge revision);
        # until then every head is applied.
        command.upgrade(cfg, "heads")
    return current_revision(settings) or ""


def head_revision() -> str:
    """The newest revision the code ships (what ``upgrade`` brings a database to)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return "+".join(sorted(heads))


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (``A+B`` while history has parallel heads), ``None`` for
    an empty database."""
    engine = engine_for(settings.sqlalchemy_url)
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
        return "+".join(sorted(rows)) if rows else None
