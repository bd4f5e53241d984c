"""The web pages, server-rendered: the unit page reached by a signed link (its projects, lights, reasons,
an answer form per open or returned warning, the history of its answers) and the bureau board behind a
login (lights by department and unit, answers to review, the overdue list). App and clock in, a
Starlette application out; every form carries a session-bound CSRF token.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from monitor import rectification as rc
from monitor import store
from monitor.app import App
from monitor.views import CAUSES, light, percent, period
from monitor.web import auth, cases

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the unit's link is its key: never leak it to another site
    "Cache-Control": "no-store",
}
STALE_FORM = "页面已过期或表单来源无法确认，请刷新页面后重新提交。"


class MissingSecret(RuntimeError):
    pass


def create_app(app: App, clock: Callable[[], dt.datetime] | None = None) -> Starlette:
    """The web application for `app`'s database and settings; `clock` (default app.clock) decides link
    expiry, deadlines and timestamps, so tests can move time."""
    web = app.settings.web
    secret = app.settings.web_secret
    if not secret:
        raise MissingSecret(f"set the environment variable {web.secret_env} to a long random secret")
    now = clock or app.clock
    zone = ZoneInfo(app.settings.time_zone)
    notes = app.settings.notifications
    env = Environment(
        loader=FileSystemLoader(str(Path(app.settings.templates_dir) / "web")),
        autoescape=True,
        undefined=StrictUndefined,
    )

    def page(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
        body = env.get_template(name).render(csrf=auth.csrf_token(request.session), **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def message(request: Request, title: str, text: str, status: int) -> HTMLResponse:
        return page(request, "message.html", {"title": title, "text": text}, status)

    def today() -> dt.date:
        return now().astimezone(zone).date()

    def scope_of(token: str) -> auth.Scope:
        return auth.read_token(secret, token, dt.timedelta(days=web.link_days), now())

    def case_view(c: dict[str, Any]) -> dict[str, Any]:
        opened = store.as_utc(c["opened_at"]).astimezone(zone).date()
        due = rc.deadline(opened, notes.response_working_days, notes.holidays, notes.extra_workdays)
        return {
            "id": c["id"],
            "checkpoint": c["checkpoint"],
            "period": period(c["checkpoint"]),
            "project_code": c["project_code"],
            "project_name": c["project_name"],
            "unit_code": c["unit_code"],
            "light": light(c["light"]),
            "state": c["state"],
            "state_word": rc.STATE_WORD[rc.State(c["state"])],
            "answerable": rc.allows(c["state"], rc.Event.ANSWER) and c["state"] != rc.State.ACCEPTED,
            "reviewable": rc.allows(c["state"], rc.Event.ACCEPT),
            "opened": opened.isoformat(),
            "deadline": due.isoformat(),
            "overdue": c["state"] in (rc.State.OPEN, rc.State.RETURNED) and due < today(),
            "answers": [
                {
                    "cause": a["cause"],
                    "explanation": a["explanation"],
                    "measure": rc.MEASURES.get(a["measure"], a["measure"]),
                    "measure_text": a["measure_text"],
                    "expected_date": str(a["expected_date"]),
                    "submitted_at": store.as_utc(a["submitted_at"])
                    .astimezone(zone)
                    .strftime("%Y-%m-%d %H:%M"),
                    "review": None
                    if a["review"] is None
                    else {
                        "decision": "认可" if a["review"]["decision"] == "accept" else "退回",
                        "comment": a["review"]["comment"],
                        "reviewer": a["review"]["reviewer"],
                        "at": store.as_utc(a["review"]["at"]).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                    },
                }
                for a in c["answers"]
            ],
        }

    def project_view(r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "code": r["project_code"],
            "name": r["project_name"],
            "light": light(r["light"]),
            "budget_light": light(r["budget_light"]),
            # no target light on a reported project: it has no indicator to judge
            "target_light": light(r["target_light"])
            if r["target_light"]
            else {**light("na"), "word": "无指标"},
            "rate": percent(r["execution_rate"]),
            "reasons": r["reasons"],
        }

    # --- unit page -------------------------------------------------------------------------------

    def unit_page(
        request: Request,
        token: str,
        scope: auth.Scope,
        errors: Mapping[int, list[str]] | None = None,
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with app.engine.connect() as conn:
            units = store.load_units(conn)
            results = store.load_results(conn, scope.checkpoint, unit=scope.unit_code)
            its = [
                case_view(c)
                for c in cases.cases(conn, unit_code=scope.unit_code)
                if c["checkpoint"] <= scope.checkpoint
            ]
        unit = units.get(scope.unit_code)
        return page(
            request,
            "unit.html",
            {
                "token": token,
                "unit_name": unit.name if unit else scope.unit_code,
                "unit_code": scope.unit_code,
                "period": period(scope.checkpoint),
                "projects": [project_view(r) for r in results],
                "cases": its,
                "causes": CAUSES,
                "measures": rc.MEASURES,
                "errors": errors or {},
                "values": values or {},
                "thanks": request.query_params.get("ok") == "1",
                "today": today().isoformat(),
            },
            status,
        )

    def bad_link(request: Request, exc: auth.BadLink) -> HTMLResponse:
        if exc.expired:
            text = "此链接已过期。请联系财政局预算绩效管理科重新获取链接。"
        else:
            text = "此链接无效（可能被修改或不完整）。请使用通知邮件中的原始链接。"
        return message(request, "链接无法使用", text, 403)

    async def unit_get(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = scope_of(token)
        except auth.BadLink as exc:
            return bad_link(request, exc)
        return unit_page(request, token, scope)

    async def unit_post(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = scope_of(token)
        except auth.BadLink as exc:
            return bad_link(request, exc)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return message(request, "无法提交", STALE_FORM, 403)
        try:
            case_id = int(fields.get("case_id", ""))
        except ValueError:
            return message(request, "无法提交", "表单不完整，请刷新页面后重新填写。", 400)
        answer = rc.parse_answer(fields, today())
        if isinstance(answer, list):
            return unit_page(request, token, scope, {case_id: answer}, fields, 400)
        try:
            with app.engine.begin() as conn:
                case = cases.get_case(conn, case_id)
                if (
                    case is None
                    or case["unit_code"] != scope.unit_code
                    or case["checkpoint"] > scope.checkpoint
                ):
                    raise LookupError(case_id)
                cases.submit_answer(conn, case_id, scope.unit_code, answer, now())
        except LookupError:
            return message(request, "无法提交", "没有找到这项预警，或它不属于本单位。", 404)
        except rc.IllegalTransition as exc:
            return unit_page(request, token, scope, {case_id: [f"{exc}。"]}, fields, 409)
        # committed above: only now does the page say thanks
        return RedirectResponse(f"/u/{token}?ok=1#case-{case_id}", status_code=303)

    # --- login ------------------------------------------------------------------------------------

    async def login_get(request: Request) -> Response:
        return page(request, "login.html", {"error": "", "name": ""})

    async def login_post(request: Request) -> Response:
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return message(request, "无法登录", STALE_FORM, 403)
        name, password = fields.get("name", "").strip(), fields.get("password", "")
        address = request.client.host if request.client else "?"
        window = dt.timedelta(minutes=web.login_window_minutes)
        with app.engine.begin() as conn:
            if auth.locked(conn, name, address, now(), web.login_max_failures, window):
                error = f"登录失败次数过多，请{web.login_window_minutes}分钟后再试。"
                return page(request, "login.html", {"error": error, "name": name}, 429)
            ok = bool(name) and auth.check_password(conn, name, password)
            auth.record_attempt(conn, name, address, ok, now())
        if not ok:
            return page(request, "login.html", {"error": "用户名或密码不正确。", "name": name}, 401)
        request.session.clear()
        request.session["user"] = name
        return RedirectResponse("/board", status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        sent = form.get("csrf")
        if not auth.csrf_ok(request.session, sent if isinstance(sent, str) else None):
            return message(request, "无法退出", STALE_FORM, 403)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- bureau board ----------------------------------------------------------------------------

    def user_of(request: Request) -> str | None:
        user = request.session.get("user")
        return user if isinstance(user, str) else None

    async def board(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        q = request.query_params
        with app.engine.connect() as conn:
            checkpoints = sorted(
                {r[0] for r in conn.execute(select(store.PROJECT_RESULT.c.checkpoint).distinct())},
                reverse=True,
            )
            checkpoint = q.get("checkpoint") or (checkpoints[0] if checkpoints else "")
            if checkpoint not in checkpoints:
                checkpoint = checkpoints[0] if checkpoints else ""
            units = store.load_units(conn)
            results = store.load_results(conn, checkpoint) if checkpoint else []
            every = [case_view(c) for c in cases.cases(conn)]
        want_light = q.get("light", "")
        text = q.get("q", "").strip()
        rows: dict[str, dict[str, Any]] = {}
        for r in results:
            unit = units.get(r["unit_code"])
            dept_code = (unit.supervisor_code if unit else None) or r["unit_code"]
            dept = units.get(dept_code)
            row = rows.setdefault(
                r["unit_code"],
                {
                    "dept": dept.name if dept else dept_code,
                    "unit_code": r["unit_code"],
                    "unit": unit.name if unit else r["unit_code"],
                    "counts": Counter(),
                    "warned": [],
                },
            )
            row["counts"][r["light"] or "none"] += 1
            if r["light"] in rc.WARNED:
                row["warned"].append(project_view(r))
        shown = []
        for row in sorted(rows.values(), key=lambda x: (x["dept"], x["unit_code"])):
            if text and text not in row["unit"] and text not in row["unit_code"] and text not in row["dept"]:
                continue
            if want_light in ("red", "yellow") and not row["counts"][want_light]:
                continue
            shown.append({**row, "counts": dict(row["counts"])})
        return page(
            request,
            "board.html",
            {
                "user": user,
                "checkpoints": checkpoints,
                "checkpoint": checkpoint,
                "period": period(checkpoint) if checkpoint else "",
                "light_filter": want_light,
                "q": text,
                "rows": shown,
                "to_review": [c for c in every if c["reviewable"]],
                "overdue": [c for c in every if c["overdue"]],
                "unit_names": {code: u.name for code, u in units.items()},
                "notice": q.get("done", ""),
                "error": "",
                "light": light,
            },
        )

    async def review(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return message(request, "无法提交", STALE_FORM, 403)
        decision, comment = fields.get("decision", ""), fields.get("comment", "").strip()
        try:
            case_id = int(fields.get("case_id", ""))
        except ValueError:
            return message(request, "无法提交", "表单不完整，请刷新页面后重新操作。", 400)
        if decision not in ("accept", "return"):
            return message(request, "无法提交", "请选择“认可”或“退回”。", 400)
        if decision == "return" and len(comment) < 2:
            return message(request, "无法退回", "退回时请填写审核意见，说明需要补充或修改的内容。", 400)
        if len(comment) > rc.MAX_TEXT:
            return message(request, "无法提交", f"审核意见不能超过{rc.MAX_TEXT}个字。", 400)
        try:
            with app.engine.begin() as conn:
                cases.review(conn, case_id, decision, comment, user, now())
        except LookupError:
            return message(request, "无法提交", "没有找到这项预警。", 404)
        except rc.IllegalTransition as exc:
            return message(request, "无法提交", f"{exc}。可能已有他人处理，请刷新页面。", 409)
        return RedirectResponse(f"/board?done={decision}#review", status_code=303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/board", status_code=303)

    routes = [
        Route("/", home),
        Route("/u/{token}", unit_get, methods=["GET"]),
        Route("/u/{token}", unit_post, methods=["POST"]),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/board", board, methods=["GET"]),
        Route("/board/review", review, methods=["POST"]),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="monitor_session",
            max_age=8 * 3600,
            same_site="lax",
            https_only=web.base_url.startswith("https://"),
        )
    ]
    return Starlette(routes=routes, middleware=middleware)
