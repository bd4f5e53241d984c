"""The e-mail to a unit whose report its department returned (退回): the project, the comment and
the unit's reporting link, composed like every other message and queued in the caller's
transaction, the one that returns the report, so it is queued exactly when the return is made."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

from monitor.config.settings import Settings
from monitor.core.links import Scope, report_link
from monitor.core.model import Checkpoint, Unit
from monitor.core.workdays import as_utc
from monitor.deliver import outbox
from monitor.notify import messages, views
from monitor.notify.decide import Notice, unit_recipients
from monitor.notify.render import Templates

KIND = "report_returned"


def returned_notice(
    settings: Settings,
    checkpoint: str,
    unit: Unit,
    department_name: str,
    project: tuple[str, str],
    comment: str,
    now: dt.datetime,
) -> Notice:
    """The notice of one returned project; its snapshot says what and when, so each return is its own."""
    options = messages.options(settings, Checkpoint.parse(checkpoint), now)
    view = views.report_returned(checkpoint, unit, department_name, project, comment, options)
    secret = settings.web_secret
    link = report_link(settings.web.base_url, secret, Scope(unit.code, checkpoint)) if secret else ""
    snapshot = {"project": project[0], "comment": comment, "at": as_utc(now).isoformat()}
    to = unit_recipients(unit)
    return Notice(KIND, "returned", unit.code, to, (), snapshot, view | {"report_link": link})


def queue_returned(
    conn: Connection, settings: Settings, templates: Templates, notice: Notice, now: dt.datetime
) -> int | None:
    """`notice` composed and queued on `conn` (the return's own transaction); None: the unit has no
    e-mail address. A message queued meanwhile for the same unit breaks uq_outbox_once (IntegrityError):
    the caller's transaction, the return with it, is rolled back."""
    if not notice.to:
        return None
    row = messages.compose(notice, str(notice.view["checkpoint"]), templates, settings, now)
    return outbox.queue(conn, [row])[0]
