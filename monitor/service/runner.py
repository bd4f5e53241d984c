"""The background service (`monitor serve`): the schedule and the database in; checkpoint runs,
reminder rounds, the follow-up of unanswered warnings (催办, 督办) and deliveries out, each at its
time and exactly once. APScheduler only triggers.
A duty is claimed in `scheduled_event` (unique key, heartbeat lease) and carried out by the pipeline;
the calendar is compared with the database at start and every minute, so nothing missed is skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from monitor import pipeline
from monitor.app import App
from monitor.config.settings import load_settings
from monitor.config.yamlfile import Invalid
from monitor.core import logs, workers
from monitor.db import claims, store
from monitor.deliver import outbox
from monitor.notify import chase
from monitor.notify.render import TemplateErrors, Templates
from monitor.rules.load import RuleSet
from monitor.service import schedule
from monitor.service.http import HttpEndpoint
from monitor.service.schedule import Duty

log = logging.getLogger("monitor.service.runner")
Clock = Callable[[], dt.datetime]
EVENTS = store.SCHEDULED_EVENT
_current: Service | None = None  # the running service, for APScheduler's persisted job references


@dataclass(frozen=True)
class State:
    """Everything a duty needs, swapped as one on reload."""

    app: App
    rules: RuleSet
    templates: Templates


def load_state(config_path: Path, rules_dir: str | None, clock: Clock, engine: Engine | None = None) -> State:
    """Parse and validate config, rules and templates; raises Invalid or TemplateErrors, touching nothing."""
    settings = load_settings(config_path, rules_dir)
    same = engine is not None and str(engine.url) == settings.database_url
    app = App(settings, clock, engine if same else None)  # keep the connection pool across reloads
    rules, templates = app.rules(), app.templates()
    return State(app, rules, templates)


class Service:
    def __init__(
        self,
        config_path: Path,
        rules_dir: str | None,
        clock: Clock,
        instance: str | None = None,
        name: str | None = None,
    ) -> None:
        self.config_path, self.rules_dir, self.clock = config_path, rules_dir, clock
        self.instance = instance or workers.worker_id()  # owner of claims: host:pid
        self.state = load_state(config_path, rules_dir, clock)
        self.name = name or self.state.app.settings.service.instance_name or socket.gethostname()
        self.stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._deliver_lock = threading.Lock()
        self._fingerprint = self._files_fingerprint()
        self.scheduler: Any = None
        self.http: HttpEndpoint | None = None

    # --- properties ------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        return self.state.app.engine

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.state.app.settings.time_zone)

    def offset(self) -> dt.timedelta:
        """How far the service clock is from the wall clock (zero except under a test clock)."""
        return self.clock() - dt.datetime.now(dt.UTC)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        global _current
        _current = self
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        port = self.state.app.settings.service.http_port
        if port is not None:  # first: /healthz answers 503 while the database does not
            lease = dt.timedelta(seconds=self.state.app.settings.mail.retry.lease_seconds)
            self.http = HttpEndpoint(port, lambda: self.engine, self.stopping.is_set, lease)
            log.info("http endpoint on 127.0.0.1:%d", self.http.start())
        if not self._wait_for_database():
            return  # stopped before the database answered
        self._record("start", True, self.state.rules.hash, f"config {self.config_path}")
        log.info(
            "service %s starting: rules %s, database %s",
            self.instance,
            self.state.rules.hash[:12],
            self.state.app.settings.redacted_url(),
        )
        sched = self.state.app.settings.schedule
        jobstore = SQLAlchemyJobStore(engine=self.engine, tablename=jobs_table(self.name))
        _create_jobs_table(jobstore, self.engine)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": jobstore},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(sched.misfire_grace_days * 86400),
            },
            timezone=self.tz,
        )
        self.scheduler.start(paused=True)
        self.plan()
        self.scheduler.resume()
        self.reconcile()  # catch up on anything due while the service was down

    def _wait_for_database(self) -> bool:
        """Try the database until it answers (True) or the service is told to stop (False): 1, 2, 4 …
        up to 60 seconds between tries, one log line for each failed one."""
        delay = 1.0
        while not self.stopping.is_set():
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True
            except (OperationalError, InterfaceError) as exc:
                url = self.state.app.settings.redacted_url()
                log.warning(
                    "database unreachable: %s: %s; retrying in %.0f s", url, logs.one_line(exc), delay
                )
            self.stopping.wait(delay)
            delay = min(delay * 2, 60.0)
        return False

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

    def serve_forever(self) -> int:
        """Block until SIGTERM/SIGINT; SIGHUP (or a changed file) reloads. Returns the exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload_requested.set())
        self.start()
        while not self.stopping.is_set():
            self.stopping.wait(self.state.app.settings.schedule.watch_seconds or 1)
            self.tick()
        self.shutdown()
        return 0

    def tick(self) -> None:
        """One turn of the main loop: reload on SIGHUP, or when a watched file changed."""
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self.reload("SIGHUP")
        elif (
            self.state.app.settings.schedule.watch_seconds and self._files_fingerprint() != self._fingerprint
        ):
            self.reload("files changed")

    def shutdown(self) -> None:
        """Stop taking work, let running duties and in-flight messages finish, leave nothing half-done."""
        global _current
        log.info("service %s stopping", self.instance)
        self.stopping.set()
        if self.http is not None:
            self.http.stop()
        if self.scheduler is None:  # stopped before the database ever answered: nothing to release
            log.info("service %s stopped", self.instance)
            _current = None
            return
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        with self.engine.begin() as conn:  # nothing should be left claimed by us; release it if it is
            left = conn.execute(
                update(store.OUTBOX)
                .where(
                    store.OUTBOX.c.status == "sending",
                    store.OUTBOX.c.claimed_by.startswith(workers.worker_id() + ":"),
                )
                .values(status="pending", claimed_by=None, claimed_at=None)
            ).rowcount
        self._record("stop", True, self.state.rules.hash, f"released {left} message(s)" if left else None)
        log.info("service %s stopped", self.instance)
        _current = None

    # --- duties ----------------------------------------------------------------------------------

    def first_start(self) -> dt.datetime:
        with self.engine.connect() as conn:
            first = conn.execute(
                select(func.min(store.SERVICE_EVENT.c.at)).where(store.SERVICE_EVENT.c.kind == "start")
            ).scalar()
        return store.as_utc(first) if first else self.clock()

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
        (pipeline.complete_pending), then deliver what they queued."""
        st = self.state
        try:
            done = pipeline.complete_pending(st.app.engine, st.app.settings, st.templates, self.clock)
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
            outcome = pipeline.run_checkpoint(
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
        round_key = duty.key.rsplit(":", 1)[1]
        queued = pipeline.queue_reminders(
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
            return bool(cur.status == "failed" and store.as_utc(cur.heartbeat_at) <= now - retry)

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
            claimed, expired = outbox.stuck(conn, now, dt.timedelta(0)), outbox.stuck(conn, now, lease)
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
            return pipeline.deliver(
                app.engine, app.settings, app.transport(), self.clock, self.stopping.is_set
            )
        finally:
            self._deliver_lock.release()

    # --- reload ----------------------------------------------------------------------------------

    def _files_fingerprint(self) -> tuple[tuple[str, float], ...]:
        s = self.state.app.settings
        paths = [self.config_path, *sorted(s.rules_dir.glob("*.y*ml")), *sorted(s.templates_dir.glob("*.*"))]
        if s.template_override_dir:
            paths += sorted(s.template_override_dir.glob("*.*"))
        return tuple((str(p), p.stat().st_mtime) for p in paths if p.exists())

    def reload(self, why: str) -> bool:
        """Validate everything first; swap atomically if valid, else keep the old state, tell the admins."""
        old = self.state
        self._fingerprint = self._files_fingerprint()
        try:
            new = load_state(self.config_path, self.rules_dir, self.clock, old.app.engine)
        except (Invalid, TemplateErrors) as exc:
            errors = [str(p) for p in exc.problems]
            for e in errors:
                log.error("reload (%s) rejected: %s", why, e)
            log.error("reload rejected: still using rules %s", old.rules.hash[:12])
            self._record("reload", False, old.rules.hash, "\n".join(errors))
            self._mail_admins(errors)
            return False
        self.state = new
        self._fingerprint = self._files_fingerprint()
        self._record("reload", True, new.rules.hash, why)
        log.info("reload (%s) ok: rules %s", why, new.rules.hash[:12])
        if self.scheduler is not None:
            self.plan()
        return True

    def _mail_admins(self, errors: list[str]) -> None:
        from monitor.notify import messages, views
        from monitor.notify.decide import Notice, Recipient

        app = self.state.app
        admins = app.settings.mail.admin_recipients
        if not admins:
            return
        at = self.clock().astimezone(self.tz).isoformat(timespec="seconds")
        view = views.admin(
            errors,
            self.instance,
            at,
            self.state.rules.hash,
            str(self.config_path),
            str(app.settings.rules_dir),
        )
        notice = Notice(
            "admin",
            "reload_failed",
            None,
            tuple(Recipient("", a) for a in admins),
            (),
            {"errors": errors, "at": at},
            view,
        )
        row = messages.compose(notice, "admin", self.state.templates, app.settings, self.clock())
        try:
            with app.engine.begin() as conn:
                outbox.queue(conn, [row])
        except IntegrityError:  # the other instance queued its own mail about this reload at the same moment
            log.warning("the admins are told of this rejected reload by another instance's e-mail")
            return
        self.deliver()

    def _record(self, kind: str, ok: bool, rules_hash: str | None, detail: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(store.SERVICE_EVENT).values(
                    at=self.clock(),
                    kind=kind,
                    ok=ok,
                    instance=self.instance,
                    rules_hash=rules_hash,
                    detail=detail,
                )
            )


def jobs_table(name: str) -> str:
    """The APScheduler table of the instance called `name`."""
    return "apscheduler_jobs_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]


def _create_jobs_table(jobstore: Any, engine: Engine) -> None:
    """APScheduler creates its table with check-then-create: two instances starting together race.
    Create it first, and treat "already exists" from the other instance as success."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    for attempt in range(5):
        try:
            jobstore.jobs_t.create(engine, checkfirst=True)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 4:
                raise
            time.sleep(0.2)


# Module-level job functions: APScheduler persists jobs by reference ("monitor.service.runner:_duty_job").


def _duty_job(key: str) -> None:
    if _current is not None:
        _current.fire_key(key)


def _reconcile_job() -> None:
    if _current is not None:
        _current.reconcile()


def _deliver_job() -> None:
    if _current is not None:
        _current.deliver()


def _claims_job() -> None:
    if _current is not None:
        _current.take_over_claims()


def fixed_start_clock(start: dt.datetime) -> Clock:
    """A clock that starts at `start` and then runs at wall-clock speed (for tests and rehearsals)."""
    import time

    t0 = time.monotonic()
    return lambda: start + dt.timedelta(seconds=time.monotonic() - t0)
