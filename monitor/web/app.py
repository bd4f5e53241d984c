"""The web pages, server-rendered: the unit page reached by a signed link (its projects, lights, reasons,
an answer form per open or returned warning, the history of its answers), the login, and the bureau
board behind it (monitor.web.board: lights by department and unit, drill-down to a project's
explanation, deliveries, answers to review, the overdue list, exemptions, reports). App and clock in, a
Starlette application out; every form carries a session-bound CSRF token.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from monitor.app import App
from monitor.cases import rectification as rc
from monitor.cases import store as cases
from monitor.cases.rectification import CAUSES
from monitor.core import links
from monitor.core.wording import period
from monitor.db import store
from monitor.web import auth, board
from monitor.web.site import STALE_FORM, Site, form_fields, project_view


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
    site = Site.make(app, now)

    def scope_of(token: str) -> links.Scope:
        return links.read_token(secret, token, dt.timedelta(days=web.link_days), now())

    # --- unit page -------------------------------------------------------------------------------

    def unit_page(
        request: Request,
        token: str,
        scope: links.Scope,
        errors: Mapping[int, list[str]] | None = None,
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with app.engine.connect() as conn:
            units = store.load_units(conn)
            results = store.load_results(conn, scope.checkpoint, unit=scope.unit_code)
            its = [
                site.case_view(c)
                for c in cases.cases(conn, unit_code=scope.unit_code)
                if c["checkpoint"] <= scope.checkpoint
            ]
        unit = units.get(scope.unit_code)
        return site.page(
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
                "today": site.today().isoformat(),
            },
            status,
        )

    def bad_link(request: Request, exc: links.BadLink) -> HTMLResponse:
        if exc.expired:
            text = "此链接已过期。请联系财政局预算绩效管理科重新获取链接。"
        else:
            text = "此链接无效（可能被修改或不完整）。请使用通知邮件中的原始链接。"
        return site.message(request, "链接无法使用", text, 403)

    async def unit_get(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = scope_of(token)
        except links.BadLink as exc:
            return bad_link(request, exc)
        return unit_page(request, token, scope)

    async def unit_post(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            scope = scope_of(token)
        except links.BadLink as exc:
            return bad_link(request, exc)
        form = await request.form()
        fields = form_fields(form.items())
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return site.message(request, "无法提交", STALE_FORM, 403)
        try:
            case_id = int(fields.get("case_id", ""))
        except ValueError:
            return site.message(request, "无法提交", "表单不完整，请刷新页面后重新填写。", 400)
        answer = rc.parse_answer(fields, site.today())
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
            return site.message(request, "无法提交", "没有找到这项预警，或它不属于本单位。", 404)
        except rc.IllegalTransition as exc:
            return unit_page(request, token, scope, {case_id: [f"{exc}。"]}, fields, 409)
        # committed above: only now does the page say thanks
        return RedirectResponse(f"/u/{token}?ok=1#case-{case_id}", status_code=303)

    # --- login ------------------------------------------------------------------------------------

    def login_page(request: Request, error: str, name: str, after: str, status: int = 200) -> HTMLResponse:
        return site.page(request, "login.html", {"error": error, "name": name, "next": after}, status)

    async def login_get(request: Request) -> Response:
        return login_page(request, "", "", board.safe_next(request.query_params.get("next")))

    async def login_post(request: Request) -> Response:
        form = await request.form()
        fields = form_fields(form.items())
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return site.message(request, "无法登录", STALE_FORM, 403)
        name, password = fields.get("name", "").strip(), fields.get("password", "")
        after = board.safe_next(fields.get("next"))
        # the socket's peer, or the client a trusted proxy names (ProxyHeadersMiddleware below)
        address = request.client.host if request.client else "?"
        window = dt.timedelta(minutes=web.login_window_minutes)
        with app.engine.begin() as conn:
            wait = auth.login_wait(conn, name, address, now(), window, web.login_max_delay_seconds)
            if wait > 0:  # refused unchecked and not counted: waiting out the delay is enough
                error = f"登录尝试过于频繁，请{math.ceil(wait)}秒后再试。"
                return login_page(request, error, name, after, 429)
            version = auth.check_password(conn, name, password) if name else None
            auth.record_attempt(conn, name, address, version is not None, now())
        if version is None:
            return login_page(request, "用户名或密码不正确。", name, after, 401)
        request.session.clear()
        request.session["user"] = name
        request.session["v"] = version
        return RedirectResponse(after, status_code=303)

    async def logout(request: Request) -> Response:
        form = await request.form()
        sent = form.get("csrf")
        if not auth.csrf_ok(request.session, sent if isinstance(sent, str) else None):
            return site.message(request, "无法退出", STALE_FORM, 403)
        user = request.session.get("user")
        if isinstance(user, str):
            with app.engine.begin() as conn:  # every session of the user ends, copies of this one too
                if auth.session_valid(conn, user, request.session.get("v")):
                    auth.end_sessions(conn, user)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def home(request: Request) -> Response:
        return RedirectResponse("/board", status_code=303)

    routes = [
        Route("/", home),
        Route("/u/{token}", unit_get, methods=["GET"]),
        Route("/u/{token}", unit_post, methods=["POST"]),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        *board.routes(site),
    ]
    middleware = [
        # X-Forwarded-For believed from the configured proxies only (none by default)
        *(
            [Middleware(ProxyHeadersMiddleware, trusted_hosts=[str(p) for p in web.trusted_proxies])]
            if web.trusted_proxies
            else []
        ),
        Middleware(
            SessionMiddleware,
            secret_key=secret,
            session_cookie="monitor_session",
            max_age=8 * 3600,
            same_site="lax",
            https_only=web.base_url.startswith("https://"),
        ),
    ]
    return Starlette(routes=routes, middleware=middleware)
