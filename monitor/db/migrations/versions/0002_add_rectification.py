"""Rectification (issue 8): warning cases, the units' answers, the bureau's reviews, web users and
login attempts. New tables only.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_attempt_at"), ["at"], unique=False)

    op.create_table(
        "warning_case",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.String(length=7), nullable=False),
        sa.Column("project_code", sa.String(length=21), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("project_name", sa.String(), nullable=False),
        sa.Column("light", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_checkpoint", sa.String(length=7), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("checkpoint", "project_code", name="uq_warning_case"),
    )
    with op.batch_alter_table("warning_case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warning_case_unit_code"), ["unit_code"], unique=False)

    op.create_table(
        "web_user",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "case_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("measure_text", sa.Text(), nullable=False),
        sa.Column("expected_date", sa.Date(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["warning_case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_response", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_response_case_id"), ["case_id"], unique=False)

    op.create_table(
        "case_review",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["warning_case.id"],
        ),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["case_response.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_review_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_review_case_id"))

    op.drop_table("case_review")
    with op.batch_alter_table("case_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_response_case_id"))

    op.drop_table("case_response")
    op.drop_table("web_user")
    with op.batch_alter_table("warning_case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warning_case_unit_code"))

    op.drop_table("warning_case")
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempt_at"))

    op.drop_table("login_attempt")
