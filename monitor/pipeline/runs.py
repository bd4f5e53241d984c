"""A checkpoint run held by its claim from start to queueing (run_lock), a run stopped in between
completed (complete_pending), and delivery of what is pending."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection

from monitor.cases.store import open_and_resolve
from monitor.config.settings import Settings
from monitor.core import failpoints, workers
from monitor.core.model import Checkpoint
from monitor.core.summary import Summary
from monitor.core.workdays import as_utc
from monitor.db import claims
from monitor.db.engine import RUN
from monitor.deliver.sender import deliver_pending
from monitor.deliver.transport import Transport
from monitor.notify.render import Templates
from monitor.pipeline.evaluation import Clock, Progress, evaluate_checkpoint
from monitor.pipeline.queueing import queue_in
from monitor.rules.load import RuleSet


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    checkpoint: str
    rules_hash: str
    summary: Summary
    queued: list[dict[str, str | None]] = field(
        default_factory=list
    )  # kind, reason, unit of each new message
    delivery: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Completed:
    """A run stopped after storing its results, completed: its cases opened, its messages queued."""

    run_id: int
    checkpoint: str
    queued: list[dict[str, str | None]]


@contextmanager
def run_lock(
    engine: Engine,
    settings: Settings,
    checkpoint: str,
    *,
    wait: float | None = 0,
    should_stop: Callable[[], bool] = lambda: False,
    on_wait: Callable[[claims.Holder], None] | None = None,
) -> Iterator[None]:
    """Hold `checkpoint`'s run claim for the block (a heartbeat renews it): wait up to `wait` seconds
    (None: until `should_stop()`) for another run of it to end, else claims.Busy, nothing written. A
    run the claim finds `running` was stopped mid-evaluation (its transaction rolled back): abandoned."""
    owner = workers.worker_id()
    lease = settings.schedule.lease_seconds
    run = RUN
    claims.acquire(
        engine,
        claims.RUN_LOCK,
        checkpoint,
        owner,
        lease,
        checkpoint,
        wait=wait,
        should_stop=should_stop,
        on_wait=on_wait,
    )
    try:
        with engine.connect() as conn:
            running = select(run.c.id).where(run.c.checkpoint == checkpoint, run.c.status == "running")
            stopped = list(conn.execute(running).scalars())
        if stopped:
            with engine.begin() as conn:
                conn.execute(update(run).where(run.c.id.in_(stopped)).values(status="abandoned"))
        with claims.Heartbeat(engine, claims.RUN_LOCK, checkpoint, owner, lease / 4):
            yield
    finally:
        try:
            claims.release(engine, claims.RUN_LOCK, checkpoint, owner)
        except Exception:  # it goes stale on its own; the run's own error matters more
            claims.log.exception("could not release the run claim of %s", checkpoint)


def complete_run(
    engine: Engine,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    run_id: int,
    clock: Clock,
    chunk_units: int = 2000,
    workers: int | None = None,
) -> list[dict[str, str | None]]:
    """In one transaction: open the cases of the checkpoint's stored results (rectification: every
    yellow/red project gets an open warning case, once, not an exempted one; earlier cases of projects
    green now are resolved), queue the messages they call for (queue_notifications), and mark run
    `run_id` finished (earlier runs left `evaluated` abandoned: this one did their work). All of it or
    none: no case is opened about a warning that is not queued."""

    cp, run = str(checkpoint), RUN
    with engine.begin() as conn:
        open_and_resolve(conn, cp, clock(), time_zone=settings.time_zone)
        failpoints.hit("run:after-cases-opened")
        queued = queue_in(engine, conn, settings, templates, checkpoint, clock, chunk_units, workers)
        conn.execute(
            update(run).where(run.c.id == run_id).values(status="finished", finished_at=as_utc(clock()))
        )
        conn.execute(
            update(run)
            .where(run.c.checkpoint == cp, run.c.status == "evaluated", run.c.id < run_id)
            .values(status="abandoned")
        )
    return queued


def unfinished(conn: Connection) -> list[tuple[str, int]]:
    """(checkpoint, run id) of each checkpoint with a run left `evaluated` (its latest such run): its
    results are stored but its messages were never queued, unless a run is working on it now."""
    run = RUN
    q = (
        select(run.c.checkpoint, func.max(run.c.id))
        .where(run.c.status == "evaluated")
        .group_by(run.c.checkpoint)
    )
    return [(str(cp), int(i)) for cp, i in conn.execute(q.order_by(run.c.checkpoint))]


def complete_pending(
    engine: Engine, settings: Settings, templates: Templates, clock: Clock
) -> list[Completed]:
    """Complete every run stopped between storing its results and queueing its messages (complete_run)
    that no process is working on (its checkpoint's run claim free or stale)."""
    with engine.connect() as conn:
        todo = unfinished(conn)
    done = []
    for cp, _ in todo:
        try:
            with run_lock(engine, settings, cp):
                with engine.connect() as conn:
                    again = dict(unfinished(conn))  # completed meanwhile by whoever held the claim?
                if cp in again:
                    queued = complete_run(engine, settings, templates, Checkpoint.parse(cp), again[cp], clock)
                    done.append(Completed(again[cp], cp, queued))
        except claims.Busy:
            continue  # a run of it is under way: that run queues the messages
    return done


def deliver(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    clock: Clock,
    should_stop: Callable[[], bool] = lambda: False,
) -> Counter[str]:
    """Send what is pending (and retries due soon) over `transport`."""

    mail = settings.mail
    return asyncio.run(
        deliver_pending(
            engine,
            transport,
            sender=mail.from_address,
            retry=mail.retry,
            parallel=mail.smtp.connections,
            clock=clock,
            should_stop=should_stop,
        )
    )


def run_checkpoint(
    engine: Engine,
    rules: RuleSet,
    settings: Settings,
    templates: Templates,
    checkpoint: Checkpoint,
    clock: Clock,
    *,
    transport: Transport | None = None,
    progress: Progress | None = None,
    wait: float | None = 0,
    should_stop: Callable[[], bool] = lambda: False,
    on_wait: Callable[[claims.Holder], None] | None = None,
) -> RunOutcome:
    """The whole checkpoint under its run claim (run_lock: `wait`, `should_stop` and `on_wait` as
    there; claims.Busy, nothing written, when another run holds it): evaluate and store, open the cases
    and queue the messages, then deliver them if given a transport (until `should_stop()`)."""
    with run_lock(engine, settings, str(checkpoint), wait=wait, should_stop=should_stop, on_wait=on_wait):
        run_id, summary = evaluate_checkpoint(engine, rules, checkpoint, clock, progress)
        failpoints.hit("run:after-results-stored")
        queued = complete_run(engine, settings, templates, checkpoint, run_id, clock)
    delivery = (
        deliver(engine, settings, transport, clock, should_stop) if transport is not None else Counter[str]()
    )
    return RunOutcome(run_id, str(checkpoint), rules.hash, summary, queued, delivery)
