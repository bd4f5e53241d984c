"""What every page shares: the App, the clock and the Jinja2 environment in; rendered pages (with the
security headers and the session's CSRF token), local times and the flat view models of a warning case
and a project result out. Templates see only these dicts, never rows.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from monitor.app import App
from monitor.cases import rectification as rc
from monitor.core.rows import CaseAnswer, CaseRecord, ResultLine
from monitor.core.wording import light, percent, period
from monitor.core.workdays import as_utc
from monitor.web import auth

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the unit's link is its key: never leak it to another site
    "Cache-Control": "no-store",
}
STALE_FORM = "页面已过期或表单来源无法确认，请刷新页面后重新提交。"
UNIT_LINK = re.compile(r"/([urd])/[A-Za-z0-9_.\-]+")  # a signed link: a unit's or a department's


@dataclass
class Recent:
    """Bytes built lately (a checkpoint's report), by key: a second request within `ttl` seconds gets
    them at once, and two requests at the same time build them once. At most `size` entries are kept."""

    ttl: float = 600.0
    size: int = 4
    entries: dict[Hashable, tuple[float, bytes]] = field(default_factory=dict)
    gates: dict[Hashable, threading.Lock] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        with self.lock:
            gate = self.gates.setdefault(key, threading.Lock())
        with gate:
            with self.lock:
                hit = self.entries.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            body = build()
            with self.lock:
                self.entries[key] = (time.monotonic(), body)
                while len(self.entries) > self.size:
                    del self.entries[min(self.entries, key=lambda k: self.entries[k][0])]
            return body


@dataclass
class Site:
    app: App
    now: Callable[[], dt.datetime]
    env: Environment
    zone: ZoneInfo
    reports: Recent = field(default_factory=Recent)

    @classmethod
    def make(cls, app: App, now: Callable[[], dt.datetime]) -> Site:
        env = ImmutableSandboxedEnvironment(  # templates are content, never code
            loader=FileSystemLoader(str(Path(app.settings.templates_dir) / "web")),
            autoescape=True,
            undefined=StrictUndefined,
        )
        return cls(app, now, env, ZoneInfo(app.settings.time_zone))

    # --- responses ----------------------------------------------------------------------------------

    def page(
        self, request: Request, name: str, context: Mapping[str, Any], status: int = 200
    ) -> HTMLResponse:
        body = self.env.get_template(name).render(csrf=auth.csrf_token(request.session), **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def message(self, request: Request, title: str, text: str, status: int) -> HTMLResponse:
        return self.page(request, "message.html", {"title": title, "text": text}, status)

    # --- time -----------------------------------------------------------------------------------------

    def today(self) -> dt.date:
        return self.now().astimezone(self.zone).date()

    def local(self, moment: dt.datetime | None) -> str:
        """A stored (UTC) timestamp as local 'YYYY-MM-DD HH:MM+08:00'; '' for None."""
        return "" if moment is None else as_utc(moment).astimezone(self.zone).isoformat(" ", "minutes")

    def deadline(self, opened_at: dt.datetime) -> dt.date:
        """The answer deadline the warning e-mail announced: N working days after the (local) day of the
        run that opened the case
        (monitor.notify.messages.options computes the same date from the same day)."""
        notes = self.app.settings.notifications
        opened = as_utc(opened_at).astimezone(self.zone).date()
        return rc.deadline(opened, notes.response_working_days, notes.holidays, notes.extra_workdays)

    # --- secrets --------------------------------------------------------------------------------------

    def redact(self, text: str | None) -> str:
        """`text` (an SMTP error, an attempt's detail) with the configured secrets and any unit link
        token replaced by ***: a board page never shows them."""
        if not text:
            return ""
        s = self.app.settings
        for secret in (s.smtp_password, s.web_secret):
            if secret:
                text = text.replace(secret, "***")
        return UNIT_LINK.sub(r"/\1/***", text)

    # --- view models -----------------------------------------------------------------------------------

    def case_view(self, c: CaseRecord) -> dict[str, Any]:
        opened = as_utc(c["opened_at"]).astimezone(self.zone).date()
        due = self.deadline(c["opened_at"])
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
            "opened_at": self.local(c["opened_at"]),
            "resolved_checkpoint": c.get("resolved_checkpoint"),
            "updated_at": self.local(c.get("updated_at")),
            "deadline": due.isoformat(),
            "overdue": c["state"] in (rc.State.OPEN, rc.State.RETURNED) and due < self.today(),
            "answers": [self.answer_view(a) for a in c["answers"]],
        }

    def answer_view(self, a: CaseAnswer) -> dict[str, Any]:
        r = a["review"]
        return {
            "cause": a["cause"],
            "explanation": a["explanation"],
            "measure": rc.MEASURES.get(a["measure"], a["measure"]),
            "measure_text": a["measure_text"],
            "expected_date": str(a["expected_date"]),
            "submitted_at": self.local(a["submitted_at"]),
            "channel": a.get("channel") or "web",
            "review": None
            if r is None
            else {
                "decision": "认可" if r["decision"] == "accept" else "退回",
                "comment": r["comment"],
                "reviewer": r["reviewer"],
                "at": self.local(r["at"]),
            },
        }


def project_view(r: ResultLine) -> dict[str, Any]:
    """A stored project result (load_results' shape, or the board's narrower rows) for a table row."""
    return {
        "code": r["project_code"],
        "name": r["project_name"],
        "unit_code": r["unit_code"],
        "light": light(r["light"]),
        "budget_light": light(r["budget_light"]),
        # no target light on a reported project: it has no indicator to judge
        "target_light": light(r["target_light"]) if r["target_light"] else {**light("na"), "word": "无指标"},
        "rate": percent(r["execution_rate"]),
        "reasons": r["reasons"],
    }


def user_of(request: Request) -> str | None:
    user = request.session.get("user")
    return user if isinstance(user, str) else None


def form_fields(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    return {k: v for k, v in items if isinstance(v, str)}
