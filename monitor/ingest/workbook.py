"""The answer workbook a bureau hands out (kind `responses` of `monitor import` reads it back). In: the
warning cases of a checkpoint waiting for an answer (from the database, or a warning's view). Out: an
.xlsx, one row per case with its identity filled in, the answer columns marked, dropdowns for the cause
and the measure, the texts' lengths and the expected date checked by Excel; its file name.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy.engine import Connection

from monitor.cases import rectification as rc
from monitor.cases.rectification import CAUSES
from monitor.cases.store import cases
from monitor.core import xlsx_skeleton as skeleton
from monitor.core.rows import row_of
from monitor.core.safe import put, safe_name
from monitor.core.wording import WORD, period
from monitor.core.xlsx import print_setup

MIN_TEXT = 5  # as the web form (rectification.parse_answer); the import checks it too
WAITING = (rc.State.OPEN.value, rc.State.RETURNED.value)  # the states in which a case takes an answer
HEADERS = (
    "监控期",
    "单位编码",
    "单位名称",
    "项目编码",
    "项目名称",
    "灯色",
    "案件状态",
    "退回意见",
    "偏差原因类别",
    "原因说明",
    "纠偏措施",
    "措施说明",
    "预计完成时间",
)
FIRST_ANSWER_COLUMN = HEADERS.index("偏差原因类别") + 1  # 1-based, as Excel counts
HEADER_ROW = 3
_WIDTHS = (10, 10, 22, 18, 30, 8, 14, 24, 16, 40, 22, 40, 14)
SHEET = "整改反馈"
_BOLD = Font(bold=True)
_ANSWER_FILL = PatternFill("solid", fgColor="FFF2CC")
_ANSWER_ALIGN = Alignment(wrap_text=True, vertical="top")


class AnswerRow(TypedDict):
    """A case a row of the workbook asks an answer for, with the bureau's last return comment."""

    checkpoint: str
    unit_code: str
    project_code: str
    project_name: str
    light: str
    state: str
    comment: str


def waiting_cases(conn: Connection, checkpoint: str, unit_code: str | None) -> list[AnswerRow]:
    """The cases of `checkpoint` (of one unit) that wait for an answer, with the last return comment."""
    found = [c for c in cases(conn, unit_code=unit_code, states=WAITING) if c["checkpoint"] == checkpoint]
    out = []
    for c in found:
        reviews = [a["review"] for a in c["answers"] if a["review"]]
        comment = reviews[-1]["comment"] if reviews and c["state"] == rc.State.RETURNED.value else ""
        out.append(row_of(AnswerRow, {**c, "comment": comment}))
    return out


def workbook_name(unit_code: str, checkpoint: str) -> str:
    """The file name of a unit's answer workbook attached to its warning: 反馈表-<unit>-<checkpoint>.xlsx."""
    return f"反馈表-{safe_name(unit_code)}-{checkpoint}.xlsx"


def warning_workbook(view: Mapping[str, Any], today: dt.date) -> tuple[str, bytes] | None:
    """The answer workbook of a warning (views.warning): the template `monitor responses template --unit`
    writes, one row per project the warning asks an answer for (each a case the run opened, waiting for
    its first answer), as (file name, bytes); None when the warning asks for no answer."""
    projects = view["projects"]
    if not projects:
        return None
    checkpoint, unit = view["checkpoint"], view["unit_code"]
    found: list[AnswerRow] = [
        {
            "checkpoint": checkpoint,
            "unit_code": unit,
            "project_code": p["code"],
            "project_name": p["name"],
            "light": p["project_light"]["light"],
            "state": rc.State.OPEN.value,
            "comment": "",
        }
        for p in projects
    ]
    data = answer_workbook(checkpoint, found, {unit: view["unit_name"]}, today)
    return workbook_name(unit, checkpoint), data


def answer_workbook(
    checkpoint: str, found: Sequence[AnswerRow], unit_names: Mapping[str, str], today: dt.date
) -> bytes:
    """The bytes write_template writes, part for part (but the save time in docProps/core.xml), in a
    fraction of its time (a warning e-mail carries one each): every part but the rows of the cases is
    openpyxl's save of the same layout, kept per process; the rows are written as openpyxl writes them
    (core.xlsx_skeleton)."""
    if found:
        done = skeleton.made(_Layout(checkpoint, today, len(found)), [_values(c, unit_names) for c in found])
        if done is not None:
            return done
    buf = io.BytesIO()
    write_template(buf, checkpoint, found, unit_names, today)
    return buf.getvalue()


