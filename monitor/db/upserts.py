"""Imported rows into the database. In: validated records of an import (Batch, tuples in column
order). Out: rows upserted by primary key (ON CONFLICT DO UPDATE on SQLite and PostgreSQL, COPY into
a staging table on PostgreSQL, a portable fallback elsewhere), inside one import transaction; and the
codes already stored (KnownCodes), streamed, for checking a new batch's references.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from monitor.core.errors import MonitorError
from monitor.core.model import (
    Indicator,
    IndicatorReport,
    Project,
    ProjectReport,
    Unit,
)
from monitor.db.engine import INDICATOR, INDICATOR_REPORT, PROJECT, PROJECT_REPORT, UNIT

PROVENANCE = "batch"  # the report tables' column naming the report_batch that last wrote a row


def data_columns(tbl: Table) -> list[str]:
    """The columns a record holds: every column but the provenance, which the writer adds."""
    return [c.name for c in tbl.columns if c.name != PROVENANCE]


def upsert(conn: Connection, tbl: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, replacing rows with the same primary key (re-import is an upsert by code)."""
    names = data_columns(tbl)
    upsert_values(conn, tbl, [tuple(r[n] for n in names) for r in rows])


def _with_batch(tbl: Table, batch: int | None) -> int | None:
    return int(batch) if batch is not None and PROVENANCE in tbl.c else None


def _on_conflict(tbl: Table, batch: int | None = None, dialect: str = "sqlite") -> str:
    """ON CONFLICT (primary key) DO UPDATE of every other column (SQLite ≥ 3.24 and PostgreSQL alike),
    the provenance too when a batch writes it: then only rows whose values change, so a row names the
    batch that last changed it and a correction leaves one earlier version (migration 0014's trigger)."""
    keys = [c.name for c in tbl.primary_key.columns]
    values = [n for n in data_columns(tbl) if n not in keys]
    names = values + ([PROVENANCE] if batch is not None else [])
    sets = ", ".join(f"{n} = excluded.{n}" for n in names)
    upsert = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    if batch is None or not values:
        return upsert
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return upsert + " WHERE " + " OR ".join(f"{tbl.name}.{n} {differs} excluded.{n}" for n in values)


def _upsert_sql(conn: Connection, tbl: Table, batch: int | None = None) -> str:
    """INSERT … VALUES … ON CONFLICT DO UPDATE, in the driver's paramstyle; the batch, a constant of
    the statement (no per-row cost), where one is given."""
    names = data_columns(tbl)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    values = ", ".join([mark] * len(names))
    if batch is not None:
        names, values = [*names, PROVENANCE], f"{values}, {batch}"
    conflict = _on_conflict(tbl, batch, conn.dialect.name)
    return f"INSERT INTO {tbl.name} ({', '.join(names)}) VALUES ({values}) {conflict}"


def upsert_values(
    conn: Connection, tbl: Table, rows: Sequence[tuple[Any, ...]], batch: int | None = None
) -> None:
    """`upsert` of plain tuples in the table's column order: one driver-level executemany, no
    per-row parameter objects (the import's bulk path). `batch`: the report_batch writing them."""
    if not rows:
        return
    batch = _with_batch(tbl, batch)
    if conn.dialect.name in ("sqlite", "postgresql"):
        conn.exec_driver_sql(_upsert_sql(conn, tbl, batch), list(rows))
        return
    # Portable fallback: update what exists, insert the rest.
    names = data_columns(tbl)
    keys = [c.name for c in tbl.primary_key.columns]
    others = [n for n in names if n not in keys]
    at = [names.index(k) for k in keys]
    existing = {tuple(r) for r in conn.execute(select(*[tbl.c[k] for k in keys]))}
    new = [dict(zip(names, r, strict=True)) for r in rows if tuple(r[i] for i in at) not in existing]
    old = [dict(zip(names, r, strict=True)) for r in rows if tuple(r[i] for i in at) in existing]
    if new:
        conn.execute(insert(tbl), new)
    if old:
        from sqlalchemy import bindparam

        where = [tbl.c[k] == bindparam(f"k_{k}") for k in keys]
        stmt2 = update(tbl).where(*where).values({n: bindparam(f"v_{n}") for n in others})
        conn.execute(
            stmt2, [{**{f"k_{k}": r[k] for k in keys}, **{f"v_{n}": r[n] for n in others}} for r in old]
        )


