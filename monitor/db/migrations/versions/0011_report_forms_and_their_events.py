"""Units report through the system: report_form (one project's monitoring report at one checkpoint as
the unit fills it in on its reporting page: the fields as typed, drafts kept server-side, and its
state: draft, submitted, returned, approved) and report_event (every step, by whom, through which
channel, when).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_form",
        sa.Column("checkpoint", sa.String(length=7), nullable=False),
        sa.Column("project_code", sa.String(length=21), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("checkpoint", "project_code"),
    )
    with op.batch_alter_table("report_form", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_form_unit_code"), ["unit_code"], unique=False)
    op.create_table(
        "report_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.String(length=7), nullable=False),
        sa.Column("project_code", sa.String(length=21), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("report_event", schema=None) as batch_op:
        batch_op.create_index("ix_report_event_project", ["checkpoint", "project_code"], unique=False)


def downgrade() -> None:
    op.drop_table("report_event")
    op.drop_table("report_form")
