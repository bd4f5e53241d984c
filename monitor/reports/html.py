"""The checkpoint report (监控报告): report data in, one self-contained HTML page out (inline CSS and SVG
charts, no script, no network, printable to PDF from a browser), rendered from a flat view model by
the Jinja2 template `report/checkpoint.html` (autoescaped; an admin's file of the same name wins).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import jinja2
import jinja2.exceptions
import jinja2.sandbox

from monitor.core.wording import light, percent
from monitor.notify.render import TemplateErrors, TemplateProblem, _error_line
from monitor.notify.views import project_view, wan
from monitor.reports import application as ra
from monitor.reports import charts
from monitor.reports.data import ReportData, Row
from monitor.reports.figures import Tally, departments, histogram, paragraph, top_and_rest, total
from monitor.reports.trend import CHANGE_WORD, KEY_WORD, KEYS, transitions, unit_trends

TEMPLATE = "report/checkpoint.html"
CHART_DEPARTMENTS = 20  # the chart names the departments ranked first and sums the rest as 其他
TOP_RED = 8  # the leadership summary's red projects, largest budget first; the appendix lists them all
ATTENTION = 6  # the leadership summary's departments needing attention (first in the ranking)
SHIPPED = Path(__file__).resolve().parents[2] / "templates"  # a checkout's own templates, as a last resort


def project_row(r: Row, previous: dict[str, str | None]) -> dict[str, Any]:
    """A project as the e-mails show it (views.project_view), with its unit, department and trend."""
    return {
        **project_view(r.stored(), previous),
        "unit_name": r.unit_name,
        "department_name": r.department_name,
        "change": CHANGE_WORD.get(r.change or "", ""),
        "monthly_needed": wan(r.monthly_needed),
    }


def department_row(rank: int, t: Tally) -> dict[str, Any]:
    return {
        "rank": rank,
        "code": t.code,
        "name": t.name,
        "projects": t.projects,
        "budget": wan(t.budget),
        **{k: t.count[k] for k in KEYS},
        "red_amount": wan(t.amount["red"]),
        "yellow_amount": wan(t.amount["yellow"]),
        "warned_share": t.warned_share(),
        "rate": t.rate(),
    }


def candidate_row(c: ra.Candidate) -> dict[str, Any]:
    r = c.row
    return {
        "code": r.project_code,
        "name": r.project_name,
        "unit_name": r.unit_name,
        "budget": wan(r.budget),
        "executed": wan(r.executed),
        "rate": percent(r.execution_rate),
        "light": light(r.light),
        "grounds": list(c.grounds),
        "at_stake": wan(c.at_stake),
    }


def application_view(data: ReportData) -> dict[str, Any] | None:
    if not ra.applies(data.criteria, data.checkpoint.month):
        return None
    reduce = ra.reduction_candidates(data.rows, data.criteria, data.declared(), data.previous_period)
    key = ra.key_monitoring(data.rows, data.criteria)
    return {
        "reduction": [candidate_row(c) for c in reduce],
        "reduction_total": wan(ra.total(reduce)),
        "key": [candidate_row(c) for c in key],
        "key_total": wan(ra.total(key)),
    }


def unit_trend_rows(data: ReportData, limit: int = 15) -> list[dict[str, Any]]:
    """Units with projects still red or worse than before, most persistent red first."""
    names = {r.unit_code: r.unit_name for r in data.rows}
    trends = unit_trends([r.stored() for r in data.rows], data.previous_lights)
    bad = [(u, t) for u, t in trends.items() if t["still_red"] or t["worsened"]]
    bad.sort(key=lambda ut: (-ut[1]["still_red"], -ut[1]["worsened"], ut[0]))
    return [{"code": u, "name": names[u], **t} for u, t in bad[:limit]]


def attention_rows(data: ReportData, depts: list[Tally]) -> list[dict[str, Any]]:
    """The departments first in the ranking that have red or yellow projects, with their persistent red."""
    still_red = Counter(r.department_code for r in data.rows if r.change == "persistent_red")
    warned = [(i, d) for i, d in enumerate(depts, 1) if d.warned]
    return [department_row(i, d) | {"still_red": still_red[d.code]} for i, d in warned[:ATTENTION]]


def report_view(data: ReportData, generated: str) -> dict[str, Any]:
    """Everything the template shows, as strings, numbers, lists and ready SVG markup: the leadership
    summary (headline figures, charts, change, the largest red projects, departments needing attention)
    and the appendix (the full lists)."""
    depts = departments(data.rows)
    bins, no_progress = histogram(data.rows)
    previous = data.previous_lights
    reds = sorted((r for r in data.rows if r.light == "red"), key=lambda r: (-r.budget, r.project_code))
    t = total(data.rows)
    matrix = None
    if data.previous_checkpoint and data.previous_period:
        counts = transitions([r.stored() for r in data.rows], previous)
        matrix = charts.transitions(counts, data.previous_period, data.period)
    return {
        "title": f"{data.period}预算绩效运行监控报告",
        "period": data.period,
        "previous_period": data.previous_period or "",
        "bureau_name": data.bureau_name,
        "generated": generated,
        "paragraphs": paragraph(data),
        "by_light": data.summary["by_light"],
        "total_count": t.projects,
        "total_amount": wan(t.budget),
        "department_chart": charts.department_bars(top_and_rest(depts, CHART_DEPARTMENTS)),
        "departments_left_out": max(len(depts) - CHART_DEPARTMENTS, 0),
        "histogram_chart": charts.histogram(bins, data.thresholds),
        "no_progress": no_progress,
        "transition_chart": matrix,
        "departments": [department_row(i, d) for i, d in enumerate(depts, 1)],
        "attention": attention_rows(data, depts),
        "top_red": [project_row(r, previous) for r in reds[:TOP_RED]],
        "red": [project_row(r, previous) for r in reds],
        "red_total": wan(sum(r.budget for r in reds)),
        "not_reported": [project_row(r, previous) for r in data.rows if r.light is None],
        "unit_trends": unit_trend_rows(data) if data.previous_checkpoint else [],
        "application": application_view(data),
        "key_word": KEY_WORD,
    }


def _environment(templates_dir: Path, override_dir: Path | None) -> jinja2.Environment:
    """The report's templates in Jinja2's immutable sandbox: a template is content, never code."""
    folders = [str(p) for p in (override_dir, templates_dir, SHIPPED) if p is not None]
    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
    )


def render(view: dict[str, Any], templates_dir: Path, override_dir: Path | None = None) -> str:
    """The report page; TemplateErrors (with the template's file:line) when the template fails or reaches
    outside the sandbox."""
    template = _environment(templates_dir, override_dir).get_template(TEMPLATE)
    try:
        return template.render(view)
    except Exception as exc:  # SecurityError, UndefinedError, or the template's own error
        unsafe = isinstance(exc, jinja2.exceptions.SecurityError)
        message = f"unsafe template: {exc}" if unsafe else f"{type(exc).__name__}: {exc}"
        where = template.filename or TEMPLATE
        raise TemplateErrors([TemplateProblem(where, _error_line(exc, template), message, unsafe)]) from exc


def write_html(
    data: ReportData, path: Path, templates_dir: Path, override_dir: Path | None, generated: str
) -> Path:
    """Render the report of `data` into `path` (folders created); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report_view(data, generated), templates_dir, override_dir), encoding="utf-8")
    return path
