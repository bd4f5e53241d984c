"""The background service (`monitor serve`): the config path and a clock in; checkpoint runs,
reminder rounds, the follow-up of unanswered warnings (催办, 督办) and deliveries out, each at its
time and exactly once. APScheduler only triggers.
This module ties the parts together: `Service` is the life cycle (start: the HTTP endpoint, waiting for
the database, the scheduler; the main loop; shutdown) over `reload.Reloading` (files and SIGHUP),
`duties.Duties` (claiming and carrying out each duty, delivery) and `base.ServiceBase` (state, event log).
The module-level job functions stay here: APScheduler persists jobs by reference to them.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from monitor.core import logs, workers
from monitor.db.engine import OUTBOX
from monitor.service.base import Clock, load_state, log
from monitor.service.http import HttpEndpoint
from monitor.service.reload import Reloading

_current: Service | None = None  # the running service, for APScheduler's persisted job references


class Service(Reloading):
    """The running service: one per process; `start`, `serve_forever` (or `tick`) and `shutdown`."""

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
                update(OUTBOX)
                .where(
                    OUTBOX.c.status == "sending",
                    OUTBOX.c.claimed_by.startswith(workers.worker_id() + ":"),
                )
                .values(status="pending", claimed_by=None, claimed_at=None)
            ).rowcount
        self._record("stop", True, self.state.rules.hash, f"released {left} message(s)" if left else None)
        log.info("service %s stopped", self.instance)
        _current = None


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
