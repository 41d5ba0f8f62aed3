"""web: server-side sessions, one-time TOTP codes, user names unique without regard to case,
API token expiry

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    clashes = conn.execute(sa.text(
        "SELECT lower(username), count(*) FROM app_user GROUP BY lower(username) HAVING count(*) > 1"
    )).all()
    if clashes:
        names = ", ".join(name for name, _ in clashes)
        raise RuntimeError(
            f"user names that differ only in case: {names}; rename or deactivate all but one "
            "of each (UPDATE app_user SET username = ...), then run init again"
        )
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"],
                                name=op.f("fk_web_session_user_id_app_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_session_token_hash")),
    )
    op.create_index(op.f("ix_web_session_user_id"), "web_session", ["user_id"], unique=False)
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        # Room for a secret sealed under the token's key (init seals the clear ones).
        batch.alter_column("totp_secret", type_=sa.String(length=255),
                           existing_type=sa.String(length=64), existing_nullable=True)
    op.create_index("uq_app_user_username_lower", "app_user", [sa.text("lower(username)")],
                    unique=True)
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
    op.drop_index("uq_app_user_username_lower", table_name="app_user")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("totp_last_step")
        batch.alter_column("totp_secret", type_=sa.String(length=64),
                           existing_type=sa.String(length=255), existing_nullable=True)
    op.drop_index(op.f("ix_web_session_user_id"), table_name="web_session")
    op.drop_table("web_session")
