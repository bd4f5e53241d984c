"""PostgreSQL: the results of each checkpoint in a partition of their own (project_result and
indicator_result are partitioned by LIST (checkpoint), migration 0015; the partitions live in the schema
`result_parts`, a DEFAULT partition catches any checkpoint without one). A run writes its checkpoint's
results into fresh tables without indexes (`fresh`), then builds their keys once, sorted, and swaps them
in at the end of its transaction (`swap`): no row is deleted and written again (a table emptied by DELETE
and refilled with the same keys costs PostgreSQL three times the writing: every unique-index insert
visits the dead row, and the heap bloats), readers see the previous results until the commit, and years
of history sit in partitions of their own that the current checkpoint's statements never touch. SQLite
keeps its single tables (clustered on their keys, deleted and written in one transaction)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

SCHEMA = "result_parts"
TABLES = ("indicator_result", "project_result")
# the indexes each partition carries, as the partitioned tables declare them (tables.py)
INDEXES = {
    "indicator_result": ["PRIMARY KEY (checkpoint, project_code, indicator_code)"],
    "project_result": ["PRIMARY KEY (checkpoint, project_code)"],
}
SECONDARY = {"project_result": ["(run_id)", "(checkpoint, unit_code)"], "indicator_result": []}
CHECKPOINT = re.compile(r"^\d{4}-\d{2}$")


def partition_name(table: str, checkpoint: str) -> str:
    if not CHECKPOINT.match(checkpoint):  # a name made of it: never anything but YYYY-MM
        raise ValueError(f"not a checkpoint: {checkpoint!r}")
    return f"{table}_{checkpoint[:4]}_{checkpoint[5:]}"


def partitioned(conn: Connection) -> bool:
    """Whether this database keeps results in partitions (PostgreSQL, migrated to 0015)."""
    if conn.dialect.name != "postgresql":
        return False
    q = "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'indicator_result'::regclass"
    return bool(conn.exec_driver_sql(q).scalar())


def ensure(conn: Connection, checkpoint: str) -> None:
    """The checkpoint's partitions exist (empty if new), so that its results never land in the DEFAULT
    partition, which every ATTACH scans: call before writing results by any other way than a run's swap
    (the pure core's chunks, a restored archive). Nothing on SQLite."""
    if not partitioned(conn):
        return
    for table in TABLES:
        name = f"{SCHEMA}.{partition_name(table, checkpoint)}"
        if conn.exec_driver_sql(f"SELECT to_regclass('{name}')").scalar() is not None:
            continue
        try:  # making a partition waits for the readers of the table; past LOCK_WAIT: the DEFAULT's
            with conn.begin_nested():
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                conn.exec_driver_sql(
                    f"DELETE FROM {SCHEMA}.{table}_default WHERE checkpoint = '{checkpoint}'"
                )
                conn.exec_driver_sql(
                    f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES IN ('{checkpoint}')"
                )
        except DBAPIError as exc:
            if not _waited_too_long(exc):
                raise
        finally:
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")


def drop_empty_before(conn: Connection, year: int) -> list[str]:
    """Drop the result partitions of checkpoints before `year` that hold no row any more (their rows
    archived: db.archive); returns their names. Nothing on SQLite."""
    if not partitioned(conn):
        return []
    q = (
        "SELECT c.relname, p.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent"
        " JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE n.nspname = '{SCHEMA}' AND p.relname IN ('indicator_result', 'project_result')"
    )
    dropped = []
    for name, table in conn.exec_driver_sql(q).all():
        m = re.fullmatch(rf"{table}_(\d{{4}})_\d{{2}}", name)
        if m is None or int(m.group(1)) >= year:
            continue
        if conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.{name})").scalar():
            continue
        conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {SCHEMA}.{name}")
        conn.exec_driver_sql(f"DROP TABLE {SCHEMA}.{name}")
        dropped.append(name)
    return dropped


@dataclass(frozen=True)
class Fresh:
    """The fresh tables a run writes its checkpoint's results into (schema-qualified)."""

    indicators: str
    projects: str


def fresh(conn: Connection, checkpoint: str, run_id: int) -> Fresh:
    """The names of two fresh tables for the results; the project one made empty, shaped like the
    results, without indexes (they are built once, sorted); the indicator one left to `create_as`."""
    names = {t: f"{SCHEMA}.{partition_name(t, checkpoint)}_run{int(run_id)}" for t in TABLES}
    conn.exec_driver_sql(f"CREATE TABLE {names['project_result']} (LIKE project_result INCLUDING DEFAULTS)")
    return Fresh(names["indicator_result"], names["project_result"])


def _columns(conn: Connection, table: str) -> list[tuple[str, str, bool]]:
    """(name, type, not null) of each column of `table`, in order."""
    q = (
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute"
        f" WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
    )
    return [(r[0], r[1], bool(r[2])) for r in conn.exec_driver_sql(q)]


def create_as(conn: Connection, table: str, name: str, columns: str, select: str) -> str:
    """The CREATE TABLE `name` AS statement of `select` (whose columns are `columns`, every column of
    `table`): each cast to `table`'s type, so that the new table can become its partition (shaped).
    The casts never cut a text: the statements select codes from columns of the same lengths."""
    given = [c.strip() for c in columns.split(",")]
    have = _columns(conn, table)
    if sorted(given) != sorted(c for c, _, _ in have):
        raise ValueError(f"{table} has the columns {[c for c, _, _ in have]}, not {given}")
    casts = ", ".join(f"CAST(s.{c} AS {kind}) AS {c}" for c, kind, _ in have)
    return f"CREATE TABLE {name} AS SELECT {casts} FROM ({select}) AS s ({', '.join(given)})"


