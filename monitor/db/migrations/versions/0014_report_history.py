"""History of reports: the earlier versions of project_report and indicator_report rows
(project_report_version, indicator_report_version), kept by the database itself when a later batch
changes a row's values (triggers on SQLite and PostgreSQL), and the last report_batch each run could
see (run.reports_upto: which version of every report the run used).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (its key columns, its value columns): a version is kept when a value changes
KEPT = {
    "project_report": (("checkpoint", "project_code"), ("executed", "forecast_executed")),
    "indicator_report": (
        ("checkpoint", "project_code", "indicator_code"),
        ("actual", "forecast", "possibility", "causes", "cause_text", "measures"),
    ),
}


def _columns(table: str) -> list[sa.Column[object]]:
    cols: list[sa.Column[object]] = [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.String(length=7), nullable=False),
        sa.Column("project_code", sa.String(length=21), nullable=False),
    ]
    if table == "project_report":
        cols += [
            sa.Column("executed", sa.BigInteger(), nullable=False),
            sa.Column("forecast_executed", sa.BigInteger(), nullable=True),
        ]
    else:
        cols.append(sa.Column("indicator_code", sa.String(length=32), nullable=False))
        cols += [sa.Column(n, sa.String(), nullable=True) for n in KEPT[table][1]]
    cols += [
        sa.Column("batch", sa.Integer(), nullable=True),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
    ]
    return cols


def _trigger_sql(dialect: str, table: str) -> list[str]:
    """AFTER UPDATE of a row whose values changed: its old values into {table}_version, replaced_by the
    new row's batch when the update set a different one."""
    keys, values = KEPT[table]
    names = [*keys, *values, "batch"]
    cols = ", ".join([*names, "replaced_by"])
    olds = ", ".join(f"OLD.{n}" for n in names)
    if dialect == "sqlite":
        changed = " OR ".join(f"OLD.{n} IS NOT NEW.{n}" for n in values)
        by = "CASE WHEN NEW.batch IS NOT OLD.batch THEN NEW.batch END"
        return [
            f"CREATE TRIGGER {table}_keep AFTER UPDATE ON {table} FOR EACH ROW WHEN {changed} BEGIN"
            f" INSERT INTO {table}_version ({cols}) VALUES ({olds}, {by}); END"
        ]
    changed = " OR ".join(f"OLD.{n} IS DISTINCT FROM NEW.{n}" for n in values)
    by = "CASE WHEN NEW.batch IS DISTINCT FROM OLD.batch THEN NEW.batch END"
    return [
        f"CREATE FUNCTION {table}_keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" INSERT INTO {table}_version ({cols}) VALUES ({olds}, {by}); RETURN NULL; END $$",
        f"CREATE TRIGGER {table}_keep AFTER UPDATE ON {table} FOR EACH ROW WHEN ({changed})"
        f" EXECUTE FUNCTION {table}_keep()",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in KEPT:
        op.create_table(f"{table}_version", *_columns(table), sa.PrimaryKeyConstraint("id"))
        op.create_index(f"ix_{table}_version_key", f"{table}_version", ["checkpoint", "project_code"])
        if dialect in ("sqlite", "postgresql"):
            for sql in _trigger_sql(dialect, table):
                op.execute(sql)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reports_upto", sa.Integer(), nullable=True))


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("reports_upto")
    for table in KEPT:
        if dialect in ("sqlite", "postgresql"):
            op.execute(
                f"DROP TRIGGER IF EXISTS {table}_keep" + (f" ON {table}" if dialect != "sqlite" else "")
            )
        if dialect == "postgresql":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_keep()")
        op.drop_index(f"ix_{table}_version_key", table_name=f"{table}_version")
        op.drop_table(f"{table}_version")
