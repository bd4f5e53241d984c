"""Outbox messages kept apart from their rows (outbox_message): the sender updates an outbox row twice
per message (claimed, then sent), and SQLite rewrites a whole row on update, the ~20 KB serialised
message included; apart, the updates touch a small row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_message",
        sa.Column("outbox_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["outbox_id"], ["outbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("outbox_id"),
    )
    op.execute("INSERT INTO outbox_message (outbox_id, raw) SELECT id, raw FROM outbox")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("raw")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw", sa.TEXT(), nullable=False, server_default=""))
    op.execute("UPDATE outbox SET raw = (SELECT m.raw FROM outbox_message m WHERE m.outbox_id = outbox.id)")
    op.drop_table("outbox_message")
