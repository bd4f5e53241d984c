"""A checkpoint run, top to bottom, as in the design diagram:
load inputs → evaluate (pure) → store results → decide who is told what (pure) → compose messages
→ queue them in the outbox (persisted) → deliver. Each stage is a call to a small module; no stage
calls the next one itself. The scheduler and the CLI only call `run_checkpoint` and `deliver`.

A run holds its checkpoint's claim (`run_lock`, monitor.db.claims) from start to queueing, whoever calls it:
a second run of the checkpoint waits or is refused (Busy). It is two transactions: the evaluation
stores the results (run `evaluated`), then the cases are opened, the messages queued and the run marked
`finished` together. A run stopped in between is completed by `complete_pending` (`monitor send`, the
service's reconcile).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from monitor.cases import exemptions
from monitor.cases.store import open_and_resolve
from monitor.config.settings import Settings
from monitor.core import failpoints, workers
from monitor.core.errors import BadInput
from monitor.core.model import Checkpoint, Inputs
from monitor.core.summary import Summary
from monitor.core.workdays import as_utc
from monitor.db import claims
from monitor.db.engine import PROJECT, RUN, count_rows
from monitor.db.inputs import all_projects, load_chunk, load_inputs, load_units, project_chunks, unreported
from monitor.db.reads import has_results
from monitor.db.results import (
    clear_results,
    delete_results,
    insert_results,
    save_rule_version,
    start_run,
    tally,
)
from monitor.db.upserts import large_cache
from monitor.deliver import outbox
from monitor.deliver.sender import deliver_pending
from monitor.deliver.transport import Transport
from monitor.evaluate import halves
from monitor.evaluate import sql as compiled
from monitor.evaluate.core import evaluate
from monitor.evaluate.stored import bureau_figures
from monitor.notify import decide as notify
from monitor.notify import digests, messages, views
from monitor.notify.render import Templates
from monitor.reports.context import Sources
from monitor.reports.write import default_name, write_all
from monitor.rules.load import RuleSet
from monitor.rules.policy import Policies

Progress = Callable[[int, int], None]  # (done, total)
Clock = Callable[[], dt.datetime]


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


class QueuedMeanwhile(BadInput):
    """Messages of the checkpoint were queued by another process after this one decided its own."""


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


def evaluate_checkpoint(
    engine: Engine,
    rules: RuleSet,
    checkpoint: Checkpoint,
    clock: Clock,
    progress: Progress | None = None,
    method: str = "sql",
    split: bool | None = None,
) -> tuple[int, Summary]:
    """Evaluate `checkpoint` and replace its stored results in one transaction; every run is
    recorded, failed ones too. `method` "sql" (default): the rules compiled into SQL compute every
    light in the database (monitor.evaluate.sql), and the projects it leaves uncertain are evaluated again
    by the pure core; "python": the pure core evaluates every project, streamed in chunks.
    `split`: compute the indicator and project results in two halves on two cores (monitor.evaluate.halves;
    file SQLite only); default: for a large checkpoint on a machine with two cores or more."""
    cp = str(checkpoint)
    with engine.begin() as conn:
        save_rule_version(conn, rules.hash, rules.content, clock())
        run_id = start_run(conn, cp, rules.hash, clock())
    policies = Policies(rules)
    try:
        # the scratch (files the halves attach) ends after the transaction: see monitor.evaluate.halves
        with (
            engine.connect() as conn,
            halves.Scratch(conn) as scratch,
            conn.begin(),
            large_cache(conn),
        ):
            total = count_rows(conn, PROJECT)
            in_halves = method == "sql" and halves.worth_it(engine, total, split)
            if not in_halves:
                clear_results(conn, cp)  # the halves clear once their helper has started
            if method == "sql":
                summary = _evaluate_in_sql(conn, scratch, policies, checkpoint, run_id, total, in_halves)
                if progress:
                    progress(total, total)
            else:
                _evaluate_in_chunks(conn, policies, checkpoint, run_id, total, progress)
                summary = tally(conn, cp)
            evaluated = update(RUN).where(RUN.c.id == run_id)  # finished once its mail is queued
            conn.execute(evaluated.values(status="evaluated", **summary.run_counts()))
    except BaseException:
        with engine.begin() as conn:
            failed = {"status": "failed", "finished_at": as_utc(clock())}
            conn.execute(update(RUN).where(RUN.c.id == run_id).values(**failed))
        raise
    return run_id, summary


def _evaluate_in_sql(
    conn: Connection,
    scratch: halves.Scratch,
    policies: Policies,
    checkpoint: Checkpoint,
    run_id: int,
    total: int,
    in_halves: bool,
) -> Summary:
    """The rules compiled into SQL light every project (in two halves if `in_halves`); the projects they
    leave uncertain are evaluated again by the pure core, 500 at a time. Returns the checkpoint's tally."""
    cp = str(checkpoint)
    parts: halves.Split | None = None
    if in_halves:
        unsure, parts = halves.evaluate(conn, scratch, policies, checkpoint, run_id, total)
    else:
        unsure = compiled.evaluate(conn, policies, checkpoint, run_id)
    units = load_units(conn) if unsure else {}
    for i in range(0, len(unsure), 500):
        codes = unsure[i : i + 500]
        delete_results(conn, cp, codes)
        inputs = load_inputs(conn, cp, codes, units)
        _evaluate_python(conn, policies, checkpoint, run_id, inputs)
    return parts.tally(conn, checkpoint, unsure) if parts else tally(conn, cp)


