"""ledger: who hands over and who receives, on each handover record (BAST)

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("handover_record") as batch:
        batch.add_column(sa.Column("giver", sa.String(length=120), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("receiver", sa.String(length=120), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("handover_record") as batch:
        batch.drop_column("receiver")
        batch.drop_column("giver")
