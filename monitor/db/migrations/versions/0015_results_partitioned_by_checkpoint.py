"""PostgreSQL: project_result and indicator_result partitioned by LIST (checkpoint), one partition per
checkpoint in the schema result_parts plus a DEFAULT partition (monitor.db.partitions: a run swaps in its
checkpoint's fresh partitions). Existing results are moved into their checkpoints' partitions. SQLite:
nothing changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "result_parts"
KEYS = {
    "indicator_result": "checkpoint, project_code, indicator_code",
    "project_result": "checkpoint, project_code",
}
SECONDARY = {
    "project_result": [
        ("ix_project_result_run_id", "run_id"),
        ("ix_project_result_unit", "checkpoint, unit_code"),
    ],
    "indicator_result": [],
}


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, key in KEYS.items():
        old = f"{table}_unpartitioned"
        op.execute(f"ALTER TABLE {table} RENAME TO {old}")
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {old}_pkey")
        for index, _ in SECONDARY[table]:
            op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS) PARTITION BY LIST (checkpoint)")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
        for index, columns in SECONDARY[table]:
            op.execute(f"CREATE INDEX {index} ON {table} ({columns})")
        op.execute(f"CREATE TABLE {SCHEMA}.{table}_default PARTITION OF {table} DEFAULT")
        checkpoints = [r[0] for r in conn.exec_driver_sql(f"SELECT DISTINCT checkpoint FROM {old}")]
        for cp in checkpoints:
            if len(cp) == 7 and cp[:4].isdigit() and cp[4] == "-" and cp[5:].isdigit():
                name = f"{SCHEMA}.{table}_{cp[:4]}_{cp[5:]}"
                op.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES IN ('{cp}')")
        op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        op.execute(f"DROP TABLE {old}")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, key in KEYS.items():
        flat = f"{table}_flat"
        op.execute(f"CREATE TABLE {flat} (LIKE {table} INCLUDING DEFAULTS)")
        op.execute(f"INSERT INTO {flat} SELECT * FROM {table}")
        op.execute(f"DROP TABLE {table}")  # its partitions with it
        op.execute(f"ALTER TABLE {flat} RENAME TO {table}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
        for index, columns in SECONDARY[table]:
            op.execute(f"CREATE INDEX {index} ON {table} ({columns})")
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
