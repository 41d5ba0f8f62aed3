"""audit: store every event's details as the canonical JSON that was hashed

``audit verify`` hashes the stored bytes as they are (no parsing, no re-serialising); events
written before this stored their details through the JSON type's serializer (spaces after
separators, non-ASCII escaped on SQLite). Each is rewritten to the canonical text of the same
value, which is what its hash covers, so every existing chain keeps verifying.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_CHUNK = 5000


def _canonical(text: str) -> str:
    value = json.loads(text)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def upgrade() -> None:
    conn = op.get_bind()
    stored = "details::text" if conn.dialect.name == "postgresql" else "details"
    cast = "CAST(:d AS json)" if conn.dialect.name == "postgresql" else ":d"
    last = 0
    while True:
        rows = conn.execute(
            sa.text(f"SELECT seq, {stored} FROM audit_event WHERE seq > :last"
                    " ORDER BY seq LIMIT :n"),
            {"last": last, "n": _CHUNK},
        ).all()
        if not rows:
            return
        changed = []
        for seq, text in rows:
            try:
                canonical = _canonical(text)
            except (TypeError, ValueError):
                continue  # not JSON: an edit that verify must go on reporting
            if canonical != text:
                changed.append({"s": seq, "d": canonical})
        if changed:
            conn.execute(sa.text(f"UPDATE audit_event SET details = {cast} WHERE seq = :s"),
                         changed)
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: the canonical text is the same JSON value."""
