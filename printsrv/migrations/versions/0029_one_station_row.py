"""station: one row per station — the daemon's runtime moves onto the ledger's station row

Until now a station had two rows: the ledger's ``station`` (office, queue, reader, a state
mirrored from the daemon through a mode → state table) and ``station_runtime`` (the daemon's
mode, pid, heartbeat, current card job, counters and the operators' requests). The runtime
columns move onto ``station``; its state takes the daemon's words (``starting``, ``running``,
``paused``, ``stopped``, and ``offline`` for a station whose daemon never ran; the unused
``idle`` becomes ``stopped``). Each runtime row is copied onto the station of the same name,
then ``station_runtime`` is dropped. A runtime row with no station row of its name (a daemon
registers its station before writing it, so none is expected) holds no blank and is dropped.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("station") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("current_job_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cards_issued", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("cards_spoiled", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default="{}"))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE station SET state = 'stopped' WHERE state = 'idle'"))
    station = sa.table(
        "station", sa.column("name", sa.String), sa.column("state", sa.String),
        sa.column("pause_reason", sa.Text), sa.column("pid", sa.Integer),
        sa.column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.column("current_job_id", sa.Integer), sa.column("cards_issued", sa.Integer),
        sa.column("cards_spoiled", sa.Integer), sa.column("details", sa.JSON),
    )
    runtime = sa.table(
        "station_runtime", sa.column("name", sa.String), sa.column("mode", sa.String),
        sa.column("reason", sa.Text), sa.column("pid", sa.Integer),
        sa.column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.column("current_job_id", sa.Integer), sa.column("cards_issued", sa.Integer),
        sa.column("cards_spoiled", sa.Integer), sa.column("details", sa.JSON),
    )
    for row in bind.execute(sa.select(runtime)).mappings().all():
        bind.execute(
            station.update().where(station.c.name == row["name"]).values(
                state=row["mode"], pause_reason=row["reason"], pid=row["pid"],
                heartbeat_at=row["heartbeat_at"], current_job_id=row["current_job_id"],
                cards_issued=row["cards_issued"], cards_spoiled=row["cards_spoiled"],
                details=row["details"] or {},
            )
        )
    op.drop_table("station_runtime")


def downgrade() -> None:
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
    op.execute(
        "INSERT INTO station_runtime (name, mode, reason, pid, heartbeat_at, current_job_id,"
        " cards_issued, cards_spoiled, details, updated_at)"
        " SELECT name, state, pause_reason, pid, heartbeat_at, current_job_id, cards_issued,"
        " cards_spoiled, details, updated_at FROM station WHERE pid IS NOT NULL"
    )
    op.execute("UPDATE station SET state = 'offline' WHERE state IN ('stopped', 'starting')")
    with op.batch_alter_table("station") as batch:
        batch.drop_column("details")
        batch.drop_column("cards_spoiled")
        batch.drop_column("cards_issued")
        batch.drop_column("current_job_id")
        batch.drop_column("pid")
