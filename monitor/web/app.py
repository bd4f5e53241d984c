"""The web application, server-rendered: the unit page reached by a signed link (monitor.web.unit), the
login (monitor.web.login), and the bureau board behind it (monitor.web.board: lights by department and
unit, drill-down to a project's explanation, deliveries, answers to review, the overdue list,
exemptions, reports). App and clock in, a Starlette application out; every form carries a
session-bound CSRF token, and every handler does its database and template work in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from monitor.app import App
from monitor.config.settings import WebConfig
from monitor.core.errors import BadInput
from monitor.web import board, review
from monitor.web.login import LoginPages
from monitor.web.report import ReportPages
from monitor.web.site import Site
from monitor.web.unit import UnitPages


class MissingSecret(BadInput):
    pass


def create_app(app: App, clock: Callable[[], dt.datetime] | None = None) -> Starlette:
    """The web application for `app`'s database and settings; `clock` (default app.clock) decides link
    expiry, deadlines and timestamps, so tests can move time."""
    web = app.settings.web
    secret = app.settings.web_secret
    if not secret:
        raise MissingSecret(f"set the environment variable {web.secret_env} to a long random secret")
    site = Site.make(app, clock or app.clock)
    return Starlette(routes=routes(site, secret), middleware=middleware(web, secret))


async def home(request: Request) -> Response:
    return RedirectResponse("/board", status_code=303)


def routes(site: Site, secret: str) -> list[Route]:
    """Every page: the unit pages (signed links), the login, and the bureau board behind it."""
    unit, login, report = UnitPages(site, secret), LoginPages(site), ReportPages(site, secret)
    return [
        Route("/", home),
        Route("/u/{token}", unit.get, methods=["GET"]),
        Route("/u/{token}", unit.post, methods=["POST"]),
        Route("/r/{token}", report.get, methods=["GET"]),
        Route("/r/{token}", report.post, methods=["POST"]),
        Route("/r/{token}/light", report.light, methods=["POST"]),
        Route("/r/{token}/upload", report.upload, methods=["POST"]),  # a filled workbook instead of typing
        Route("/static/report.js", report.script, methods=["GET"]),
        Route("/login", login.get, methods=["GET"]),
        Route("/login", login.post, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        *board.routes(site),
        *review.routes(site, secret),
    ]


def middleware(web: WebConfig, secret: str) -> list[Middleware]:
    return [
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
