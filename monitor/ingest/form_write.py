"""The official monitoring forms a bureau hands out when units report by file (`monitor forms`; `monitor
import` reads them back, ingest.form_read). In: a checkpoint, the units, projects, indicators and the
reports already stored (db.inputs). Out: one .xlsx per unit, one sheet per project in the layout of
ingest.form_layout, pre-filled with what is known; the cells a unit fills in unlocked and marked,
everything else protected (sheet protection without a password: it guards against slips, not against
a determined user), a dropdown for 完成目标可能性, printed on A4 one page wide.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import Engine

from monitor.core.model import Direction, Indicator, IndicatorReport, Inputs, Project, ProjectReport, Unit
from monitor.core.safe import put, safe_name
from monitor.core.wording import period
from monitor.core.xlsx import BORDER, HEADER_ALIGN, HEADER_FILL, WAN, WRAP, print_setup, wan_number
from monitor.db.inputs import load_inputs
from monitor.ingest import form_layout as L

INPUT_FILL = PatternFill("solid", fgColor="FFFFF2CC")  # the cells a unit fills in, as the answer workbook
_OPEN = Protection(locked=False)
_WIDTHS = (15, 12, 24, 14, 14, 14, 11, 11, 11, 11, 11, 13, 24, 10)
_SHEET_FORBIDDEN = frozenset("[]:*?/\\'")


def form_name(unit_code: str, checkpoint: str) -> str:
    """The file name of a unit's forms: 监控表-<unit>-<checkpoint>.xlsx (the code made safe)."""
    return f"监控表-{safe_name(unit_code)}-{checkpoint}.xlsx"