def _evaluate_in_chunks(
    conn: Connection,
    policies: Policies,
    checkpoint: Checkpoint,
    run_id: int,
    total: int,
    progress: Progress | None,
) -> None:
    """The pure core evaluates every project, streamed in chunks of projects; `progress` after each."""
    cp = str(checkpoint)
    units, done = load_units(conn), 0
    for projects in project_chunks(conn):
        chunk = load_chunk(conn, cp, projects[0].code, projects[-1].code)
        inputs = Inputs(units, projects, chunk.indicators, chunk.project_reports, chunk.indicator_reports)
        _evaluate_python(conn, policies, checkpoint, run_id, inputs)
        done += len(projects)
        if progress:
            progress(done, total)


def _evaluate_python(
    conn: Connection, policies: Policies, checkpoint: Checkpoint, run_id: int, inputs: Inputs
) -> None:
    """The pure core over `inputs`, results stored (reasons included)."""
    results = evaluate(policies, checkpoint, inputs)
    insert_results(conn, run_id, results)


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
        return _queue(engine, conn, settings, templates, checkpoint, clock, chunk_units, workers)


def _queue(
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
    options = messages.options(settings, checkpoint, now)
    previous_cp = checkpoint.previous_in(list(settings.checkpoint_months))
    queued: list[dict[str, str | None]] = []

    def put(conn: Connection, rows: list[dict[str, Any]]) -> None:
        _put(conn, cp, rows)
        queued.extend({"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows)

    exempt = exemptions.active(conn, exemptions.local_day(now, settings.time_zone))
    prev = str(previous_cp) if previous_cp and has_results(conn, str(previous_cp)) else None
    job = digests.Job(settings, cp, now, options, prev, exempt)
    if workers is None:
        workers = digests.workers_for(engine, count_rows(conn, PROJECT))
    for rows in digests.rows_by_chunk(engine, conn, job, templates, chunk_units, workers):
        put(conn, rows)
    units = load_units(conn)
    figures = bureau_figures(conn, cp, prev, options.top_red)
    view = views.bureau_summary(cp, figures, units, prev, options)
    last_id, last = outbox.last_queued(conn, cp, kind="summary").get(("summary", None), (0, None))
    for notice in notify.summary_notice(view, last, options):
        files = report_attachments(engine, settings, checkpoint, clock)
        row = messages.compose(notice, cp, templates, settings, now, files)
        put(conn, [{**row, "supersedes": last_id}])
    return queued


def _put(conn: Connection, checkpoint: str, rows: list[dict[str, Any]]) -> list[int]:
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
        queued = _queue(engine, conn, settings, templates, checkpoint, clock, chunk_units, workers)
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
            cp, all_projects(conn), load_units(conn), sent, messages.options(settings, checkpoint, now)
        )
        rows = messages.compose_all(notices, cp, templates, settings, now)
        for row in rows:
            row["supersedes"] = last.get((row["kind"], row["unit_code"]), (0, None))[0]
        _put(conn, cp, rows)
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
            messages.options(settings, checkpoint, now),
        )
        rows = messages.compose_all(notices, cp, templates, settings, now)
        for row in rows:
            row["supersedes"] = last.get((row["kind"], row["unit_code"]), (0, None))[0]
        _put(conn, cp, rows)
    return [{"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows]


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
