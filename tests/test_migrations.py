"""Schema migrations on real databases (a SQLite file, or PostgreSQL via MONITOR_TEST_DATABASE_URL): an
empty database gets every table, an upgrade keeps rows, a pre-migration database is adopted (or refused
untouched), concurrent upgraders take turns, and the models never drift from the migrations."""

from __future__ import annotations

import datetime as dt
import json
import pprint
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from monitor.db import migrate
from monitor.db.engine import (
    INDICATOR,
    OUTBOX,
    OUTBOX_MESSAGE,
    PROJECT,
    PROJECT_REPORT,
    UNIT,
    create_schema,
    make_engine,
)
from monitor.db.results import save_rule_version

NOW = dt.datetime(2025, 5, 10, 8, 0, tzinfo=dt.UTC)
MODEL_TABLES = set(SQLModel.metadata.tables)
# An older pre-migration database lacks scheduled_event and service_event: adopting it must create them
# (and every table that later revisions add).
ALL_REVISIONS = migrate.pending(create_engine("sqlite://"))  # what an empty database needs
HEAD = ALL_REVISIONS[-1]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def schema_diff(engine: Engine) -> list[Any]:
    """What autogenerate would put in a new revision: the models against the database."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def add_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(UNIT), [{"code": "U1", "name": "财政局", "email": "a@example.org"}])
        conn.execute(
            insert(PROJECT),
            [
                {
                    "code": "P1",
                    "name": "道路养护",
                    "unit_code": "U1",
                    "budget": 12_345_678_901_234,
                    "carryover": 0,
                }
            ],
        )
        conn.execute(
            insert(INDICATOR),
            [
                {
                    "project_code": "P1",
                    "code": "I1",
                    "level1": "产出",
                    "level2": "数量",
                    "name": "养护里程",
                    "direction": ">=",
                    "target": "120",
                    "measure_unit": "公里",
                }
            ],
        )
        conn.execute(insert(PROJECT_REPORT), [{"checkpoint": "2025-05", "project_code": "P1", "executed": 5}])


def rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    tables = (UNIT, PROJECT, INDICATOR, PROJECT_REPORT)
    with engine.connect() as conn:
        # the columns revision 0001 had (report provenance, `batch`, came with 0013)
        return {
            t.name: [tuple(r) for r in conn.execute(select(*(c for c in t.c if c.name != "batch")))]
            for t in tables
        }


def test_upgrade_on_an_empty_database_creates_every_table_and_says_what_it_applied(engine: Engine) -> None:
    assert migrate.current(engine) is None
    todo = migrate.pending(engine)
    assert todo[0] == migrate.BASELINE

    assert migrate.upgrade(engine) == todo
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert migrate.current(engine) == todo[-1]
    assert migrate.pending(engine) == []


def test_upgrading_an_up_to_date_database_is_a_no_op(engine: Engine) -> None:
    migrate.upgrade(engine)
    add_rows(engine)
    before = rows(engine)

    assert migrate.upgrade(engine) == []
    create_schema(engine)
    assert rows(engine) == before


def test_the_models_and_the_migrations_describe_the_same_schema(engine: Engine) -> None:
    migrate.upgrade(engine)
    diff = schema_diff(engine)
    assert not diff, (
        "monitor/db/tables.py differs from the schema the migrations build; add a migration: "
        '`python -m monitor.db.migrate "what changed"` writes monitor/migrations/versions/NNNN_*.py from '
        "this difference (review it, then ruff format it):\n" + pprint.pformat(diff)
    )


def test_a_database_made_before_migrations_is_adopted_with_its_rows(engine: Engine) -> None:
    # As code before migrations made it: the tables of revision 0001 without the two newest of them
    # (revision 0004 added an index to outbox, so create_all of today's models is no longer that).
    migrate.upgrade(engine, "0001")
    with engine.begin() as conn:
        for name in ("alembic_version", "scheduled_event", "service_event"):
            conn.execute(text(f"DROP TABLE {name}"))
    add_rows(engine)
    before = rows(engine)

    applied = migrate.upgrade(engine)

    assert applied[0] == migrate.BASELINE
    assert rows(engine) == before
    assert table_names(engine) == MODEL_TABLES | {"alembic_version"}
    assert schema_diff(engine) == []


def test_a_pre_migration_database_whose_tables_differ_is_refused_and_left_untouched(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE unit (code VARCHAR(32) PRIMARY KEY, title VARCHAR)"))
        conn.execute(text("INSERT INTO unit (code, title) VALUES ('U1', 'kept')"))

    with pytest.raises(
        migrate.MigrationError, match=r"unit \(missing \['email', 'name', 'supervisor_code'\]"
    ):
        migrate.upgrade(engine)

    assert table_names(engine) == {"unit"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT code, title FROM unit")).all() == [("U1", "kept")]


def test_a_database_upgraded_by_a_newer_monitor_is_refused_with_a_clear_error(engine: Engine) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(migrate.MigrationError, match="newer monitor"):
        migrate.upgrade(engine)


THROWAWAY = '''
"""A later revision, for the test: widen project.name to TEXT (SQLite copies the table for that, with
indicator and project_report rows pointing at it) and add a column with a default."""
import sqlalchemy as sa
from alembic import op

revision = "later"
down_revision = "HEAD"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("project") as batch:
        batch.alter_column("name", type_=sa.Text(), existing_nullable=False)
        batch.add_column(sa.Column("note", sa.String(), nullable=False, server_default="none"))
    FAIL


def downgrade():
    pass
'''


def throwaway_revision(folder: Path, *, fail: bool) -> Path:
    folder.mkdir()
    body = THROWAWAY.replace("    FAIL\n", '    raise RuntimeError("half-way")\n' if fail else "")
    (folder / "later_throwaway.py").write_text(body.replace('"HEAD"', f'"{HEAD}"'), encoding="utf-8")
    return folder


def test_a_later_revision_changes_a_table_and_keeps_every_row(engine: Engine, tmp_path: Path) -> None:
    migrate.upgrade(engine)
    add_rows(engine)
    before = rows(engine)
    later = throwaway_revision(tmp_path / "later", fail=False)

    assert migrate.pending(engine, extra_versions=[later]) == ["later"]
    assert migrate.upgrade(engine, extra_versions=[later]) == ["later"]

    assert rows(engine) == before
    with engine.connect() as conn:
        assert conn.execute(text("SELECT code, note FROM project")).all() == [("P1", "none")]
    # Foreign keys are enforced again afterwards (SQLite has them switched off during the upgrade).
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(PROJECT_REPORT), [{"checkpoint": "2025-05", "project_code": "NOPE", "executed": 1}]
        )


def test_a_migration_that_fails_half_way_leaves_the_database_as_it_was(
    engine: Engine, tmp_path: Path
) -> None:
    migrate.upgrade(engine)
    add_rows(engine)
    before = rows(engine)
    broken = throwaway_revision(tmp_path / "broken", fail=True)

    with pytest.raises(RuntimeError, match="half-way"):
        migrate.upgrade(engine, extra_versions=[broken])

    assert migrate.current(engine) == HEAD
    assert rows(engine) == before
    assert "note" not in {c["name"] for c in inspect(engine).get_columns("project")}


def test_several_threads_upgrading_the_same_database_at_once_all_succeed(db_url: str) -> None:
    # The database exists already: make_engine switches a new SQLite file to WAL on first connect, and
    # connections racing to do that can fail with "database is locked" (not what this test is about).
    make_engine(db_url).connect().close()
    engines = [make_engine(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            barrier.wait()
            results.append(migrate.upgrade(engine))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    assert errors == []
    assert sorted(results, key=len) == [[], [], [], ALL_REVISIONS]
    assert schema_diff(engines[0]) == []
    for e in engines:
        e.dispose()


RACER = """
import json, sys, time
from pathlib import Path
from monitor.db import migrate
from monitor.db.engine import make_engine

