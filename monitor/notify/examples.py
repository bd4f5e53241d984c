"""A view of every kind built from a small example, so that `monitor check` can render each template
without a database (the example unit, its projects and an exemption are written out below).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from monitor.cases.exemptions import Exemption
from monitor.core.model import Unit
from monitor.core.rows import StoredIndicator, StoredResult
from monitor.notify import views
from monitor.notify.options import Options
from monitor.notify.views import admin, all_clear, overdue, reminder, summary, task, warning


def example_rows() -> list[StoredResult]:
    """Three projects of one unit: a red one, an unreported one and an exempted yellow one."""
    ind: StoredIndicator = {
        "indicator_code": "01",
        "name": "群体免疫密度",
        "kind": "level",
        "light": "yellow",
        "ratio": -0.044,
        "reason": "目标≥90%，实际86%",
        "target": "90",
        "actual": "86",
        "measure_unit": "%",
        "direction": "≥",
    }
    row: StoredResult = {
        "project_code": "2025-301001-001",
        "project_name": "动物疫病强制免疫疫苗采购",
        "unit_code": "301001",
        "checkpoint": "2025-05",
        "status": "reported",
        "budget_light": "red",
        "target_light": "yellow",
        "light": "red",
        "execution_rate": 0.1,
        "time_progress": 5 / 12,
        "budget": 300_000_000,
        "executed": 30_000_000,
        "reasons": ["预算执行率10.00%"],
        "indicators": [ind],
    }
    missing = row | {
        "project_code": "2025-301001-002",
        "status": "not_reported",
        "light": None,
        "budget_light": None,
        "target_light": None,
        "executed": None,
        "execution_rate": None,
    }
    exempted = row | {"project_code": "2025-301001-003", "project_name": "村级防疫员补助", "light": "yellow"}
    rows = [row, missing, exempted]
    return rows


def examples() -> dict[str, dict[str, Any]]:
    """A view of every kind built from a small example, for `monitor check` to render each template."""
    options = Options(dt.date(2025, 6, 13), dt.date(2025, 6, 10), 10, "州财政局", ("jxk@example.gov.cn",))
    late = replace(options, today=dt.date(2025, 6, 11), late_report_deadline=dt.date(2025, 6, 18))
    unit = Unit("301001", "州动物疫病预防控制中心", ("a@example.gov.cn",), "301")
    rows = example_rows()
    missing = rows[1]
    until, at = dt.date(2025, 9, 30), dt.datetime(2025, 6, 1)
    exemption = Exemption(1, "2025-301001-003", "预算调整已批准", "张科长", until, at, "admin")
    change = [
        {
            "project_code": "2025-301001-001",
            "project_name": "动物疫病强制免疫疫苗采购",
            "before": "yellow",
            "after": "red",
        }
    ]
    units = {unit.code: unit}
    return {
        "warning": warning(
            "2025-05", unit, rows, "escalated", change, {}, None, options, {exemption.project_code: exemption}
        )
        | {"response_link": "https://jxk.example.gov.cn/u/TOKEN", "workbook": ""}  # messages.how_to_answer
        | {"reply_to": "jxk@example.gov.cn"}
        | {"supervisor_name": "州农业农村局"},
        "task": task("2025-05", unit, [missing], options)
        | {"report_link": "https://jxk.example.gov.cn/r/TOKEN"},
        "reminder": reminder("2025-05", unit, [missing], options) | {"report_link": ""},
        "overdue": overdue("2025-05", unit, [missing], late),
        "summary": summary("2025-05", rows, units, {"2025-301001-001": "yellow"}, "2025-05", options),
        "all_clear": all_clear("2025-05", unit, rows, options),
        "admin": admin(
            ["rules/local.yaml:3: budget.red_below: unknown key"], "host:1", "2025-06-11 09:00", "", "", ""
        ),
        "report_returned": views.report_returned(
            "2025-05",
            unit,
            "州农业农村局",
            (rows[0]["project_code"], rows[0]["project_name"]),
            "1-5月执行数与支付记录不符，请核实后修改。",
            options,
        )
        | {"report_link": "https://jxk.example.gov.cn/r/TOKEN"},
    }
