"""desk: Surat Keterangan pengganti KTP-el

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suket",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("office_code", sa.String(length=16), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issue_day", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("head_name", sa.String(length=120), nullable=False),
        sa.Column("head_nip", sa.String(length=32), nullable=False),
        sa.Column("head_title", sa.String(length=160), nullable=False),
        sa.Column("qr_text", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["record_id"], ["record.id"],
                                name=op.f("fk_suket_record_id_record")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suket")),
        sa.UniqueConstraint("number", name=op.f("uq_suket_number")),
    )
    op.create_index(op.f("ix_suket_record_id"), "suket", ["record_id"])
    op.create_index(op.f("ix_suket_request_id"), "suket", ["request_id"])


def downgrade() -> None:
    op.drop_table("suket")
