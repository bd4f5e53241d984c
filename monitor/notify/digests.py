"""The unit messages of a checkpoint (digests, all-clears, reminders), decided and composed a chunk of
whole units at a time: in this process, or, for a large checkpoint, in worker processes that each read
their chunk from the database themselves while this process writes what they return into the outbox.

Composing is Python work (the pure core renders the reasons of yellow and red projects, Jinja2 the
bodies, monitor.notify.wire the message): with processes it uses every core. The writer keeps one
transaction for the whole checkpoint, as the serial path does, so either every message is queued or
none; the workers' reads are separate transactions, so the checkpoint's results are checked to be the
same runs' at the end as at the start (a run committed in between: nothing is queued, an error says so).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from monitor.cases.exemptions import Exemption
from monitor.config.settings import Settings
from monitor.core.errors import BadInput
from monitor.db.engine import cores as stored_cores
from monitor.db.engine import in_memory, make_engine
from monitor.db.inputs import load_units
from monitor.db.reads import previous_lights, project_names, result_runs, unit_chunks
from monitor.deliver import outbox
from monitor.evaluate.stored import unit_results
from monitor.notify import decide as notify
from monitor.notify import messages
from monitor.notify.render import Templates

PARALLEL_MIN_PROJECTS = 20_000  # below this, starting processes costs more than it saves


class ResultsChanged(BadInput):
    """The checkpoint was evaluated again while its messages were being composed."""


@dataclass(frozen=True)
class Job:
    """What every chunk of a checkpoint shares (sent to worker processes once)."""

    settings: Settings
    checkpoint: str
    now: dt.datetime
    options: notify.Options
    previous: str | None  # the previous checkpoint, when it has results
    exempt: Mapping[str, Exemption]


def chunk_rows(
    conn: Connection, job: Job, templates: Templates, first: str, last: str
) -> list[dict[str, Any]]:
    """The outbox rows of the units with codes in [first, last]: results read, notices decided
    (notify.unit_notices) against what was last queued, messages composed; each row's `supersedes`
    names the message it was decided against."""
    cp = job.checkpoint
    results = unit_results(conn, cp, first, last)
    if not results:
        return []
    units = load_units(conn, {r["unit_code"] for r in results})
    units.update(load_units(conn, {u.supervisor_code for u in units.values() if u.supervisor_code}))
    previous = previous_lights(conn, cp, job.previous, first, last) if job.previous else {}
    last_queued = outbox.last_queued(conn, cp, (first, last))  # read now: the decision's basis
    sent = {key: snapshot for key, (_, snapshot) in last_queued.items()}
    names = {r["project_code"]: r["project_name"] for r in results}
    told = {c for (kind, _), snap in sent.items() if kind == "warning" for c in snap}
    if told - names.keys():  # projects since moved to another unit or dropped
        names.update(project_names(conn, cp, told - names.keys()))
    notices = notify.unit_notices(
        cp, results, units, previous, job.previous, sent, job.options, names, job.exempt
    )
    rows = messages.compose_all(notices, cp, templates, job.settings, job.now)
    for row in rows:  # what each was decided against travels with it (outbox.queue, uq_outbox_once)
        row["supersedes"] = last_queued.get((row["kind"], row["unit_code"]), (0, None))[0]
    return rows


def workers_for(engine: Engine, projects: int) -> int:
    """How many worker processes to compose with: none for a small checkpoint, a one-core machine, a
    database other processes cannot open (SQLite in memory) or a daemonic process (multiprocessing
    forbids those children)."""
    cores = stored_cores()
    daemonic = multiprocessing.current_process().daemon
    if projects < PARALLEL_MIN_PROJECTS or cores < 2 or in_memory(engine) or daemonic:
        return 0
    return cores


def rows_by_chunk(
    engine: Engine, conn: Connection, job: Job, templates: Templates, chunk_units: int, workers: int
) -> Iterator[list[dict[str, Any]]]:
    """The outbox rows of every unit with results in the checkpoint, a chunk of units at a time in
    unit code order: composed here (workers 0) or by `workers` processes."""
    chunks = unit_chunks(conn, job.checkpoint, chunk_units)
    if workers <= 0:
        for first, last in chunks:
            yield chunk_rows(conn, job, templates, first, last)
        return
    with engine.connect() as fresh:
        runs = result_runs(fresh, job.checkpoint)
    ctx = multiprocessing.get_context("spawn")  # no inherited connections or locks
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start, initargs=(job,)) as pool:
        pending: deque[Future[list[dict[str, Any]]]] = deque()
        for first, last in chunks:
            pending.append(pool.submit(_chunk, first, last))
            if len(pending) >= 2 * workers:  # bounded: memory stays flat
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    with engine.connect() as fresh:
        if result_runs(fresh, job.checkpoint) != runs:
            raise ResultsChanged(
                f"{job.checkpoint} was evaluated again while its messages were being composed;"
                " nothing was queued: queue its messages again"
            )


_worker: dict[str, Any] = {}  # in a worker process: its job, engine and templates


def _start(job: Job) -> None:
    settings = job.settings
    _worker.update(
        job=job,
        engine=make_engine(settings.database_url),
        templates=Templates(settings.templates_dir, settings.template_override_dir),
    )


def _chunk(first: str, last: str) -> list[dict[str, Any]]:
    with _worker["engine"].connect() as conn:
        return chunk_rows(conn, _worker["job"], _worker["templates"], first, last)
