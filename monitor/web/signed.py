"""Pages reached by a signed link (a unit's /u/<token> to answer warnings and /r/<token> to report, a
department's /d/<token> to review): the link read into its scope (one unit or department, one
checkpoint) or refused, expired, altered or of the other kind, with a page that says which."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from monitor.core import links
from monitor.web.site import Site

Act = Callable[[Request, str, links.Scope, dict[str, str]], Response]  # a POST's work, in a worker thread


def form_values(items: Iterable[tuple[str, object]]) -> dict[str, str]:
    """The posted fields; a field sent several times (the reporting page's 偏差原因 boxes) joined by '；'."""
    out: dict[str, str] = {}
    for k, v in items:
        if isinstance(v, str):
            out[k] = f"{out[k]}；{v}" if k in out and k.endswith("|causes") else v
    return out


@dataclass(frozen=True)
class SignedPages:
    site: Site
    secret: str
    kind: ClassVar[str] = links.UNIT  # the scope these pages open: a unit's link, or a department's

    def scope_of(self, token: str) -> links.Scope:
        days = dt.timedelta(days=self.site.app.settings.web.link_days)
        return links.read_token(self.secret, token, days, self.site.now(), self.kind)

    def bad_link(self, request: Request, exc: links.BadLink) -> HTMLResponse:
        if exc.expired:
            text = "此链接已过期。请联系财政局预算绩效管理科重新获取链接。"
        else:
            text = "此链接无效（可能被修改或不完整）。请使用通知邮件中的原始链接。"
        return self.site.message(request, "链接无法使用", text, 403)

    async def posted(self, request: Request, act: Act) -> Response:
        """A form posted to a signed link: the link read (refused when bad), the fields read, then `act`
        in a worker thread, never on the event loop."""
        token = request.path_params["token"]
        try:
            scope = self.scope_of(token)
        except links.BadLink as exc:
            return await run_in_threadpool(self.bad_link, request, exc)
        fields = form_values((await request.form()).multi_items())
        return await run_in_threadpool(act, request, token, scope, fields)
