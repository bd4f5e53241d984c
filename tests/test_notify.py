"""Who gets told what, and why: the pure decision (no database, no clock), the flat views and the
working-day deadlines."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

from monitor.core.model import Unit
from monitor.core.rows import StoredIndicator, StoredResult
from monitor.core.workdays import add_working_days
from monitor.notify.decide import Options, decide
from monitor.notify.render import Templates

ROOT = Path(__file__).resolve().parent.parent

OPTIONS = Options(dt.date(2025, 6, 16), dt.date(2025, 6, 10), 10, "州财政局", ("jxk@example.gov.cn",))
UNITS = {
    "D1": Unit("D1", "州农业农村局", ("dept@example.gov.cn",)),
    "U1": Unit("U1", "州动物疫病预防控制中心", ("u1@example.gov.cn", "u1b@example.gov.cn"), "D1"),
    "U2": Unit("U2", "州种子管理站", ("u2@example.gov.cn",), "D1"),
    "U3": Unit("U3", "州草原站", ("u3@example.gov.cn",), "D1"),
}


def row(
    code: str,
    unit: str,
    light: str | None,
    budget: int = 100_000_000,
    indicators: list[StoredIndicator] | None = None,
) -> StoredResult:
    return {
        "project_code": code,
        "project_name": f"项目{code}",
        "unit_code": unit,
        "checkpoint": "2025-05",
        "status": "not_reported" if light is None else "reported",
        "budget_light": light,
        "target_light": None,
        "light": light,
        "execution_rate": None if light is None else 0.3,
        "time_progress": 5 / 12,
        "budget": budget,
        "executed": None if light is None else budget // 4,
        "reasons": [f"原因{code}"],
        "indicators": indicators or [],
    }


RESULTS = [
    row("P1", "U1", "red", 300_000_000),
    row("P2", "U1", "yellow"),
    row("P3", "U1", "green"),
    row("P4", "U2", "yellow"),
    row("P5", "U3", "green"),
    row("P6", "U3", None),
]


def run(results: list[StoredResult] = RESULTS, sent: dict[Any, Any] | None = None, **kw: Any) -> list[Any]:
    options = Options(**{**OPTIONS.__dict__, **kw})
    return decide("2025-05", results, UNITS, kw.pop("previous", {}), None, sent or {}, options)


def as_sent(notices: list[Any]) -> dict[Any, Any]:
    return {(n.kind, n.unit_code): n.snapshot for n in notices}


def test_one_digest_per_unit_with_yellow_or_red_projects() -> None:
    warnings = [n for n in run() if n.kind == "warning"]
    assert [n.unit_code for n in warnings] == ["U1", "U2"]
    u1 = warnings[0]
    assert [p["code"] for p in u1.view["projects"]] == ["P1", "P2"]  # red first
    assert (u1.view["red_count"], u1.view["yellow_count"], u1.view["green_count"]) == (1, 1, 1)
    assert [r.email for r in u1.to] == ["u1@example.gov.cn", "u1b@example.gov.cn"]


def test_red_warning_copies_supervisor_and_yellow_does_not() -> None:
    notices = {n.unit_code: n for n in run() if n.kind == "warning"}
    assert [r.email for r in notices["U1"].cc] == ["dept@example.gov.cn"]
    assert notices["U1"].view["supervisor_name"] == "州农业农村局"
    assert notices["U2"].cc == ()


def test_units_with_only_green_projects_get_nothing_unless_configured() -> None:
    assert not [n for n in run() if n.unit_code == "U3" and n.kind in ("warning", "all_clear")]
    only_green = [row("P5", "U3", "green")]
    clear = [n for n in run(only_green, send_all_clear=True) if n.kind == "all_clear"]
    assert [n.unit_code for n in clear] == ["U3"]


def test_rerun_with_unchanged_results_sends_nothing() -> None:
    first = run()
    assert {n.reason for n in first} == {"first", "reminder", "summary"}
    assert run(sent=as_sent(first)) == []


def test_yellow_turning_red_is_an_escalation_that_says_what_changed() -> None:
    sent = as_sent(run())
    later = [row("P1", "U1", "red", 300_000_000), row("P2", "U1", "red"), *RESULTS[2:]]
    (notice,) = [n for n in run(later, sent=sent) if n.kind == "warning"]
    assert (notice.unit_code, notice.reason) == ("U1", "escalated")
    assert notice.view["changes"] == [
        {
            "project_code": "P2",
            "project_name": "项目P2",
            "before": "yellow",
            "after": "red",
            "before_word": "黄",
            "after_word": "红",
        }
    ]


def test_improvement_and_other_changes_have_their_own_reason() -> None:
    sent = as_sent(run())
    improved = [row("P1", "U1", "yellow", 300_000_000), *RESULTS[1:]]
    assert [(n.unit_code, n.reason) for n in run(improved, sent=sent) if n.kind == "warning"] == [
        ("U1", "improved")
    ]
    all_green = [row("P4", "U2", "green")]
    notices = [n for n in run(all_green, sent=sent) if n.kind == "warning" and n.unit_code == "U2"]
    assert [n.reason for n in notices] == ["improved"] and notices[0].view["projects"] == []
    mixed = [
        row("P1", "U1", "yellow", 300_000_000),
        row("P2", "U1", "yellow"),
        row("P3", "U1", "yellow"),
        *RESULTS[3:],
    ]
    assert [n.reason for n in run(mixed, sent=sent) if n.kind == "warning"] == ["changed"]


def test_a_failing_indicator_appearing_is_a_change() -> None:
    sent = as_sent(run())
    ind: StoredIndicator = {
        "indicator_code": "I1",
        "name": "指标",
        "kind": "level",
        "light": "red",
        "ratio": -0.1,
        "reason": "r",
        "target": "90",
        "actual": "81",
        "measure_unit": "%",
        "direction": "≥",
    }
    later = [row("P1", "U1", "red", 300_000_000, indicators=[ind]), *RESULTS[1:]]
    (notice,) = [n for n in run(later, sent=sent) if n.kind == "warning"]
    assert notice.reason == "changed"
    assert notice.view["projects"][0]["indicators"][0]["target"] == "≥90%"


def test_units_with_unreported_projects_get_a_reminder_once() -> None:
    reminders = [n for n in run() if n.kind == "reminder"]
    assert [(n.unit_code, [p["code"] for p in n.view["projects"]]) for n in reminders] == [("U3", ["P6"])]
    assert reminders[0].view["report_deadline"] == "2025年6月10日"
    assert not [n for n in run(sent=as_sent(run())) if n.kind == "reminder"]


def test_bureau_summary_counts_amounts_departments_and_trend() -> None:
    previous = {"P1": "red", "P2": "green", "P4": "red", "P5": "yellow"}
    (summary,) = [
        n for n in decide("2025-08", RESULTS, UNITS, previous, "2025-05", {}, OPTIONS) if n.kind == "summary"
    ]
    v = summary.view
    assert [r.email for r in summary.to] == ["jxk@example.gov.cn"]
    assert [(x["key"], x["count"], x["amount"]) for x in v["by_light"]] == [
        ("green", 2, "200.00"),
        ("yellow", 2, "200.00"),
        ("red", 1, "300.00"),
        ("not_reported", 1, "100.00"),
    ]
    assert v["total_count"] == 6 and v["total_amount"] == "800.00"
    assert [(d["name"], d["red"], d["yellow"]) for d in v["by_department"]] == [("州农业农村局", 1, 2)]
    assert [p["code"] for p in v["top_red"]] == ["P1"] and [p["code"] for p in v["not_reported"]] == ["P6"]
    assert v["trend"] == {"improved": 2, "worsened": 1, "still_red": 1, "still_yellow": 0}
    assert v["previous_period"] == "2025年1-5月"


def test_response_deadline_counts_working_days_and_configured_holidays() -> None:
    # Monday 2025-06-02 + 10 working days = Monday 2025-06-16; a holiday inside the window adds a day.
    assert add_working_days(dt.date(2025, 6, 2), 10) == dt.date(2025, 6, 16)
    assert add_working_days(dt.date(2025, 6, 2), 10, holidays=[dt.date(2025, 6, 9)]) == dt.date(2025, 6, 17)
    # A Saturday worked in lieu (调休) counts.
    assert add_working_days(dt.date(2025, 9, 26), 1, extra_workdays=[dt.date(2025, 9, 27)]) == dt.date(
        2025, 9, 27
    )


def test_a_national_summary_lists_at_most_summary_rows_of_each_long_list_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    """At national scale the summary named every department and every unreported project: a 47 MB
    message at 1M projects (345k units), past what mail servers take. Each long list now shows at most
    `notifications.summary_rows` rows (the departments with the most red and yellow, the unreported
    projects with the largest budgets) and says how many it leaves to the board and the reports."""
    units = {
        **UNITS,
        "D2": Unit("D2", "州林业局", ()),
        "U4": Unit("U4", "州林场", (), "D2"),
        "D3": Unit("D3", "州水利局", ()),
        "U5": Unit("U5", "州水文站", (), "D3"),
    }
    results = [
        *RESULTS,
        row("P7", "U4", None, 900_000_000),
        row("P8", "U4", "yellow"),
        row("P9", "U5", None, 50_000_000),
    ]
    options = replace(OPTIONS, summary_rows=2)
    (summary,) = [n for n in decide("2025-05", results, units, {}, None, {}, options) if n.kind == "summary"]
    v = summary.view
    assert [d["name"] for d in v["by_department"]] == ["州农业农村局", "州林业局"]
    assert (v["department_count"], v["departments_more"]) == (3, 1)
    assert [p["code"] for p in v["not_reported"]] == ["P6", "P7"]  # the largest budgets, in unit order
    assert (v["not_reported_count"], v["not_reported_more"]) == (3, 1)
    assert sorted(summary.snapshot["not_reported"]) == ["P6", "P7", "P9"]  # a change to any is still news
    templates = Templates(ROOT / "templates")
    text = templates.render("summary", v).text
    assert "共 3 个，列出红灯、黄灯最多的 2 个" in text and "另有 1 个主管部门未列出" in text
    assert "未报送项目（3 个，列出预算最大的 2 个）" in text and "另有 1 个未列出" in text
    assert "P9" not in text
    html = templates.render("summary", v).html
    assert "另有 1 个主管部门未列出" in html and "另有 1 个未列出" in html
    everything = templates.render(
        "summary", decide_summary(results, units, replace(options, summary_rows=300))
    )
    assert "另有" not in everything.text and "P9" in everything.text


def decide_summary(results: list[StoredResult], units: dict[str, Unit], options: Options) -> dict[str, Any]:
    (summary,) = [n for n in decide("2025-05", results, units, {}, None, {}, options) if n.kind == "summary"]
    return dict(summary.view)
