"""notify: pickup SMS messages with their booked pickup day

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

STATES = ("pending", "sending", "sent", "delivered", "failed", "invalid")


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("state", sa.Enum(*STATES, name="notification_state", native_enum=False,
                                   length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pickup_day", sa.Date(), nullable=True),
        sa.Column("gateway", sa.String(length=20), nullable=True),
        sa.Column("gateway_reply", sa.Text(), nullable=True),
        sa.Column("report", sa.String(length=40), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("message_id", name=op.f("uq_notification_message_id")),
        sa.UniqueConstraint("event_id", name=op.f("uq_notification_event_id")),
    )
    op.create_index("ix_notification_state_next", "notification", ["state", "next_attempt_at"])
    op.create_index("ix_notification_office_day", "notification", ["office_code", "pickup_day"])
    op.create_index(op.f("ix_notification_request_id"), "notification", ["request_id"])


def downgrade() -> None:
    op.drop_table("notification")
