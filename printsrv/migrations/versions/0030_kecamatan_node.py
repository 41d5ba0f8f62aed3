"""sync: kecamatan nodes (registry, down items, applied events, recalls, node identity) and the
record's owner node

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("record") as batch:
        batch.add_column(sa.Column("owner_node", sa.String(length=64), nullable=True))
        batch.create_index("ix_record_owner_node", ["owner_node"])
    op.create_table(
        "sync_node",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("pairing_hash", sa.String(length=64), nullable=True),
        sa.Column("enrolled_at", _TS, nullable=False),
        sa.Column("approved_at", _TS, nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("last_contact_at", _TS, nullable=True),
        sa.Column("request_counter", sa.BigInteger(), nullable=False),
        sa.Column("down_seq", sa.BigInteger(), nullable=False),
        sa.Column("down_acked", sa.BigInteger(), nullable=False),
        sa.Column("up_applied", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_sync_node"),
    )
    op.create_index("ix_sync_node_office_code", "sync_node", ["office_code"])
    op.create_table(
        "sync_down_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_down_item"),
        sa.UniqueConstraint("node_id", "seq", name="uq_sync_down_item_node_id"),
    )
    op.create_index("ix_sync_down_item_request_id", "sync_down_item", ["request_id"])
    op.create_table(
        "sync_applied_event",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_sync_applied_event"),
    )
    op.create_index("ix_sync_applied_event_node_seq", "sync_applied_event", ["node_id", "seq"])
    op.create_table(
        "sync_recall",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("fate", sa.String(length=16), nullable=True),
        sa.Column("asked_by", sa.String(length=64), nullable=False),
        sa.Column("asked_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sync_recall"),
    )
    op.create_index("ix_sync_recall_request_id", "sync_recall", ["request_id"])
    op.create_table(
        "sync_identity",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("server_url", sa.String(length=400), nullable=False),
        sa.Column("office_code", sa.String(length=8), nullable=False),
        sa.Column("enrolled_at", _TS, nullable=False),
        sa.Column("request_counter", sa.BigInteger(), nullable=False),
        sa.Column("down_applied", sa.BigInteger(), nullable=False),
        sa.Column("last_contact_at", _TS, nullable=True),
        sa.Column("offline_since", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("node_id", name="pk_sync_identity"),
    )


def downgrade() -> None:
    op.drop_table("sync_identity")
    op.drop_index("ix_sync_recall_request_id", "sync_recall")
    op.drop_table("sync_recall")
    op.drop_index("ix_sync_applied_event_node_seq", "sync_applied_event")
    op.drop_table("sync_applied_event")
    op.drop_index("ix_sync_down_item_request_id", "sync_down_item")
    op.drop_table("sync_down_item")
    op.drop_index("ix_sync_node_office_code", "sync_node")
    op.drop_table("sync_node")
    with op.batch_alter_table("record") as batch:
        batch.drop_index("ix_record_owner_node")
        batch.drop_column("owner_node")
