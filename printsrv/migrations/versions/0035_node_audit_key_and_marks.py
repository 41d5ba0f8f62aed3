"""sync: a node's checkpoint key bound at enrolment, and how far each node chain is verified

Revision ID: 0035
Revises: 0034
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("sync_node") as batch:
        # the checkpoint key the node sent with its enrolment (pinned when approved)
        batch.add_column(sa.Column("audit_key", sa.Text(), nullable=True))
        # the highest node checkpoint verified, and the first problem any check found
        batch.add_column(
            sa.Column(
                "audit_checkpoint_verified", sa.BigInteger(), nullable=False, server_default="0"
            )
        )
        batch.add_column(sa.Column("audit_problem", sa.Text(), nullable=True))
    with op.batch_alter_table("sync_node_audit_key") as batch:
        # "enrolment" (bound when the admin approved) or "first-sight" (a node enrolled
        # before 0035: the key of its first audit upload)
        batch.add_column(
            sa.Column("bound", sa.String(length=16), nullable=False, server_default="first-sight")
        )
    op.create_table(
        "sync_node_chain_mark",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("verified_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("node_id", "chain", name="pk_sync_node_chain_mark"),
    )


def downgrade() -> None:
    op.drop_table("sync_node_chain_mark")
    with op.batch_alter_table("sync_node_audit_key") as batch:
        batch.drop_column("bound")
    with op.batch_alter_table("sync_node") as batch:
        batch.drop_column("audit_problem")
        batch.drop_column("audit_checkpoint_verified")
        batch.drop_column("audit_key")
