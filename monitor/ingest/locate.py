"""Finding the tables of an import. In: the paths given (files, folders). Out: every readable table
(`Table`: its file, which of the file's tables, its kind and columns), parents' kinds first, and a
`Problem` for each file or table that cannot be read (empty, unknown kind, missing or doubled
columns). `data_rows` opens a located table again for the rows below its header.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from monitor.core.cells import cell_text
from monitor.ingest import columns as cols
from monitor.ingest import exchange, files, form_read
from monitor.ingest.columns import KINDS, Rows
from monitor.ingest.problems import Problem, Source


@dataclass(frozen=True)
class Table:
    """A readable table: its file, which of the file's tables it is, its source and header cells."""

    path: Path
    position: int
    source: Source
    header: tuple[object, ...]
    exchange: bool = False  # one of the kinds read from an exchange table (ingest.exchange)
    rows: tuple[tuple[int, tuple[object, ...]], ...] | None = None  # an official form's, as read (form_read)


def _locate_table(
    path: Path, position: int, sheet: str | None, rows: Rows, out: list[Problem], incomplete: set[str]
) -> tuple[bool, list[Table]]:
    """Whether this is a table, and if its rows can be read, where. A sheet with no header row and no
    kind in its name is not a table (a note, a list): (False, None) without a problem."""
    file, name = str(path), sheet if sheet is not None else path.stem
    header, _ = cols.locate_header(rows)
    if sheet is not None and (header is None or not header.known) and cols.kind_from_name(name) is None:
        return False, []
    if header is None:
        out.append(Problem(file, None, None, None, "the table is empty（表格为空）", sheet))
        incomplete.update(KINDS)
        return True, []
    if header.known and exchange.is_exchange(header.cells):  # one table of every kind
        derived = exchange.derive(file, sheet, header.number, header.cells, out)
        incomplete.update(KINDS if not derived else ())
        return True, [Table(path, position, s, tuple(header.cells), exchange=True) for s in derived]
    found = cols.detect_kind(header.cells, name)
    source = Source(file, sheet, found.kind or "", found.columns, tuple(cell_text(c) for c in header.cells))
    if found.kind is None:
        seen = ", ".join(h for h in source.headers if h) or "(none)"
        message = (
            f"cannot tell which kind of data this is; headers seen: {seen}（无法识别表格类型，请检查表头）"
        )
        out.append(source.problem(header.number, None, None, message))
        incomplete.update(KINDS)
    elif found.missing or cols.duplicate_columns(found.columns, header.cells):
        for column in found.missing:
            accepted = "/".join((column, *cols.aliases_of(found.kind, column)))
            message = f"missing required column of {found.kind}; accepted headers: {accepted}（缺少必填列）"
            out.append(source.problem(header.number, column, None, message))
        for column, first, second in cols.duplicate_columns(found.columns, header.cells):
            a, b = source.headers[first], source.headers[second]
            message = (
                f"columns {cols.letter(first)} and {cols.letter(second)} both give {column}: {a!r} and "
                f"{b!r}; keep one（同一列出现两次：{a} 与 {b}，请删除其一）"
            )
            out.append(source.problem(header.number, column, None, message, first))
        incomplete.add(found.kind)
    else:
        return True, [Table(path, position, source, tuple(header.cells))]
    return True, []


READ_ERRORS = (OSError, ValueError, KeyError, csv.Error, zipfile.BadZipFile)


def cannot_read(path: Path, exc: Exception) -> Problem:
    row = exc.row if isinstance(exc, files.Unreadable) else None
    return Problem(str(path), row, None, None, f"cannot read this file: {exc}（文件无法读取）")


def locate(paths: Sequence[Path], out: list[Problem], incomplete: set[str]) -> list[Table]:
    """Every readable table of the files (folders: every .csv/.xlsx inside, sorted), parents' kinds
    first, in file order within a kind. Problems of whole files and tables go to `out`."""
    tables: list[Table] = []
    for path in _files(paths, out):
        sheets, found = [], 0
        try:
            with closing(files.read_tables(path)) as each:
                for position, (sheet, rows) in enumerate(each):
                    form, rows = form_read.split_form(str(path), sheet, rows, out)  # an official form
                    if form is not None:
                        found += 1
                        sheets.append(sheet or "")
                        tables += [Table(path, position, f.source, f.header, rows=f.rows) for f in form]
                        continue
                    is_table, located = _locate_table(path, position, sheet, rows, out, incomplete)
                    found += is_table
                    sheets.append(sheet or "")
                    tables += located
        except READ_ERRORS as exc:
            out.append(cannot_read(path, exc))
            incomplete.update(KINDS)
            continue
        if not found:
            listed = ", ".join(sheets)
            message = f"no sheet has a header row of a known kind (sheets: {listed})（没有可识别的数据表）"
            out.append(Problem(str(path), None, None, None, message))
            incomplete.update(KINDS)
    return sorted(tables, key=lambda t: KINDS.index(t.source.kind) if t.source.kind in KINDS else len(KINDS))


def _files(paths: Sequence[Path], out: list[Problem]) -> list[Path]:
    """The files to read: files as given, folders' .csv/.xlsx files (recursively, sorted); no file twice."""
    found: dict[Path, Path] = {}
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in files.SUFFIXES and p.is_file()
                            and not p.name.startswith(("~$", ".")))  # fmt: skip
            if not inside:
                out.append(
                    Problem(str(path), None, None, None, "no .csv or .xlsx file in this folder（文件夹为空）")
                )
            found.update((p.resolve(), p) for p in inside if p.resolve() not in found)
        elif not path.is_file():
            out.append(Problem(str(path), None, None, None, "no such file or folder（文件不存在）"))
        elif path.suffix.lower() not in files.SUFFIXES:
            message = (
                "unsupported file type; save it as .xlsx or .csv（不支持的文件类型，请另存为 .xlsx 或 .csv）"
            )
            out.append(Problem(str(path), None, None, None, message))
        else:
            found.setdefault(path.resolve(), path)
    return list(found.values())


@contextmanager
def data_rows(table: Table) -> Iterator[Rows]:
    """The rows of a located table below its header (the file is opened again; a form's as read)."""
    if table.rows is not None:  # an official form's
        yield iter(table.rows)
        return
    with closing(files.read_tables(table.path)) as each:
        for position, (_, rows) in enumerate(each):
            if position == table.position:
                yield cols.locate_header(rows)[1]
                return
    yield iter(())
