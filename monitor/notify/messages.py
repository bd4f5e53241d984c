"""From decisions to outbox rows: Notices in, rendered and serialised messages out (one row each,
with a stable Message-ID, the recipients, the reason and the snapshot of what it states), ready to
be persisted before anything is sent. Also the deadlines a message announces.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from email.utils import make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config.settings import Settings
from monitor.core.links import Scope, report_link, unit_link
from monitor.core.model import Checkpoint
from monitor.core.workdays import add_working_days, as_utc
from monitor.ingest import responses as import_responses
from monitor.notify import wire
from monitor.notify.decide import Notice
from monitor.notify.options import Options
from monitor.notify.render import Templates


def options(settings: Settings, checkpoint: Checkpoint, now: dt.datetime) -> Options:
    """Deadlines and switches for one run: answers due N working days after the run (local date), late
    reports (once the report deadline has passed) M working days after it."""
    n = settings.notifications
    today = now.astimezone(ZoneInfo(settings.time_zone)).date()
    return Options(
        response_deadline=add_working_days(today, n.response_working_days, n.holidays, n.extra_workdays),
        report_deadline=report_deadline(settings, checkpoint),
        response_working_days=n.response_working_days,
        bureau_name=settings.mail.from_name,
        bureau_recipients=settings.mail.bureau_recipients,
        cc_supervisor_on_red=n.cc_supervisor_on_red,
        send_all_clear=n.send_all_clear,
        top_red=n.top_red,
        summary_rows=n.summary_rows,
        today=today,
        late_report_deadline=add_working_days(
            today, n.late_report_working_days, n.holidays, n.extra_workdays
        ),
        late_report_working_days=n.late_report_working_days,
    )


def report_deadline(settings: Settings, checkpoint: Checkpoint) -> dt.date:
    """The units' report deadline from the checkpoint's schedule (month end + 10 days if unscheduled)."""
    plans = [c for c in settings.schedule.checkpoints if c.month == checkpoint.month]
    days = plans[0].report_deadline_days if plans else 10
    return checkpoint.end_date + dt.timedelta(days=days)


def response_link(settings: Settings, unit_code: str, checkpoint: str) -> str:
    """The unit's signed, expiring link to answer its warnings on the web ("" without a signing secret)."""
    if not settings.web_secret:
        return ""
    return unit_link(settings.web.base_url, settings.web_secret, Scope(unit_code, checkpoint))


def reporting_link(settings: Settings, unit_code: str, checkpoint: str) -> str:
    """The unit's signed link to its reporting page (填报) for `checkpoint` ("" without a signing secret)."""
    if not settings.web_secret or not unit_code:
        return ""
    return report_link(settings.web.base_url, settings.web_secret, Scope(unit_code, checkpoint))


REPORTED_THROUGH = ("task", "reminder", "overdue")  # the kinds that ask a unit to report: with its link


def message_id_domain(settings: Settings) -> str:
    """The Message-ID's domain: the sender's (mail.from_address), unless mail.message_id_domain is set."""
    mail = settings.mail
    if "message_id_domain" in mail.model_fields_set:
        return mail.message_id_domain
    return mail.from_address.rpartition("@")[2].encode("idna").decode("ascii")


# The kinds someone answers (a unit its warning and 催办, a department its 督办): Reply-To the bureau's
# mailbox (mail.reply_address), and the way to answer in the body.
ANSWERED = ("warning", "case_reminder", "case_escalation")


def how_to_answer(
    notice: Notice, checkpoint: str, settings: Settings, now: dt.datetime
) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """`notice`'s view with the way to answer, and the files that takes: the unit's signed link when the
    web part is configured (a signing secret), else the mailbox to reply to with the answer workbook,
    attached to a warning (import_responses.warning_workbook) and named in a 催办."""
    view = {**notice.view, "reply_to": settings.mail.reply_address}
    if notice.kind == "case_escalation":
        return view, []
    unit = notice.unit_code or ""
    link = view.get("response_link") or response_link(settings, unit, checkpoint)
    view |= {"response_link": link, "workbook": ""}
    if link:
        return view, []
    if notice.kind != "warning":
        return view | {"workbook": import_responses.workbook_name(unit, checkpoint)}, []
    today = as_utc(now).astimezone(ZoneInfo(settings.time_zone)).date()
    workbook = import_responses.warning_workbook(view, today)
    return (view | {"workbook": workbook[0]}, [workbook]) if workbook else (view, [])


def compose(
    notice: Notice,
    checkpoint: str,
    templates: Templates,
    settings: Settings,
    now: dt.datetime,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> dict[str, Any]:
    """One outbox row for `notice`: rendered, serialised, not yet sent."""
    mail = settings.mail
    view, reply_to = notice.view, mail.reply_to
    if notice.kind in REPORTED_THROUGH:
        view = {**view, "report_link": reporting_link(settings, notice.unit_code or "", checkpoint)}
    if notice.kind in ANSWERED:
        view, files = how_to_answer(notice, checkpoint, settings, now)
        reply_to, attachments = mail.reply_address, [*attachments, *files]
    rendered = templates.render(notice.kind, view)
    message_id = make_msgid(domain=message_id_domain(settings))  # short: never folded
    parts: dict[str, Any] = {
        "sender": (mail.from_name, mail.from_address),
        "to": [(r.name, r.email) for r in notice.to],
        "cc": [(r.name, r.email) for r in notice.cc],
        "reply_to": reply_to,
        "message_id": message_id,
        "date": as_utc(now).astimezone(ZoneInfo(settings.time_zone)),  # Date: in the bureau's zone
        "headers": {
            "X-Monitor-Checkpoint": checkpoint,
            "X-Monitor-Kind": notice.kind,
            "X-Monitor-Reason": notice.reason,
            "X-Monitor-Unit": notice.unit_code or "",
        },
    }
    # the message written directly (notify.wire), attachments too, byte for byte as the email package does
    envelope = wire.build_message(rendered, attachments=attachments, **parts)
    return {
        "message_id": message_id,
        "checkpoint": checkpoint,
        "kind": notice.kind,
        "reason": notice.reason,
        "unit_code": notice.unit_code,
        "recipients": ";".join(envelope.recipients),
        "subject": rendered.subject,
        "raw": envelope.raw.decode("ascii"),
        "fingerprint": notice.fingerprint,
        "snapshot": json.dumps(notice.snapshot, ensure_ascii=False, sort_keys=True),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": as_utc(now),
        "created_at": as_utc(now),
    }


def compose_all(
    notices: Sequence[Notice], checkpoint: str, templates: Templates, settings: Settings, now: dt.datetime
) -> list[dict[str, Any]]:
    return [compose(n, checkpoint, templates, settings, now) for n in notices]
