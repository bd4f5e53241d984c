"""The board's records of a checkpoint: its messages by status with the failed (and retrying) deliveries
and every attempt, never a message's text or a secret; the exemptions in force (read only: they are
granted and revoked elsewhere); and its Excel and HTML reports, generated on request from the stored
results, so no file path ever comes from a request.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from monitor.core.wording import period
from monitor.db.inputs import load_units
from monitor.reports.data import NoResults
from monitor.reports.write import FORMATS, Format, default_name, write_report
from monitor.web import queries
from monitor.web.project import KIND, STATUS
from monitor.web.site import HEADERS, Site

OUTCOME = {
    "sent": "已送达",
    "transient": "暂时失败，稍后重试",
    "permanent": "永久失败",
    "partial": "部分收件人拒收",
    "released": "中断后重新排队",
}
RECIPIENT = {"pending": "待重试", "sent": "已送达", "failed": "拒收"}
MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
}


def outbox(site: Site, request: Request, user: str) -> Response:
    q = request.query_params
    with site.app.engine.connect() as conn:
        known = queries.checkpoints(conn)
        checkpoint = q.get("checkpoint", "") if q.get("checkpoint") in known else (known[0] if known else "")
        counts = queries.outbox_counts(conn, checkpoint) if checkpoint else {"*": Counter()}
        trouble = queries.troubled(conn, checkpoint) if checkpoint else []
        names = {code: u.name for code, u in load_units(conn).items()}
    total = counts.pop("*")
    rows = [
        {
            "id": m["id"],
            "kind": KIND.get(m["kind"], m["kind"]),
            "unit": names.get(m["unit_code"], m["unit_code"]) if m["unit_code"] else "财政局",
            "recipients": m["recipients"].replace(";", "; "),
            "recipient_states": [
                {
                    "address": a,
                    "status": RECIPIENT.get(st, st),
                    "answer": site.redact(ans) if st != "sent" else "",
                }
                for a, st, ans in m["recipient_states"]
            ],
            "subject": m["subject"],
            "status": STATUS.get(m["status"], m["status"]),
            "failed": m["status"] in ("failed", "partial"),
            "attempts": m["attempts"],
            "last_error": site.redact(m["last_error"]),
            "next_attempt_at": site.local(m["next_attempt_at"]) if m["status"] == "pending" else "",
            "tries": [
                {
                    "at": site.local(a["at"]),
                    "outcome": OUTCOME.get(a["outcome"], a["outcome"]),
                    "detail": site.redact(a["detail"]),
                }
                for a in m["tries"]
            ],
        }
        for m in trouble
    ]
    return site.page(
        request,
        "outbox.html",
        {
            "user": user,
            "active": "outbox",
            "checkpoints": known,
            "checkpoint": checkpoint,
            "period": period(checkpoint) if checkpoint else "",
            "statuses": STATUS,
            "total": dict(total),
            "by_kind": [(KIND.get(k, k), dict(c)) for k, c in sorted(counts.items())],
            "rows": rows,
            "failed": sum(1 for r in rows if r["failed"]),
        },
    )


def exemptions(site: Site, request: Request, user: str) -> Response:
    everything = request.query_params.get("all") == "1"
    today = site.today()
    with site.app.engine.connect() as conn:
        known = queries.checkpoints(conn)
        found = queries.exemptions(conn, today, everything)
        names = {code: u.name for code, u in load_units(conn).items()}
    rows = []
    for x in found:
        if x["revoked_at"] is not None:
            state = f"已撤销（{x['revoked_by'] or ''}，{site.local(x['revoked_at'])}）"
        elif x["expires_on"] < today:
            state = "已到期"
        else:
            state = "有效"
        rows.append(
            {
                "project_code": x["project_code"],
                "project_name": x["project_name"] or "（项目不在库中）",
                "unit": names.get(x["unit_code"], x["unit_code"] or ""),
                "reason": x["reason"],
                "approver": x["approver"],
                "expires_on": x["expires_on"].isoformat(),
                "created": f"{x['created_by']}，{site.local(x['created_at'])}",
                "state": state,
                "active": state == "有效",
            }
        )
    return site.page(
        request,
        "exemptions.html",
        {
            "user": user,
            "active": "exemptions",
            "checkpoint": known[0] if known else "",
            "everything": everything,
            "rows": rows,
            "today": today.isoformat(),
        },
    )


def build_report(site: Site, checkpoint: str, fmt: Format) -> bytes:
    """The report written into a private temporary folder under a fixed name, returned as bytes."""
    with tempfile.TemporaryDirectory(prefix="monitor-report-") as tmp:
        return write_report(site.app, checkpoint, fmt, Path(tmp) / f"report.{fmt}").read_bytes()


def report(site: Site, request: Request, user: str) -> Response:
    checkpoint, fmt = request.path_params["checkpoint"], request.path_params["fmt"]
    with site.app.engine.connect() as conn:
        known = queries.checkpoints(conn)
        run = queries.last_run(conn, checkpoint) if checkpoint in known else None
    if fmt not in FORMATS or checkpoint not in known:  # only names we made: no path from the request
        return site.message(request, "没有这份报告", "请从看板上的报告链接下载。", 404)
    kind: Format = "xlsx" if fmt == "xlsx" else "html"
    try:  # a large Excel list takes a while: build it once per run, not once per click
        body = site.reports.get((checkpoint, kind, run), lambda: build_report(site, checkpoint, kind))
    except NoResults:
        return site.message(request, "没有这份报告", f"{checkpoint} 没有监控结果。", 404)
    name = default_name(kind, checkpoint)
    how = "attachment" if kind == "xlsx" else "inline"
    disposition = f"{how}; filename=\"report-{checkpoint}.{kind}\"; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=MEDIA[kind], headers={**HEADERS, "Content-Disposition": disposition})
