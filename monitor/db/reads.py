"""Stored results read back. In: a connection and a checkpoint (a unit, a light, a range of units).
Out: results as plain dicts in the stable JSON shape (README), whole or streamed a chunk of units at a
time, lights by project, names, the runs they came from; the facts a reason is formatted from, and
which projects' stated inputs changed since (monitor.evaluate.reasons formats the reasons: readers
call monitor.evaluate.stored, which reads through this module and formats them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Connection

from monitor.core.rows import StoredIndicator, StoredResult, row_of
from monitor.db.engine import INDICATOR_RESULT, PROJECT_REPORT, PROJECT_RESULT, REPORT_BATCH


def result_lights(conn: Connection, checkpoint: str) -> dict[str, str | None]:
    """project code -> stored project light at `checkpoint` (None when not reported)."""
    q = select(PROJECT_RESULT.c.project_code, PROJECT_RESULT.c.light).where(
        PROJECT_RESULT.c.checkpoint == checkpoint
    )
    return {r[0]: r[1] for r in conn.execute(q)}


INDICATOR_KEYS: tuple[str, ...] = ("indicator_code", "name", "kind", "light", "ratio", "reason")
INDICATOR_KEYS += ("target", "actual", "measure_unit", "direction")
# what an indicator's reason is formatted from (reason_facts; monitor.evaluate.reasons)
FACT_KEYS: tuple[str, ...] = ("project_code", "indicator_code", "name", "kind", "light", "target")
FACT_KEYS += ("actual", "measure_unit", "direction", "reason", "policy", "reported", "possibility")


def load_results(
    conn: Connection, checkpoint: str, unit: str | None = None, light: str | None = None
) -> list[StoredResult]:
    """Stored results of `checkpoint` as plain dicts in the stable JSON shape (see README), the
    reasons as stored (those the SQL form left to be formatted are empty: monitor.evaluate.stored)."""
    q = select(PROJECT_RESULT).where(PROJECT_RESULT.c.checkpoint == checkpoint)
    if unit:
        q = q.where(PROJECT_RESULT.c.unit_code == unit)
    if light == "not_reported":  # a not-reported project has no light
        q = q.where(PROJECT_RESULT.c.light.is_(None))
    elif light:
        q = q.where(PROJECT_RESULT.c.light == light)
    q = q.order_by(PROJECT_RESULT.c.unit_code, PROJECT_RESULT.c.project_code)
    projects = [dict(r._mapping) for r in conn.execute(q)]
    inds: dict[str, list[Mapping[Any, Any]]] = {}
    iq = select(INDICATOR_RESULT).where(INDICATOR_RESULT.c.checkpoint == checkpoint)
    if unit:
        iq = iq.where(
            INDICATOR_RESULT.c.project_code.in_(
                select(PROJECT_RESULT.c.project_code).where(
                    PROJECT_RESULT.c.checkpoint == checkpoint, PROJECT_RESULT.c.unit_code == unit
                )
            )
        )
    for r in conn.execute(iq.order_by(INDICATOR_RESULT.c.project_code, INDICATOR_RESULT.c.indicator_code)):
        inds.setdefault(r.project_code, []).append(dict(r._mapping))
    return [result_dict(p, inds.get(p["project_code"], [])) for p in projects]


def result_dict(p: Mapping[Any, Any], indicators: Sequence[Mapping[Any, Any]]) -> StoredResult:
    """A stored project result (and its indicator results) in the stable JSON shape."""
    return {
        "project_code": p["project_code"],
        "project_name": p["project_name"],
        "unit_code": p["unit_code"],
        "checkpoint": p["checkpoint"],
        "status": p["status"],
        "budget_light": p["budget_light"],
        "target_light": p["target_light"],
        "light": p["light"],
        "execution_rate": p["execution_rate"],
        "time_progress": p["time_progress"],
        "budget": p["budget"],
        "executed": p["executed"],
        "reasons": [s for s in p["reasons"].split("\n") if s],
        "indicators": [row_of(StoredIndicator, i) for i in indicators],
    }


WARNED = ("yellow", "red")


def iter_unit_results(
    conn: Connection, checkpoint: str, chunk_units: int = 2000
) -> Iterator[list[StoredResult]]:
    """Stored results of `checkpoint` like load_results, streamed: `chunk_units` whole units at a time
    (ordered by unit code, then project code; keyset pagination, so memory stays flat). Indicator
    results are loaded for yellow and red projects only: the others get `"indicators": []` (what the
    unit digests, reminders and counts need; use load_results for the full detail)."""
    for first, last in unit_chunks(conn, checkpoint, chunk_units):
        yield unit_results(conn, checkpoint, first, last)


def unit_chunks(conn: Connection, checkpoint: str, chunk_units: int = 2000) -> Iterator[tuple[str, str]]:
    """(first, last) unit codes of consecutive chunks of `chunk_units` units with results in
    `checkpoint`, in code order (keyset pagination)."""
    pr = PROJECT_RESULT
    last: str | None = None
    while True:
        q = select(pr.c.unit_code).where(pr.c.checkpoint == checkpoint)
        if last is not None:
            q = q.where(pr.c.unit_code > last)
        codes = conn.execute(q.distinct().order_by(pr.c.unit_code).limit(chunk_units)).scalars().all()
        if not codes:
            return
        last = codes[-1]
        yield codes[0], last


def unit_results(
    conn: Connection,
    checkpoint: str,
    first: str,
    last: str,
    facts: dict[str, tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]] | None = None,
) -> list[StoredResult]:
    """The results of the units with codes in [first, last] (one chunk of iter_unit_results): every
    project, the indicators of the yellow and red ones, the reasons as stored. With `facts`, the yellow
    and red projects' reason facts are put there too (reason_facts' shape), read in the same pass."""
    pr, ir = PROJECT_RESULT, INDICATOR_RESULT
    in_chunk = (pr.c.checkpoint == checkpoint, pr.c.unit_code.between(first, last))
    projects = [
        r._mapping
        for r in conn.execute(select(pr).where(*in_chunk).order_by(pr.c.unit_code, pr.c.project_code))
    ]
    inds: dict[str, list[Mapping[Any, Any]]] = {}
    # by the warned projects' codes, 500 at a time: a join the planner may drive from the whole
    # indicator_result table would read it once per chunk (quadratic at national size)
    warned = sorted(p["project_code"] for p in projects if p["light"] in WARNED)
    keys = ("project_code", *INDICATOR_KEYS)
    keys += tuple(k for k in FACT_KEYS if k not in keys) if facts is not None else ()
    cols = [ir.c[k] for k in keys]
    for i in range(0, len(warned), 500):
        iq = (
            select(*cols)
            .where(ir.c.checkpoint == checkpoint, ir.c.project_code.in_(warned[i : i + 500]))
            .order_by(ir.c.project_code, ir.c.indicator_code)
        )
        for r in conn.execute(iq):
            inds.setdefault(r.project_code, []).append(r._mapping)
    if facts is not None:
        facts.update(
            (p["project_code"], (p, inds.get(p["project_code"], [])))
            for p in projects
            if p["light"] in WARNED
        )
    return [result_dict(p, inds.get(p["project_code"], ())) for p in projects]


def result_runs(conn: Connection, checkpoint: str) -> set[int]:
    """The runs whose results `checkpoint` holds now (one, unless projects were evaluated apart)."""
    q = select(PROJECT_RESULT.c.run_id).where(PROJECT_RESULT.c.checkpoint == checkpoint).distinct()
    return set(conn.execute(q).scalars())


def has_results(conn: Connection, checkpoint: str) -> bool:
    q = select(PROJECT_RESULT.c.project_code).where(PROJECT_RESULT.c.checkpoint == checkpoint).limit(1)
    return conn.execute(q).first() is not None


def previous_lights(
    conn: Connection, checkpoint: str, previous: str, first_unit: str, last_unit: str
) -> dict[str, str | None]:
    """result_lights of `previous` for the projects of `checkpoint` whose unit codes lie in
    [first_unit, last_unit] (one chunk of iter_unit_results)."""
    cur, prev = PROJECT_RESULT, PROJECT_RESULT.alias("prev")
    q = (
        select(prev.c.project_code, prev.c.light)
        .join(cur, cur.c.project_code == prev.c.project_code)
        .where(
            cur.c.checkpoint == checkpoint,
            cur.c.unit_code.between(first_unit, last_unit),
            prev.c.checkpoint == previous,
        )
    )
    return {r[0]: r[1] for r in conn.execute(q)}


def project_names(conn: Connection, checkpoint: str, codes: Iterable[str]) -> dict[str, str]:
    """project code -> name as stored with `checkpoint`'s results (codes without a result are left out)."""
    wanted, out = sorted(set(codes)), {}
    for i in range(0, len(wanted), 500):
        q = select(PROJECT_RESULT.c.project_code, PROJECT_RESULT.c.project_name).where(
            PROJECT_RESULT.c.checkpoint == checkpoint,
            PROJECT_RESULT.c.project_code.in_(wanted[i : i + 500]),
        )
        out.update({r[0]: r[1] for r in conn.execute(q)})
    return out


