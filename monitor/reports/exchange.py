"""The exchange table written back (`monitor results --format exchange`). In: a checkpoint's stored
results and the inputs they were judged on (units, projects, indicators, reports). Out: the table of
domain.md §7 as CSV, one row per indicator (a project without indicators: one row), the Chinese labels
as headers (ingest.exchange_fields), amounts in 万元, and the warning columns added (budget, target,
project and indicator light, reason), so a bureau can hand the lights back to its platform. Read back
by `monitor import` (the warning columns are ignored there).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from decimal import Decimal

from sqlalchemy.engine import Connection

from monitor.core.model import FEN_PER_WAN, Direction, Indicator, IndicatorReport, Inputs, Project
from monitor.core.rows import StoredIndicator, StoredResult
from monitor.core.safe import CsvWriter
from monitor.core.wording import WORD
from monitor.db.inputs import load_inputs
from monitor.ingest.exchange_fields import FIELDS, WARNINGS

# The fields written: all but the e-mail (units come with their e-mail addresses from the units file).
WRITTEN = tuple(field for field, _, _ in FIELDS if field != "email")
_LABEL = {field: label for field, label, _ in FIELDS}
# `=` would be written `'=` (a formula-looking cell, core.safe.csv_cell): its word reads back the same.
_DIRECTION_WORD = {Direction.EQ: "等于"}


def _amount(fen: int | None) -> str:
    """万元, exact, no thousands separators (as the canonical files hold them)."""
    return "" if fen is None else format((Decimal(fen) / FEN_PER_WAN).normalize(), "f")


def _light(value: str | None, *, project: bool = False) -> str:
    if value is None:
        return WORD[None] if project else ""
    word = WORD.get(value, value)
    return word + "灯" if value in ("green", "yellow", "red", "blue") else word


def _cells(
    inputs: Inputs, result: StoredResult, project: Project, indicator: Indicator | None
) -> dict[str, object]:
    unit = inputs.units.get(project.unit_code)
    dept = inputs.units.get(unit.supervisor_code or "") if unit else None
    report = inputs.project_reports.get(project.code)
    cells: dict[str, object] = {
        "fiscal_year": result["checkpoint"][:4],
        "dept_code": dept.code if dept else "",
        "dept_name": dept.name if dept else "",
        "agency_code": project.unit_code,
        "agency_name": unit.name if unit else "",
        "pro_code": project.code,
        "pro_name": project.name,
        "pro_bgt_comp": _amount(report.executed) if report else "",
        "est_pro_bgt_annual": _amount(report.forecast_executed) if report else "",
        "checkpoint": result["checkpoint"],
        "budget": _amount(project.budget),
        "carryover": _amount(project.carryover) if project.carryover else "",
        "fund_flag": project.fund_flag,
        "category": project.category,
        "pro_profile": project.profile,
        "bgtwarn": _light(result["budget_light"]),
        "goalwarn": _light(result["target_light"]),
        "pro_warn": _light(result["light"], project=True),
        "warn_reason": "；".join(result["reasons"]),
    }
    if indicator is not None:
        cells.update(_indicator_cells(inputs, indicator))
    return cells


def _indicator_cells(inputs: Inputs, indicator: Indicator) -> dict[str, object]:
    report = inputs.indicator_reports.get((indicator.project_code, indicator.code))
    cells: dict[str, object] = {
        "lv1_perf_ind_name": indicator.level1,
        "lv2_perf_ind_name": indicator.level2,
        "lv3_perf_ind_code": indicator.code,
        "lv3_perf_ind_name": indicator.name,
        "kpi_val": indicator.target,
        "direction": _DIRECTION_WORD.get(indicator.direction, indicator.direction.value),
        "measure_unit": indicator.measure_unit,
        "ind_kind": indicator.kind.value if indicator.kind else "",
        "ind_profile": indicator.profile,
    }
    if isinstance(report, IndicatorReport):
        cells |= {
            "perf_comp": report.actual,
            "est_perf_annual": report.forecast,
            "ana_dev_reasons": report.cause_text,
            "complete_rate": report.possibility,
            "dev_causes": report.causes,
            "measures": report.measures,
        }
    return cells


def exchange_rows(inputs: Inputs, results: Sequence[StoredResult]) -> Iterator[list[object]]:
    """The table's rows, header first (Chinese labels), in the order of `results`."""
    names = (*WRITTEN, *(field for field, _ in WARNINGS))
    yield [*(_LABEL[f] for f in WRITTEN), *(label for _, label in WARNINGS)]
    projects = {p.code: p for p in inputs.projects}
    for result in results:
        project = projects.get(result["project_code"])
        if project is None:
            continue
        lights: dict[str, StoredIndicator] = {i["indicator_code"]: i for i in result["indicators"]}
        indicators: Sequence[Indicator | None] = inputs.indicators.get(project.code) or [None]
        for indicator in indicators:
            cells = _cells(inputs, result, project, indicator)
            if indicator is not None and indicator.code in lights:
                stored = lights[indicator.code]
                cells["ind_warn"] = _light(stored["light"])
                cells["warn_reason"] = "；".join(filter(None, [str(cells["warn_reason"]), stored["reason"]]))
            yield ["" if cells.get(f) is None else cells.get(f, "") for f in names]


def exchange_csv(conn: Connection, checkpoint: str, results: Sequence[StoredResult]) -> str:
    """The exchange table of `results` (a checkpoint's) as CSV text; formula-looking cells neutralised."""
    inputs = load_inputs(conn, checkpoint, [r["project_code"] for r in results])
    buf = io.StringIO()
    CsvWriter(buf, lineterminator="\r\n").writerows(exchange_rows(inputs, results))
    return buf.getvalue()