def shaped(conn: Connection, table: str, name: str) -> None:
    """The NOT NULL of `table`'s columns on `name` (made by create_as): a partition must have them."""
    required = [c for c, _, not_null in _columns(conn, table) if not_null]
    alters = ", ".join(f"ALTER COLUMN {c} SET NOT NULL" for c in required)
    conn.exec_driver_sql(f"ALTER TABLE {name} {alters}")


def _index(conn: Connection, table: str, name: str) -> None:
    for key in INDEXES[table]:
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD {key}")
    for columns in SECONDARY[table]:
        conn.exec_driver_sql(f"CREATE INDEX ON {name} {columns}")


# how long a swap waits for readers holding the results (the board, a report being written, a composing
# worker) before it writes the rows into the partition in place instead: never a run blocked for good
LOCK_WAIT = "3s"


def _waited_too_long(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "55P03"  # lock_not_available


def swap(conn: Connection, checkpoint: str, tables: Fresh) -> None:
    """The fresh tables become the checkpoint's partitions; the previous ones are dropped (and any rows
    of the checkpoint left in the DEFAULT partition deleted). In the run's transaction: until it
    commits, readers see the previous results. Detaching a partition waits for every reader of the
    results; if one holds them longer than LOCK_WAIT (an open transaction: maybe the caller's own), the
    rows are moved into the checkpoint's partition in place (deleted and inserted: slower, same result)."""
    _index(conn, "indicator_result", tables.indicators)
    _index(conn, "project_result", tables.projects)
    for table, name in (("indicator_result", tables.indicators), ("project_result", tables.projects)):
        final = partition_name(table, checkpoint)
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                _attach(conn, table, name, checkpoint, final)
        except DBAPIError as exc:
            if not _waited_too_long(exc):
                raise
            _move_in_place(conn, table, name, checkpoint)
        finally:
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")


def analyze_unread(conn: Connection, checkpoint: str) -> list[str]:
    """ANALYZE the checkpoint's result partitions if they have no column statistics yet (a run's fresh
    tables, swapped in a moment ago; autovacuum comes to them a minute or so later). The reader that
    comes first (a run's queueing) pays it once, 0.5 s at 100k projects: without them the planner
    hash-joins whole input tables to each 500 projects' results (the reasons' change check: 0.23-0.42 s
    a batch, 19-36 s of 61-81 s of queueing 100k projects). Returns the partitions analyzed."""
    if not partitioned(conn):
        return []
    todo = []
    for table in TABLES:
        name = partition_name(table, checkpoint)
        exists = conn.exec_driver_sql(f"SELECT to_regclass('{SCHEMA}.{name}')").scalar() is not None
        analyzed = conn.exec_driver_sql(
            f"SELECT 1 FROM pg_stats WHERE schemaname = '{SCHEMA}' AND tablename = '{name}' LIMIT 1"
        ).scalar()
        if exists and not analyzed:
            todo.append(f"{SCHEMA}.{name}")
    if todo:
        conn.exec_driver_sql("ANALYZE " + ", ".join(todo))
    return todo


def analyze_unread_committed(engine: Engine, conn: Connection, checkpoint: str) -> list[str]:
    """analyze_unread in a transaction of its own, committed before `conn`'s goes on: statistics are
    rows of pg_statistic, seen by other transactions only once committed, and the queueing's composing
    worker processes read the results in transactions of their own while the writer's stays open to
    the end (analyzed in it, the workers planned without them: queueing 300k projects 190 s, 58 s
    with them). If `conn`'s transaction holds the partitions (it wrote them itself), waiting for it
    would never end: past LOCK_WAIT they are analyzed in `conn`'s transaction, as before."""
    if not partitioned(conn):
        return []
    try:
        with engine.begin() as own:
            own.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            return analyze_unread(own, checkpoint)
    except DBAPIError as exc:
        if not _waited_too_long(exc):
            raise
        return analyze_unread(conn, checkpoint)


def _attach(conn: Connection, table: str, name: str, checkpoint: str, final: str) -> None:
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD CONSTRAINT {final}_cp CHECK (checkpoint = '{checkpoint}')")
    old = conn.exec_driver_sql(f"SELECT to_regclass('{SCHEMA}.{final}')").scalar()
    if old is not None:
        conn.exec_driver_sql(f"ALTER TABLE {table} DETACH PARTITION {SCHEMA}.{final}")
        conn.exec_driver_sql(f"DROP TABLE {SCHEMA}.{final}")
    conn.exec_driver_sql(f"DELETE FROM {SCHEMA}.{table}_default WHERE checkpoint = '{checkpoint}'")
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES IN ('{checkpoint}')")
    conn.exec_driver_sql(f"ALTER TABLE {name} RENAME TO {final}")


def _move_in_place(conn: Connection, table: str, name: str, checkpoint: str) -> None:
    """The fresh rows into the parent (its partition for the checkpoint, or the DEFAULT if making one
    must wait too) in place of the checkpoint's rows; the fresh table dropped. Readers are not waited
    for: row writes take no lock a reader holds."""
    conn.exec_driver_sql(f"DELETE FROM {table} WHERE checkpoint = '{checkpoint}'")
    conn.exec_driver_sql(f"INSERT INTO {table} SELECT * FROM {name}")
    conn.exec_driver_sql(f"DROP TABLE {name}")
