"""A checkpoint's inputs read from the database. In: a connection and a checkpoint. Out: units,
projects (in keyset-paginated chunks), their indicators and the checkpoint's reports, as model objects
(core.model); all at once for a few projects (load_inputs), and the projects still unreported.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from monitor.core.model import (
    Direction,
    Indicator,
    IndicatorReport,
    Inputs,
    Kind,
    Project,
    ProjectReport,
    Unit,
)
from monitor.core.rows import Unreported
from monitor.db.engine import CHUNK, INDICATOR, INDICATOR_REPORT, PROJECT, PROJECT_REPORT, UNIT


def _unit(r: Any) -> Unit:
    emails = tuple(e.strip() for e in (r.email or "").split(";") if e.strip())
    return Unit(r.code, r.name, emails, r.supervisor_code)


def load_units(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, Unit]:
    """Every unit, or those of `codes`."""
    if codes is None:
        return {r.code: _unit(r) for r in conn.execute(select(UNIT))}
    wanted, out = sorted(set(codes)), {}
    for i in range(0, len(wanted), 500):
        out.update(
            {r.code: _unit(r) for r in conn.execute(select(UNIT).where(UNIT.c.code.in_(wanted[i : i + 500])))}
        )
    return out


_DIRECTION = {d.value: d for d in Direction}
_KIND = {k.value: k for k in Kind}
_PROJECT_COLS = ("code", "name", "unit_code", "budget", "carryover", "fund_flag", "category", "profile")
_INDICATOR_COLS = ("project_code", "code", "level1", "level2", "name", "direction", "target", "measure_unit")
_IND_REPORT_COLS = (
    "checkpoint",
    "project_code",
    "indicator_code",
    "actual",
    "forecast",
    "possibility",
    "causes",
    "cause_text",
    "measures",
)


def project_chunks(conn: Connection, size: int = CHUNK) -> Iterator[list[Project]]:
    """Every project in code order, `size` at a time (keyset pagination: memory stays flat)."""
    cols = [PROJECT.c[c] for c in _PROJECT_COLS]
    last = ""
    while True:
        rows = conn.execute(
            select(*cols).where(PROJECT.c.code > last).order_by(PROJECT.c.code).limit(size)
        ).all()
        if not rows:
            return
        yield [Project(*r) for r in rows]
        last = rows[-1][0]


@dataclass
class Chunk:
    """The indicators and `checkpoint` reports of the projects whose codes lie in [first, last]."""

    indicators: dict[str, list[Indicator]]
    project_reports: dict[str, ProjectReport]
    indicator_reports: dict[tuple[str, str], IndicatorReport]


def load_chunk(
    conn: Connection, checkpoint: str, first: str, last: str, codes: Sequence[str] | None = None
) -> Chunk:
    """The chunk of the projects whose codes lie in [first, last] (only those in `codes`, if given)."""
    icols = [INDICATOR.c[c] for c in (*_INDICATOR_COLS, "kind", "profile")]
    indicators: dict[str, list[Indicator]] = {}

    def within(col: Any) -> Any:
        return col.in_(list(codes)) if codes is not None else col.between(first, last)

    q = select(*icols).where(within(INDICATOR.c.project_code))
    for p, c, l1, l2, name, direction, target, unit, kind, profile in conn.execute(
        q.order_by(INDICATOR.c.project_code, INDICATOR.c.code)
    ).all():
        indicators.setdefault(p, []).append(
            Indicator(
                p,
                c,
                l1,
                l2,
                name,
                _DIRECTION[direction],
                target,
                unit,
                _KIND[kind] if kind else None,
                profile,
            )
        )
    pr = PROJECT_REPORT
    reports = {
        r[1]: ProjectReport(*r)
        for r in conn.execute(
            select(pr.c.checkpoint, pr.c.project_code, pr.c.executed, pr.c.forecast_executed).where(
                pr.c.checkpoint == checkpoint, within(pr.c.project_code)
            )
        ).all()
    }
    ir = INDICATOR_REPORT
    ind_reports = {
        (r[1], r[2]): IndicatorReport(*r)
        for r in conn.execute(
            select(*[ir.c[c] for c in _IND_REPORT_COLS]).where(
                ir.c.checkpoint == checkpoint, within(ir.c.project_code)
            )
        ).all()
    }
    return Chunk(indicators, reports, ind_reports)


def load_inputs(
    conn: Connection,
    checkpoint: str,
    project_codes: Iterable[str] | None = None,
    units: dict[str, Unit] | None = None,
) -> Inputs:
    """Load units, projects, indicators and the reports of `checkpoint` (optionally some projects only),
    all in memory: for previews and explanations; checkpoint runs stream with project_chunks/load_chunk.
    `units`: the units already loaded (a caller loading many batches loads them once)."""
    if units is None:
        units = load_units(conn)
    q = select(*[PROJECT.c[c] for c in _PROJECT_COLS]).order_by(PROJECT.c.code)
    if project_codes is not None:
        q = q.where(PROJECT.c.code.in_(list(project_codes)))
    projects = [Project(*r) for r in conn.execute(q).all()]
    if not projects:
        return Inputs(units, [], {}, {}, {})
    codes = [p.code for p in projects] if project_codes is not None else None
    chunk = load_chunk(conn, checkpoint, projects[0].code, projects[-1].code, codes)
    return Inputs(units, projects, chunk.indicators, chunk.project_reports, chunk.indicator_reports)


def all_projects(conn: Connection) -> list[Unreported]:
    """Every project, in the shape of `unreported` (what a reporting notice lists)."""
    q = select(PROJECT.c.code, PROJECT.c.name, PROJECT.c.unit_code, PROJECT.c.budget).order_by(
        PROJECT.c.unit_code, PROJECT.c.code
    )
    return [
        {"project_code": r.code, "project_name": r.name, "unit_code": r.unit_code, "budget": r.budget}
        for r in conn.execute(q)
    ]


def unreported(conn: Connection, checkpoint: str) -> list[Unreported]:
    """Projects with no execution report for `checkpoint` yet (what a reminder round lists)."""
    reported = select(PROJECT_REPORT.c.project_code).where(PROJECT_REPORT.c.checkpoint == checkpoint)
    q = (
        select(PROJECT.c.code, PROJECT.c.name, PROJECT.c.unit_code, PROJECT.c.budget)
        .where(PROJECT.c.code.not_in(reported))
        .order_by(PROJECT.c.unit_code, PROJECT.c.code)
    )
    return [
        {"project_code": r.code, "project_name": r.name, "unit_code": r.unit_code, "budget": r.budget}
        for r in conn.execute(q)
    ]
