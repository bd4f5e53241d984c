"""Provenance of reports: report_batch (one import transaction that wrote reports: its channel, source
and time) and the batch that last wrote each project_report and indicator_report row.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for table in ("project_report", "indicator_report"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("batch", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("indicator_report", "project_report"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("batch")
    op.drop_table("report_batch")
