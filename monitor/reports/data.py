"""What every report is drawn from: a checkpoint's stored results in (with units, the previous
checkpoint's lights and the units' indicator reports), flat typed report rows out. `build_rows` is
pure; `load` is the one place the reports read the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from monitor.config.settings import ResultsApplicationConfig
from monitor.core.errors import BadInput
from monitor.core.model import Checkpoint, Unit
from monitor.core.rows import StoredIndicator, StoredResult
from monitor.core.wording import period
from monitor.db.engine import INDICATOR_REPORT
from monitor.db.inputs import load_units
from monitor.db.reads import result_lights
from monitor.db.results import runs
from monitor.db.ruleversions import used_by_run
from monitor.evaluate.stored import load_results
from monitor.notify import messages
from monitor.notify.views import department, summary
from monitor.reports.trend import monthly_needed, project_change

if TYPE_CHECKING:
    from monitor.reports.context import Context


class NoResults(BadInput):
    """The checkpoint has not been run: there is nothing to report."""


@dataclass(frozen=True)
class Row:
    """One project at the checkpoint, with its unit, supervising department and trend."""

    project_code: str
    project_name: str
    unit_code: str
    unit_name: str
    department_code: str
    department_name: str
    status: str
    budget: int  # fen
    executed: int | None  # fen; None when not reported
    execution_rate: float | None
    time_progress: float
    budget_light: str | None
    target_light: str | None
    light: str | None  # None: not reported
    reasons: tuple[str, ...]
    indicators: tuple[StoredIndicator, ...]
    has_previous: bool = False  # the project has a result at the previous checkpoint
    previous_light: str | None = None  # its light there (None: not reported)
    change: str | None = None  # trend.project_change
    monthly_needed: int | None = None  # fen per month to finish by December (slow projects only)
    result: StoredResult | None = field(default=None, repr=False)  # the stored result it was built from

    def stored(self) -> StoredResult:
        """The stored result the row was built from (build_rows)."""
        if self.result is None:
            raise ValueError(f"report row {self.project_code}: not built from a stored result")
        return self.result


@dataclass(frozen=True)
class IndicatorAnswer:
    """What the unit reported for one indicator at the checkpoint."""

    possibility: str | None
    causes: str | None
    cause_text: str | None
    measures: str | None


@dataclass(frozen=True)
class ReportData:
    checkpoint: Checkpoint
    rows: list[Row]
    units: Mapping[str, Unit]
    previous_checkpoint: Checkpoint | None  # only when it has stored results
    previous_lights: dict[str, str | None]  # project code -> light at the previous checkpoint
    answers: Mapping[tuple[str, str], IndicatorAnswer]
    criteria: ResultsApplicationConfig
    bureau_name: str
    summary: dict[str, Any]  # views.summary: the same figures as the bureau e-mail
    # the budget light's red_below and yellow_below in the rules the run used (None: not stored)
    thresholds: tuple[Decimal, Decimal] | None = None

    @property
    def period(self) -> str:
        return period(str(self.checkpoint))

    @property
    def previous_period(self) -> str | None:
        return period(str(self.previous_checkpoint)) if self.previous_checkpoint else None

    def declared(self) -> dict[str, list[tuple[str, str]]]:
        """project code → (indicator name, 完成目标可能性) for every answered possibility."""
        names = {(r.project_code, i["indicator_code"]): i["name"] for r in self.rows for i in r.indicators}
        out: dict[str, list[tuple[str, str]]] = {}
        for (project, indicator), a in sorted(self.answers.items()):
            if a.possibility:
                name = names.get((project, indicator), indicator)
                out.setdefault(project, []).append((name, a.possibility))
        return out


def build_rows(
    results: Sequence[StoredResult],
    units: Mapping[str, Unit],
    previous: Mapping[str, str | None] | None,
    month: int,
) -> list[Row]:
    """Report rows in the stored order (unit, project); `previous` is None when there is no earlier
    checkpoint with results."""
    rows = []
    for r in results:
        unit = units.get(r["unit_code"])
        dept_code, dept_name = department(unit, units)
        before = previous.get(r["project_code"]) if previous else None
        slow = r["budget_light"] in ("yellow", "red")
        rows.append(
            Row(
                project_code=r["project_code"],
                project_name=r["project_name"],
                unit_code=r["unit_code"],
                unit_name=unit.name if unit else r["unit_code"],
                department_code=dept_code,
                department_name=dept_name,
                status=r["status"],
                budget=r["budget"],
                executed=r["executed"],
                execution_rate=r["execution_rate"],
                time_progress=r["time_progress"],
                budget_light=r["budget_light"],
                target_light=r["target_light"],
                light=r["light"],
                reasons=tuple(r["reasons"]),
                indicators=tuple(r["indicators"]),
                has_previous=previous is not None and r["project_code"] in previous,
                previous_light=before,
                change=project_change(before, r["light"]) if previous else None,
                monthly_needed=monthly_needed(r["budget"], r["executed"], month) if slow else None,
                result=r,
            )
        )
    return rows


def load(app: Context, checkpoint: Checkpoint) -> ReportData:
    """Everything the reports of `checkpoint` need, read in one connection; NoResults if it never ran."""
    cp = str(checkpoint)
    previous_cp = checkpoint.previous_in(list(app.settings.checkpoint_months))
    with app.engine.connect() as conn:
        if not runs(conn, cp):
            raise NoResults(f"no results for checkpoint {cp}: run `monitor run --checkpoint {cp}` first")
        results = load_results(conn, cp)
        units = load_units(conn)
        # lights only: the previous checkpoint's reasons are not shown (rendering them would cost as
        # much as evaluating it again, monitor.evaluate.reasons)
        previous = result_lights(conn, str(previous_cp)) if previous_cp else {}
        answers = _answers(conn, cp)
        try:
            rules = used_by_run(conn, cp).rules
            thresholds: tuple[Decimal, Decimal] | None = (rules.budget_red_below, rules.budget_yellow_below)
        except LookupError:
            thresholds = None
    if not previous:
        previous_cp = None
    options = messages.options(app.settings, checkpoint, app.clock())
    prev_label = str(previous_cp) if previous_cp else None
    return ReportData(
        checkpoint=checkpoint,
        rows=build_rows(results, units, previous if previous_cp else None, checkpoint.month),
        units=units,
        previous_checkpoint=previous_cp,
        previous_lights=previous,
        answers=answers,
        criteria=app.settings.results_application,
        bureau_name=app.settings.mail.from_name,
        summary=summary(cp, results, units, previous, prev_label, options),
        thresholds=thresholds,
    )


def _answers(conn: Any, checkpoint: str) -> dict[tuple[str, str], IndicatorAnswer]:
    ir = INDICATOR_REPORT
    q = select(
        ir.c.project_code, ir.c.indicator_code, ir.c.possibility, ir.c.causes, ir.c.cause_text, ir.c.measures
    ).where(ir.c.checkpoint == checkpoint)
    return {(r[0], r[1]): IndicatorAnswer(r[2], r[3], r[4], r[5]) for r in conn.execute(q)}
