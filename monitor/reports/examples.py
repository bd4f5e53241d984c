"""The report of a small example checkpoint, for `monitor check`: a report template that does not
compile, or fails (or reaches outside the sandbox) rendering the example, is listed with its file:line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2

from monitor.config.settings import ResultsApplicationConfig
from monitor.core.model import Checkpoint, Unit
from monitor.core.rows import StoredResult
from monitor.notify.examples import example_rows
from monitor.notify.options import Options
from monitor.notify.render import TemplateErrors
from monitor.notify.views import summary
from monitor.reports.data import IndicatorAnswer, ReportData, build_rows
from monitor.reports.html import TEMPLATE, _environment, render, report_view

DEPT = Unit("301", "州农业农村局", ("b@example.gov.cn",))
UNIT = Unit("301001", "州动物疫病预防控制中心", ("a@example.gov.cn",), "301")


def example_results() -> list[StoredResult]:
    """August's results of one unit: a red project (with a red indicator), a yellow and a not-reported one."""
    may = example_rows()[0]  # the same red project as the mail's example, three months on
    indicator = may["indicators"][0] | {
        "light": "red",
        "ratio": -0.2,
        "reason": "目标≥90%，实际72%",
        "actual": "72",
    }
    red = may | {
        "checkpoint": "2025-08",
        "target_light": "red",
        "time_progress": 8 / 12,
        "indicators": [indicator],
    }
    yellow = red | {
        "project_code": "2025-301001-002",
        "project_name": "村级防疫员补助",
        "budget_light": "yellow",
        "target_light": "green",
        "light": "yellow",
        "execution_rate": 0.5,
        "executed": 150_000_000,
        "indicators": [],
    }
    missing = red | {
        "project_code": "2025-301001-003",
        "status": "not_reported",
        "light": None,
        "budget_light": None,
        "target_light": None,
        "executed": None,
        "execution_rate": None,
        "indicators": [],
    }
    results = [red, yellow, missing]
    return results


def example_view() -> dict[str, Any]:
    """The report of a small example checkpoint (August, May before it) for `monitor check` to render:
    a red, a yellow and a not-reported project of one unit under its supervising department."""
    results = example_results()
    units = {u.code: u for u in (DEPT, UNIT)}
    previous: dict[str, str | None] = {"2025-301001-001": "red", "2025-301001-002": "green"}
    options = Options(dt.date(2025, 9, 26), dt.date(2025, 9, 10), 10, "州财政局", ("jxk@example.gov.cn",))
    data = ReportData(
        checkpoint=Checkpoint(2025, 8),
        rows=build_rows(results, units, previous, 8),
        units=units,
        previous_checkpoint=Checkpoint(2025, 5),
        previous_lights=previous,
        answers={
            ("2025-301001-001", "01"): IndicatorAnswer("完全不可能", "经费保障", "资金未到位", "继续实施")
        },
        criteria=ResultsApplicationConfig(),
        bureau_name="州财政局",
        summary=summary("2025-08", results, units, previous, "2025-05", options),
    )
    return report_view(data, "2025-09-12 09:00")


def compile_problems(
    templates_dir: Path, override_dir: Path | None = None
) -> list[tuple[str, int | None, str]]:
    """(file, line, message) for a report template that does not compile, or fails (or reaches outside
    the sandbox) rendering an example: `monitor check` lists them."""
    try:
        _environment(templates_dir, override_dir).get_template(TEMPLATE)
    except jinja2.TemplateSyntaxError as exc:
        return [(exc.filename or TEMPLATE, exc.lineno, exc.message or str(exc))]
    except jinja2.TemplateNotFound:
        return [(str(templates_dir / TEMPLATE), None, "template not found")]
    try:
        render(example_view(), templates_dir, override_dir)
    except TemplateErrors as exc:
        return [(p.name, p.line, p.message) for p in exc.problems]
    return []
