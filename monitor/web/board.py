"""The bureau board behind the login: a checkpoint's lights by department and unit with filters
(department, unit, light), a unit's projects, the answers to review (accept / return with a comment),
the overdue list with its follow-up steps, and the way to every other bureau page (project drill-down,
deliveries, exemptions, reports). Site in, Starlette routes out; every page asks for the session's user.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.cases import rectification as rc
from monitor.cases import store as cases
from monitor.core.model import Unit
from monitor.core.rows import CaseEvent
from monitor.core.wording import light, period
from monitor.db.inputs import load_units
from monitor.deliver import leases
from monitor.service import status
from monitor.web import auth, progress, project, queries, records
from monitor.web.site import STALE_FORM, Site, form_fields, project_view, user_of

Page = Callable[[Site, Request, str], Response]  # a GET page for the user: runs in a worker thread
Form = Callable[[Site, Request, str, dict[str, str]], Response]  # a POST with the form's fields, too
Endpoint = Callable[[Request], Awaitable[Response]]
LIGHT_FILTERS = {
    "": "全部",
    "warned": "有红、黄预警",
    "red": "有红色预警",
    "yellow": "有黄色预警",
    "none": "有未报送",
}
MAX_ROWS = 500  # units listed at once: beyond this the filters narrow it down
MAX_WARNED = 12  # warned projects listed in a unit's row; the unit's page lists them all
EVENT_WORD = {"reminded": "已催办", "escalated": "已督办", "exempted": "已豁免"}


def safe_next(value: str | None) -> str:
    """Where to go after the login: a bureau page of this site, else the board (never another host)."""
    if not value or not value.startswith("/board") or not value.isascii() or not value.isprintable():
        return "/board"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return "/board"
    return value


def login_redirect(request: Request) -> RedirectResponse:
    """To the login page, remembering the bureau page asked for (GET only: a form is not replayed)."""
    target = "/login"
    if request.method == "GET":
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(wanted, safe="")
    return RedirectResponse(target, status_code=303)


def valid_user(site: Site, request: Request) -> str | None:
    """The session's bureau user while the session still stands (no logout, new password or disabling
    since it was made); else None, and the session is cleared."""
    user = user_of(request)
    if user is not None:
        with site.app.engine.connect() as conn:
            if not auth.session_valid(conn, user, request.session.get("v")):
                user = None
    if user is None:
        request.session.clear()
    return user


def guarded(site: Site, page: Page) -> Endpoint:
    """The endpoint: the page for a logged-in bureau user, else the login page and no data at all. The
    session check and the page run in a worker thread, never on the event loop."""

    async def endpoint(request: Request) -> Response:
        user = await run_in_threadpool(valid_user, site, request)
        if user is None:
            return login_redirect(request)
        return await run_in_threadpool(page, site, request, user)

    return endpoint


def guarded_form(site: Site, handler: Form) -> Endpoint:
    """`guarded` for a form: its fields are read (on the loop) only once the user is known."""

    async def endpoint(request: Request) -> Response:
        user = await run_in_threadpool(valid_user, site, request)
        if user is None:
            return login_redirect(request)
        fields = form_fields((await request.form()).items())
        return await run_in_threadpool(handler, site, request, user, fields)

    return endpoint


def department(unit_code: str, units: dict[str, Unit]) -> tuple[str, str]:
    """(code, name) of the supervising department (a department is its own)."""
    unit = units.get(unit_code)
    code = (unit.supervisor_code if unit else None) or unit_code
    dept = units.get(code)
    return code, dept.name if dept else code


def pick_checkpoint(wanted: str | None, known: list[str]) -> str:
    return wanted if wanted in known else (known[0] if known else "")


def keep(counts: Counter[str], want: str) -> bool:
    if want == "warned":
        return bool(counts["red"] or counts["yellow"])
    return not want or bool(counts[want])


@dataclass(frozen=True)
class Filters:
    light: str  # a key of LIGHT_FILTERS
    dept: str
    unit: str
    text: str

    @classmethod
    def of(cls, request: Request) -> Filters:
        q = request.query_params
        want_light = q.get("light", "") if q.get("light", "") in LIGHT_FILTERS else ""
        return cls(want_light, q.get("dept", ""), q.get("unit", ""), q.get("q", "").strip())

    def shown(self, unit_code: str, name: str, dept_code: str, dept_name: str, counts: Counter[str]) -> bool:
        return (
            (not self.dept or dept_code == self.dept)
            and (not self.unit or unit_code == self.unit)
            and (not self.text or any(self.text in s for s in (name, unit_code, dept_name)))
            and keep(counts, self.light)
        )


def unit_rows(
    counts: dict[str, Counter[str]], units: dict[str, Unit], f: Filters
) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The units the filters keep, in code order (the bureau's own order of departments), each
    department's own line first; and every department seen (code → name), for the filter's list."""
    departments: dict[str, str] = {}
    rows = []
    for unit_code in sorted(counts):
        dept_code, dept_name = department(unit_code, units)
        departments[dept_code] = dept_name
        unit = units.get(unit_code)
        name = unit.name if unit else unit_code
        if f.shown(unit_code, name, dept_code, dept_name, counts[unit_code]):
            rows.append({"dept_code": dept_code, "dept": dept_name, "unit_code": unit_code, "unit": name})
    rows.sort(key=lambda r: (r["dept_code"], r["unit_code"] != r["dept_code"], r["unit_code"]))
    return rows, departments


