"""A checkpoint run, top to bottom, as in the design diagram:
load inputs → evaluate (pure) → store results → decide who is told what (pure) → compose messages
→ queue them in the outbox (persisted) → deliver. Each stage is a call to a small module; no stage
calls the next one itself. The scheduler and the CLI only call `run_checkpoint` and `deliver`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from monitor import compiled, digests, exemptions, halves, messages, notify, outbox, reasons, store, views
from monitor.delivery import Transport
from monitor.evaluate import evaluate
from monitor.model import Checkpoint, Inputs
from monitor.policy import Policies
from monitor.render import Templates
from monitor.rules import RuleSet
from monitor.settings import Settings
from monitor.summary import Summary

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
    light in the database (monitor.compiled), and the projects it leaves uncertain are evaluated again
    by the pure core; "python": the pure core evaluates every project, streamed in chunks.
    `split`: compute the indicator and project results in two halves on two cores (monitor.halves;
    file SQLite only); default: for a large checkpoint on a machine with two cores or more."""
    cp = str(checkpoint)
    with engine.begin() as conn:
        store.save_rule_version(conn, rules.hash, rules.content, clock())
        run_id = store.start_run(conn, cp, rules.hash, clock())
    policies = Policies(rules)
    try:
        # the scratch (files the halves attach) ends after the transaction: see monitor.halves
        with (
            engine.connect() as conn,
            halves.Scratch(conn) as scratch,
            conn.begin(),
            store.large_cache(conn),
        ):
            total = store.count_rows(conn, store.PROJECT)
            in_halves = method == "sql" and halves.worth_it(engine, total, split)
            if not in_halves:
                store.clear_results(conn, cp)  # the halves clear once their helper has started
            parts: halves.Split | None = None
            if method == "sql":
                reasons.remember(rules)
                if in_halves:
                    unsure, parts = halves.evaluate(conn, scratch, policies, checkpoint, run_id, total)
                else:
                    unsure = compiled.evaluate(conn, policies, checkpoint, run_id)
                units = store.load_units(conn) if unsure else {}
                for i in range(0, len(unsure), 500):
                    codes = unsure[i : i + 500]
                    store.delete_results(conn, cp, codes)
                    inputs = store.load_inputs(conn, cp, codes, units)
                    _evaluate_python(conn, policies, checkpoint, run_id, inputs)
                if progress:
                    progress(total, total)
            else:
                units, done = store.load_units(conn), 0
                for projects in store.project_chunks(conn):
                    chunk = store.load_chunk(conn, cp, projects[0].code, projects[-1].code)
                    inputs = Inputs(
                        units, projects, chunk.indicators, chunk.project_reports, chunk.indicator_reports
                    )
                    _evaluate_python(conn, policies, checkpoint, run_id, inputs)
                    done += len(projects)
                    if progress:
                        progress(done, total)
            summary = parts.tally(conn, checkpoint, unsure) if parts else store.tally(conn, cp)
            store.finish_run(conn, run_id, summary.run_counts(), clock())
    except BaseException:
        with engine.begin() as conn:
            failed = {"status": "failed", "finished_at": store.as_utc(clock())}
            conn.execute(update(store.RUN).where(store.RUN.c.id == run_id).values(**failed))
        raise
    return run_id, summary


def _evaluate_python(
    conn: Connection, policies: Policies, checkpoint: Checkpoint, run_id: int, inputs: Inputs
) -> None:
    """The pure core over `inputs`, results stored (reasons included)."""
    results = evaluate(policies, checkpoint, inputs)
    store.insert_results(conn, run_id, results)


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
    what notify.decide over store.load_results gives, streamed a chunk of whole units at a time (only
    yellow/red projects are read with their indicators; the bureau summary is counted by the database),
    all in one transaction, so memory stays flat at national size. `workers`: processes composing the
    unit messages (monitor.digests; default: one per core for a large checkpoint, else none)."""
    cp = str(checkpoint)
    now = clock()
    options = messages.options(settings, checkpoint, now)
    previous_cp = checkpoint.previous_in(list(settings.checkpoint_months))
    queued: list[dict[str, str | None]] = []

    def put(conn: Connection, rows: list[dict[str, Any]]) -> None:
        outbox.queue(conn, rows)
        queued.extend({"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows)

    with engine.begin() as conn:
        exempt = exemptions.active(conn, exemptions.local_day(now, settings.time_zone))
        prev = str(previous_cp) if previous_cp and store.has_results(conn, str(previous_cp)) else None
        job = digests.Job(settings, cp, now, options, prev, exempt)
        if workers is None:
            workers = digests.workers_for(engine, store.count_rows(conn, store.PROJECT))
        for rows in digests.rows_by_chunk(engine, conn, job, templates, chunk_units, workers):
            put(conn, rows)
        units = store.load_units(conn)
        figures = store.bureau_figures(conn, cp, prev, options.top_red)
        view = views.bureau_summary(cp, figures, units, prev, options)
        for notice in notify.summary_notice(view, outbox.sent_snapshot(conn, cp, "summary", None), options):
            files = report_attachments(engine, settings, checkpoint, clock)
            put(conn, [messages.compose(notice, cp, templates, settings, now, files)])
    return queued


def report_attachments(
    engine: Engine, settings: Settings, checkpoint: Checkpoint, clock: Clock
) -> list[tuple[str, bytes]]:
    """The reports `mail.summary_attachments` asks for, as (file name, bytes), from the stored results."""
    wanted = settings.mail.summary_attachments
    if not wanted:
        return []
    import tempfile
    from pathlib import Path

    from monitor.app import App
    from monitor.reports import default_name, write_all

    app = App(settings, clock)
    app.__dict__["engine"] = engine  # the same database connection pool
    with tempfile.TemporaryDirectory() as tmp:
        outs = {fmt: Path(tmp) / default_name(fmt, checkpoint) for fmt in wanted}
        return [(p.name, p.read_bytes()) for p in write_all(app, checkpoint, outs)]


def open_cases(engine: Engine, checkpoint: Checkpoint, clock: Clock, time_zone: str) -> None:
    """Rectification: every yellow/red project gets an open warning case (once; not an exempted one);
    earlier cases of projects that are green now are resolved."""
    from monitor.web.cases import open_and_resolve

    with engine.begin() as conn:
        open_and_resolve(conn, str(checkpoint), clock(), time_zone=time_zone)


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
        notices = notify.reminders(
            cp,
            store.unreported(conn, cp),
            store.load_units(conn),
            round_key,
            outbox.sent_snapshots(conn, cp),
            messages.options(settings, checkpoint, now),
        )
        rows = messages.compose_all(notices, cp, templates, settings, now)
        outbox.queue(conn, rows)
    return [{"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows]


def deliver(
    engine: Engine,
    settings: Settings,
    transport: Transport,
    clock: Clock,
    should_stop: Callable[[], bool] = lambda: False,
) -> Counter[str]:
    """Send what is pending (and retries due soon) over `transport`."""
    from monitor.sender import deliver_pending

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
) -> RunOutcome:
    """The whole checkpoint: evaluate and store, queue the messages, deliver them if given a transport."""
    run_id, summary = evaluate_checkpoint(engine, rules, checkpoint, clock, progress)
    open_cases(engine, checkpoint, clock, settings.time_zone)
    queued = queue_notifications(engine, settings, templates, checkpoint, clock)
    delivery = deliver(engine, settings, transport, clock) if transport is not None else Counter[str]()
    return RunOutcome(run_id, str(checkpoint), rules.hash, summary, queued, delivery)
