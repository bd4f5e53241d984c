"""The bureau's login and logout: a CSRF-checked form, attempts limited per name and address, sessions
that every logout of the user ends. Site in, endpoints out; the password check and the database work
run in a worker thread, never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from monitor.web import auth, board
from monitor.web.site import STALE_FORM, Site, form_fields


@dataclass(frozen=True)
class LoginPages:
    site: Site

    def page(self, request: Request, error: str, name: str, after: str, status: int = 200) -> HTMLResponse:
        return self.site.page(request, "login.html", {"error": error, "name": name, "next": after}, status)

    def form(self, request: Request) -> Response:
        return self.page(request, "", "", board.safe_next(request.query_params.get("next")))

    def attempt(self, request: Request, fields: dict[str, str]) -> Response:
        """Check the name and password (after the delay earlier failures call for) and start a session."""
        site, web = self.site, self.site.app.settings.web
        if not auth.csrf_ok(request.session, fields.get("csrf")):
            return site.message(request, "无法登录", STALE_FORM, 403)
        name, password = fields.get("name", "").strip(), fields.get("password", "")
        after = board.safe_next(fields.get("next"))
        # the socket's peer, or the client a trusted proxy names (ProxyHeadersMiddleware in create_app)
        address = request.client.host if request.client else "?"
        window = dt.timedelta(minutes=web.login_window_minutes)
        with site.app.engine.begin() as conn:
            wait = auth.login_wait(conn, name, address, site.now(), window, web.login_max_delay_seconds)
            if wait > 0:  # refused unchecked and not counted: waiting out the delay is enough
                error = f"登录尝试过于频繁，请{math.ceil(wait)}秒后再试。"
                return self.page(request, error, name, after, 429)
            version = auth.check_password(conn, name, password) if name else None
            auth.record_attempt(conn, name, address, version is not None, site.now())
        if version is None:
            return self.page(request, "用户名或密码不正确。", name, after, 401)
        request.session.clear()
        request.session["user"] = name
        request.session["v"] = version
        return RedirectResponse(after, status_code=303)

    def end(self, request: Request, sent: str | None) -> Response:
        if not auth.csrf_ok(request.session, sent):
            return self.site.message(request, "无法退出", STALE_FORM, 403)
        user = request.session.get("user")
        if isinstance(user, str):
            with self.site.app.engine.begin() as conn:  # every session of the user ends, copies too
                if auth.session_valid(conn, user, request.session.get("v")):
                    auth.end_sessions(conn, user)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def get(self, request: Request) -> Response:
        return await run_in_threadpool(self.form, request)

    async def post(self, request: Request) -> Response:
        fields = form_fields((await request.form()).items())
        return await run_in_threadpool(self.attempt, request, fields)

    async def logout(self, request: Request) -> Response:
        sent = (await request.form()).get("csrf")
        return await run_in_threadpool(self.end, request, sent if isinstance(sent, str) else None)
