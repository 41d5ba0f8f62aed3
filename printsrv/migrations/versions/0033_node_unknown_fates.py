"""sync: unknown fates of a lost node (a node whose disk died), settled by a supervisor

Revision ID: 0033
Revises: 0031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0031"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_unknown_fate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=8), nullable=False),
        sa.Column("last_known", sa.String(length=20), nullable=False),
        sa.Column("reported_at", _TS, nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("settled_at", _TS, nullable=True),
        sa.Column("settled_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sync_unknown_fate"),
        sa.UniqueConstraint("node_id", "kind", "subject", name="uq_sync_unknown_fate_node_id"),
    )
    op.create_index("ix_sync_unknown_fate_node_id", "sync_unknown_fate", ["node_id"])


def downgrade() -> None:
    op.drop_index("ix_sync_unknown_fate_node_id", "sync_unknown_fate")
    op.drop_table("sync_unknown_fate")
