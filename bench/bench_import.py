"""Import throughput: CSV files → database with `monitor.ingest.importer.import_paths` (parse, validate every
row and reference, upsert in one transaction), next to a reference measured in the same run on the
same rows: a bare driver-level executemany of the rows already parsed into tuples (csv.reader and the
amount conversion happen before the clock starts), into a fresh database with the same schema.
Every timed run gets a fresh database; each import runs in its own process, so its peak memory is
its own. Prints medians of --repeat runs, rows/s, indicator rows/s and the ratio; on SQLite also the
reference with the page cache the import sets for itself, on PostgreSQL (where the import writes
with COPY) a bare COPY of the same tuples, the database's own limit.

    .venv/bin/python bench/bench_import.py [--projects 100000] [--repeat 3] [--database-url URL]

With --database-url postgresql+psycopg://…, each run creates (and drops) a database of its own next to
the one named, so the user needs CREATEDB.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import queue
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text

from monitor.db.engine import (
    INDICATOR,
    INDICATOR_REPORT,
    PROJECT,
    PROJECT_REPORT,
    UNIT,
    create_schema,
    make_engine,
)
from monitor.db.upserts import SQLITE_IMPORT_CACHE_KIB, data_columns
from monitor.tools.sample import write_sample

KINDS = ("units", "projects", "indicators", "project_reports", "indicator_reports")
TABLES = {
    "units": UNIT,
    "projects": PROJECT,
    "indicators": INDICATOR,
    "project_reports": PROJECT_REPORT,
    "indicator_reports": INDICATOR_REPORT,
}
AMOUNTS = {"projects": {3: False, 4: True}, "project_reports": {2: False, 3: True}}  # index -> blank is 0?


def _fen(text: str) -> int:
    return int(Decimal(text) * 1_000_000)


def reference_rows(paths: dict[str, Path]) -> dict[str, list[tuple[Any, ...]]]:
    """Every data row as the tuple the database stores: blanks as NULL, amounts in fen (untimed)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for kind in KINDS:
        amounts = AMOUNTS.get(kind, {})
        nullable = [TABLES[kind].c[n].nullable for n in data_columns(TABLES[kind])]
        with paths[kind].open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            next(reader)
            rows = []
            for cells in reader:
                values: list[Any] = [c if c or not n else None for c, n in zip(cells, nullable, strict=True)]
                for i, zero in amounts.items():
                    values[i] = _fen(cells[i]) if cells[i] else (0 if zero else None)
                rows.append(tuple(values))
        out[kind] = rows
    return out


@contextmanager
def fresh_database(url: str | None, work: Path) -> Iterator[str]:
    """A URL of an empty database at the current schema, removed afterwards."""
    if url is None or url.startswith("sqlite"):
        path = work / f"bench-{uuid.uuid4().hex[:8]}.db"
        engine = make_engine(f"sqlite:///{path}")
        create_schema(engine)
        engine.dispose()
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    base = make_url(url)
    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    fresh = base.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(fresh)
    create_schema(engine)
    engine.dispose()
    try:
        yield fresh
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bare_executemany(engine: Engine, rows: dict[str, list[tuple[Any, ...]]], cache_kib: int = 0) -> None:
    """The reference: one driver-level executemany of plain tuples per table, one transaction
    (SQLite: with a page cache of `cache_kib`, 0 for SQLite's default)."""
    with engine.begin() as conn:
        if cache_kib and conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA cache_size = -{cache_kib}")
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        for kind in KINDS:
            tbl = TABLES[kind]
            names = data_columns(tbl)  # the provenance column is the import's own
            sql = f"INSERT INTO {tbl.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"
            conn.exec_driver_sql(sql, rows[kind])


