"""What an operator asks of the service: the database, the schedule and a time in; a report out
(next duties and their scheduler jobs, the last runs with their rules hash, outbox counts, the last
reload) and the list of things that need attention (a failed delivery, a missed run, a bad reload).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, inspect, select, text

from monitor.config.settings import Settings
from monitor.core.rows import RunRecord, row_of
from monitor.core.workdays import as_utc
from monitor.db import claims, history
from monitor.db.engine import RUN, SCHEDULED_EVENT, SERVICE_EVENT
from monitor.db.results import runs as stored_runs
from monitor.deliver import leases, outbox
from monitor.notify.chase import follow_up_plan
from monitor.pipeline import runs
from monitor.service import schedule


class Upcoming(TypedDict):
    """A duty to come (or a periodic job) and when the scheduler has it (None: not scheduled yet)."""

    key: str
    due_at: dt.datetime
    scheduled: dt.datetime | None
    deadline: NotRequired[dt.date]  # a duty's: the units' report deadline


class DutyRecord(TypedDict):
    """A scheduled_event row: a duty and who carried it out."""

    key: str
    kind: str
    checkpoint: str
    due_at: dt.datetime
    status: str  # running / finished / failed / skipped
    owner: str | None
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    finished_at: dt.datetime | None
    late: bool
    detail: str | None


class ServiceEvent(TypedDict):
    """A service_event row: a start, stop or reload of the service."""

    id: int
    at: dt.datetime
    kind: str  # start / stop / reload
    ok: bool
    instance: str
    rules_hash: str | None
    detail: str | None


@dataclass
class Report:
    now: dt.datetime
    upcoming: list[Upcoming] = field(default_factory=list)
    duties: list[DutyRecord] = field(default_factory=list)  # recent scheduled_event rows
    runs: list[RunRecord] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    last_reload: ServiceEvent | None = None
    last_start: ServiceEvent | None = None
    attention: list[str] = field(default_factory=list)


def build(engine: Engine, settings: Settings, now: dt.datetime) -> Report:
    tz = ZoneInfo(settings.time_zone)
    sched = settings.schedule
    report = Report(now.astimezone(tz))
    ev, se = SCHEDULED_EVENT, SERVICE_EVENT

    plan = follow_up_plan(engine, settings)
    with engine.connect() as conn:
        report.upcoming = _upcoming(conn, sched, now, tz, plan)
        rows = conn.execute(select(ev).order_by(ev.c.due_at.desc()).limit(10)).all()
        report.duties = [row_of(DutyRecord, r._mapping) for r in rows]
        report.runs = stored_runs(conn)[-5:]
        report.outbox = outbox.counts(conn)
        stuck = leases.stuck(conn, now, dt.timedelta(seconds=settings.mail.retry.lease_seconds))
        starts = conn.execute(select(se).where(se.c.kind == "start").order_by(se.c.id)).all()
        reloads = conn.execute(
            select(se).where(se.c.kind == "reload").order_by(se.c.id.desc()).limit(1)
        ).all()
        first = conn.execute(select(func.min(se.c.at)).where(se.c.kind == "start")).scalar()
        done = {r[0] for r in conn.execute(select(ev.c.key).where(ev.c.status.in_(["finished", "skipped"])))}
        states = {r.key: r.status for r in conn.execute(select(ev.c.key, ev.c.status))}
        unfinished = unfinished_runs(conn, settings)
        report.attention += stale_attention(conn)
    report.last_start = row_of(ServiceEvent, starts[-1]._mapping) if starts else None
    report.last_reload = row_of(ServiceEvent, reloads[0]._mapping) if reloads else None
    report.attention += _outbox_attention(report.outbox, stuck, settings.mail.retry.lease_seconds)
    if first is not None:
        since = as_utc(first) - dt.timedelta(days=sched.catch_up_days)
        for duty in schedule.owed(sched, done, since, now, tz, follow_up=plan):
            state = states.get(duty.key)
            if state == "running":
                continue
            what = "failed" if state == "failed" else "missed"
            report.attention.append(
                f"{duty.key} {what}: it was due {duty.due_at.isoformat(timespec='minutes')}"
            )
    for run_id, cp in unfinished:
        report.attention.append(
            f"run #{run_id} of {cp}: evaluated, its messages were never queued (its process stopped);"
            " `monitor send` or the service completes it"
        )
    if report.last_reload is not None and not report.last_reload["ok"]:
        report.attention.append(
            "the last reload was rejected: " + (report.last_reload["detail"] or "").split("\n")[0]
        )
    return report


def stale_attention(conn: Any, checkpoints: int = 4) -> list[str]:
    """The recent checkpoints whose reports arrived, changed or were withdrawn after their last run,
    through any channel: their results are stale until they run again."""
    recent = (
        select(RUN.c.checkpoint)
        .where(RUN.c.status == "finished")
        .group_by(RUN.c.checkpoint)
        .order_by(RUN.c.checkpoint.desc())
        .limit(checkpoints)
    )
    out = []
    for cp in conn.execute(recent).scalars():
        run_id, late = history.stale_projects(conn, cp)
        if late:
            shown = ", ".join(late[:5]) + (" …" if len(late) > 5 else "")
            out.append(
                f"{cp}: {len(late)} project(s) reported or corrected after the last run (#{run_id}): "
                f"{shown}; its results do not include them until `monitor run --checkpoint {cp}`"
            )
    return out


def _upcoming(conn: Any, sched: Any, now: dt.datetime, tz: ZoneInfo, plan: Any) -> list[Upcoming]:
    """The next duties (with when the scheduler has them, if it does) and the periodic jobs."""
    jobs = _scheduler_jobs(conn, tz)
    upcoming: list[Upcoming] = [
        {"key": duty.key, "due_at": duty.due_at, "scheduled": jobs.get(duty.key), "deadline": duty.deadline}
        for duty in schedule.upcoming(sched, now, tz, n=6, follow_up=plan)
    ]
    for job_id in ("reconcile", "deliver"):
        if job_id in jobs:
            upcoming.append({"key": job_id, "due_at": jobs[job_id], "scheduled": jobs[job_id]})
    return upcoming


def _outbox_attention(counts: dict[str, int], stuck: dict[str, int], lease_seconds: float) -> list[str]:
    """What an admin should look at in the outbox: failed, stuck and partly delivered messages."""
    attention = []
    if counts.get("failed"):
        attention.append(f"{counts['failed']} message(s) failed: see `monitor outbox --status failed`")
    if stuck:
        who = ", ".join(f"{n} by {owner}" for owner, n in sorted(stuck.items()))
        attention.append(
            f"{sum(stuck.values())} message(s) stuck in 'sending' beyond their lease "
            f"({lease_seconds:g} s): {who}; a sender releases them when their process "
            "is gone from this host or their lease ran out elsewhere (`monitor send`, or the service)"
        )
    if counts.get("partial"):
        attention.append(
            f"{counts['partial']} message(s) delivered in part (some recipients refused them): "
            "see `monitor outbox --status partial`, then `monitor outbox retry --failed`"
        )
    return attention


def unfinished_runs(conn: Any, settings: Settings) -> list[tuple[int, str]]:
    """(run id, checkpoint) of the runs left `evaluated` that no live process is completing."""

    out = []
    for cp, run_id in runs.unfinished(conn):
        row = conn.execute(select(claims.RUN_LOCK).where(claims.RUN_LOCK.c.key == cp)).first()
        lease = settings.schedule.lease_seconds
        if row is None or claims.is_stale(
            claims.RUN_LOCK, cp, row.owner, row.heartbeat_at, claims.wall_clock(), lease
        ):
            out.append((run_id, cp))
    return out


def _scheduler_jobs(conn: Any, tz: ZoneInfo) -> dict[str, dt.datetime]:
    """Earliest next run time of every job in the instances' APScheduler tables (read directly)."""
    out: dict[str, dt.datetime] = {}
    for table in inspect(conn).get_table_names():
        if not table.startswith("apscheduler_jobs"):
            continue
        for job_id, at in conn.execute(text(f"SELECT id, next_run_time FROM {table}")):
            if at is not None:
                when = dt.datetime.fromtimestamp(at, tz)
                out[job_id] = min(when, out.get(job_id, when))
    return out


