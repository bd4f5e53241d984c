"""The bureau's figures. In: a connection, a checkpoint, the previous one. Out: BureauFigures (counts
and amounts by department and light, the red projects, the largest of them with their reasons, the
unreported projects, the trend), gathered by the database with GROUP BY and ORDER BY … LIMIT.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from monitor.core.rows import StoredResult, Unreported, row_of
from monitor.core.summary import BureauFigures
from monitor.db.engine import PROJECT_RESULT, UNIT
from monitor.db.reads import result_dict


def bureau_figures(conn: Connection, checkpoint: str, previous: str | None, top_red: int) -> BureauFigures:
    """What the bureau summary states (views.bureau_summary), gathered by the database: GROUP BY for the
    counts, amounts and trend, ORDER BY … LIMIT for the largest red projects; only the red codes and
    the unreported projects are listed in full. `previous` None: no trend."""
    pr, unit = PROJECT_RESULT, UNIT
    dept = case(
        (unit.c.code.is_(None), None),
        (func.coalesce(unit.c.supervisor_code, "") == "", unit.c.code),
        else_=unit.c.supervisor_code,
    ).label("dept")
    q = (
        select(dept, pr.c.light, func.count(), func.coalesce(func.sum(pr.c.budget), 0))
        .select_from(pr.outerjoin(unit, unit.c.code == pr.c.unit_code))
        .where(pr.c.checkpoint == checkpoint)
        .group_by(dept, pr.c.light)
    )
    groups = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in conn.execute(q)}
    is_red = (pr.c.checkpoint == checkpoint, pr.c.light == "red")
    red = list(conn.execute(select(pr.c.project_code).where(*is_red)).scalars())
    top: list[StoredResult] = []
    if top_red > 0 and red:
        nth = conn.execute(
            select(pr.c.budget).where(*is_red).order_by(pr.c.budget.desc()).limit(1).offset(top_red - 1)
        ).scalar()
        q = select(pr).where(*is_red)
        if nth is not None:  # fewer reds than asked for: all of them
            q = q.where(pr.c.budget >= nth)  # ties with the n-th included: the view breaks them by code
        top = [result_dict(r._mapping, ()) for r in conn.execute(q)]  # reasons as stored
    not_reported: list[Unreported] = [
        row_of(Unreported, r._mapping)
        for r in conn.execute(
            select(pr.c.project_code, pr.c.project_name, pr.c.unit_code, pr.c.budget)
            .where(pr.c.checkpoint == checkpoint, pr.c.status == "not_reported")
            .order_by(pr.c.unit_code, pr.c.project_code)
        )
    ]
    trend = None
    if previous is not None:
        prev = pr.alias("prev")
        tq = (
            select(prev.c.light, pr.c.light, func.count())
            .join(prev, prev.c.project_code == pr.c.project_code)
            .where(
                pr.c.checkpoint == checkpoint,
                prev.c.checkpoint == previous,
                pr.c.light.is_not(None),
                prev.c.light.is_not(None),
            )
            .group_by(prev.c.light, pr.c.light)
        )
        trend = Counter({(r[0], r[1]): int(r[2]) for r in conn.execute(tq)})
    return BureauFigures(groups, red, top, not_reported, trend)
