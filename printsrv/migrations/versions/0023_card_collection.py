"""desk: cards handed over at the pickup desk (records gain at_desk and collected)

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_collection",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("receipt_number", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=16), nullable=False),
        sa.Column("collector_name", sa.String(length=120), nullable=False),
        sa.Column("relation", sa.String(length=20), nullable=False),
        sa.Column("collector_nik", sa.String(length=16), nullable=False),
        sa.Column("authorization", sa.String(length=80), nullable=True),
        sa.Column("signature_png", sa.LargeBinary(), nullable=True),
        sa.Column("officer", sa.String(length=64), nullable=False),
        sa.Column("witness", sa.String(length=64), nullable=True),
        sa.Column("printed_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"],
                                name=op.f("fk_card_collection_record_id_record")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_collection")),
        sa.UniqueConstraint("receipt_number", name=op.f("uq_card_collection_receipt_number")),
    )
    op.create_index(op.f("ix_card_collection_record_id"), "card_collection", ["record_id"])
    op.create_index(op.f("ix_card_collection_office_code"), "card_collection", ["office_code"])


def downgrade() -> None:
    op.drop_table("card_collection")
