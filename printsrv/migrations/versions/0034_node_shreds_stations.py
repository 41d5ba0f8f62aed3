"""sync: nodes' crypto-shred confirmations and the last status of each node station

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_node_shred",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("shredded_at", _TS, nullable=True),
        sa.Column("destroyed", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_node_shred"),
        sa.UniqueConstraint("event_id", name="uq_sync_node_shred_event_id"),
    )
    op.create_index("ix_sync_node_shred_node_id", "sync_node_shred", ["node_id"])
    op.create_index("ix_sync_node_shred_request_id", "sync_node_shred", ["request_id"])
    op.create_table(
        "sync_node_station",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("printer_state", sa.String(length=32), nullable=False),
        sa.Column("reader", sa.String(length=200), nullable=False),
        sa.Column("ribbon", sa.String(length=64), nullable=False),
        sa.Column("ribbon_remaining", sa.Integer(), nullable=True),
        sa.Column("cards_issued", sa.Integer(), nullable=False),
        sa.Column("cards_spoiled", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("reported_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("node_id", "name", name="pk_sync_node_station"),
    )


def downgrade() -> None:
    op.drop_table("sync_node_station")
    op.drop_index("ix_sync_node_shred_request_id", table_name="sync_node_shred")
    op.drop_index("ix_sync_node_shred_node_id", table_name="sync_node_shred")
    op.drop_table("sync_node_shred")
