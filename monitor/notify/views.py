"""Flat view models for message templates: result rows in, plain dicts of strings, numbers and
lists out (Alertmanager's template.Data). Templates never see ORM rows or do arithmetic; every
number is formatted here, once, the same way for e-mail and reports.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from monitor.cases.rectification import CAUSES, MEASURES
from monitor.core.model import FEN_PER_WAN, Unit
from monitor.core.rows import ProjectLight, StoredIndicator, StoredResult, Unreported
from monitor.core.summary import BureauFigures, trend_pairs
from monitor.core.wording import WORD, WORD_EXEMPT, light, percent, period, progress
from monitor.core.workdays import chinese_date
from monitor.notify.options import Options

if TYPE_CHECKING:
    from monitor.cases.exemptions import Exemption

REASON_LABEL = {
    "first": "预警通知",
    "escalated": "预警升级",
    "changed": "预警更新",
    "improved": "预警好转",
    "task": "监控任务通知",
    "reminder": "催报通知",
    "overdue": "逾期未报送通知",
    "summary": "监控汇总",
}
KIND_WORD = {"cumulative": "累计型", "level": "水平型", "milestone": "时间节点", "qualitative": "定性"}


def wan(fen: int | None) -> str:
    return "" if fen is None else f"{fen / FEN_PER_WAN:,.2f}"


def indicator_view(i: StoredIndicator) -> dict[str, Any]:
    ratio = i["ratio"]
    if ratio is None:
        ratio_text = ""
    elif i["kind"] == "cumulative":
        ratio_text = f"序时完成{percent(ratio)}"
    elif i["light"] == "red":  # above the tolerance: rounded up, as in the reason
        ratio_text = f"偏离{percent(abs(ratio), up=True)}"
    else:
        ratio_text = f"偏离{percent(abs(ratio))}"
    unit = i["measure_unit"] or ""
    return {
        "code": i["indicator_code"],
        "name": i["name"],
        "kind": KIND_WORD.get(i["kind"], i["kind"]),
        "target": f"{i['direction']}{i['target']}{unit}" if i["direction"] != "定性" else i["target"],
        "actual": f"{i['actual']}{unit}" if i["actual"] not in (None, "") else "（未填报）",
        "ratio": ratio_text,
        "reason": i["reason"],
        **light(i["light"]),
    }


def project_view(r: StoredResult, previous: Mapping[str, str | None]) -> dict[str, Any]:
    before = previous.get(r["project_code"], "none")
    return {
        "code": r["project_code"],
        "name": r["project_name"],
        "budget": wan(r["budget"]),
        "executed": wan(r["executed"]),
        "execution_rate": percent(r["execution_rate"]),
        "time_progress": progress(r["time_progress"]),
        "budget_light": light(r["budget_light"]),
        "target_light": light(r["target_light"])
        if r["target_light"]
        else light("na") | {"word": "无可测指标"},
        "project_light": light(r["light"]),
        "previous": WORD.get(before, "") if before != "none" else "",
        "reasons": list(r["reasons"]),
        "indicators": [indicator_view(i) for i in r["indicators"] if i["light"] in ("yellow", "red")],
    }


def _base(checkpoint: str, unit: Unit | None, options: Options) -> dict[str, Any]:
    return {
        "checkpoint": checkpoint,
        "period": period(checkpoint),
        "unit_code": unit.code if unit else "",
        "unit_name": unit.name if unit else "",
        "bureau_name": options.bureau_name,
        "response_deadline": chinese_date(options.response_deadline),
        "response_working_days": options.response_working_days,
        "report_deadline": chinese_date(options.report_deadline),
    }


def warning(
    checkpoint: str,
    unit: Unit | None,
    rows: Sequence[StoredResult],
    reason: str,
    changes: list[dict[str, str]],
    previous: Mapping[str, str | None],
    previous_checkpoint: str | None,
    options: Options,
    exempt: Mapping[str, Exemption] | None = None,
) -> dict[str, Any]:
    """The unit digest: its red then yellow projects with numbers and reasons, what to do and by when;
    its exempted yellow/red projects (`exempt`: project code -> exemption) apart, without the numbers,
    and not counted as red or yellow."""
    exempt = exempt or {}
    warned = sorted(
        (r for r in rows if r["light"] in ("yellow", "red")),
        key=lambda r: (r["light"] != "red", r["project_code"]),
    )
    exempted = [r for r in warned if r["project_code"] in exempt]
    warned = [r for r in warned if r["project_code"] not in exempt]
    exempted_codes = {r["project_code"] for r in exempted}
    count = Counter(r["light"] or "not_reported" for r in rows if r["project_code"] not in exempted_codes)

    def word(light: str) -> str:
        return WORD_EXEMPT if light == "exempt" else WORD[light]

    return {
        **_base(checkpoint, unit, options),
        "reason": reason,
        "reason_label": REASON_LABEL[reason],
        "is_update": reason != "first",
        "changes": [{**c, "before_word": word(c["before"]), "after_word": word(c["after"])} for c in changes],
        "red_count": count["red"],
        "yellow_count": count["yellow"],
        "green_count": count["green"] + count["blue"],
        "not_reported_count": count["not_reported"],
        "projects": [project_view(r, previous) for r in warned],
        "exempted": [
            {
                "code": r["project_code"],
                "name": r["project_name"],
                **light(r["light"]),
                "reason": exempt[r["project_code"]].reason,
                "approver": exempt[r["project_code"]].approver,
                "until": chinese_date(exempt[r["project_code"]].expires_on),
            }
            for r in exempted
        ],
        "previous_period": period(previous_checkpoint) if previous_checkpoint else "",
        "causes": list(CAUSES),
        "measures": measure_words(),
    }


def measure_words() -> list[str]:
    """The corrective measures (纠偏措施) a unit chooses from, as every channel shows them (defined once,
    in rectification.MEASURES)."""
    return list(MEASURES.values())


def all_clear(
    checkpoint: str, unit: Unit | None, rows: Sequence[StoredResult], options: Options
) -> dict[str, Any]:
    return {**_base(checkpoint, unit, options), "green_count": len(rows)}


def reminder(
    checkpoint: str, unit: Unit | None, rows: Sequence[Unreported], options: Options
) -> dict[str, Any]:
    return {
        **_base(checkpoint, unit, options),
        "projects": [
            {"code": r["project_code"], "name": r["project_name"], "budget": wan(r["budget"])} for r in rows
        ],
    }


def task(checkpoint: str, unit: Unit | None, rows: Sequence[Unreported], options: Options) -> dict[str, Any]:
    """The reporting notice (监控任务通知): the unit's projects to report on and the report deadline;
    the way to report (its reporting page's link) is added when composed (messages.compose)."""
    return reminder(checkpoint, unit, rows, options)


def overdue(
    checkpoint: str, unit: Unit | None, rows: Sequence[Unreported], options: Options
) -> dict[str, Any]:
    """The overdue notice (逾期未报送): the reminder's projects, the report deadline that passed, the
    message's date and the late-report deadline (N working days after it)."""
    late = options.late_report_deadline or options.report_deadline
    return {
        **reminder(checkpoint, unit, rows, options),
        "today": chinese_date(options.today or late),
        "late_report_deadline": chinese_date(late),
        "late_report_working_days": options.late_report_working_days,
    }


def department(unit: Unit | None, units: Mapping[str, Unit]) -> tuple[str, str]:
    """The supervising department a unit reports to (a department is its own)."""
    if unit is None:
        return ("", "（未知单位）")
    code = unit.supervisor_code or unit.code
    dept = units.get(code)
    return (code, dept.name if dept else code)


def summary(
    checkpoint: str,
    results: Sequence[StoredResult],
    units: Mapping[str, Unit],
    previous: Mapping[str, str | None],
    previous_checkpoint: str | None,
    options: Options,
) -> dict[str, Any]:
    """The bureau summary: counts and amounts by light and department, not reported, top red, trend."""
    figures = BureauFigures.of_results(results, units, previous if previous_checkpoint else None)
    return bureau_summary(checkpoint, figures, units, previous_checkpoint, options)


SUMMARY_KEYS = ("green", "yellow", "red", "not_reported")


def bureau_summary(
    checkpoint: str,
    figures: BureauFigures,
    units: Mapping[str, Unit],
    previous_checkpoint: str | None,
    options: Options,
) -> dict[str, Any]:
    """`summary` from figures gathered by the database (db.figures.bureau_figures): the same view."""
    count, amount, depts = _tallies(figures, units)
    total_n = sum(count.values())
    by_light = [
        {
            **light(None if k == "not_reported" else k),
            "key": k,
            "count": count[k],
            "amount": wan(amount[k]),
            "share": percent(Fraction(count[k], total_n)) if total_n else "",
        }
        for k in SUMMARY_KEYS
    ]
    rows = options.summary_rows
    worst_first = sorted(depts.items(), key=lambda kv: (-kv[1]["red"], -kv[1]["yellow"], kv[0][0]))
    by_department = [
        {"code": code, "name": name, **{k: c[k] for k in SUMMARY_KEYS}, "red_amount": wan(c["red_amount"])}
        for (code, name), c in worst_first[:rows]
    ]
    top_red, not_reported = _top_red(figures, units, options.top_red), _not_reported(figures, units, rows)
    trend = trend_from_pairs(figures.trend) if previous_checkpoint and figures.trend is not None else None
    snapshot = {
        "count": {k: count[k] for k in SUMMARY_KEYS},
        "red": sorted(figures.red),
        "not_reported": sorted(x["project_code"] for x in figures.not_reported),
    }
    return {
        **_base(checkpoint, None, options),
        "total_count": total_n,
        "total_amount": wan(sum(amount.values())),
        "by_light": by_light,
        "by_department": by_department,
        "department_count": len(depts),
        "departments_more": len(depts) - len(by_department),  # not listed: the board and reports list them
        "top_red": top_red,
        "not_reported": not_reported,
        "not_reported_count": len(figures.not_reported),
        "not_reported_more": len(figures.not_reported) - len(not_reported),
        "previous_period": period(previous_checkpoint) if previous_checkpoint else "",
        "trend": trend,
        "snapshot": snapshot,
    }


def _tallies(
    figures: BureauFigures, units: Mapping[str, Unit]
) -> tuple[Counter[str], Counter[str], dict[tuple[str, str], Counter[str]]]:
    """Projects and amounts (分) by light (blue counted as green), overall and by department."""
    count: Counter[str] = Counter()
    amount: Counter[str] = Counter()
    depts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for (dept, value), (n, fen) in figures.by_department.items():
        k = "green" if value == "blue" else (value or "not_reported")
        count[k] += n
        amount[k] += fen
        d = depts[_department_of(dept, units)]
        d[k] += n
        d[f"{k}_amount"] += fen
    return count, amount, depts


def _top_red(figures: BureauFigures, units: Mapping[str, Unit], top: int) -> list[dict[str, Any]]:
    """The `top` red projects with the largest budgets."""
    reds = sorted(figures.top_red, key=lambda r: (-r["budget"], r["project_code"]))
    return [
        {
            "code": r["project_code"],
            "name": r["project_name"],
            "unit_name": _unit_name(r["unit_code"], units),
            "budget": wan(r["budget"]),
            "execution_rate": percent(r["execution_rate"]),
            "reason": r["reasons"][0],
        }
        for r in reds[:top]
    ]


def _not_reported(figures: BureauFigures, units: Mapping[str, Unit], rows: int) -> list[dict[str, Any]]:
    """The unreported projects, by unit then project; more than `rows`: the `rows` largest budgets."""
    listed = figures.not_reported
    if len(listed) > rows:
        largest = sorted(range(len(listed)), key=lambda i: (-listed[i]["budget"], i))[:rows]
        listed = [listed[i] for i in sorted(largest)]
    return [
        {
            "code": r["project_code"],
            "name": r["project_name"],
            "unit_name": _unit_name(r["unit_code"], units),
            "budget": wan(r["budget"]),
        }
        for r in listed
    ]


def _unit_name(code: str, units: Mapping[str, Unit]) -> str:
    unit = units.get(code)
    return unit.name if unit else code


def _department_of(code: str | None, units: Mapping[str, Unit]) -> tuple[str, str]:
    """`department` from a department code (None: the unit is unknown)."""
    if code is None:
        return ("", "（未知单位）")
    dept = units.get(code)
    return (code, dept.name if dept else code)


def trend_counts(results: Sequence[ProjectLight], previous: Mapping[str, str | None]) -> dict[str, int]:
    """May → August: improved, worsened, still red, still yellow, among projects lit at both checkpoints."""
    return trend_from_pairs(trend_pairs(results, previous))


def trend_from_pairs(pairs: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """trend_counts from (previous light, light) → number of projects (as a GROUP BY gives them)."""
    out = Counter({"improved": 0, "worsened": 0, "still_red": 0, "still_yellow": 0})
    sev = {"green": 0, "blue": 0, "yellow": 1, "red": 2}
    for (before, after), n in pairs.items():
        if sev[after] < sev[before]:
            out["improved"] += n
        elif sev[after] > sev[before]:
            out["worsened"] += n
        elif after == "red":
            out["still_red"] += n
        elif after == "yellow":
            out["still_yellow"] += n
    return dict(out)


def admin(
    errors: list[str], instance: str, at: str, rules_hash: str, config_path: str, rules_dir: str
) -> dict[str, Any]:
    """The admins' notice of a failed reload."""
    return {
        "errors": errors,
        "instance": instance,
        "at": at,
        "rules_hash": rules_hash[:12],
        "config_path": config_path,
        "rules_dir": rules_dir,
    }


def report_returned(
    checkpoint: str,
    unit: Unit | None,
    department_name: str,
    project: tuple[str, str],
    comment: str,
    options: Options,
) -> dict[str, Any]:
    """A returned report (退回): the project (code, name), the department's comment and the report
    deadline; the unit's reporting link (report_link) is added where it is composed."""
    return {
        **_base(checkpoint, unit, options),
        "department_name": department_name,
        "project_code": project[0],
        "project_name": project[1],
        "comment": comment,
    }
