"""The tables of one import read and checked. In: the paths given. Out: a `Reading` (the located
tables, the problems found so far, unreadable keys, incomplete kinds) whose tables `read_and_check`
reads, parents' kinds first, through the reference checker, emitting each chunk of records while no
problem has been found. Used in this process, or in the reader process (ingest.reader).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path

from monitor.ingest.columns import KINDS
from monitor.ingest.fastcsv import Memos
from monitor.ingest.locate import READ_ERRORS, Table, cannot_read, locate
from monitor.ingest.problems import Problem
from monitor.ingest.records import Chunk, Loose, chunks
from monitor.ingest.references import Checker
from monitor.ingest.rows import Record, key_of


class Reading:
    """The tables of one import and what reading them found: problems, unreadable keys, incomplete kinds."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.out: list[Problem] = []
        self.unreadable: dict[str, set[Hashable]] = {k: set() for k in KINDS}
        self.incomplete: set[str] = set()
        self.memos: Memos = {}
        tables = locate(paths, self.out, self.incomplete)
        self.tables = [t for t in tables if t.source.kind in KINDS]
        self.responses = [t for t in tables if t.source.kind == "responses"]  # see import_responses
        self.failed_files: set[Path] = set()
        self.loose: list[Loose] = []

    def chunks(self, table: Table, out: list[Problem] | None = None) -> Iterator[Chunk]:
        """The readable records of a table, a chunk at a time; a file that cannot be read is one problem."""
        try:
            yield from chunks(
                table,
                self.out if out is None else out,
                self.unreadable[table.source.kind],
                self.memos,
                self.loose if out is None else None,
            )
        except READ_ERRORS as exc:
            if out is None and table.path not in self.failed_files:
                self.failed_files.add(table.path)
                self.out.append(cannot_read(table.path, exc))
                self.incomplete.update(KINDS)

    def first(self, kind: str, keys: set[Hashable]) -> dict[Hashable, str]:
        """Where each key was first given among the readable records of `kind` (read again)."""
        places: dict[Hashable, str] = {}
        for table in (t for t in self.tables if t.source.kind == kind):
            for numbers, records in self.chunks(table, out=[]):
                for number, record in zip(numbers, records, strict=True):
                    k = key_of(kind, record)
                    if k in keys and k not in places:
                        places[k] = table.source.where(number)
        return places


def read_and_check(reading: Reading, checker: Checker, emit: Callable[[str, list[Record]], None]) -> None:
    """Read every table, parents' kinds first, check each chunk of records and `emit` it while no
    problem has been found (after one, nothing will be written: the transaction rolls back)."""
    for table in reading.tables:
        kind = table.source.kind
        for numbers, records in reading.chunks(table):
            checker.check(kind, records, numbers, table.source)
            if not checker.failed:
                emit(kind, records)
    checker.check_loose(reading.loose)
    reading.loose = []
    checker.finish(reading.first)
