"""The department's review page (主管部门审核): its units' projects at a checkpoint with their report
state, the numbers reported and the light they would get; a submitted report returned with a comment
(the unit is e-mailed the comment and its reporting link, queued in the same transaction) or approved.
Reached by the department's signed link /d/<token> (a unit's link never opens it) or from the bureau
board (/board/department/<code>?checkpoint=YYYY-MM, behind the login). Database work runs in a worker
thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from monitor.core import links
from monitor.core.model import Checkpoint
from monitor.core.wording import period, wan
from monitor.db.inputs import load_units
from monitor.ingest import reporting, review
from monitor.ingest.prospect import prospects
from monitor.notify.returned import queue_returned, returned_notice
from monitor.rules.policy import Policies
from monitor.web import auth
from monitor.web.board import guarded, guarded_form
from monitor.web.report import prospect_view
from monitor.web.signed import SignedPages
from monitor.web.site import STALE_FORM, Site, form_fields

DONE = {"returned": "已退回，并已通知该单位。", "approved": "已审核通过。"}


@dataclass(frozen=True)
class Desk:
    """One department at one checkpoint, acted on by `by` (department:CODE or bureau:USER); `base` is
    the page's own address (its form posts there, its decisions come back there)."""

    department: str
    checkpoint: str
    by: str
    base: str


def _project_view(form: reporting.ProjectForm, unit_name: str, seen: dict[str, object]) -> dict[str, object]:
    code, v, key = form.project.code, form.values, reporting.key
    indicators = [
        {
            "name": i.name,
            "target": f"{i.direction.value}{i.target}{i.measure_unit or ''}",
            "actual": v.get(key(code, "actual", i.code), ""),
            "possibility": v.get(key(code, "possibility", i.code), ""),
        }
        for i in form.indicators
    ]
    return {
        "code": code,
        "name": form.project.name,
        "unit_name": unit_name,
        "state": form.state,
        "state_word": reporting.STATE_WORDS[form.state],
        "budget": wan(form.project.budget),
        "executed": v.get(key(code, "executed"), ""),
        "forecast": v.get(key(code, "forecast_executed"), ""),
        "indicators": indicators,
        "comment": form.comment,
        "prospect": seen,
    }


def page(
    site: Site, request: Request, desk: Desk, problems: Mapping[str, list[str]], status: int
) -> Response:
    with site.app.engine.connect() as conn:
        if not review.is_department(conn, desk.department):
            return site.message(request, "没有找到主管部门", "没有单位以此为主管部门。", 404)
        groups = review.load_department(conn, desk.checkpoint, desk.department)
        units = load_units(conn, {desk.department})
    cp, policies = Checkpoint.parse(desk.checkpoint), Policies(site.app.rules())
    listed = []
    for g in groups:
        live = prospects(policies, cp, g.forms, {g.unit.code: g.unit})
        for f in g.forms:
            listed.append(_project_view(f, g.unit.name, prospect_view(live[f.project.code])))
    dept = units.get(desk.department)
    context = {
        "department_name": dept.name if dept else desk.department,
        "period": period(desk.checkpoint),
        "month": cp.month,
        "action": desk.base,
        "projects": listed,
        "problems": problems,
        "done": DONE.get(request.query_params.get("ok", ""), ""),
    }
    return site.page(request, "review.html", context, status)


