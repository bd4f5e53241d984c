"""Queueing a checkpoint's messages: the unit digests, the bureau summary with its reports attached, the
reporting notices and the 催报 rounds, each into the outbox in the caller's transaction, once."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from monitor.cases import exemptions
from monitor.config.settings import Settings
from monitor.core.errors import BadInput
from monitor.core.model import Checkpoint
from monitor.db import partitions
from monitor.db.engine import PROJECT, count_rows
from monitor.db.inputs import all_projects, load_units, unreported
from monitor.db.reads import has_results
from monitor.deliver import outbox
from monitor.evaluate.stored import bureau_figures
from monitor.ingest.extensions import extensions
from monitor.notify import decide as notify
from monitor.notify import digests, messages, views
from monitor.notify.options import Options
from monitor.notify.render import Templates
from monitor.pipeline.evaluation import Clock
from monitor.reports.context import Sources
from monitor.reports.write import default_name, write_all


class QueuedMeanwhile(BadInput):
    """Messages of the checkpoint were queued by another process after this one decided its own."""


def queue_notifications(
    engine: Engine,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    clock: Clock,
    chunk_units: int = 2000,
    workers: int | None = None,
) -> list[dict[str, str | None]]:
    """Decide, compose and persist every message the stored results call for (nothing if unchanged):
    what notify.decide over db.reads.load_results gives, streamed a chunk of whole units at a time (only
    yellow/red projects are read with their indicators; the bureau summary is counted by the database),
    all in one transaction, so memory stays flat at national size. `workers`: processes composing the
    unit messages (monitor.notify.digests; default: one per core for a large checkpoint, else none)."""
    with engine.begin() as conn:
        return queue_in(engine, conn, settings, templates, checkpoint, clock, chunk_units, workers)


def queue_in(
    engine: Engine,
    conn: Connection,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    clock: Clock,
    chunk_units: int = 2000,
    workers: int | None = None,
) -> list[dict[str, str | None]]:
    """queue_notifications in the transaction of `conn`."""
    cp = str(checkpoint)
    now = clock()
    partitions.analyze_unread_committed(engine, conn, cp)  # a run's fresh results, before they are read
    options = _options(conn, settings, checkpoint, now)
    previous_cp = checkpoint.previous_in(list(settings.checkpoint_months))
    queued: list[dict[str, str | None]] = []

    def put(conn: Connection, rows: list[dict[str, Any]]) -> None:
        put_rows(conn, cp, rows)
        queued.extend({"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows)

    exempt = exemptions.active(conn, exemptions.local_day(now, settings.time_zone))
    prev = str(previous_cp) if previous_cp and has_results(conn, str(previous_cp)) else None
    job = digests.Job(settings, cp, now, options, prev, exempt)
    if workers is None:
        workers = digests.workers_for(engine, count_rows(conn, PROJECT))
    for rows in digests.rows_by_chunk(engine, conn, job, templates, chunk_units, workers):
        put(conn, rows)
    figures = bureau_figures(conn, cp, prev, options.top_red)
    units = load_units(conn, figures.unit_codes())  # not every unit of a national checkpoint
    view = views.bureau_summary(cp, figures, units, prev, options)
    last_id, last = outbox.last_queued(conn, cp, kind="summary").get(("summary", None), (0, None))
    for notice in notify.summary_notice(view, last, options):
        files = report_attachments(engine, settings, checkpoint, clock)
        row = messages.compose(notice, cp, templates, settings, now, files)
        put(conn, [{**row, "supersedes": last_id}])
    return queued


def put_rows(conn: Connection, checkpoint: str, rows: list[dict[str, Any]]) -> list[int]:
    """outbox.queue, a decision queued twice (uq_outbox_once) told as what it is."""
    try:
        return outbox.queue(conn, rows)
    except IntegrityError as exc:
        raise QueuedMeanwhile(
            f"messages of checkpoint {checkpoint} were queued by another run meanwhile;"
            " nothing was queued by this one"
        ) from exc


def report_attachments(
    engine: Engine, settings: Settings, checkpoint: Checkpoint, clock: Clock
) -> list[tuple[str, bytes]]:
    """The reports `mail.summary_attachments` asks for, as (file name, bytes), from the stored results."""
    wanted = settings.mail.summary_attachments
    if not wanted:
        return []
    import tempfile
    from pathlib import Path

    sources = Sources(engine, settings, clock)  # the same database connection pool
    with tempfile.TemporaryDirectory() as tmp:
        outs = {fmt: Path(tmp) / default_name(fmt, checkpoint) for fmt in wanted}
        return [(p.name, p.read_bytes()) for p in write_all(sources, checkpoint, outs)]


def queue_tasks(
    engine: Engine, settings: Settings, templates: Templates, checkpoint: Checkpoint, clock: Clock
) -> list[dict[str, str | None]]:
    """Reporting opens (监控任务下发): every unit with projects gets its reporting notice, once."""
    cp = str(checkpoint)
    now = clock()
    with engine.begin() as conn:
        last = outbox.last_queued(conn, cp)
        sent = {key: snapshot for key, (_, snapshot) in last.items()}
        notices = notify.tasks(
            cp, all_projects(conn), load_units(conn), sent, _options(conn, settings, checkpoint, now)
        )
        rows = messages.compose_all(notices, cp, templates, settings, now)
        for row in rows:
            row["supersedes"] = last.get((row["kind"], row["unit_code"]), (0, None))[0]
        put_rows(conn, cp, rows)
    return [{"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows]


def queue_reminders(
    engine: Engine,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    round_key: str,
    clock: Clock,
) -> list[dict[str, str | None]]:
    """A reminder round before the deadline: units with unreported projects get a 催报 message."""
    cp = str(checkpoint)
    now = clock()
    with engine.begin() as conn:
        last = outbox.last_queued(conn, cp)
        notices = notify.reminders(
            cp,
            unreported(conn, cp),
            load_units(conn),
            round_key,
            {key: snapshot for key, (_, snapshot) in last.items()},
            _options(conn, settings, checkpoint, now),
        )
        rows = messages.compose_all(notices, cp, templates, settings, now)
        for row in rows:
            row["supersedes"] = last.get((row["kind"], row["unit_code"]), (0, None))[0]
        put_rows(conn, cp, rows)
    return [{"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows]


def _options(conn: Connection, settings: Settings, checkpoint: Checkpoint, now: dt.datetime) -> Options:
    """The messages' options with the units' extended deadlines (延期)."""
    granted = extensions(conn, str(checkpoint))
    return replace(
        messages.options(settings, checkpoint, now), extended={u: e.until for u, e in granted.items()}
    )