def _t(moment: dt.datetime, tz: Any, spec: str = "seconds") -> str:
    return moment.astimezone(tz).isoformat(timespec=spec)


def as_text(r: Report, database: str) -> list[str]:
    """The report as the lines `monitor status` prints."""
    tz = r.now.tzinfo
    out = [f"now: {_t(r.now, tz)}   database: {database}"]
    if r.last_start:
        out.append(f"last start: {_t(r.last_start['at'], tz)} ({r.last_start['instance']})")
    else:
        out.append("the service has not been started on this database yet")
    if r.last_reload:
        ok = "ok" if r.last_reload["ok"] else "REJECTED"
        rules = (r.last_reload["rules_hash"] or "")[:12]
        out.append(f"last reload: {_t(r.last_reload['at'], tz)} {ok}, rules {rules}")
    out.append("next:")
    for u in r.upcoming:
        job = _t(at, tz) if (at := u["scheduled"]) else "not scheduled yet"
        out.append(f"  {u['key']:<22} due {_t(u['due_at'], tz, 'minutes')}  (scheduler: {job})")
    out.append("recent duties:")
    for d in r.duties:
        first_line = (d["detail"] or "").split("\n")[0]
        out.append(
            f"  {d['key']:<22} {d['status']}{' late' if d['late'] else ''} by {d['owner']}: {first_line}"
        )
    out.append("last runs:")
    for run in r.runs:
        out.append(
            f"  #{run['id']} {run['checkpoint']} {run['status']} rules {run['rules_hash'][:12]}: "
            f"green {run['green']}, yellow {run['yellow']}, red {run['red']}, "
            f"not reported {run['not_reported']}"
        )
    out.append("outbox: " + ", ".join(f"{k} {v}" for k, v in r.outbox.items()))
    return out