def decide(site: Site, request: Request, desk: Desk, fields: Mapping[str, str]) -> Response:
    """退回 (comment required) or 审核通过 one submitted project of the department's units."""
    if not auth.csrf_ok(request.session, fields.get("csrf")):
        return site.message(request, "无法提交", STALE_FORM, 403)
    project, decision = fields.get("project", ""), fields.get("decision", "")
    comment = fields.get("comment", "").strip()
    if decision == "return" and not comment:
        return page(site, request, desk, {project: ["退回时请填写退回意见，说明需要修改的内容。"]}, 400)
    if decision not in ("return", "approve"):
        return page(site, request, desk, {project: ["请选择“退回”或“审核通过”。"]}, 400)
    with site.app.engine.connect() as conn:
        codes = [u.code for u in review.department_units(conn, desk.department)]
    try:
        if decision == "return":
            _return(site, desk, project, codes, comment)
        else:
            counts_when = site.app.settings.reporting.counts_when
            engine, now = site.app.engine, site.now()
            found = review.approve(engine, desk.checkpoint, project, codes, now, desk.by, counts_when)
            if found:
                return page(site, request, desk, {project: found}, 400)
    except review.Gone:
        text = "该项目的填报不在待审核状态（可能已有他人处理，或不属于本部门）。请刷新页面。"
        return site.message(request, "无法提交", text, 409)
    done = review.RETURNED if decision == "return" else review.APPROVED
    return RedirectResponse(f"{desk.base}{'&' if '?' in desk.base else '?'}ok={done}", 303)


def _return(site: Site, desk: Desk, project: str, codes: list[str], comment: str) -> None:
    """The return and its e-mail in one transaction; tried once more if another message to the same
    unit was queued meanwhile (uq_outbox_once: the first try left nothing behind)."""
    app, now = site.app, site.now()
    templates = app.templates()
    for attempt in (1, 2):
        try:
            with app.engine.begin() as conn:
                cp, by = desk.checkpoint, desk.by
                unit_code, name = review.return_report(conn, cp, project, codes, comment, now, by)
                units = load_units(conn, {unit_code, desk.department})
                dept = units.get(desk.department)
                notice = returned_notice(
                    app.settings,
                    desk.checkpoint,
                    units[unit_code],
                    dept.name if dept else desk.department,
                    (project, name),
                    comment.strip()[: review.MAX_COMMENT],
                    now,
                )
                queue_returned(conn, app.settings, templates, notice, now)
            return
        except IntegrityError:
            if attempt == 2:
                raise


@dataclass(frozen=True)
class ReviewPages(SignedPages):
    """The department's pages reached by its signed link."""

    kind = links.DEPARTMENT

    def _desk(self, token: str) -> Desk:
        scope = self.scope_of(token)
        return Desk(scope.unit_code, scope.checkpoint, f"department:{scope.unit_code}", f"/d/{token}")

    def show(self, request: Request, fields: Mapping[str, str] | None) -> Response:
        try:
            desk = self._desk(request.path_params["token"])
        except links.BadLink as exc:
            return self.bad_link(request, exc)
        if fields is None:
            return page(self.site, request, desk, {}, 200)
        return decide(self.site, request, desk, fields)

    async def get(self, request: Request) -> Response:
        return await run_in_threadpool(self.show, request, None)

    async def post(self, request: Request) -> Response:
        fields = form_fields((await request.form()).items())
        return await run_in_threadpool(self.show, request, fields)


def _board_desk(request: Request, user: str) -> Desk | None:
    code, checkpoint = request.path_params["code"], request.query_params.get("checkpoint", "")
    try:
        Checkpoint.parse(checkpoint)
    except ValueError:
        return None
    return Desk(code, checkpoint, f"bureau:{user}", f"/board/department/{code}?checkpoint={checkpoint}")


def board_page(site: Site, request: Request, user: str) -> Response:
    desk = _board_desk(request, user)
    if desk is None:
        return site.message(request, "无法打开", "请从看板选择监控批次后再打开主管部门审核页面。", 400)
    return page(site, request, desk, {}, 200)


def board_decide(site: Site, request: Request, user: str, fields: dict[str, str]) -> Response:
    desk = _board_desk(request, user)
    if desk is None:
        return site.message(request, "无法打开", "请从看板选择监控批次后再打开主管部门审核页面。", 400)
    return decide(site, request, desk, fields)


def routes(site: Site, secret: str) -> list[Route]:
    pages = ReviewPages(site, secret)
    return [
        Route("/d/{token}", pages.get, methods=["GET"]),
        Route("/d/{token}", pages.post, methods=["POST"]),
        Route("/board/department/{code}", guarded(site, board_page), methods=["GET"]),
        Route("/board/department/{code}", guarded_form(site, board_decide), methods=["POST"]),
    ]
