"""station: partial index of queued records for the claim query

The claim (``UPDATE record … WHERE id = (SELECT id … WHERE state = 'queued' ORDER BY id LIMIT 1
FOR UPDATE SKIP LOCKED)``) walked the primary key past every record no longer queued while the
planner's statistics still said "all queued" (10–17 ms after 20,000 claims, growing with the
number of cards made). An index holding only the queued records keeps the first queued record
one index probe away, whatever the history (bench/station).

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

QUEUED = sa.text("state = 'queued'")


def upgrade() -> None:
    op.create_index(
        "ix_record_queued",
        "record",
        ["id"],
        unique=False,
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_record_queued", table_name="record")
