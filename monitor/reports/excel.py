"""The Excel warning list (预警清单), the file the operator forwards: report data in, an .xlsx out with
sheets 预警清单 (every project), 红灯, 黄灯, 未报送, 部门汇总 (per supervising department, with a total
row), 指标明细 (every yellow or red indicator with the unit's answers) and 结果应用 (candidates).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from monitor.core.safe import put
from monitor.core.wording import shown, wan
from monitor.core.xlsx import (
    COUNT,
    PERCENT,
    WAN,
    Col,
    Lit,
    print_setup,
    share,
    wan_number,
    write_notes,
    write_table,
)
from monitor.notify.views import indicator_view
from monitor.reports import application as ra
from monitor.reports.data import ReportData, Row
from monitor.reports.figures import Tally, departments, total
from monitor.reports.trend import CHANGE_WORD, KEY_WORD, KEYS

# Widths fit one landscape A4 page wide at a readable scale: names and reasons wrap, headers too.
NAME, DEPT, MONEY, RATE, LIGHT = 18, 14, 12, 7, 6
PROJECT_COLS = (
    Col("单位编码"),
    Col("单位名称", max_width=NAME, wrap=True),
    Col("主管部门", max_width=DEPT, wrap=True),
    Col("项目编码"),
    Col("项目名称", max_width=NAME + 4, wrap=True),
    Col("预算（万元）", WAN, MONEY),
    Col("执行数（万元）", WAN, MONEY),
    Col("预算执行率", PERCENT, RATE),
    Col("序时进度", PERCENT, RATE),
    Col("预算执行灯", max_width=LIGHT),
    Col("绩效目标灯", max_width=LIGHT),
    Col("项目灯", max_width=LIGHT),
    Col("上期项目灯", max_width=LIGHT),
    Col("变化", max_width=8),
    Col("年底前月均需执行（万元）", WAN, MONEY),
    Col("预警原因", max_width=56, wrap=True),
)


def project_cells(r: Row) -> list[Any]:
    reported = r.executed is not None
    return [
        r.unit_code,
        r.unit_name,
        r.department_name,
        r.project_code,
        r.project_name,
        wan_number(r.budget),
        wan_number(r.executed),
        shown(r.execution_rate),  # the stored rate, as the e-mails show it
        r.time_progress,
        Lit(r.budget_light),
        Lit(r.target_light) if r.target_light or not reported else Lit("na", "无可测指标"),
        Lit(r.light),
        Lit(r.previous_light) if r.has_previous else None,
        CHANGE_WORD.get(r.change or "", ""),
        wan_number(r.monthly_needed),
        "；".join(r.reasons),
    ]


DEPT_COLS = (
    Col("主管部门编码", max_width=8),
    Col("主管部门", max_width=NAME + 4, wrap=True),
    Col("项目数", COUNT, 8),
    Col("预算（万元）", WAN, MONEY + 2),
    *(
        c
        for k in KEYS
        for c in (Col(f"{KEY_WORD[k]}数", COUNT, 8), Col(f"{KEY_WORD[k]}金额（万元）", WAN, MONEY + 2))
    ),
    Col("红黄灯占比", PERCENT, RATE + 1),
    Col("已报送项目预算执行率", PERCENT, RATE + 3),
)


def dept_cells(t: Tally) -> list[Any]:
    return [
        t.code,
        t.name,
        t.projects,
        wan_number(t.budget),
        *(v for k in KEYS for v in (t.count[k], wan_number(t.amount[k]))),
        share(t.warned, t.projects),
        share(t.executed, t.reported_budget),
    ]


INDICATOR_COLS = (
    Col("单位名称", max_width=NAME, wrap=True),
    Col("项目编码"),
    Col("项目名称", max_width=NAME, wrap=True),
    Col("项目灯", max_width=LIGHT),
    Col("指标编码", max_width=6),
    Col("三级指标", max_width=NAME, wrap=True),
    Col("类型", max_width=8, wrap=True),
    Col("年度指标值", max_width=10, wrap=True),
    Col("实际完成", max_width=10, wrap=True),
    Col("完成比率/偏离", max_width=8, wrap=True),
    Col("指标灯", max_width=LIGHT),
    Col("判定说明", max_width=40, wrap=True),
    Col("完成目标可能性", max_width=8, wrap=True),
    Col("偏差原因", max_width=10, wrap=True),
    Col("原因说明", max_width=NAME, wrap=True),
    Col("纠偏措施", max_width=NAME, wrap=True),
)


def indicator_rows(data: ReportData) -> list[list[Any]]:
    out = []
    for r in data.rows:
        for i in r.indicators:
            if i["light"] not in ("yellow", "red"):
                continue
            v = indicator_view(i)
            a = data.answers.get((r.project_code, i["indicator_code"]))
            out.append(
                [
                    r.unit_name,
                    r.project_code,
                    r.project_name,
                    Lit(r.light),
                    v["code"],
                    v["name"],
                    v["kind"],
                    v["target"],
                    v["actual"],
                    v["ratio"],
                    Lit(i["light"]),
                    v["reason"],
                    a.possibility if a else None,
                    a.causes if a else None,
                    a.cause_text if a else None,
                    a.measures if a else None,
                ]
            )
    return out


APPLICATION_COLS = (
    Col("清单", max_width=8, wrap=True),
    Col("依据", max_width=40, wrap=True),
    Col("单位名称", max_width=NAME, wrap=True),
    Col("主管部门", max_width=DEPT, wrap=True),
    Col("项目编码"),
    Col("项目名称", max_width=NAME + 4, wrap=True),
    Col("预算（万元）", WAN, MONEY),
    Col("执行数（万元）", WAN, MONEY),
    Col("预算执行率", PERCENT, RATE),
    Col("项目灯", max_width=LIGHT),
    Col("上期项目灯", max_width=LIGHT),
    Col("涉及金额（预算−执行数，万元）", WAN, MONEY),
)
REDUCTION, KEY = "压减或收回候选", "财政重点监控"


def application_cells(listing: str, c: ra.Candidate) -> list[Any]:
    r = c.row
    return [
        listing,
        "；".join(c.grounds),
        r.unit_name,
        r.department_name,
        r.project_code,
        r.project_name,
        wan_number(r.budget),
        wan_number(r.executed),
        share(r.executed, r.budget),
        Lit(r.light),
        Lit(r.previous_light) if r.has_previous else None,
        wan_number(c.at_stake),
    ]


def write_workbook(data: ReportData, path: Path) -> Path:
    """Write the warning list of `data` to `path` (folders created); returns `path`."""
    wb = Workbook()
    sheets: Sequence[tuple[str, Sequence[Row]]] = (
        ("预警清单", data.rows),
        ("红灯", [r for r in data.rows if r.light == "red"]),
        ("黄灯", [r for r in data.rows if r.light == "yellow"]),
        ("未报送", [r for r in data.rows if r.light is None]),
    )
    for i, (title, rows) in enumerate(sheets):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = title
        write_table(ws, PROJECT_COLS, [project_cells(r) for r in rows])
    ws = wb.create_sheet("部门汇总")
    tallies = departments(data.rows)
    last = write_table(ws, DEPT_COLS, [dept_cells(t) for t in tallies])
    write_table_total(ws, last + 1, dept_cells(total(data.rows)))
    write_table(wb.create_sheet("指标明细"), INDICATOR_COLS, indicator_rows(data))
    write_application(wb.create_sheet("结果应用"), data)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.properties.title = f"{data.period}预算绩效运行监控预警清单"
    for ws in wb.worksheets:
        print_setup(ws, f"{wb.properties.title}（{ws.title}）")
    wb.properties.creator = data.bureau_name
    wb.save(path)
    return path


def write_table_total(ws: Any, row: int, cells: list[Any]) -> None:
    """The 合计 row under the department table (outside the filter range, so sorting keeps it last)."""
    for j, (col, value) in enumerate(zip(DEPT_COLS, cells, strict=True), 1):
        cell = put(ws, row, j, value)
        cell.font = Font(bold=True)
        if col.number_format:
            cell.number_format = col.number_format


def write_application(ws: Any, data: ReportData) -> None:
    criteria = data.criteria
    if not ra.applies(criteria, data.checkpoint.month):
        months = "、".join(f"{m}月" for m in criteria.months) or "（无）"
        write_table(ws, APPLICATION_COLS, [])
        write_notes(ws, 3, [f"结果应用清单在{months}监控期生成（results_application.months），本期不适用。"])
        return
    reduce = ra.reduction_candidates(data.rows, criteria, data.declared(), data.previous_period)
    key = ra.key_monitoring(data.rows, criteria)
    rows = [application_cells(REDUCTION, c) for c in reduce]
    rows += [application_cells(KEY, c) for c in key]
    last = write_table(ws, APPLICATION_COLS, rows)
    write_notes(
        ws,
        last + 2,
        [
            f"{REDUCTION}：{len(reduce)} 个项目，涉及金额 {wan(ra.total(reduce))}",
            f"{KEY}：{len(key)} 个项目，涉及金额 {wan(ra.total(key))}",
        ],
    )