def write_forms(engine: Engine, checkpoint: str, out: Path, unit_code: str | None = None) -> list[Path]:
    """One workbook per unit with projects (or `unit_code`'s alone) written into `out`; their paths."""
    with engine.connect() as conn:
        inputs = load_inputs(conn, checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    by_unit: dict[str, list[Project]] = {}
    for p in inputs.projects:
        if unit_code is None or p.unit_code == unit_code:
            by_unit.setdefault(p.unit_code, []).append(p)
    written = []
    for code, projects in sorted(by_unit.items()):
        path = out / form_name(code, checkpoint)
        write_workbook(path, checkpoint, inputs, projects)
        written.append(path)
    return written


def sheet_title(code: str, taken: set[str]) -> str:
    """A project code as a sheet name Excel accepts (31 characters, none of []:*?/\\', not History),
    unique regardless of case among `taken` (which it joins)."""
    base = "".join("_" if c in _SHEET_FORBIDDEN or not c.isprintable() else c for c in code)[:31] or "_"
    if base.lower() == "history":
        base += "_"
    title, n = base, 1
    while title.lower() in taken:
        n += 1
        title = f"{base[: 31 - len(str(n)) - 1]}~{n}"
    taken.add(title.lower())
    return title


def write_workbook(path: Path, checkpoint: str, inputs: Inputs, projects: Sequence[Project]) -> None:
    """A unit's workbook: one form sheet per project of `projects`."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    for project in projects:
        ws = wb.create_sheet(sheet_title(project.code, taken))
        _write_form(ws, checkpoint, inputs, project)
    wb.save(path)


def _write_form(ws: Any, checkpoint: str, inputs: Inputs, project: Project) -> None:
    month = int(checkpoint[5:])
    unit = inputs.units.get(project.unit_code)
    put(ws, 1, 1, L.TITLE).font = Font(bold=True, size=16)
    ws.cell(1, 1).alignment = Alignment(horizontal="centerContinuous", vertical="center")
    for column in range(2, L.LAST_COLUMN + 1):
        ws.cell(1, column).alignment = Alignment(horizontal="centerContinuous")
    ws.row_dimensions[1].height = 30
    _labels(ws, 2, ((1, L.CHECKPOINT_LABEL), (3, L.CODE_LABEL), (7, "填报期间"), (10, "金额单位")))
    _value(ws, *L.CHECKPOINT_CELL, checkpoint)
    _value(ws, *L.CODE_CELL, project.code, to=6)
    _value(ws, 2, 8, period(checkpoint), to=9)
    _value(ws, 2, 11, "万元")
    _labels(ws, L.NAME_ROW, ((1, "项目名称"),))
    _value(ws, L.NAME_ROW, 2, project.name, to=L.LAST_COLUMN)
    _labels(ws, L.OWNER_ROW, ((1, "主管部门及代码"), (7, "实施单位")))
    _value(ws, L.OWNER_ROW, 2, _department(inputs.units, unit, project.unit_code), to=6)
    _value(ws, L.OWNER_ROW, 8, _named(unit, project.unit_code), to=L.LAST_COLUMN)
    _funds(ws, month, project, inputs.project_reports.get(project.code))
    _labels(ws, L.GOAL_ROW, ((1, "年度总体目标"), (8, "全年预计完成情况")))
    _value(ws, L.GOAL_ROW, 2, None, to=7, open_=True)
    _value(ws, L.GOAL_ROW, 9, None, to=L.LAST_COLUMN, open_=True)
    ws.row_dimensions[L.GOAL_ROW].height = 60
    last = _indicators(ws, month, checkpoint, inputs, project)
    for i, width in enumerate(_WIDTHS, 1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.protection.sheet = True  # no password: see the module's docstring
    ws.protection.formatColumns = ws.protection.formatRows = False  # widths and heights stay adjustable
    print_setup(ws, f"{L.TITLE}（{period(checkpoint)}）", L.HEADER_ROW)
    ws.print_area = f"A1:{get_column_letter(L.LAST_COLUMN)}{last}"


def _labels(ws: Any, row: int, labels: Sequence[tuple[int, str]]) -> None:
    for column, text in labels:
        cell = put(ws, row, column, text)
        cell.font, cell.fill, cell.border, cell.alignment = Font(bold=True), HEADER_FILL, BORDER, HEADER_ALIGN


def _value(ws: Any, row: int, column: int, value: Any, to: int = 0, open_: bool = False) -> Any:
    """A value cell (text stays text), merged to column `to`; `open_`: a unit fills it in."""
    cell = put(ws, row, column, value)
    cell.border, cell.alignment = BORDER, WRAP
    if isinstance(value, str) or value is None:
        cell.number_format = "@"
    if open_:
        cell.protection, cell.fill = _OPEN, INPUT_FILL
    for c in range(column + 1, max(to, column) + 1):
        ws.cell(row, c).border = BORDER
    if to > column:
        ws.merge_cells(start_row=row, start_column=column, end_row=row, end_column=to)
    return cell


def _named(unit: Unit | None, code: str) -> str:
    return f"{unit.name}（{code}）" if unit else code


def _department(units: dict[str, Unit], unit: Unit | None, code: str) -> str:
    """主管部门及代码: the unit's supervising department, or the unit itself when it supervises."""
    if unit is not None and unit.supervisor_code:
        return _named(units.get(unit.supervisor_code), unit.supervisor_code)
    return _named(unit, code)


def _funds(ws: Any, month: int, project: Project, report: ProjectReport | None) -> None:
    """项目资金（万元）: 年初预算数 · 1-X月执行数 · 1-X月执行率 · 全年预计执行数 by 资金 row; the
    total row holds the project's budget and what is stored; the execution rate is a formula."""
    top = L.FUNDS_HEADER_ROW
    _labels(ws, top, ((1, "项目资金（万元）"), (2, "")))
    headers = ("年初预算数", L.executed_label(month), f"1-{month}月执行率", "全年预计执行数")
    _labels(ws, top, tuple(enumerate(headers, L.BUDGET_COLUMN)))
    ws.merge_cells(start_row=top, start_column=1, end_row=top + len(L.FUNDS_ROWS), end_column=1)
    for row, label in enumerate(L.FUNDS_ROWS, top + 1):
        _labels(ws, row, ((2, label),))
        total = row == L.TOTAL_ROW
        budget = wan_number(project.budget) if total else None
        executed = wan_number(report.executed) if total and report else None
        forecast = wan_number(report.forecast_executed) if total and report else None
        for column, value, open_ in (
            (L.BUDGET_COLUMN, budget, not total),
            (L.EXECUTED_COLUMN, executed, True),
            (L.FORECAST_COLUMN, forecast, True),
        ):
            _value(ws, row, column, value, open_=open_).number_format = WAN
        b, e = (f"{get_column_letter(c)}{row}" for c in (L.BUDGET_COLUMN, L.EXECUTED_COLUMN))
        rate = ws.cell(row, L.RATE_COLUMN, f'=IF(N({b})>0,N({e})/N({b}),"")')
        rate.number_format, rate.border = "0.0%", BORDER


def _target(indicator: Indicator) -> str:
    if indicator.direction is Direction.QUALITATIVE:
        return indicator.target
    return f"{indicator.direction.value}{indicator.target}{indicator.measure_unit}"


def _indicators(ws: Any, month: int, checkpoint: str, inputs: Inputs, project: Project) -> int:
    """The 绩效指标 block: its two header rows and one row per indicator, the stored report pre-filled;
    returns the last row."""
    top = L.HEADER_ROW
    _labels(ws, top, tuple(enumerate(L.indicator_headers(month), 1)))
    _labels(ws, top + 1, tuple(zip(L.CAUSE_COLUMNS, L.CAUSES, strict=True)))
    for column in range(1, L.LAST_COLUMN + 1):
        if column not in L.CAUSE_COLUMNS:
            ws.merge_cells(start_row=top, start_column=column, end_row=top + 1, end_column=column)
    ws.merge_cells(
        start_row=top, start_column=L.CAUSE_COLUMNS[0], end_row=top, end_column=L.CAUSE_COLUMNS[-1]
    )
    row = L.FIRST_INDICATOR_ROW - 1
    for row, indicator in enumerate(inputs.indicators.get(project.code, []), L.FIRST_INDICATOR_ROW):
        report = inputs.indicator_reports.get((project.code, indicator.code))
        for column, value in (
            (L.LEVEL1, indicator.level1),
            (L.LEVEL2, indicator.level2),
            (L.NAME, indicator.name),
            (L.TARGET, _target(indicator)),
            (L.INDICATOR_CODE, indicator.code),
        ):
            _value(ws, row, column, value)
        for column, answer in _answers(report):
            _value(ws, row, column, answer, open_=True)
    last = max(row, L.FIRST_INDICATOR_ROW)
    choices = DataValidation(type="list", formula1='"' + ",".join(L.POSSIBILITIES) + '"', allow_blank=True)
    choices.error, choices.errorTitle, choices.showErrorMessage = "请从下拉列表选择", "填写有误", True
    letter = get_column_letter(L.POSSIBILITY)
    choices.add(f"{letter}{L.FIRST_INDICATOR_ROW}:{letter}{last}")
    ws.add_data_validation(choices)
    ws.freeze_panes = ws.cell(L.FIRST_INDICATOR_ROW, 1)
    return last


def _answers(report: IndicatorReport | None) -> list[tuple[int, str | None]]:
    """The input cells of an indicator row and what is stored for them: the cause text goes under
    the first cause named, the other causes named are ticked (√)."""
    r = report or IndicatorReport("", "", "", None)
    named = set((r.causes or "").split(";"))
    causes: list[tuple[int, str | None]] = []
    text: str | None = r.cause_text
    for column, cause in zip(L.CAUSE_COLUMNS, L.CAUSES, strict=True):
        value = None
        if cause in named:
            value, text = text or "√", None
        causes.append((column, value))
    if text:  # a text without a category named goes under 其他
        causes[-1] = (L.CAUSE_COLUMNS[-1], text)
    return [
        (L.ACTUAL, r.actual),
        (L.FORECAST, r.forecast),
        *causes,
        (L.POSSIBILITY, r.possibility),
        (L.REMARK, r.measures),
    ]
