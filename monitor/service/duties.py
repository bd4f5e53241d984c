"""The duties of the service: the schedule, the settings and the database in; each duty (checkpoint run,
reminder round, chase, escalate) claimed in `scheduled_event` (unique key, heartbeat lease), carried out
by the pipeline exactly once, and finished or failed there; pending messages delivered out. `plan` puts
the next duties and the periodic jobs on the APScheduler calendar; `reconcile` carries out whatever is
due and not done, so nothing missed is skipped.
"""

from __future__ import annotations

import datetime as dt
import threading
import traceback
from typing import Any

from sqlalchemy import func, select, update

from monitor.core import workers
from monitor.core.workdays import as_utc
from monitor.db import claims
from monitor.db.engine import SCHEDULED_EVENT, SERVICE_EVENT
from monitor.deliver import leases
from monitor.notify import chase
from monitor.pipeline import queueing, runs
from monitor.service import schedule
from monitor.service.base import ServiceBase, log
from monitor.service.schedule import Duty

EVENTS = SCHEDULED_EVENT


class Duties(ServiceBase):
    """Planning, claiming and carrying out the duties; delivering the outbox."""

    _deliver_lock: threading.Lock

    def plan(self) -> None:
        """(Re)add the jobs: the next duties, periodic reconcile, delivery and file watching."""
        settings = self.state.app.settings
        sched = settings.schedule
        offset = self.offset()
        wanted = set()
        follow_up = chase.follow_up_plan(self.engine, settings)
        for duty in schedule.upcoming(sched, self.clock(), self.tz, n=12, follow_up=follow_up):
            job_id = duty.key
            wanted.add(job_id)
            self.scheduler.add_job(
                "monitor.service.runner:_duty_job",
                "date",
                run_date=duty.due_at - offset,
                args=[duty.key],
                id=job_id,
                name=f"{duty.kind} {duty.checkpoint}",
                replace_existing=True,
            )
        for job in self.scheduler.get_jobs():
            if ":" in job.id and job.id not in wanted:
                job.remove()  # a duty no longer in the schedule (e.g. a removed checkpoint)
        self.scheduler.add_job(
            "monitor.service.runner:_reconcile_job",
            "interval",
            seconds=sched.reconcile_seconds,
            id="reconcile",
            replace_existing=True,
        )
        self.scheduler.add_job(
            "monitor.service.runner:_deliver_job",
            "interval",
            minutes=sched.delivery_interval_minutes,
            id="deliver",
            replace_existing=True,
        )
        self.scheduler.add_job(
            "monitor.service.runner:_claims_job",
            "interval",
            seconds=max(settings.mail.retry.lease_seconds / 2, 1),
            id="claims",
            replace_existing=True,
        )

    def first_start(self) -> dt.datetime:
        with self.engine.connect() as conn:
            first = conn.execute(
                select(func.min(SERVICE_EVENT.c.at)).where(SERVICE_EVENT.c.kind == "start")
            ).scalar()
        return as_utc(first) if first else self.clock()

    def reconcile(self) -> list[str]:
        """Carry out every duty that is due and not done (oldest first); returns the keys carried out."""
        if self.stopping.is_set():
            return []
        sched = self.state.app.settings.schedule
        now = self.clock()
        since = self.first_start() - dt.timedelta(days=sched.catch_up_days)
        with self.engine.connect() as conn:
            done = [
                r[0]
                for r in conn.execute(
                    select(EVENTS.c.key).where(EVENTS.c.status.in_(["finished", "skipped"]))
                )
            ]
        self.complete_runs()
        carried = []
        follow_up = chase.follow_up_plan(self.engine, self.state.app.settings)
        for duty in schedule.owed(sched, done, since, now, self.tz, follow_up):
            if self.stopping.is_set():
                break
            if self.fire(duty):
                carried.append(duty.key)
        return carried

    def fire_key(self, key: str) -> bool:
        duty = self._duty(key)
        if duty is None:
            log.warning("duty %s is no longer in the schedule; ignored", key)
            return False
        return self.fire(duty)

    def _duty(self, key: str) -> Duty | None:
        now = self.clock()
        sched = self.state.app.settings.schedule
        window = schedule.duties_between(
            sched,
            now - dt.timedelta(days=800),
            now + dt.timedelta(days=800),
            self.tz,
            chase.follow_up_plan(self.engine, self.state.app.settings),
        )
        return next((d for d in window if d.key == key), None)

    def complete_runs(self) -> None:
        """Complete the runs a stopped process left between storing results and queueing messages
        (runs.complete_pending), then deliver what they queued."""
        st = self.state
        try:
            done = runs.complete_pending(st.app.engine, st.app.settings, st.templates, self.clock)
        except Exception:
            log.exception("completing the runs left unfinished failed; trying again at the next reconcile")
            return
        for c in done:
            log.warning(
                "completed run %d of %s, left unfinished by a stopped process: %d message(s) queued",
                c.run_id,
                c.checkpoint,
                len(c.queued),
            )
        if done:
            self._replan("a completed run opened cases: their chase and escalate duties are on the calendar")
            self.deliver()

    def fire(self, duty: Duty) -> bool:
        """Carry out `duty` unless it is done or another instance holds it; True if this call did it."""
        if self.stopping.is_set() or not self._claim(duty):
            return False
        late = self.clock() - duty.due_at > dt.timedelta(minutes=5)
        log.info(
            "%s %s started%s",
            duty.kind,
            duty.checkpoint,
            f" (late: it was due {duty.due_at})" if late else "",
        )
        period = self.state.app.settings.schedule.lease_seconds / 4
        heart = claims.Heartbeat(self.engine, EVENTS, duty.key, self.instance, period, self.clock)
        try:
            with heart:
                detail = self._carry_out(duty)
        except claims.Busy as exc:  # stopping while a hand run held the checkpoint: not done, owed again
            claims.release(self.engine, EVENTS, duty.key, self.instance)
            log.info("%s %s not carried out: %s; the service is stopping", duty.kind, duty.checkpoint, exc)
            return False
        except Exception as exc:
            self._finish(duty.key, "failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            log.exception("%s %s failed: %s", duty.kind, duty.checkpoint, exc)
            return False
        self._finish(duty.key, "finished", detail)
        log.info("%s %s finished: %s", duty.kind, duty.checkpoint, detail)
        return True

    def _carry_out(self, duty: Duty) -> str:
        st = self.state
        app = st.app
        if duty.kind == "run":
            outcome = runs.run_checkpoint(
                app.engine,
                st.rules,
                app.settings,
                st.templates,
                duty.checkpoint,
                self.clock,
                transport=app.transport(),
                should_stop=self.stopping.is_set,
                wait=None,  # a run of it by hand: wait for it to end (or for its claim to go stale)
                on_wait=lambda h: log.info("run %s waits for the run by %s to end", duty.checkpoint, h.owner),
            )
            s = outcome.summary
            self._replan("the run opened cases: their chase and escalate duties are on the calendar now")
            return (
                f"run {outcome.run_id}, rules {outcome.rules_hash[:12]}: {s.projects} projects, "
                f"green {s.count['green']}, yellow {s.count['yellow']}, red {s.count['red']}, "
                f"not reported {s.count['not_reported']}; "
                f"{len(outcome.queued)} message(s) queued, {outcome.delivery.get('sent', 0)} sent"
            )
        if duty.kind in ("chase", "escalate"):
            done = chase.follow_up(
                app.engine, app.settings, st.templates, duty.checkpoint, duty.kind, self.clock
            )
            delivery = self.deliver()
            what = "reminded" if duty.kind == "chase" else "escalated"
            waiting = f"; {done.waiting} not yet due" if done.waiting else ""
            return (
                f"{done.cases} case(s) {what}, {len(done.queued)} message(s) queued, "
                f"{delivery.get('sent', 0)} sent{waiting}"
            )
        if duty.kind == "task":
            sent = queueing.queue_tasks(app.engine, app.settings, st.templates, duty.checkpoint, self.clock)
            delivery = self.deliver()
            return f"{len(sent)} reporting notice(s) queued, {delivery.get('sent', 0)} sent"
        round_key = duty.key.rsplit(":", 1)[1]
        queued = queueing.queue_reminders(
            app.engine, app.settings, st.templates, duty.checkpoint, round_key, self.clock
        )
        delivery = self.deliver()
        return f"{len(queued)} reminder(s) queued, {delivery.get('sent', 0)} sent"

    def _replan(self, why: str) -> None:
        """Re-plan the scheduler's jobs after a duty changed the calendar; a failure here is logged, not the
        duty's (reconcile finds the new duties within a minute anyway)."""
        if self.scheduler is None or self.stopping.is_set():
            return
        try:
            self.plan()
        except Exception:
            log.exception("re-planning failed (%s); reconcile will find the new duties", why)

    def _claim(self, duty: Duty) -> bool:
        """Claim `duty` (monitor.db.claims): a new row, a `running` one whose owner is stale (dead on this
        host, or silent for the lease elsewhere: taken over, late) or a `failed` one
        `schedule.retry_failed_seconds` after it failed (tried again)."""
        now = self.clock()
        lease = self.state.app.settings.schedule.lease_seconds

        def takeable(cur: Any) -> bool:
            if cur.status == "running":
                return claims.is_stale(EVENTS, duty.key, cur.owner or "", cur.heartbeat_at, now, lease)
            retry = dt.timedelta(seconds=self.state.app.settings.schedule.retry_failed_seconds)
            return bool(cur.status == "failed" and as_utc(cur.heartbeat_at) <= now - retry)

        new = {
            "kind": duty.kind,
            "checkpoint": str(duty.checkpoint),
            "due_at": duty.due_at,
            "status": "running",
            "late": now - duty.due_at > dt.timedelta(minutes=5),
        }
        held, _ = claims.take(
            self.engine,
            EVENTS,
            duty.key,
            self.instance,
            now,
            lease,
            values=new,
            takeable=takeable,
            takeover={"status": "running", "late": True},
        )
        return held is None

    def _finish(self, key: str, status: str, detail: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(EVENTS)
                .where(EVENTS.c.key == key, EVENTS.c.owner == self.instance)
                .values(status=status, finished_at=self.clock(), heartbeat_at=self.clock(), detail=detail)
            )
        claims.forget(EVENTS, key)

    def take_over_claims(self) -> None:
        """Deliver at once the messages another sender left `sending` (its process gone from this host,
        or its lease run out elsewhere): the delivery releases them first."""
        app = self.state.app
        lease = dt.timedelta(seconds=app.settings.mail.retry.lease_seconds)
        now = self.clock()
        with app.engine.connect() as conn:
            claimed, expired = leases.stuck(conn, now, dt.timedelta(0)), leases.stuck(conn, now, lease)
        stale = [
            who
            for who in claimed
            if workers.process_is_dead(who) or (who in expired and not workers.on_this_host(who))
        ]
        if stale:
            log.warning("messages claimed by %s are released and sent again", ", ".join(sorted(stale)))
            self.deliver()

    def deliver(self) -> Any:
        """Send what is pending; one delivery at a time here (outbox claims guard across instances)."""
        from collections import Counter

        if not self._deliver_lock.acquire(blocking=False):
            return Counter[str]()
        try:
            app = self.state.app
            return runs.deliver(app.engine, app.settings, app.transport(), self.clock, self.stopping.is_set)
        finally:
            self._deliver_lock.release()