def reason_facts(
    conn: Connection, checkpoint: str, codes: Sequence[str]
) -> dict[str, tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]]:
    """project code -> (its stored project result, its indicator results): what its reasons are
    formatted from (monitor.evaluate.reasons)."""
    pr, ir = PROJECT_RESULT, INDICATOR_RESULT
    out: dict[str, tuple[Mapping[Any, Any], list[Mapping[Any, Any]]]] = {}
    for i in range(0, len(codes), 500):
        some = list(codes[i : i + 500])
        q = select(pr).where(pr.c.checkpoint == checkpoint, pr.c.project_code.in_(some))
        out.update({r.project_code: (r._mapping, []) for r in conn.execute(q)})
        iq = (
            select(*(ir.c[k] for k in FACT_KEYS))
            .where(ir.c.checkpoint == checkpoint, ir.c.project_code.in_(some))
            .order_by(ir.c.project_code, ir.c.indicator_code)
        )
        for r in conn.execute(iq):
            if r.project_code in out:
                out[r.project_code][1].append(r._mapping)
    return out


def changed_projects(conn: Connection, checkpoint: str, codes: Sequence[str]) -> set[str]:
    """The projects among `codes` whose inputs a reason states changed since their result was stored:
    the project gone, its budget, carry-over or execution report, an indicator gone or added, its
    target, direction or unit, its report or actual."""
    out: set[str] = set()
    cp = ":cp"
    project = (
        "SELECT x.project_code FROM project_result x LEFT JOIN project p ON p.code = x.project_code"
        f" LEFT JOIN project_report r ON r.checkpoint = {cp} AND r.project_code = x.project_code"
        f" WHERE x.checkpoint = {cp} AND x.project_code IN :codes AND (p.code IS NULL OR p.budget <> x.budget"
        " OR (x.carryover IS NOT NULL AND p.carryover <> x.carryover)"
        " OR (r.project_code IS NULL) <> (x.status = 'not_reported')"
        " OR (r.project_code IS NOT NULL AND r.executed <> x.executed))"
    )
    indicator = (
        "SELECT x.project_code FROM indicator_result x"
        " LEFT JOIN indicator i ON i.project_code = x.project_code AND i.code = x.indicator_code"
        f" LEFT JOIN indicator_report ir ON ir.checkpoint = {cp} AND ir.project_code = x.project_code"
        " AND ir.indicator_code = x.indicator_code"
        f" WHERE x.checkpoint = {cp} AND x.project_code IN :codes AND (i.code IS NULL OR i.target <> x.target"
        " OR i.direction <> x.direction OR i.measure_unit <> x.measure_unit"
        " OR (x.reported IS NOT NULL AND (ir.project_code IS NULL) <> (x.reported = 0))"
        " OR COALESCE(ir.actual, '') <> COALESCE(x.actual, ''))"
    )
    added = (
        "SELECT i.project_code FROM indicator i JOIN project_result x ON x.project_code = i.project_code"
        f" AND x.checkpoint = {cp} WHERE i.project_code IN :codes AND NOT EXISTS (SELECT 1 FROM"
        f" indicator_result y WHERE y.checkpoint = {cp} AND y.project_code = i.project_code"
        " AND y.indicator_code = i.code)"
    )
    for i in range(0, len(codes), 500):
        some = list(codes[i : i + 500])
        for sql in (project, indicator, added):
            q = text(sql).bindparams(bindparam("codes", expanding=True))
            out.update(conn.execute(q, {"cp": checkpoint, "codes": some}).scalars())
    return out


def report_provenance(conn: Connection, checkpoint: str, project_code: str) -> tuple[str, str, Any] | None:
    """(channel, source, time) of the import that last wrote the project's report at `checkpoint`;
    None when it has no report or the report predates provenance."""
    pr, batch = PROJECT_REPORT, REPORT_BATCH
    q = (
        select(batch.c.channel, batch.c.source, batch.c.at)
        .join(pr, pr.c.batch == batch.c.id)
        .where(pr.c.checkpoint == checkpoint, pr.c.project_code == project_code)
    )
    row = conn.execute(q).first()
    return (row.channel, row.source, row.at) if row else None
