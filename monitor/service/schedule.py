"""The duty calendar: the schedule in config.yaml and a time in, the duties out (each checkpoint
run and each reminder round, with its due time in the bureau's time zone; with a FollowUp, the
reminder (催办) and escalation (督办) rounds for the warnings nobody answered), and which of them are
owed at a given moment. Pure: the clock and the days cases were opened are arguments, so catch-up
after downtime is testable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from monitor.cases.deadlines import FollowUp
from monitor.config.settings import CheckpointSchedule, ScheduleConfig
from monitor.core.model import Checkpoint


@dataclass(frozen=True, order=True)
class Duty:
    due_at: dt.datetime  # aware, in the configured time zone
    key: str  # "run:2025-05", "task:2025-05", "reminder:2025-05:3d", "chase:2025-05", "escalate:2025-05"
    kind: str  # run / task (the reporting notice) / reminder / chase / escalate
    checkpoint: Checkpoint
    deadline: dt.date  # the units' report deadline for this checkpoint


def deadline(cp: Checkpoint, plan: CheckpointSchedule) -> dt.date:
    return cp.end_date + dt.timedelta(days=plan.report_deadline_days)


def run_at(cp: Checkpoint, plan: CheckpointSchedule, tz: ZoneInfo) -> dt.datetime:
    """When the checkpoint runs: `run_days_after_deadline` after the report deadline, at `run_time`."""
    run_day = deadline(cp, plan) + dt.timedelta(days=plan.run_days_after_deadline)
    return dt.datetime.combine(run_day, plan.run_time, tz)


def scheduled_run(schedule: ScheduleConfig, cp: Checkpoint, tz: ZoneInfo) -> dt.datetime:
    """run_at by the checkpoint's month in `schedule` (an unscheduled month: the default plan)."""
    plans = [p for p in schedule.checkpoints if p.month == cp.month]
    return run_at(cp, plans[0] if plans else CheckpointSchedule(month=cp.month), tz)


def follow_up_duties(schedule: ScheduleConfig, follow_up: FollowUp, tz: ZoneInfo) -> list[Duty]:
    """A chase and an escalate duty per checkpoint and day its cases were opened: "chase:2025-05" for the
    first day, "chase:2025-05+2025-06-20" for cases a later re-run opened (their own deadline)."""
    rule = follow_up.rule
    out = []
    for cp_text, days in follow_up.opened.items():
        cp = Checkpoint.parse(cp_text)
        plans = [p for p in schedule.checkpoints if p.month == cp.month]
        due = deadline(cp, plans[0]) if plans else cp.end_date + dt.timedelta(days=10)
        for i, day in enumerate(sorted(set(days))):
            suffix = "" if i == 0 else f"+{day.isoformat()}"
            for kind, when in (("chase", rule.chase_day(day)), ("escalate", rule.escalate_day(day))):
                at = dt.datetime.combine(when, rule.at, tz)
                out.append(Duty(at, f"{kind}:{cp}{suffix}", kind, cp, due))
    return sorted(out)


def duties_of_year(schedule: ScheduleConfig, year: int, tz: ZoneInfo) -> list[Duty]:
    """Every duty for the checkpoints of `year` (some fall in the next year, e.g. a December checkpoint)."""
    out = []
    for plan in schedule.checkpoints:
        cp = Checkpoint(year, plan.month)
        due = deadline(cp, plan)
        out.append(Duty(run_at(cp, plan, tz), f"run:{cp}", "run", cp, due))
        opens = cp.end_date + dt.timedelta(days=min(plan.report_opens_days, plan.report_deadline_days))
        out.append(Duty(dt.datetime.combine(opens, plan.reminder_time, tz), f"task:{cp}", "task", cp, due))
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
    schedule: ScheduleConfig,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    follow_up: FollowUp | None = None,
) -> list[Duty]:
    """Duties due in [start, end) (with `follow_up`, its chase and escalate duties too)."""
    years = range(start.astimezone(tz).year - 1, end.astimezone(tz).year + 1)
    duties = [d for y in years for d in duties_of_year(schedule, y, tz)]
    if follow_up is not None:
        duties += follow_up_duties(schedule, follow_up, tz)
    return sorted(d for d in duties if start <= d.due_at < end)


def upcoming(
    schedule: ScheduleConfig,
    now: dt.datetime,
    tz: ZoneInfo,
    n: int = 10,
    follow_up: FollowUp | None = None,
) -> list[Duty]:
    """The next `n` duties due after `now`."""
    return duties_between(schedule, now, now + dt.timedelta(days=800), tz, follow_up)[:n]


def owed(
    schedule: ScheduleConfig,
    done: Iterable[str],
    since: dt.datetime,
    now: dt.datetime,
    tz: ZoneInfo,
    follow_up: FollowUp | None = None,
) -> list[Duty]:
    """Duties due in [since, now] that were not carried out, oldest first. A reminder whose report
    deadline has already passed is no longer owed (the checkpoint run reminds instead); a chase or an
    escalation stays owed however late (a unit that has not answered is still to be chased), and a
    chase sorts before the escalation of the same day."""
    finished = set(done)
    out = []
    for d in duties_between(schedule, since, now + dt.timedelta(microseconds=1), tz, follow_up):
        if d.key in finished:
            continue
        if d.kind in ("reminder", "task") and now.astimezone(tz).date() > d.deadline:
            continue
        out.append(d)
    return out
