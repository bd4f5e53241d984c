"""A first load into an empty database (the national import of a year's projects) checks the foreign
keys once at its end, not row by row, on PostgreSQL as on SQLite (tests/test_import.py). On PostgreSQL
each indicator row's check locked its project (FOR KEY SHARE): two thirds of the indicators' insert
(1.78M rows: 19.7 s with the key, 6.5 s without). The keys among the input tables are dropped in the
import's transaction and added back before it commits, which checks every row in one pass."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError
from test_web import cli, make

from monitor.db.engine import INDICATOR, UNIT
from monitor.db.upserts import DanglingReferences, import_transaction
from monitor.ingest.importer import import_paths

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
KEYS = (
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE contype = 'f' AND conrelid::regclass::text IN ('project', 'indicator', 'project_report')"
    " ORDER BY 1, 2"
)
ORPHAN = {"project_code": "NOPE", "code": "I1", "level1": "产出", "level2": "数量", "name": "n"}
TABLES = ("unit", "project", "indicator", "project_report", "indicator_report")
ORPHAN |= {"direction": "≥", "target": "1", "measure_unit": ""}


def _keys(conn: Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(text(KEYS))]


def test_a_first_load_checks_the_keys_at_its_end_and_keeps_them(workdir: Path) -> None:
    app, _ = make(workdir)
    if app.engine.dialect.name != "postgresql":  # SQLite: its foreign keys off until the check at the end
        with import_transaction(app.engine, check_at_end=True) as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 0
        assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
        with pytest.raises(IntegrityError), app.engine.begin() as conn:
            conn.execute(insert(INDICATOR), [ORPHAN])
        return
    with app.engine.connect() as conn:
        before = _keys(conn)
    assert [k[1] for k in before] == [
        "indicator_project_code_fkey",
        "project_unit_code_fkey",
        "project_report_project_code_fkey",
    ]
    seen: list[list[tuple[Any, ...]]] = []
    with import_transaction(app.engine, check_at_end=True) as conn:
        seen.append(_keys(conn))  # what the import's own inserts are checked against
    assert seen == [[]]
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0  # the first load, as operators run it
    with app.engine.connect() as conn:
        assert _keys(conn) == before  # the same keys, by name and definition
    with pytest.raises(IntegrityError), app.engine.begin() as conn:
        conn.execute(insert(INDICATOR), [ORPHAN])  # and they hold


def test_a_dangling_reference_in_a_first_load_is_refused_with_nothing_written(workdir: Path) -> None:
    app, _ = make(workdir)
    unit = {"code": "U1", "name": "财政局", "email": "a@example.org"}
    with pytest.raises(DanglingReferences), import_transaction(app.engine, check_at_end=True) as conn:
        conn.execute(insert(UNIT), [unit])
        conn.execute(insert(INDICATOR), [ORPHAN])
    with app.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 0
        if app.engine.dialect.name == "postgresql":
            assert len(_keys(conn)) == 3


def test_a_first_load_while_the_tables_are_read_keeps_checking_row_by_row(workdir: Path) -> None:
    """Dropping a key waits for every reader of its tables (the board open on an empty database):
    past a few seconds the load goes on with the keys checked per row instead of waiting for them."""
    app, _ = make(workdir)
    if app.engine.dialect.name != "postgresql":  # one writer at a time: no reader to wait for
        return
    reading, done = threading.Event(), threading.Event()

    def reader() -> None:
        with app.engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT count(*) FROM project")).scalar_one()
            reading.set()
            done.wait(60)

    held = threading.Thread(target=reader)
    held.start()
    try:
        assert reading.wait(10)
        with import_transaction(app.engine, check_at_end=True) as conn:
            assert len(_keys(conn)) == 3  # kept: checked row by row
            conn.execute(insert(UNIT), [{"code": "U1", "name": "财政局", "email": "a@example.org"}])
    finally:
        done.set()
        held.join()
    with app.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 1


STAGED = "SELECT relname FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'import\\_%' ORDER BY 1"


def test_a_first_load_copies_straight_into_the_empty_tables(workdir: Path) -> None:
    """PostgreSQL: a first load holds the input tables against other writers and never writes a key
    twice, so its rows are COPYed into them directly (no staging table, no ON CONFLICT); a later
    import upserts through staging tables as before. The rows are the same either way, the reports'
    provenance (their report_batch) included."""
    app, _ = make(workdir)
    if app.engine.dialect.name != "postgresql":
        return
    staged: list[list[str]] = []

    def peek(conn: Connection) -> None:  # in the import's transaction, after its writes
        staged.append([r[0] for r in conn.execute(text(STAGED))])

    first = import_paths(app.engine, [EXAMPLES], also=peek)
    rows = "SELECT project_code, checkpoint, batch FROM project_report ORDER BY 1, 2"
    with app.engine.connect() as conn:
        loaded = [tuple(r) for r in conn.execute(text(rows))]
        counts = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    assert staged == [[]]  # nothing staged: straight into the tables
    assert loaded and all(r[2] is not None for r in loaded)  # each report names its batch
    assert counts == {"unit": first["units"], "project": first["projects"], "indicator": first["indicators"],
                      "project_report": first["project_reports"],
                      "indicator_report": first["indicator_reports"]}  # fmt: skip
    again = import_paths(app.engine, [EXAMPLES], also=peek)  # no longer a first load: upserted
    assert again == first
    assert staged[1] == ["import_indicator", "import_indicator_report", "import_project",
                         "import_project_report", "import_unit"]  # fmt: skip
    with app.engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(rows))] == loaded  # unchanged: the same batch
        assert {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES} == counts


def test_no_other_writer_gets_into_the_tables_a_first_load_fills(workdir: Path) -> None:
    """What makes the direct COPY safe: until the first load commits, another writer of an input table
    waits (here: gives up after its lock timeout), readers of the tables it does not alter do not."""
    app, _ = make(workdir)
    if app.engine.dialect.name != "postgresql":
        return
    with import_transaction(app.engine, check_at_end=True) as conn:
        conn.execute(insert(UNIT), [{"code": "U1", "name": "财政局", "email": "a@example.org"}])
        with app.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '500ms'")
            assert other.exec_driver_sql("SELECT count(*) FROM indicator_report").scalar_one() == 0
            with pytest.raises(OperationalError, match="lock timeout"):
                other.exec_driver_sql(
                    "INSERT INTO indicator_report (checkpoint, project_code, indicator_code, actual)"
                    " VALUES ('2025-05', 'P1', 'I1', '1')"
                )