def bare_copy(engine: Engine, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """PostgreSQL's own limit: one COPY … FROM STDIN of the tuples per table, one transaction."""
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            for kind in KINDS:
                names = ", ".join(data_columns(TABLES[kind]))
                with cur.copy(f"COPY {TABLES[kind].name} ({names}) FROM STDIN") as copy:
                    for row in rows[kind]:
                        copy.write_row(row)


def _import_once(url: str, paths: list[Path], results: Any) -> None:
    """In a child process: (seconds, counts, peak RSS of this process and of the import's reader
    process if it forked one, in MB) of one import_paths, put on `results`."""
    from monitor.ingest.importer import import_paths

    engine = make_engine(url)
    start = time.perf_counter()
    counts = import_paths(engine, paths)
    seconds = time.perf_counter() - start
    engine.dispose()
    reader = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    results.put((seconds, counts, _peak_mb(), reader))


def _peak_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: that survives exec, so a spawned child
    would report the parent's (which holds every reference row) from the moment it forked."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_import(url: str, paths: list[Path]) -> tuple[float, dict[str, int], float, float]:
    """One import in a fresh process (spawned: nothing inherited, nothing warmed up)."""
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_import_once, args=(url, paths, results))
    child.start()
    while True:
        try:
            found: tuple[float, dict[str, int], float, float] = results.get(timeout=1)
        except queue.Empty:
            if not child.is_alive():
                raise SystemExit(f"the import failed (exit code {child.exitcode}); see above") from None
            continue
        child.join()
        return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    ap.add_argument(
        "--import-only",
        action="store_true",
        help="no reference (it holds every row in memory: ~10 GB at 1,000,000 projects)",
    )
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        paths = write_sample(work / "data", projects=args.projects)
        t1 = time.perf_counter()
        rows = {} if args.import_only else reference_rows(paths)

        imports: list[float] = []
        peaks: list[float] = []
        reader_peaks: list[float] = []
        references: list[float] = []
        copies: list[float] = []
        cached: list[float] = []  # SQLite: the reference with the import's page cache
        postgresql = (args.database_url or "").startswith("postgresql")
        counts: dict[str, int] = {}
        for _ in range(args.repeat):  # interleaved, so that a noisy moment hurts both alike
            with fresh_database(args.database_url, work) as url:
                seconds, counts, peak, reader_peak = timed_import(url, list(paths.values()))
            imports.append(seconds)
            peaks.append(peak)
            reader_peaks.append(reader_peak)
            if args.import_only:
                continue
            with fresh_database(args.database_url, work) as url:
                engine = make_engine(url)
                start = time.perf_counter()
                bare_executemany(engine, rows)
                references.append(time.perf_counter() - start)
                engine.dispose()
            if not postgresql:
                with fresh_database(args.database_url, work) as url:
                    engine = make_engine(url)
                    start = time.perf_counter()
                    bare_executemany(engine, rows, SQLITE_IMPORT_CACHE_KIB)
                    cached.append(time.perf_counter() - start)
                    engine.dispose()
            if postgresql:
                with fresh_database(args.database_url, work) as url:
                    engine = make_engine(url)
                    start = time.perf_counter()
                    bare_copy(engine, rows)
                    copies.append(time.perf_counter() - start)
                    engine.dispose()
        n_rows, n_ind = sum(counts.values()), counts["indicators"] + counts["indicator_reports"]
        assert not rows or n_rows == sum(len(r) for r in rows.values()), (counts, n_rows)
        ours = statistics.median(imports)
        dialect = (args.database_url or "sqlite").split(":")[0]
        print(
            f"dataset: {counts['projects']:,} projects, {counts['indicators']:,} indicators, "
            f"{counts['indicator_reports']:,} indicator reports; {n_rows:,} rows in all ({dialect})"
        )
        print(f"  sample written in {t1 - t0:.1f} s")
        runs = ", ".join(f"{s:.2f}" for s in imports)
        print(f"import_paths (median of {args.repeat}): {ours:.2f} s  [{runs}]")
        print(f"  {n_rows / ours:,.0f} rows/s, {n_ind / ours:,.0f} indicator rows/s")
        if references:
            ref = statistics.median(references)
            runs = ", ".join(f"{s:.2f}" for s in references)
            print(f"reference: bare executemany of the parsed tuples: {ref:.2f} s  [{runs}]")
            print(f"  {n_rows / ref:,.0f} rows/s, {n_ind / ref:,.0f} indicator rows/s")
            print(f"ratio import speed / reference speed: {ref / ours:.2f}x (goal >= 0.7x)")
        if cached:
            same = statistics.median(cached)
            mib = SQLITE_IMPORT_CACHE_KIB // 1024
            print(f"the reference with the import's {mib} MiB SQLite page cache: {same:.2f} s", end="")
            print(f" ({n_rows / same:,.0f} rows/s); import / that: {same / ours:.2f}x")
        if copies:
            copy = statistics.median(copies)
            print(f"PostgreSQL's own limit, a bare COPY of the same tuples: {copy:.2f} s", end="")
            print(f" ({n_rows / copy:,.0f} rows/s); import / COPY: {copy / ours:.2f}x")
        print(f"peak memory (max RSS) of the import process: {max(peaks):.0f} MB", end="")
        if max(reader_peaks) > 0:  # counts the pages it shares with the importing process since the fork
            print(f", of its reader process: {max(reader_peaks):.0f} MB", end="")
        print()


if __name__ == "__main__":
    main()
