"""Evaluating a checkpoint: the rules compiled into SQL (or the pure core) light every project and the
results are stored with their facts, in one transaction; every run is recorded, failed ones too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from monitor.core.model import Checkpoint, Inputs
from monitor.core.summary import Summary
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, RUN, count_rows
from monitor.db.history import last_batch
from monitor.db.inputs import load_chunk, load_inputs, load_units, project_chunks
from monitor.db.results import (
    clear_results,
    delete_results,
    insert_results,
    save_rule_version,
    start_run,
    tally,
)
from monitor.db.upserts import large_cache
from monitor.evaluate import halves
from monitor.evaluate import sql as compiled
from monitor.evaluate.core import evaluate
from monitor.rules.load import RuleSet
from monitor.rules.policy import Policies

Progress = Callable[[int, int], None]  # (done, total)
Clock = Callable[[], dt.datetime]


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
            upto = last_batch(conn)  # the reports this run sees: which version of each it used
            in_halves = method == "sql" and halves.worth_it(engine, total, split)
            if not in_halves and not (method == "sql" and compiled.clears_itself(conn)):
                clear_results(conn, cp)  # the halves clear once their helper has started
            if method == "sql":
                summary = _evaluate_in_sql(conn, scratch, policies, checkpoint, run_id, total, in_halves)
                if progress:
                    progress(total, total)
            else:
                _evaluate_in_chunks(conn, policies, checkpoint, run_id, total, progress)
                summary = tally(conn, cp)
            evaluated = update(RUN).where(RUN.c.id == run_id)  # finished once its mail is queued
            conn.execute(evaluated.values(status="evaluated", reports_upto=upto, **summary.run_counts()))
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
