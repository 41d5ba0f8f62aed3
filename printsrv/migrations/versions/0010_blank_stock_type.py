"""ledger: blank stock types (KTP-el chip blanks and KIA blanks are different security stock)

Every blank has a stock type (:data:`printsrv.products.STOCK_TYPES`); existing blanks were all
KTP-el chip blanks and migrate as such. The station's hopper index gains the stock type, so that
the next blank of a stock type (and whether the hopper holds any) is one index probe.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blank") as batch:
        batch.add_column(
            sa.Column("stock_type", sa.String(16), nullable=False, server_default="KTP-EL")
        )
        batch.drop_index("ix_blank_station_state_order")
        batch.create_index(
            "ix_blank_station_stock_order",
            ["station_id", "state", "stock_type", "prefix", "number"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("blank") as batch:
        batch.drop_index("ix_blank_station_stock_order")
        batch.create_index(
            "ix_blank_station_state_order",
            ["station_id", "state", "prefix", "number"],
            unique=False,
        )
        batch.drop_column("stock_type")