url, folder, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
engine = make_engine(url)
(folder / f"ready-{me}").touch()
while not (folder / "go").exists():
    time.sleep(0.005)
print(json.dumps(migrate.upgrade(engine)))
"""


def test_several_processes_upgrading_the_same_database_at_once_all_succeed(
    db_url: str, tmp_path: Path
) -> None:
    # Separate processes, as separate service instances would be; they start upgrading together. The
    # database exists already, as in the test above.
    make_engine(db_url).connect().close()
    n = 4
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, db_url, str(tmp_path), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(n)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    outcomes = [p.communicate(timeout=60) for p in racers]

    assert [p.returncode for p in racers] == [0] * n, [err for _, err in outcomes]
    applied = sorted((json.loads(out) for out, _ in outcomes), key=len)
    assert applied == [[]] * (n - 1) + [ALL_REVISIONS]
    engine = make_engine(db_url)
    assert schema_diff(engine) == []
    engine.dispose()


def test_create_schema_runs_the_migrations(engine: Engine) -> None:
    create_schema(engine)
    assert migrate.current(engine) is not None and migrate.pending(engine) == []
    with engine.begin() as conn:
        save_rule_version(conn, "h" * 64, "rules: []", NOW)


def test_on_sqlite_the_tables_walked_in_key_order_are_clustered_on_their_keys_and_keep_their_rows(
    engine: Engine,
) -> None:
    """Revision 0005 rebuilds the input and result tables WITHOUT ROWID on SQLite (PostgreSQL: nothing)."""
    clustered = {
        t.name
        for t in SQLModel.metadata.tables.values()
        if t.dialect_options["sqlite"]["with_rowid"] is False
    }
    assert clustered == {
        "project",
        "indicator",
        "project_report",
        "indicator_report",
        "project_result",
        "indicator_result",
    }
    migrate.upgrade(engine, "0004")
    add_rows(engine)
    before = rows(engine)
    migrate.upgrade(engine)
    assert rows(engine) == before
    assert not schema_diff(engine)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            tables = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            ddl: dict[str, str] = dict(tables.all())
            indexes = {
                r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
            }
        assert {name for name, sql in ddl.items() if sql.rstrip().endswith("WITHOUT ROWID")} == clustered
        assert {"ix_project_unit_code", "ix_project_result_run_id", "ix_project_result_unit"} <= indexes
        assert "FOREIGN KEY(project_code) REFERENCES project (code)" in ddl["indicator"]


def test_outbox_messages_move_apart_from_their_rows_and_go_with_them(engine: Engine) -> None:
    """Revision 0006 moves each queued message into outbox_message; deleting a row deletes its message."""
    migrate.upgrade(engine, "0005")
    row = {
        "message_id": "<m1@x>",
        "checkpoint": "2025-05",
        "kind": "warning",
        "reason": "first",
        "unit_code": "U1",
        "recipients": "a@example.org",
        "subject": "预警",
        "raw": "Subject: =?utf-8?b?6aKE6K2m?=\r\n\r\nbody\r\n",
        "fingerprint": "f",
        "snapshot": "{}",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
    }
    with engine.begin() as conn:
        cols = ", ".join(row)
        conn.execute(text(f"INSERT INTO outbox ({cols}) VALUES ({', '.join(':' + k for k in row)})"), row)
    migrate.upgrade(engine)
    assert not schema_diff(engine)
    with engine.begin() as conn:
        got = conn.execute(select(OUTBOX.c.subject, OUTBOX_MESSAGE.c.raw).join(OUTBOX_MESSAGE)).all()
        assert [tuple(r) for r in got] == [("预警", row["raw"])]
        conn.execute(OUTBOX.delete())
        assert conn.execute(select(OUTBOX_MESSAGE)).all() == []


def test_on_postgresql_queued_messages_are_compressed_with_lz4(engine: Engine) -> None:
    """Revision 0016: pglz took a quarter of the database's time in queueing a national checkpoint."""
    migrate.upgrade(engine)
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        lz4 = conn.exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).scalar()
        method = conn.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'outbox_message'::regclass AND attname = 'raw'"
        ).scalar()
    assert method == ("l" if lz4 else "")
    assert not schema_diff(engine)
