"""The official monitoring forms read back (what `monitor forms` writes, ingest.form_write). In: a
sheet's rows. Out: None when the sheet does not have the form's layout (title in A1, 监控期 in A2: the
file name says nothing), else its two tables, a project report and indicator reports, as the
canonical import reads them: every cell where the form has it, so that a problem names its cell
(`2025-302-001!E14`), and the rows parsed and checked by ingest.rows and ingest.references like any
other table's. A form row that nothing was filled in is no report (as a blank line of a table).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from monitor.core.cells import cell_text, is_blank
from monitor.core.dates import parse_checkpoint
from monitor.ingest import form_layout as L
from monitor.ingest.columns import Rows
from monitor.ingest.problems import Problem, Source
from monitor.ingest.rows import parse_project_code

# cells a form row does not have: given once on the form, or made from several cells
_CHECKPOINT, _PROJECT, _CAUSES, _CAUSE_TEXT = range(L.LAST_COLUMN, L.LAST_COLUMN + 4)
_FIXED = {
    _CHECKPOINT: get_column_letter(L.CHECKPOINT_CELL[1]) + str(L.CHECKPOINT_CELL[0]),
    _PROJECT: get_column_letter(L.CODE_CELL[1]) + str(L.CODE_CELL[0]),
    _CAUSES: get_column_letter(L.CAUSE_COLUMNS[0]),
    _CAUSE_TEXT: get_column_letter(L.CAUSE_COLUMNS[0]),
}
_CELLS = {i: get_column_letter(i + 1) for i in range(L.LAST_COLUMN)} | _FIXED
_SHARED: dict[str, tuple[int, ...]] = {"checkpoint": (_CHECKPOINT,), "project_code": (_PROJECT,)}
_COLUMNS: dict[str, dict[str, tuple[int, ...]]] = {
    "project_reports": {
        **_SHARED,
        "executed": (L.EXECUTED_COLUMN - 1,),
        "forecast_executed": (L.FORECAST_COLUMN - 1,),
    },
    "indicator_reports": {
        **_SHARED,
        "indicator_code": (L.INDICATOR_CODE - 1,),
        "actual": (L.ACTUAL - 1,),
        "forecast": (L.FORECAST - 1,),
        "possibility": (L.POSSIBILITY - 1,),
        "causes": (_CAUSES,),
        "cause_text": (_CAUSE_TEXT,),
        "measures": (L.REMARK - 1,),
    },
}
_INPUTS = {
    "project_reports": (L.EXECUTED_COLUMN - 1, L.FORECAST_COLUMN - 1),
    "indicator_reports": tuple(
        c - 1 for c in (L.ACTUAL, L.FORECAST, *L.CAUSE_COLUMNS, L.POSSIBILITY, L.REMARK)
    ),
}
_TOO_LONG = 10_000  # rows: a form has one per indicator


@dataclass(frozen=True)
class FormTable:
    """One table of a form sheet: its source (cells named A1-style), header and rows as read."""

    source: Source
    header: tuple[object, ...]
    rows: tuple[tuple[int, tuple[object, ...]], ...]


def split_form(
    file: str, sheet: str | None, rows: Rows, out: list[Problem]
) -> tuple[list[FormTable] | None, Rows]:
    """The form's tables if this sheet has the form's layout (its problems to `out`), else None and
    the rows, unread."""
    if sheet is None:
        return None, rows
    head = list(itertools.islice(rows, 2))
    if len(head) < 2 or not (_text(head[0][1], 1) == L.TITLE and _text(head[1][1], 1) == L.CHECKPOINT_LABEL):
        return None, itertools.chain(head, rows)
    cells = dict(head)
    for number, row in rows:
        cells[number] = row
        if number >= L.FIRST_INDICATOR_ROW and all(is_blank(c) for c in row):
            break
        if number > _TOO_LONG:
            break
    return _tables(file, sheet, cells, out), iter(())


def _text(row: Sequence[object], column: int) -> str:
    return "".join(cell_text(row[column - 1]).split()) if len(row) >= column else ""


def _cell(cells: dict[int, Sequence[object]], row: int, column: int) -> object:
    found = cells.get(row, ())
    return found[column - 1] if len(found) >= column else None


def _tables(file: str, sheet: str, cells: dict[int, Sequence[object]], out: list[Problem]) -> list[FormTable]:
    sources = {
        kind: Source(file, sheet, kind, columns, _headers(cells.get(row, ())), _CELLS)
        for (kind, columns), row in zip(_COLUMNS.items(), (L.FUNDS_HEADER_ROW, L.HEADER_ROW), strict=True)
    }
    header = sources["indicator_reports"].headers
    if header[0] != "一级指标" or _text(cells.get(L.TOTAL_ROW, ()), 2) != L.FUNDS_ROWS[0]:
        out.append(
            Problem(
                file,
                None,
                None,
                None,
                "the layout of the form was changed（监控表格式被改动，请使用下发的表格）",
                sheet,
            )
        )
        return []
    fixed = []
    for column, index, parse in (
        ("checkpoint", L.CHECKPOINT_CELL, parse_checkpoint),
        ("project_code", L.CODE_CELL, parse_project_code),
    ):
        value = _cell(cells, *index)
        try:
            fixed.append(parse(value))
        except ValueError as exc:
            out.append(sources["project_reports"].problem(index[0], column, value, str(exc)))
    if len(fixed) < 2:
        return []
    total = _row(cells, L.TOTAL_ROW, fixed)
    reports = [(L.TOTAL_ROW, total)] if _filled(total, "project_reports") else []
    indicator_rows = []
    for number in range(L.FIRST_INDICATOR_ROW, max(cells) + 1):
        row = _row(cells, number, fixed)
        if _filled(row, "indicator_reports"):
            indicator_rows.append((number, row))
    return [
        FormTable(sources["project_reports"], sources["project_reports"].headers, tuple(reports)),
        FormTable(sources["indicator_reports"], header, tuple(indicator_rows)),
    ]


def _headers(row: Sequence[object]) -> tuple[str, ...]:
    """A header row of the form as a table's header: its cells, then the cells it does not have."""
    own = [cell_text(c) for c in row[: L.LAST_COLUMN]]
    return (
        *own,
        *[""] * (L.LAST_COLUMN - len(own)),
        L.CHECKPOINT_LABEL,
        L.CODE_LABEL,
        "偏差原因分析",
        "偏差原因分析",
    )


def _row(cells: dict[int, Sequence[object]], number: int, fixed: list[str]) -> tuple[object, ...]:
    """A form row as a table row: its own cells, then the checkpoint, the project code, and the
    causes named (every cause cell filled) and their text (what is written beyond a tick)."""
    own = [*cells.get(number, ())[: L.LAST_COLUMN]]
    own += [None] * (L.LAST_COLUMN - len(own))
    named = [(cause, cell_text(own[c - 1])) for c, cause in zip(L.CAUSE_COLUMNS, L.CAUSES, strict=True)]
    named = [(cause, text) for cause, text in named if text]
    texts = [text for _, text in named if text not in L.MARKS]
    return (*own, *fixed, ";".join(c for c, _ in named) or None, "；".join(texts) or None)


def _filled(row: tuple[object, ...], kind: str) -> bool:
    return any(not is_blank(row[i]) for i in _INPUTS[kind])