# --- imported data ----------------------------------------------------------------------------


@dataclass
class Batch:
    """Everything one import read, already parsed and validated, in dependency order."""

    units: list[Unit] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    indicators: list[Indicator] = field(default_factory=list)
    project_reports: list[ProjectReport] = field(default_factory=list)
    indicator_reports: list[IndicatorReport] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "units": len(self.units),
            "projects": len(self.projects),
            "indicators": len(self.indicators),
            "project_reports": len(self.project_reports),
            "indicator_reports": len(self.indicator_reports),
        }


def _unit_record(u: Unit) -> tuple[Any, ...]:
    return (u.code, u.name, ";".join(u.emails), u.supervisor_code)


def _indicator_record(i: Indicator) -> tuple[Any, ...]:
    kind = i.kind.value if i.kind else None
    return (i.project_code, i.code, i.level1, i.level2, i.name, i.direction.value, i.target, i.measure_unit,
            kind, i.profile)  # fmt: skip


# kind of imported record -> its table, and a model object -> the row stored (values in column order)
IMPORT_TABLES: dict[str, Table] = {
    "units": UNIT,
    "projects": PROJECT,
    "indicators": INDICATOR,
    "project_reports": PROJECT_REPORT,
    "indicator_reports": INDICATOR_REPORT,
}
RECORD: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "units": _unit_record,
    "projects": attrgetter(*(c.name for c in PROJECT.columns)),  # Project's fields are the columns
    "indicators": _indicator_record,
    "project_reports": attrgetter(*data_columns(PROJECT_REPORT)),
    "indicator_reports": attrgetter(*data_columns(INDICATOR_REPORT)),
}

SQLITE_IMPORT_CACHE_KIB = 128 * 1024  # SQLite's page cache while importing (its default: 2 MiB)


