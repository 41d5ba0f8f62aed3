"""station: who operated the station for each card

``card_job.operator`` names the person at the station when the card was made: the user who
asked for the batch (web page or ``station batch --operator``), else the one who started the
station (``station NAME --operator``). Auditors follow a card from its blank serial to the
operator, and compare operators' spoilage rates.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_job") as batch:
        batch.add_column(sa.Column("operator", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("card_job") as batch:
        batch.drop_column("operator")
