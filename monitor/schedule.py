"""The duty calendar: the schedule in config.yaml and a time in, the duties out (each checkpoint
run and each reminder round, with its due time in the bureau's time zone), and which of them are
owed at a given moment. Pure: the clock is an argument, so catch-up after downtime is testable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from monitor.model import Checkpoint
from monitor.settings import CheckpointSchedule, ScheduleConfig


@dataclass(frozen=True, order=True)
class Duty:
    due_at: dt.datetime  # aware, in the configured time zone
    key: str  # "run:2025-05" or "reminder:2025-05:3d"
    kind: str  # run / reminder
    checkpoint: Checkpoint
    deadline: dt.date  # the units' report deadline for this checkpoint


def deadline(cp: Checkpoint, plan: CheckpointSchedule) -> dt.date:
    return cp.end_date + dt.timedelta(days=plan.report_deadline_days)


def duties_of_year(schedule: ScheduleConfig, year: int, tz: ZoneInfo) -> list[Duty]:
    """Every duty for the checkpoints of `year` (some fall in the next year, e.g. a December checkpoint)."""
    out = []
    for plan in schedule.checkpoints:
        cp = Checkpoint(year, plan.month)
        due = deadline(cp, plan)
        run_day = due + dt.timedelta(days=plan.run_days_after_deadline)
        out.append(Duty(dt.datetime.combine(run_day, plan.run_time, tz), f"run:{cp}", "run", cp, due))
        for days in plan.reminder_days_before_deadline:
            day = due - dt.timedelta(days=days)
            out.append(
                Duty(
                    dt.datetime.combine(day, plan.reminder_time, tz),
                    f"reminder:{cp}:{days}d",
                    "reminder",
                    cp,
                    due,
                )
            )
    return sorted(out)


def duties_between(
    schedule: ScheduleConfig, start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[Duty]:
    """Duties due in [start, end)."""
    years = range(start.astimezone(tz).year - 1, end.astimezone(tz).year + 1)
    return sorted(d for y in years for d in duties_of_year(schedule, y, tz) if start <= d.due_at < end)


def upcoming(schedule: ScheduleConfig, now: dt.datetime, tz: ZoneInfo, n: int = 10) -> list[Duty]:
    """The next `n` duties due after `now`."""
    return duties_between(schedule, now, now + dt.timedelta(days=800), tz)[:n]


def owed(
    schedule: ScheduleConfig, done: Iterable[str], since: dt.datetime, now: dt.datetime, tz: ZoneInfo
) -> list[Duty]:
    """Duties due in [since, now] that were not carried out, oldest first. A reminder whose report
    deadline has already passed is no longer owed (the checkpoint run reminds instead)."""
    finished = set(done)
    out = []
    for d in duties_between(schedule, since, now + dt.timedelta(microseconds=1), tz):
        if d.key in finished:
            continue
        if d.kind == "reminder" and now.astimezone(tz).date() > d.deadline:
            continue
        out.append(d)
    return out
