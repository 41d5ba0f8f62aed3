"""sync: copies of each kecamatan node's audit chains, signed checkpoints and checkpoint key

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sync_node_audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("node_seq", sa.BigInteger(), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("chain_seq", sa.BigInteger(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("tag", sa.String(length=80), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=8), nullable=True),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_node_audit_event"),
        sa.UniqueConstraint("node_id", "chain", "chain_seq",
                            name="uq_sync_node_audit_event_node_id"),
    )
    op.create_index("ix_sync_node_audit_event_node_seq", "sync_node_audit_event",
                    ["node_id", "node_seq"])
    op.create_table(
        "sync_node_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_node_checkpoint"),
        sa.UniqueConstraint("node_id", "number", name="uq_sync_node_checkpoint_node_id"),
    )
    op.create_table(
        "sync_node_audit_key",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_sync_node_audit_key"),
    )


def downgrade() -> None:
    op.drop_table("sync_node_audit_key")
    op.drop_table("sync_node_checkpoint")
    op.drop_index("ix_sync_node_audit_event_node_seq", table_name="sync_node_audit_event")
    op.drop_table("sync_node_audit_event")