@dataclass(frozen=True)
class _Layout:
    """What the answer workbook is but its rows: the checkpoint, the day and the number of cases (a
    skeleton.Layout)."""

    checkpoint: str
    today: dt.date
    rows: int

    first_row = HEADER_ROW + 1

    def lay_out(self, ws: Any) -> None:
        """The workbook with placeholder cases (styled as every case is)."""
        placeholder = AnswerRow(
            checkpoint=self.checkpoint,
            unit_code="",
            project_code="",
            project_name="",
            light="red",
            state=rc.State.OPEN.value,
            comment="",
        )
        _lay_out(ws, self.checkpoint, [placeholder] * self.rows, {}, self.today)


def write_template(
    path: Path | BinaryIO,
    checkpoint: str,
    found: Sequence[AnswerRow],
    unit_names: Mapping[str, str],
    today: dt.date,
) -> None:
    """An .xlsx the units fill in: one row per case of `found`, its identity filled in, dropdowns for
    the cause and the measure, the expected date checked; `monitor import` reads it back."""
    wb = openpyxl.Workbook()
    _lay_out(wb.active, checkpoint, found, unit_names, today)
    wb.save(path)


def _lay_out(
    ws: Any, checkpoint: str, found: Sequence[AnswerRow], unit_names: Mapping[str, str], today: dt.date
) -> None:
    ws.title = SHEET
    put(ws, 1, 1, f"{period(checkpoint)}预算绩效运行监控预警整改反馈表").font = Font(bold=True, size=14)
    put(
        ws,
        2,
        1,
        "请在黄色栏目中逐项填写（偏差原因类别、纠偏措施从下拉列表选择，预计完成时间填日期如 "
        f"{today.year}-09-30），其余栏目请勿修改；未填写的行视为暂不反馈。",
    )
    _fill_header(ws)
    _fill_rows(ws, found, unit_names)
    _add_checks(ws, HEADER_ROW + max(len(found), 1), today)
    for i, width in enumerate(_WIDTHS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    print_setup(ws, str(ws.cell(1, 1).value), HEADER_ROW)


def _fill_header(ws: Any) -> None:
    for i, header in enumerate(HEADERS, 1):
        cell = put(ws, HEADER_ROW, i, header)
        cell.font = _BOLD
        if i >= FIRST_ANSWER_COLUMN:
            cell.fill = _ANSWER_FILL


def _fill_rows(ws: Any, found: Sequence[AnswerRow], unit_names: Mapping[str, str]) -> None:
    """One row per case: its identity as text, its answer cells marked."""
    for n, c in enumerate(found, HEADER_ROW + 1):
        for i, value in enumerate(_values(c, unit_names), 1):
            put(ws, n, i, value).number_format = "@"  # codes and names stay text, never formulas
        for i in range(FIRST_ANSWER_COLUMN, len(HEADERS) + 1):
            ws.cell(n, i).fill = _ANSWER_FILL
            ws.cell(n, i).alignment = _ANSWER_ALIGN
        ws.cell(n, len(HEADERS)).number_format = "yyyy-mm-dd"


def _values(c: AnswerRow, unit_names: Mapping[str, str]) -> tuple[str, ...]:
    """A case's identity, the texts of its row's first cells."""
    return (
        c["checkpoint"],
        c["unit_code"],
        unit_names.get(c["unit_code"], ""),
        c["project_code"],
        c["project_name"],
        WORD.get(c["light"], c["light"]) + "灯",
        rc.STATE_WORD[rc.State(c["state"])],
        c["comment"],
    )


def _add_checks(ws: Any, last: int, today: dt.date) -> None:
    """Excel's checks of the answer cells down to row `last`: the cause and the measure from dropdowns,
    the texts' lengths, the expected date from today to the end of next year."""

    def column(header: str) -> str:
        return str(get_column_letter(HEADERS.index(header) + 1))

    def validate(header: str, dv: DataValidation) -> None:
        dv.error, dv.errorTitle, dv.showErrorMessage = dv.error or "请按要求填写", "填写有误", True
        dv.add(f"{column(header)}{HEADER_ROW + 1}:{column(header)}{last}")
        ws.add_data_validation(dv)

    validate(
        "偏差原因类别", DataValidation(type="list", formula1='"' + ",".join(CAUSES) + '"', allow_blank=True)
    )
    measures = ",".join(rc.MEASURES.values())
    validate("纠偏措施", DataValidation(type="list", formula1=f'"{measures}"', allow_blank=True))
    for header in ("原因说明", "措施说明"):
        text = DataValidation(
            type="textLength", operator="between", formula1=str(MIN_TEXT), formula2=str(rc.MAX_TEXT)
        )
        text.error = f"请填写{MIN_TEXT}至{rc.MAX_TEXT}个字"
        validate(header, text)
    until = dt.date(today.year + 1, 12, 31)
    date = DataValidation(
        type="date",
        operator="between",
        formula1=f"DATE({today.year},{today.month},{today.day})",
        formula2=f"DATE({until.year},{until.month},{until.day})",
        allow_blank=True,
    )
    date.error = f"请填写 {today} 至 {until} 之间的日期"
    validate("预计完成时间", date)