def grouped(
    rows: list[dict[str, str]],
    counts: dict[str, Counter[str]],
    warned: dict[str, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """The listed units by department, each with its tallies and its first MAX_WARNED warned projects
    (red first)."""
    groups: list[dict[str, Any]] = []
    for r in rows:
        if not groups or groups[-1]["dept_code"] != r["dept_code"]:
            groups.append({"dept_code": r["dept_code"], "dept": r["dept"], "counts": Counter(), "units": []})
        tally = counts[r["unit_code"]]
        groups[-1]["counts"].update(tally)
        its = warned.get(r["unit_code"], [])
        its.sort(key=lambda p: (p["light"]["light"] != "red", p["code"]))
        groups[-1]["units"].append(
            {**r, "counts": tally, "warned": its[:MAX_WARNED], "more": len(its) - MAX_WARNED}
        )
    return groups


def followups(site: Site, events: list[CaseEvent]) -> list[str]:
    """An overdue case's follow-up steps so far, e.g. '已催办（2025-06-20 09:00）'."""
    return [f"{EVENT_WORD.get(e['kind'], e['kind'])}（{site.local(e['at'])}）" for e in events]


def board(site: Site, request: Request, user: str) -> Response:
    q, f = request.query_params, Filters.of(request)
    today = site.today()
    with site.app.engine.connect() as conn:
        known = queries.checkpoints(conn)
        checkpoint = pick_checkpoint(q.get("checkpoint"), known)
        units = load_units(conn)
        counts = queries.light_counts(conn, checkpoint) if checkpoint else {}
        every = [site.case_view(c) for c in cases.cases(conn)]
        overdue = [c for c in every if c["overdue"]]
        events = queries.case_events(conn, [c["id"] for c in overdue])
        exempt = queries.exempted(conn, today)
        outbox = queries.outbox_counts(conn, checkpoint)["*"] if checkpoint else Counter()
        lease = dt.timedelta(seconds=site.app.settings.mail.retry.lease_seconds)
        stuck = sum(leases.stuck(conn, site.now(), lease).values())
        unfinished = [cp for _, cp in status.unfinished_runs(conn, site.app.settings)]
        rows, departments = unit_rows(counts, units, f)
        total_units, rows = len(rows), rows[:MAX_ROWS]
        warned: dict[str, list[dict[str, Any]]] = {}
        for r in queries.results(conn, checkpoint, units=[r["unit_code"] for r in rows], lights=rc.WARNED):
            warned.setdefault(r["unit_code"], []).append(project_view(r))
        chosen = (
            [project_view(r) for r in queries.results(conn, checkpoint, units=[f.unit])] if f.unit else []
        )
    for c in overdue:
        c["followups"] = followups(site, events.get(c["id"], []))
        c["exempt"] = c["project_code"] in exempt
    unit = units.get(f.unit)
    return site.page(
        request,
        "board.html",
        {
            "user": user,
            "active": "board",
            "checkpoints": known,
            "checkpoint": checkpoint,
            "period": period(checkpoint) if checkpoint else "",
            "light_filter": f.light,
            "light_filters": LIGHT_FILTERS,
            "dept_filter": f.dept,
            "departments": sorted(departments.items()),
            "unit_filter": f.unit,
            "unit_filter_name": unit.name if unit else f.unit,
            "q": f.text,
            "groups": grouped(rows, counts, warned),
            "total_units": total_units,
            "max_rows": MAX_ROWS,
            "chosen": chosen,
            "to_review": [c for c in every if c["reviewable"]],
            "overdue": overdue,
            "outbox": dict(outbox),
            "stuck": stuck,
            "unfinished": unfinished,
            "n_exemptions": len(exempt),
            "unit_names": {code: u.name for code, u in units.items()},
            "notice": q.get("done", ""),
            "light": light,
        },
    )


def review(site: Site, request: Request, user: str, fields: dict[str, str]) -> Response:
    if not auth.csrf_ok(request.session, fields.get("csrf")):
        return site.message(request, "无法提交", STALE_FORM, 403)
    decision, comment = fields.get("decision", ""), fields.get("comment", "").strip()
    try:
        case_id = int(fields.get("case_id", ""))
    except ValueError:
        return site.message(request, "无法提交", "表单不完整，请刷新页面后重新操作。", 400)
    if decision not in ("accept", "return"):
        return site.message(request, "无法提交", "请选择“认可”或“退回”。", 400)
    if decision == "return" and len(comment) < 2:
        return site.message(request, "无法退回", "退回时请填写审核意见，说明需要补充或修改的内容。", 400)
    if len(comment) > rc.MAX_TEXT:
        return site.message(request, "无法提交", f"审核意见不能超过{rc.MAX_TEXT}个字。", 400)
    try:
        with site.app.engine.begin() as conn:
            cases.review(conn, case_id, decision, comment, user, site.now())
    except LookupError:
        return site.message(request, "无法提交", "没有找到这项预警。", 404)
    except rc.IllegalTransition as exc:
        return site.message(request, "无法提交", f"{exc}。可能已有他人处理，请刷新页面。", 409)
    return RedirectResponse(f"/board?done={decision}#review", status_code=303)


def routes(site: Site) -> list[Route]:
    """Every bureau page, each behind the login."""
    return [
        Route("/board", guarded(site, board), methods=["GET"]),
        Route("/board/review", guarded_form(site, review), methods=["POST"]),
        Route("/board/project", guarded(site, project.page), methods=["GET"]),
        Route("/board/outbox", guarded(site, records.outbox), methods=["GET"]),
        Route("/board/reporting", guarded(site, progress.page), methods=["GET"]),
        Route("/board/exemptions", guarded(site, records.exemptions), methods=["GET"]),
        Route("/board/reports/{checkpoint}/{fmt}", guarded(site, records.report), methods=["GET"]),
    ]
