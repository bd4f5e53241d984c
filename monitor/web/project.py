"""The drill-down to one project: a project code and a checkpoint in; the page out with the explanation
that `monitor explain` prints
(monitor.tools.explain: inputs, time progress, rule layers with file:line, ratios
and thresholds, lights, the notifications about it), shown as tables from its structured data and in
full as text, and the project's warning cases with every step (answers, reviews, 催办/督办 events).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from monitor.cases import store as cases
from monitor.config.yamlfile import Invalid
from monitor.core.model import Checkpoint
from monitor.core.rows import CaseEvent, CaseRecord
from monitor.core.wording import light, percent, period, progress
from monitor.db import ruleversions
from monitor.notify.views import KIND_WORD, REASON_LABEL, wan
from monitor.rules import sources
from monitor.tools import explain
from monitor.web import queries
from monitor.web.site import Site

RULES = {"used": "本批次运行时使用的规则", "current": "规则目录中现行的规则"}
KIND = {
    "warning": "预警通知",
    "reminder": "催报通知",
    "overdue": "逾期未报送通知",
    "case_reminder": "催办通知",
    "case_escalation": "督办通知",
    "summary": "监控汇总",
    "all_clear": "无预警告知",
    "admin": "管理员通知",
}
STATUS = {
    "pending": "待发送",
    "sending": "发送中",
    "sent": "已发送",
    "partial": "部分送达",
    "failed": "发送失败",
}
EVENT = {"reminded": "催办", "escalated": "督办", "exempted": "豁免"}


def explanation_view(e: explain.Explanation) -> dict[str, Any]:
    """The structured explanation as flat strings for the template (nothing is re-derived here)."""
    p, r = e.inputs.projects[0], e.result
    unit = e.inputs.units.get(p.unit_code)
    dept_code = (unit.supervisor_code if unit else None) or p.unit_code
    dept = e.inputs.units.get(dept_code)
    stored = None
    if e.stored_light is not None and e.stored_light != (r.light or "not_reported"):
        stored = light(None if e.stored_light == "not_reported" else e.stored_light)
    return {
        "code": p.code,
        "name": p.name,
        "unit_code": p.unit_code,
        "unit_name": unit.name if unit else "（未知单位）",
        "dept": dept.name if dept else dept_code,
        "checkpoint": str(e.checkpoint),
        "period": period(str(e.checkpoint)),
        "source": e.source.label,
        "rules_hash": e.source.rules.hash[:12],
        "light": light(r.light),
        "budget_light": light(r.budget_light),
        "target_light": light(r.target_light) if r.target_light else {**light("na"), "word": "无可测指标"},
        "stored_light": stored,
        "budget": wan(p.budget),
        "carryover": wan(p.carryover),
        "executed": wan(r.executed) if r.executed is not None else "未报送",
        "rate": percent(r.execution_rate),
        "progress": progress(r.time_progress),
        "fund_flag": p.fund_flag or "",
        "category": p.category or "",
        "reasons": list(r.reasons),
        "indicators": [
            {
                "code": i.indicator_code,
                "name": i.name,
                "kind": KIND_WORD.get(i.kind.value, i.kind.value),
                "target": i.target if i.direction == "定性" else f"{i.direction}{i.target}{i.measure_unit}",
                "actual": "" if i.actual is None else f"{i.actual}{i.measure_unit}",
                "light": light(i.light.value),
                "reason": i.reason,
            }
            for i in r.indicators
        ],
        "chain": explain.as_text(e),
        "notifications": [
            {
                "id": s.id,
                "kind": KIND.get(s.kind, s.kind),
                "reason": REASON_LABEL.get(s.reason, s.reason),
                "status": STATUS.get(s.status, s.status),
                "failed": s.status in ("failed", "partial"),
                "sent_at": s.sent_at,
            }
            for s in e.notifications
        ],
    }


def history(site: Site, case: CaseRecord, events: list[CaseEvent]) -> dict[str, Any]:
    """One warning case and its steps in time order: opened, answers, reviews, follow-up events, resolved."""
    view = site.case_view(case)
    steps = [(view["opened_at"], "预警", f"{view['light']['word']}色预警，反馈期限 {view['deadline']}")]
    for a in view["answers"]:
        via = "（导入）" if a["channel"] == "import" else ""
        steps.append(
            (
                a["submitted_at"],
                f"单位反馈{via}",
                f"原因类别：{a['cause']}；原因说明：{a['explanation']}；纠偏措施：{a['measure']}，"
                f"{a['measure_text']}；预计完成：{a['expected_date']}",
            )
        )
        if a["review"]:
            rv = a["review"]
            steps.append((rv["at"], f"财政局{rv['decision']}", f"{rv['comment']}（{rv['reviewer']}）"))
    for ev in events:
        what = EVENT.get(ev["kind"], ev["kind"])
        round_ = f"第{ev['round']}次" if ev.get("round", 1) != 1 else ""
        steps.append((site.local(ev["at"]), f"{what}{round_}", site.redact(ev["detail"])))
    if view["state"] == "resolved":
        steps.append(
            (view["updated_at"], "整改到位", f"{period(view['resolved_checkpoint'] or '')}监控为绿灯")
        )
    steps.sort(key=lambda s: s[0])
    return {**view, "steps": [{"at": at, "what": what, "detail": d} for at, what, d in steps]}


def page(site: Site, request: Request, user: str) -> Response:
    q = request.query_params
    code = q.get("code", "").strip()
    which = q.get("rules", "used") if q.get("rules") in RULES else "used"
    if not code or len(code) > 64:
        return site.message(request, "没有找到项目", "请从看板上的项目链接进入。", 404)
    with site.app.engine.connect() as conn:
        known = queries.checkpoints(conn)
        its = cases.cases(conn, project_code=code)
        events = queries.case_events(conn, [c["id"] for c in its])
        exempt = queries.exemptions(conn, site.today(), project_code=code)
    wanted = q.get("checkpoint") or (known[0] if known else "")
    if not wanted:
        return site.message(request, "尚无监控结果", "还没有运行过任何批次，请先导入数据并运行监控。", 404)
    try:
        checkpoint = Checkpoint.parse(wanted)
    except ValueError:
        return site.message(request, "批次无效", "批次应为 YYYY-MM 格式，例如 2025-05。", 400)
    note = ""
    try:
        try:
            source = ruleversions.base_source(
                site.app.engine, site.app.settings.rules_dir, str(checkpoint), which
            )
        except LookupError:  # the checkpoint never ran (or its rules were not stored): the rules now
            which, note = "current", "本批次没有运行记录，以下按现行规则判定。"
            source = sources.in_force(site.app.settings.rules_dir)
        e = explain.explain(site.app.engine, code, checkpoint, source, site.app.settings.time_zone)
    except LookupError:
        return site.message(request, "没有找到项目", f"数据库中没有项目 {code}。", 404)
    except Invalid as exc:
        problems = "；".join(str(p) for p in exc.problems[:5])
        return site.message(request, "规则文件有错误，无法说明", problems, 500)
    return site.page(
        request,
        "project.html",
        {
            "user": user,
            "active": "",
            "checkpoint": str(checkpoint),
            "checkpoints": known,
            "rules": which,
            "rule_choices": RULES,
            "note": note,
            "x": explanation_view(e),
            "cases": [history(site, c, events.get(c["id"], [])) for c in reversed(its)],
            "exemptions": [
                {**x, "expires_on": str(x["expires_on"]), "created_at": site.local(x["created_at"])}
                for x in exempt
            ],
            "light": light,
        },
    )
