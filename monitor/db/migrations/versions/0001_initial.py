"""The initial schema: every table of monitor.db.tables as it stood when migrations began.

Revision ID: 0001
Revises:
Create Date: 2025-06-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money is BIGINT fen; SQLModel's UTCDateTime is written as DateTime(timezone=True), which it wraps.


def upgrade() -> None:
    # A database made before migrations existed (by SQLModel's create_all) may hold some of these tables
    # already: monitor.db.migrate has checked that their columns match, so only the missing ones are created.
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "unit" not in have:
        op.create_table(
            "unit",
            sa.Column("code", sa.String(length=32), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("email", sa.String(), nullable=False),
            sa.Column("supervisor_code", sa.String(length=32), nullable=True),
            sa.PrimaryKeyConstraint("code"),
        )
    if "project" not in have:
        op.create_table(
            "project",
            sa.Column("code", sa.String(length=21), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("unit_code", sa.String(length=32), nullable=False),
            sa.Column("budget", sa.BigInteger(), nullable=False),
            sa.Column("carryover", sa.BigInteger(), nullable=False),
            sa.Column("fund_flag", sa.String(), nullable=True),
            sa.Column("category", sa.String(), nullable=True),
            sa.Column("profile", sa.String(), nullable=True),
            sa.ForeignKeyConstraint(["unit_code"], ["unit.code"]),
            sa.PrimaryKeyConstraint("code"),
        )
        op.create_index("ix_project_unit_code", "project", ["unit_code"])
    if "indicator" not in have:
        op.create_table(
            "indicator",
            sa.Column("project_code", sa.String(length=21), nullable=False),
            sa.Column("code", sa.String(length=32), nullable=False),
            sa.Column("level1", sa.String(), nullable=False),
            sa.Column("level2", sa.String(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("direction", sa.String(), nullable=False),
            sa.Column("target", sa.String(), nullable=False),
            sa.Column("measure_unit", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=True),
            sa.Column("profile", sa.String(), nullable=True),
            sa.ForeignKeyConstraint(["project_code"], ["project.code"]),
            sa.PrimaryKeyConstraint("project_code", "code"),
        )
    if "project_report" not in have:
        op.create_table(
            "project_report",
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("project_code", sa.String(length=21), nullable=False),
            sa.Column("executed", sa.BigInteger(), nullable=False),
            sa.Column("forecast_executed", sa.BigInteger(), nullable=True),
            sa.ForeignKeyConstraint(["project_code"], ["project.code"]),
            sa.PrimaryKeyConstraint("checkpoint", "project_code"),
        )
    if "indicator_report" not in have:
        op.create_table(
            "indicator_report",
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("project_code", sa.String(length=21), nullable=False),
            sa.Column("indicator_code", sa.String(length=32), nullable=False),
            sa.Column("actual", sa.String(), nullable=True),
            sa.Column("forecast", sa.String(), nullable=True),
            sa.Column("possibility", sa.String(), nullable=True),
            sa.Column("causes", sa.String(), nullable=True),
            sa.Column("cause_text", sa.String(), nullable=True),
            sa.Column("measures", sa.String(), nullable=True),
            sa.PrimaryKeyConstraint("checkpoint", "project_code", "indicator_code"),
        )
    if "rule_version" not in have:
        op.create_table(
            "rule_version",
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("content", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("hash"),
        )
    if "run" not in have:
        op.create_table(
            "run",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("rules_hash", sa.String(length=64), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("projects", sa.Integer(), nullable=False),
            sa.Column("reported", sa.Integer(), nullable=False),
            sa.Column("green", sa.Integer(), nullable=False),
            sa.Column("yellow", sa.Integer(), nullable=False),
            sa.Column("red", sa.Integer(), nullable=False),
            sa.Column("not_reported", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_run_checkpoint", "run", ["checkpoint"])
    if "project_result" not in have:
        op.create_table(
            "project_result",
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("project_code", sa.String(length=21), nullable=False),
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("unit_code", sa.String(length=32), nullable=False),
            sa.Column("project_name", sa.String(), nullable=False),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("budget", sa.BigInteger(), nullable=False),
            sa.Column("executed", sa.BigInteger(), nullable=True),
            sa.Column("execution_rate", sa.Float(), nullable=True),
            sa.Column("time_progress", sa.Float(), nullable=False),
            sa.Column("budget_light", sa.String(), nullable=True),
            sa.Column("target_light", sa.String(), nullable=True),
            sa.Column("light", sa.String(), nullable=True),
            sa.Column("reasons", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("checkpoint", "project_code"),
        )
        op.create_index("ix_project_result_run_id", "project_result", ["run_id"])
        op.create_index("ix_project_result_unit", "project_result", ["checkpoint", "unit_code"])
    if "indicator_result" not in have:
        op.create_table(
            "indicator_result",
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("project_code", sa.String(length=21), nullable=False),
            sa.Column("indicator_code", sa.String(length=32), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("kind", sa.String(), nullable=False),
            sa.Column("light", sa.String(), nullable=False),
            sa.Column("ratio", sa.Float(), nullable=True),
            sa.Column("reason", sa.String(), nullable=False),
            sa.Column("target", sa.String(), nullable=False),
            sa.Column("actual", sa.String(), nullable=True),
            sa.Column("measure_unit", sa.String(), nullable=False),
            sa.Column("direction", sa.String(), nullable=False),
            sa.PrimaryKeyConstraint("checkpoint", "project_code", "indicator_code"),
        )
    if "outbox" not in have:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("message_id", sa.String(length=255), nullable=False),
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.String(length=16), nullable=False),
            sa.Column("unit_code", sa.String(length=32), nullable=True),
            sa.Column("recipients", sa.String(), nullable=False),
            sa.Column("subject", sa.String(), nullable=False),
            sa.Column("raw", sa.Text(), nullable=False),
            sa.Column("fingerprint", sa.String(length=64), nullable=False),
            sa.Column("snapshot", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=8), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("claimed_by", sa.String(), nullable=True),
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("message_id"),
        )
        op.create_index("ix_outbox_checkpoint", "outbox", ["checkpoint"])
        op.create_index("ix_outbox_status", "outbox", ["status"])
    if "delivery_attempt" not in have:
        op.create_table(
            "delivery_attempt",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("outbox_id", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("worker", sa.String(), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=False),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_delivery_attempt_outbox_id", "delivery_attempt", ["outbox_id"])
    if "scheduled_event" not in have:
        op.create_table(
            "scheduled_event",
            sa.Column("key", sa.String(length=64), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("checkpoint", sa.String(length=7), nullable=False),
            sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(length=16), nullable=False),
            sa.Column("owner", sa.String(length=128), nullable=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("late", sa.Boolean(), nullable=False),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("key"),
        )
    if "service_event" not in have:
        op.create_table(
            "service_event",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("ok", sa.Boolean(), nullable=False),
            sa.Column("instance", sa.String(length=128), nullable=False),
            sa.Column("rules_hash", sa.String(length=64), nullable=True),
            sa.Column("detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for name in (
        "service_event",
        "scheduled_event",
        "delivery_attempt",
        "outbox",
        "indicator_result",
        "project_result",
        "run",
        "rule_version",
        "indicator_report",
        "project_report",
        "indicator",
        "project",
        "unit",
    ):
        op.drop_table(name)
