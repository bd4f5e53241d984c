"""Blank cells that hold a formula. In: the problems of a refused import and its located tables. Out:
the same problems, where a required cell read as blank holds a formula never calculated, saying so
(the workbook is read for values: a formula's result as last calculated, blank if it never was).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import replace

import openpyxl

from monitor.ingest import files
from monitor.ingest.locate import Table
from monitor.ingest.problems import Problem
from monitor.ingest.rows import BLANK_REQUIRED


def name_formulas(tables: Sequence[Table], problems: list[Problem]) -> None:
    """Blank required cells of workbooks that hold a formula: the workbook is read for values (a formula's
    result as last calculated), and a formula never calculated (a file written by a program, not saved
    by Excel) reads as blank. Such problems say so (the sheet is read again, for formulas)."""
    blanks: dict[tuple[str, str | None], dict[tuple[int, int], int]] = {}
    for i, p in enumerate(problems):
        if (
            p.message == BLANK_REQUIRED
            and p.row is not None
            and p.column
            and not p.file.lower().endswith(".csv")
        ):
            blanks.setdefault((p.file, p.sheet), {})[(p.row, -1)] = i
    for table in tables:
        wanted = blanks.get((table.source.file, table.source.sheet))
        if not wanted:
            continue
        cells = {}
        for (row, _), i in wanted.items():
            columns = table.source.columns.get(problems[i].column or "", ())
            cells[(row, columns[0] if columns else -1)] = i
        with suppress(Exception):  # a best effort (the file was read once): else the problems stand
            _formulas_at(table, cells, problems)


def _formulas_at(table: Table, cells: dict[tuple[int, int], int], problems: list[Problem]) -> None:
    last = max(row for row, _ in cells)
    files.check_archive(table.path)
    wb = openpyxl.load_workbook(table.path, read_only=True, data_only=False)
    try:
        ws = wb.worksheets[table.position]
        ws.reset_dimensions()
        for number, row in enumerate(ws.iter_rows(min_row=1, max_row=last), start=1):
            for (at, index), i in cells.items():
                if at == number and 0 <= index < len(row) and row[index].data_type == "f":
                    formula = str(row[index].value)[:200]
                    message = (
                        "is a formula with no calculated value; values are expected, not formulas: paste "
                        "the column as values, or open and save the file in Excel"
                        "（该单元格为公式且无计算结果，请粘贴为数值）"
                    )
                    problems[i] = replace(problems[i], value=formula, message=message)
    finally:
        wb.close()
