"""A run and its results written. In: a checkpoint's rules and evaluated ProjectResults. Out: the
rule version and run rows (start_run, finish_run, runs), the results inserted, cleared or replaced in
bulk, and their Summary counted by the database (tally).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select, text, update
from sqlalchemy.engine import Connection

from monitor.core.model import (
    ProjectResult,
)
from monitor.core.rows import RunRecord, row_of
from monitor.core.summary import Summary
from monitor.core.workdays import as_utc
from monitor.db import partitions
from monitor.db.engine import INDICATOR_RESULT, PROJECT_RESULT, RULE_VERSION, RUN, RUN_POLICY


def bulk_insert(
    conn: Connection, tbl: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """executemany with plain tuples on the driver: no per-row parameter objects (bulk writes)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {tbl.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, list(rows))


PROJECT_RESULT_COLS = (
    "checkpoint",
    "project_code",
    "run_id",
    "unit_code",
    "project_name",
    "status",
    "budget",
    "executed",
    "execution_rate",
    "time_progress",
    "budget_light",
    "target_light",
    "light",
    "reasons",
)
INDICATOR_RESULT_COLS = (
    "checkpoint",
    "project_code",
    "indicator_code",
    "name",
    "kind",
    "light",
    "ratio",
    "reason",
    "target",
    "actual",
    "measure_unit",
    "direction",
)


def save_policies(conn: Connection, run_id: int, facts: Sequence[tuple[int, str]]) -> None:
    """The policies a run's SQL form used, by id, as the facts its reasons are formatted from."""
    bulk_insert(conn, RUN_POLICY, ("run_id", "id", "facts"), [(run_id, i, f) for i, f in facts])


def load_policies(conn: Connection, run_ids: Iterable[int]) -> dict[tuple[int, int], str]:
    """(run id, policy id) -> the stored facts of that policy, for the runs `run_ids`."""
    q = select(RUN_POLICY).where(RUN_POLICY.c.run_id.in_(sorted(set(run_ids))))
    return {(r.run_id, r.id): r.facts for r in conn.execute(q)}


def clear_results(conn: Connection, checkpoint: str) -> None:
    partitions.ensure(conn, checkpoint)  # PostgreSQL: its results in a partition of their own
    conn.execute(delete(INDICATOR_RESULT).where(INDICATOR_RESULT.c.checkpoint == checkpoint))
    conn.execute(delete(PROJECT_RESULT).where(PROJECT_RESULT.c.checkpoint == checkpoint))


def insert_results(conn: Connection, run_id: int, results: Sequence[ProjectResult]) -> None:
    """Store a chunk of results (after clear_results, in the same transaction). `_value_` is the
    enum's plain string, read without the `.value` property's cost (millions of rows)."""
    bulk_insert(
        conn,
        PROJECT_RESULT,
        PROJECT_RESULT_COLS,
        [
            (
                r.checkpoint,
                r.project_code,
                run_id,
                r.unit_code,
                r.project_name,
                r.status._value_,
                r.budget,
                r.executed,
                r.execution_rate,
                r.time_progress,
                r.budget_light and r.budget_light._value_,
                r.target_light and r.target_light._value_,
                r.light and r.light._value_,
                "\n".join(r.reasons),
            )
            for r in results
        ],
    )
    bulk_insert(
        conn,
        INDICATOR_RESULT,
        INDICATOR_RESULT_COLS,
        [
            (
                r.checkpoint,
                r.project_code,
                i.indicator_code,
                i.name,
                i.kind._value_,
                i.light._value_,
                i.ratio,
                i.reason,
                i.target,
                i.actual,
                i.measure_unit,
                i.direction,
            )
            for r in results
            for i in r.indicators
        ],
    )


def delete_results(conn: Connection, checkpoint: str, codes: Sequence[str]) -> None:
    """Remove some projects' stored results of `checkpoint` (to store them again)."""
    for tbl in (INDICATOR_RESULT, PROJECT_RESULT):
        conn.execute(delete(tbl).where(tbl.c.checkpoint == checkpoint, tbl.c.project_code.in_(list(codes))))


def tally(
    conn: Connection,
    checkpoint: str,
    lo: str | None = None,
    hi: str | None = None,
    schema: str | None = None,
    settled_only: bool = False,
) -> Summary:
    """The Summary of `checkpoint`'s stored results (of the projects from `lo` to `hi` if given, in
    the tables of `schema` if given: an attached scratch database), counted by the database.
    `settled_only`: leave out the projects still uncertain ('?'), for a count made before the pure
    core has evaluated them again (and thrown away if there were any)."""
    summary = Summary(checkpoint)
    prefix = f"{schema}." if schema else ""
    bounds = ((">=", "lo", lo), ("<", "hi", hi))
    within = "".join(f" AND project_code {op} :{name}" for op, name, v in bounds if v is not None)
    settled = " AND (light IS NULL OR light <> '?')" if settled_only else ""
    params = {"cp": checkpoint, "lo": lo, "hi": hi}
    groups = text(
        "SELECT g.unit_code, u.name, g.light, g.n, g.amount FROM (SELECT unit_code, light, count(*) AS n,"
        f" coalesce(sum(budget), 0) AS amount FROM {prefix}project_result"
        f" WHERE checkpoint = :cp{within}{settled}"
        " GROUP BY unit_code, light) g LEFT JOIN unit u ON u.code = g.unit_code"
        " ORDER BY g.unit_code, g.light"
    )
    for code, name, light, n, amount in conn.execute(groups, params):
        summary.add_group(light, int(n), int(amount), code, name or code)
    blue = text(
        f"SELECT count(*) FROM {prefix}indicator_result WHERE checkpoint = :cp{within} AND light = 'blue'"
    )
    summary.blue_indicators = int(conn.execute(blue, params).scalar_one())
    return summary


def finish_run(conn: Connection, run_id: int, counts: Mapping[str, int], now: dt.datetime) -> None:
    conn.execute(
        update(RUN).where(RUN.c.id == run_id).values(finished_at=as_utc(now), status="finished", **counts)
    )


def save_rule_version(conn: Connection, rules_hash: str, content: str, now: dt.datetime) -> None:
    exists = conn.execute(select(RULE_VERSION.c.hash).where(RULE_VERSION.c.hash == rules_hash)).first()
    if not exists:
        conn.execute(insert(RULE_VERSION).values(hash=rules_hash, content=content, created_at=as_utc(now)))


def start_run(conn: Connection, checkpoint: str, rules_hash: str, now: dt.datetime) -> int:
    res = conn.execute(
        insert(RUN).values(
            checkpoint=checkpoint, started_at=as_utc(now), rules_hash=rules_hash, status="running"
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def runs(conn: Connection, checkpoint: str | None = None) -> list[RunRecord]:
    q = select(RUN).order_by(RUN.c.id)
    if checkpoint:
        q = q.where(RUN.c.checkpoint == checkpoint)
    return [row_of(RunRecord, r._mapping) for r in conn.execute(q)]
