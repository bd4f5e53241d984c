"""The import stage: CSV/XLSX files in, every row validated and upserted in one transaction out
(counts per kind), or ImportFailed with every problem, each naming file, sheet, row, column and value,
and nothing written. This module is the orchestration and the stage's entry point (import_paths,
read_paths, validate, ImportFailed); the jobs are the package's other modules, in the order data
flows: files (files -> rows) and columns (headers -> kinds and columns), locate (paths -> tables),
rows and fastcsv (a row -> its record), records (a table -> chunks of records), references (the checks
across rows), reading (tables -> checked chunks), reader (the same in a forked process), formulas
(blank cells that hold formulas), responses (units' answers, a side kind stored in the same
transaction).

Tables are read parents first: units, projects, indicators, then reports. Each row is parsed, checked
against compact sets of the keys read so far and those in the database, and written into the open
transaction; any problem rolls it all back.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from monitor.core.model import Direction, Indicator, IndicatorReport, Kind, Project, ProjectReport, Unit
from monitor.db.engine import UNIT, create_schema
from monitor.db.history import new_batch
from monitor.db.upserts import (
    RECORD,
    Batch,
    KnownCodes,
    bulk_upsert,
    import_transaction,
    is_empty,
    known_indicator_codes,
    known_project_budgets,
    known_unit_codes,
)
from monitor.ingest import reader
from monitor.ingest.columns import KINDS
from monitor.ingest.exchange_problems import explain
from monitor.ingest.formulas import name_formulas
from monitor.ingest.problems import SHOWN_PROBLEMS, ImportFailed, Problem, Source, problem_report
from monitor.ingest.reader import READER_PROCESS_BYTES
from monitor.ingest.reading import Reading, read_and_check
from monitor.ingest.references import Checker, Where, located_at
from monitor.ingest.responses import store_responses
from monitor.ingest.rows import Record, key_of

__all__ = [  # what callers outside the package use: this module is the import stage's entry point
    "READER_PROCESS_BYTES",
    "SHOWN_PROBLEMS",
    "ImportFailed",
    "Problem",
    "Source",
    "SourcedBatch",
    "import_paths",
    "problem_report",
    "read_paths",
    "validate",
]


@dataclass
class SourcedBatch(Batch):
    """A Batch that remembers where each record came from, and which keys or kinds could not be read
    (so that references to them are not reported a second time as unknown)."""

    origins: dict[str, list[tuple[Source, int]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unreadable: dict[str, set[Hashable]] = field(default_factory=lambda: {k: set() for k in KINDS})
    incomplete: set[str] = field(default_factory=set)


_MODEL: dict[str, Callable[[Record], Any]] = {
    "units": lambda r: Unit(r[0], r[1], tuple(r[2].split(";")), r[3]),
    "projects": lambda r: Project(*r),
    "indicators": lambda r: Indicator(
        r[0], r[1], r[2], r[3], r[4], Direction(r[5]), r[6], r[7], Kind(r[8]) if r[8] else None, r[9]
    ),
    "project_reports": lambda r: ProjectReport(*r),
    "indicator_reports": lambda r: IndicatorReport(*r),
}


def read_paths(paths: Sequence[Path]) -> tuple[SourcedBatch, list[Problem]]:
    """Parse every file (folders: every .csv/.xlsx inside, sorted) into a batch; returns it with the
    problems found in single values and tables. Checks across rows are `validate`'s."""
    reading = Reading(paths)
    batch = SourcedBatch(unreadable=reading.unreadable, incomplete=reading.incomplete)
    for table in reading.tables:
        kind, model = table.source.kind, _MODEL[table.source.kind]
        for numbers, records in reading.chunks(table):
            getattr(batch, kind).extend(map(model, records))
            batch.origins[kind].extend((table.source, n) for n in numbers)
    return batch, reading.out


