"""A checkpoint's run claimed (run_lock) and its messages queued once: outbox.supersedes (the message a
new one was decided against) with a unique index on (checkpoint, kind, unit, supersedes), so that one
decision can never be queued twice, whoever else runs the checkpoint meanwhile.

Existing rows are chained first (each gets the id of the previous row of its checkpoint, kind and unit),
so the index can be created on a database that already holds doubles.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAIN = """
UPDATE outbox SET supersedes = chain.previous
FROM (
    SELECT id, lag(id) OVER (PARTITION BY checkpoint, kind, coalesce(unit_code, '') ORDER BY id) AS previous
    FROM outbox
) AS chain
WHERE chain.id = outbox.id AND chain.previous IS NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "run_lock",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.add_column("outbox", sa.Column("supersedes", sa.Integer(), nullable=False, server_default="0"))
    op.execute(CHAIN)  # SQLite 3.33+ and PostgreSQL: UPDATE … FROM with a window function
    op.create_index(
        "uq_outbox_once",
        "outbox",
        ["checkpoint", "kind", sa.text("coalesce(unit_code, '')"), "supersedes"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_outbox_once", table_name="outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("supersedes")
    op.drop_table("run_lock")