@contextmanager
def large_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a 128 MiB page cache for the length of the block, for the database and for its
    temporary tables and sorts alike (bulk writes into large indexes, joins against large temporary
    tables: with the default 2 MiB most inserts or lookups evict a page); elsewhere nothing."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = [conn.exec_driver_sql(f"PRAGMA {db}.cache_size").scalar_one() for db in ("main", "temp")]
    for db in ("main", "temp"):
        conn.exec_driver_sql(f"PRAGMA {db}.cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        with suppress(SQLAlchemyError):  # a broken connection: the error that broke it matters
            for db, size in zip(("main", "temp"), before, strict=True):
                conn.exec_driver_sql(f"PRAGMA {db}.cache_size = {int(size)}")


class DanglingReferences(MonitorError):
    """An import would have left rows referring to rows that do not exist (nothing was written)."""


@contextmanager
def import_transaction(engine: Engine, check_at_end: bool = False) -> Iterator[Connection]:
    """The one transaction of an import. `check_at_end` (SQLite): the foreign keys are checked once,
    table by table in key order, before committing, instead of at every insert. Units report in no
    key order, so checking each row as it is inserted is a random lookup into a table that outgrows
    the page cache at national size (a first load of 1M projects: a tenth of its time); the check at
    the end reads every row of every table, so it is for loading an empty database. The importer has
    checked every reference itself already: this is the database agreeing. A dangling reference rolls
    everything back. PostgreSQL: the foreign keys among the input tables are dropped in the transaction
    and added back before it commits (one set-based check each), unless a reader holds the tables past
    KEYS_WAIT: each indicator row's check locked its project (1.78M indicators: 19.7 s with the key,
    6.5 s without). Otherwise, and elsewhere: engine.begin()."""
    if engine.dialect.name == "postgresql" and check_at_end:
        with engine.begin() as conn:
            dropped = _drop_keys(conn)
            conn.info[EMPTY_TABLES] = _empty_tables(conn) if dropped else frozenset()
            try:
                yield conn
            finally:
                conn.info.pop(EMPTY_TABLES, None)
            _add_keys(conn, dropped)
        return
    if engine.dialect.name != "sqlite" or not check_at_end:
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction
        conn.commit()
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchmany(5)
                if broken:
                    raise DanglingReferences(
                        f"the import would leave rows referring to missing rows: {broken}"
                    )
        finally:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


KEYS_WAIT = "3s"  # how long a first load waits for readers of the input tables before keeping the keys
EMPTY_TABLES = "monitor.empty_input_tables"  # conn.info: input tables a first load COPYs straight into


def _empty_tables(conn: Connection) -> frozenset[str]:
    """PostgreSQL, a first load holding the input tables against other writers (_drop_keys): those
    with no row yet. Nothing but this import can write into them until it commits, and an import
    never writes a key twice (a duplicate is a problem: nothing more is written), so its rows are
    COPYed into them directly, with neither a staging table nor ON CONFLICT."""
    return frozenset(
        t.name
        for t in IMPORT_TABLES.values()
        if conn.exec_driver_sql(f"SELECT NOT EXISTS (SELECT FROM {t.name})").scalar_one()
    )


def _drop_keys(conn: Connection) -> list[tuple[str, str, str]]:
    """PostgreSQL: drop the foreign keys among the input tables in the caller's transaction; returns
    (table, name, definition) of each, or [] (nothing dropped) if a reader held a table past KEYS_WAIT
    or the role may not alter them."""
    names = ", ".join(f"'{t.name}'" for t in IMPORT_TABLES.values())
    keys = [
        (r[0], r[1], r[2])
        for r in conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            f" WHERE contype = 'f' AND conrelid::regclass::text IN ({names})"
            f" AND confrelid::regclass::text IN ({names}) ORDER BY 1, 2"
        )
    ]
    wait = conn.exec_driver_sql("SELECT current_setting('lock_timeout')").scalar_one()
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{KEYS_WAIT}'")
            for tbl in IMPORT_TABLES.values():  # no other writer until this import commits
                conn.exec_driver_sql(f"LOCK TABLE {tbl.name} IN SHARE ROW EXCLUSIVE MODE")
            for table, name, _ in keys:
                conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    except (OperationalError, ProgrammingError) as exc:
        # lock_not_available; insufficient_privilege (the tables owned by another role, the migrations')
        if getattr(exc.orig, "sqlstate", None) not in ("55P03", "42501"):
            raise
        return []
    finally:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{wait}'")
    return keys


def _add_keys(conn: Connection, keys: list[tuple[str, str, str]]) -> None:
    """Add back the keys _drop_keys dropped, each checking every row at once."""
    for table, name, definition in keys:
        try:
            conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        except IntegrityError as exc:
            detail = getattr(getattr(exc.orig, "diag", None), "message_detail", None) or str(exc.orig)
            missing = f"the import would leave rows referring to missing rows: {detail}"
            raise DanglingReferences(missing) from exc


def is_empty(engine: Engine) -> bool:
    """No project stored yet (a first load)."""
    with engine.connect() as conn:
        return conn.execute(select(PROJECT.c.code).limit(1)).first() is None


