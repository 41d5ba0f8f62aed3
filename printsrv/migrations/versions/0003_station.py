"""station: card jobs (the per-card intent journal) and station runtime state

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("blank_serial", sa.String(length=64), nullable=True),
        sa.Column("phase", sa.Enum("intent", "chip_started", "chip_done", "print_submitted",
                                   "finished", name="card_phase", native_enum=False,
                                   length=20), nullable=False),
        sa.Column("outcome", sa.Enum("issued", "spoiled", "released", name="card_outcome",
                                     native_enum=False, length=20), nullable=True),
        sa.Column("cause", sa.String(length=40), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("chip_uid", sa.String(length=32), nullable=True),
        sa.Column("chip_attempts", sa.Integer(), nullable=False),
        sa.Column("print_title", sa.String(length=120), nullable=True),
        sa.Column("print_job_id", sa.Integer(), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"],
                                name=op.f("fk_card_job_record_id_record")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_job")),
    )
    with op.batch_alter_table("card_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_card_job_blank_serial"), ["blank_serial"],
                              unique=False)
        batch_op.create_index("ix_card_job_station_outcome", ["station", "outcome"],
                              unique=False)

    op.create_table(
        "station_runtime",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("mode", sa.Enum("starting", "running", "paused", "stopped",
                                  name="station_mode", native_enum=False, length=20),
                  nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current_job_id", sa.Integer(), nullable=True),
        sa.Column("cards_issued", sa.Integer(), nullable=False),
        sa.Column("cards_spoiled", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_station_runtime")),
    )


def downgrade() -> None:
    op.drop_table("station_runtime")
    with op.batch_alter_table("card_job", schema=None) as batch_op:
        batch_op.drop_index("ix_card_job_station_outcome")
        batch_op.drop_index(batch_op.f("ix_card_job_blank_serial"))
    op.drop_table("card_job")
