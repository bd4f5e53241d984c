"""Results carry their reasons: the SQL form stores with each result the facts its reason is
formatted from (project_result.policy and carryover; indicator_result.policy, reported and the
possibility that forced red) and each run's policies as facts (run_policy), so readers format
reasons without evaluating again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_policy",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "id"),
    )
    with op.batch_alter_table("project_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("carryover", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("indicator_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("reported", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("possibility", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("indicator_result", schema=None) as batch_op:
        batch_op.drop_column("possibility")
        batch_op.drop_column("reported")
        batch_op.drop_column("policy")
    with op.batch_alter_table("project_result", schema=None) as batch_op:
        batch_op.drop_column("carryover")
        batch_op.drop_column("policy")
    op.drop_table("run_policy")