@contextmanager
def bulk_upsert(
    conn: Connection, batch: int | None = None
) -> Iterator[Callable[[str, Sequence[tuple[Any, ...]]], None]]:
    """`write(kind, records)` upserting imported records (tuples in column order, no key twice in
    one call) into the caller's transaction, for the length of the block. PostgreSQL: COPY into a
    temporary table, then one INSERT … SELECT … ON CONFLICT (about 40% faster than executemany); a
    first load's empty tables (import_transaction) take the COPY directly.
    SQLite: executemany, with a larger page cache meanwhile: reports arrive in no key order, and
    with the default cache most inserts into a large primary-key index evict a page to the WAL
    (at 1,000,000 projects the import takes a fifth less time)."""
    if conn.dialect.name == "sqlite":
        with large_cache(conn):
            yield lambda kind, records: upsert_values(conn, IMPORT_TABLES[kind], records, batch)
        return
    if conn.dialect.name != "postgresql":
        yield lambda kind, records: upsert_values(conn, IMPORT_TABLES[kind], records, batch)
        return
    staged: set[str] = set()
    empty = conn.info.get(EMPTY_TABLES, frozenset())

    def write(kind: str, records: Sequence[tuple[Any, ...]]) -> None:
        tbl = IMPORT_TABLES[kind]
        if not records:
            return
        if tbl.name in empty:
            _copy_into(conn, tbl, records, batch)
        else:
            _copy_upsert(conn, tbl, records, staged, batch)

    yield write


def _copy_upsert(
    conn: Connection, tbl: Table, rows: Sequence[tuple[Any, ...]], staged: set[str], batch: int | None = None
) -> None:
    names, stage = ", ".join(data_columns(tbl)), f"import_{tbl.name}"
    batch = _with_batch(tbl, batch)
    into, picked = (f"{names}, {PROVENANCE}", f"{names}, {batch}") if batch is not None else (names, names)
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        if stage not in staged:  # dropped with the transaction, committed or not
            cur.execute(f"CREATE TEMPORARY TABLE {stage} (LIKE {tbl.name} INCLUDING DEFAULTS) ON COMMIT DROP")
            staged.add(stage)
        _copy(cur, stage, names, rows)
        cur.execute(
            f"INSERT INTO {tbl.name} ({into}) SELECT {picked} FROM {stage}"
            f" {_on_conflict(tbl, batch, 'postgresql')}"
        )
        cur.execute(f"TRUNCATE {stage}")


def _copy_into(conn: Connection, tbl: Table, rows: Sequence[tuple[Any, ...]], batch: int | None) -> None:
    """COPY `rows` straight into `tbl` (a first load's empty table: see _empty_tables)."""
    batch = _with_batch(tbl, batch)
    names = ", ".join(data_columns(tbl) + ([PROVENANCE] if batch is not None else []))
    with conn.connection.driver_connection.cursor() as cur:  # type: ignore[union-attr]
        _copy(cur, tbl.name, names, rows, () if batch is None else (batch,))


def _copy(
    cur: Any, table: str, names: str, rows: Sequence[tuple[Any, ...]], tail: tuple[Any, ...] = ()
) -> None:
    """COPY `rows` (each followed by the values `tail`) into the columns `names` of `table`."""
    with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, *tail) if tail else row)


@dataclass(frozen=True)
class KnownCodes:
    """Codes already in the database, for validating references in a new batch."""

    units: frozenset[str]
    projects: Mapping[str, tuple[int, int]]  # code -> (budget, carryover)
    indicators: frozenset[tuple[str, str]]


def _stream(conn: Connection, query: Any) -> Iterator[Any]:
    """Rows of `query`, fetched a batch at a time (on the statement: Connection.execution_options
    would switch the whole connection to server-side cursors, where executemany is not supported)."""
    return iter(conn.execute(query.execution_options(yield_per=20_000)))


def known_unit_codes(conn: Connection) -> Iterator[str]:
    """Unit codes in the database, streamed."""
    return (r[0] for r in _stream(conn, select(UNIT.c.code)))


def known_project_budgets(conn: Connection) -> Iterator[tuple[str, int, int]]:
    """(code, budget, carry-over) of every project in the database, streamed."""
    query = select(PROJECT.c.code, PROJECT.c.budget, PROJECT.c.carryover)
    return ((r[0], r[1], r[2]) for r in _stream(conn, query))


def known_indicator_codes(conn: Connection) -> Iterator[tuple[str, str]]:
    """(project code, indicator code) of every indicator in the database, streamed."""
    return ((r[0], r[1]) for r in _stream(conn, select(INDICATOR.c.project_code, INDICATOR.c.code)))
