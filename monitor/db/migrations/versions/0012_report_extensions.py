"""A unit's later report deadline at a checkpoint (延期): report_extension, the latest grant per unit and
checkpoint (every grant is also a report_event).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_extension",
        sa.Column("checkpoint", sa.String(length=7), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("checkpoint", "unit_code"),
    )


def downgrade() -> None:
    op.drop_table("report_extension")