def validate(batch: Batch, known: KnownCodes) -> list[Problem]:
    """Cross-row checks of `batch` against itself and the codes already in the database: duplicate
    keys, references to unknown units, projects and indicators, and execution beyond the budget."""
    sourced = batch if isinstance(batch, SourcedBatch) else None
    out: list[Problem] = []
    checker = Checker(
        out,
        sourced.unreadable if sourced else {k: set() for k in KINDS},
        sourced.incomplete if sourced else set(),
    )
    checker.know(
        iter(known.units),
        ((code, b, c) for code, (b, c) in known.projects.items()),
        iter(sorted(known.indicators)),
    )
    records = {kind: [RECORD[kind](x) for x in getattr(batch, kind)] for kind in KINDS}
    origins: dict[str, Sequence[tuple[Where, int]]] = {
        kind: sourced.origins[kind] if sourced else [(kind, i + 1) for i in range(len(records[kind]))]
        for kind in KINDS
    }
    for kind in KINDS:
        for where, group in groupby(range(len(records[kind])), key=lambda i: origins[kind][i][0]):
            at = list(group)
            checker.check(kind, [records[kind][i] for i in at], [origins[kind][i][1] for i in at], where)

    def first(kind: str, keys: set[Hashable]) -> dict[Hashable, str]:
        places: dict[Hashable, str] = {}
        for record, origin in zip(records[kind], origins[kind], strict=True):
            places.setdefault(key_of(kind, record), located_at(*origin))
        return {k: places[k] for k in keys if k in places}

    checker.finish(first)
    return out


def _know_database(conn: Connection, checker: Checker, kinds: set[str]) -> None:
    """Load the database's codes the checks of `kinds` can refer to (nothing, for an empty database)."""
    children = {"indicators", "project_reports", "indicator_reports"}
    if "units" in kinds:
        query = select(UNIT.c.code, UNIT.c.name, UNIT.c.supervisor_code)
        checker.db_units_info = {r[0]: (r[1], r[2]) for r in conn.execute(query)}
    checker.know(
        known_unit_codes(conn) if kinds & {"units", "projects"} else iter(()),
        known_project_budgets(conn) if kinds & children else iter(()),
        known_indicator_codes(conn) if "indicator_reports" in kinds else iter(()),
    )


def import_paths(
    engine: Engine,
    paths: Sequence[Path],
    now: dt.datetime | None = None,
    warnings: list[str] | None = None,
    also: Callable[[Connection], None] | None = None,
    channel: str = "import",
    source: str | None = None,
) -> dict[str, int]:
    """Read, validate and write in ONE transaction; returns counts per kind, and adds to `warnings`
    what was imported but looks like a mistake (a unit named like one in the database under another
    code). Raises ImportFailed with ALL problems (sorted by file, sheet and row) and writes nothing.
    Units' answers to warning cases (kind `responses`, answered at `now`) are stored by
    monitor.ingest.responses in the same transaction.

    Rows are written as they are checked (parents first) while no problem has been found; any problem
    rolls the transaction back, so the database is exactly as before. Large inputs are read and
    checked in a forked process while this one writes (see ingest.reader)."""
    if channel == "import" and any(Path(p).suffix.lower() == ".zip" for p in paths):  # `monitor db archive`'s
        from monitor.ingest.archive import import_archive

        return import_archive(engine, [Path(p) for p in paths], now, warnings, import_paths)
    with _no_cycle_collection():
        reading = Reading(paths)
        create_schema(engine)
        with import_transaction(engine, check_at_end=is_empty(engine)) as conn:
            checker = Checker(reading.out, reading.unreadable, reading.incomplete)
            _know_database(conn, checker, {t.source.kind for t in reading.tables})
            batch = _batch(conn, reading, channel, source, now)
            with bulk_upsert(conn, batch) as write:
                if reader.worth_a_reader_process(reading):
                    reader.read_in_child(reading, checker, write)
                else:
                    read_and_check(reading, checker, write)
            if reading.responses:
                checker.counts["responses"] = store_responses(conn, reading.responses, reading.out, now)
            if reading.out:
                name_formulas(reading.tables, reading.out)
                found = explain(reading.out, [t.source for t in reading.tables if t.exchange])
                raise ImportFailed(sorted(found, key=lambda p: (p.file, p.sheet or "", p.row or 0)))
            if also is not None:  # the caller's own writes in the same transaction (a web submission)
                also(conn)
        if warnings is not None:
            warnings += checker.warnings
        return checker.counts


def _batch(
    conn: Connection,
    reading: Reading,
    channel: str,
    source: str | None,
    now: dt.datetime | None,
) -> int | None:
    """The report_batch of this import when it writes reports (its rows name it: their provenance)."""
    files = sorted(
        {
            Path(t.source.file).name
            for t in reading.tables
            if t.source.kind in ("project_reports", "indicator_reports")
        }
    )
    if not files:
        return None
    said = source if source is not None else "、".join(files)
    return new_batch(conn, channel, said, now or dt.datetime.now(dt.UTC))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The import makes millions of objects and no reference cycle: the cycle collector would only
    scan its growing key sets again and again (a tenth of the parsing time). Paused, then restored."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
