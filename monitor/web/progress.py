"""The bureau's reporting progress page (/board/reporting, after the login): for a checkpoint, each
supervising department's and unit's projects, how many have a report that counts, the states of the
reports on the units' pages (草稿 / 已送审 / 已退回 / 已审核), the units still missing reports (overdue once
the deadline has passed), and the reports submitted or approved after the checkpoint's last run."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from monitor.core.model import Checkpoint
from monitor.core.wording import period
from monitor.core.workdays import chinese_date
from monitor.db.inputs import load_units
from monitor.ingest.extensions import deadline_of, extensions
from monitor.ingest.progress import after_the_run, progress
from monitor.ingest.reporting import STATE_WORDS
from monitor.notify.messages import report_deadline
from monitor.web.site import Site


def default_checkpoint(site: Site) -> Checkpoint:
    """The latest configured checkpoint whose month has ended."""
    today, months = site.today(), sorted(site.app.settings.checkpoint_months)
    ended = [Checkpoint(y, m) for y in (today.year, today.year - 1) for m in months]
    return max(c for c in ended if c.end_date < today)


def page(site: Site, request: Request, user: str) -> Response:
    wanted = request.query_params.get("checkpoint", "")
    try:
        cp = Checkpoint.parse(wanted) if wanted else default_checkpoint(site)
    except ValueError:
        return site.message(request, "无法显示", f"监控期“{wanted[:20]}”无效，应为 YYYY-MM。", 400)
    with site.app.engine.connect() as conn:
        units = load_units(conn)
        by_unit = progress(conn, str(cp))
        late = after_the_run(conn, str(cp))
        granted = extensions(conn, str(cp))
    deadline = report_deadline(site.app.settings, cp)
    overdue = site.today() > deadline
    today = site.today()
    groups: dict[str, dict[str, Any]] = {}
    for code, p in sorted(by_unit.items()):
        unit = units.get(code)
        dept = (unit.supervisor_code if unit else None) or code
        name = units[dept].name if dept in units else dept
        g = groups.setdefault(dept, {"code": dept, "name": name, "units": []})
        behind = today > deadline_of(code, deadline, granted) and p.missing > 0
        row = {
            "code": code,
            "name": unit.name if unit else code,
            "p": p,
            "late": behind,
            "extended": granted.get(code),
        }
        g["units"].append(row)
    for g in groups.values():
        g["projects"] = sum(u["p"].projects for u in g["units"])
        g["reported"] = sum(u["p"].reported for u in g["units"])
    return site.page(
        request,
        "progress.html",
        {
            "user": user,
            "active": "reporting",
            "checkpoint": str(cp),
            "period": period(str(cp)),
            "deadline": chinese_date(deadline),
            "overdue": overdue,
            "groups": sorted(groups.values(), key=lambda g: g["code"]),
            "states": [(k, v) for k, v in STATE_WORDS.items() if k],
            "after_run": late,
            "missing_units": sum(1 for g in groups.values() for u in g["units"] if u["p"].missing),
        },
    )
