"""station: queued records by office, for the claim query

Migration 0006's index keeps queued records in id order, but across every office: a station
walked past every queued record of other offices older than its own next one (a central
database queues records for many offices), and an idle station polling an office with nothing
queued read the whole queue. Measured in ``bench/station``: with one office in ten another's,
the pick cost grew from 0.5 ms to 3 ms over 24,000 claims. With the office first, the next
queued record of each office is one index probe away.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

QUEUED = sa.text("state = 'queued'")


def upgrade() -> None:
    op.create_index(
        "ix_record_queued_office",
        "record",
        ["office_id", "id"],
        unique=False,
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index("ix_record_queued_office", table_name="record")
