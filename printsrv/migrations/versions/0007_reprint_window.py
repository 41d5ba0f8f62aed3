"""records: keep an issued record's biometrics for the reprint window

``record.media_purge_due`` says when the encrypted media of an issued record must be
crypto-shredded (issue time + ``reprint_window_days``); NULL when nothing waits. The purge sweep
(``records purge`` and the station's idle loop) finds the due records through its index.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# A nullable column: a plain ALTER TABLE on both databases (no SQLite table rebuild, which
# would have to carry the partial index of 0006 across).


def upgrade() -> None:
    op.add_column("record", sa.Column("media_purge_due", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_record_media_purge_due"), "record", ["media_purge_due"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_record_media_purge_due"), table_name="record")
    op.drop_column("record", "media_purge_due")
