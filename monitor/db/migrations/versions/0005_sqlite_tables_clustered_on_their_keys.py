"""On SQLite, the input and result tables clustered on their primary keys (WITHOUT ROWID).

A rowid table with a text primary key is two B-trees: the rows in insertion order and an index on the
key. Units report in no key order, so the evaluation, which walks projects and indicators in key
order, read both at random: at a million projects most lookups missed the page cache (a checkpoint
took 109 s). Clustered on the key, the walk is sequential (47 s) and each write touches one tree.
PostgreSQL has no such option and is left as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("project", "indicator", "project_report", "indicator_report", "project_result", "indicator_result")


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TABLES:  # a copy of the table, its rows, indexes and foreign keys (migrate.py checks them)
        with op.batch_alter_table(name, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)
