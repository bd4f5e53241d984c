"""Units report through the system (填报 → 送审): a unit's monitoring report of a checkpoint as it fills
it in on its reporting page. In: the unit, the checkpoint and the fields as typed. Out: the forms
pre-filled (its draft, else what is stored for the checkpoint, else its previous report of the same
year), drafts kept server-side, and a submission imported by the canonical import itself (the same
parsers, checks and single transaction as `monitor import`: the fields become the canonical
project_reports and indicator_reports tables), its problems handed back by field.

A submitted (已送审) or approved (已审核) report is read-only until the department returns it (已退回).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.model import FEN_PER_WAN, Indicator, IndicatorReport, Project, ProjectReport
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, PROJECT_REPORT, REPORT_EVENT, REPORT_FORM
from monitor.db.inputs import load_inputs
from monitor.ingest.importer import ImportFailed, import_paths

PROJECT_FIELDS = ("executed", "forecast_executed")
INDICATOR_FIELDS = ("actual", "forecast", "possibility", "causes", "cause_text", "measures")
STATE_WORDS = {
    "": "未开始",
    "draft": "草稿",
    "submitted": "已送审",
    "returned": "已退回",
    "approved": "已审核",
}
LOCKED = ("submitted", "approved")
SEP = "|"  # codes never hold it (monitor.core.cells: code characters)


def key(project: str, field_name: str, indicator: str | None = None) -> str:
    """The form field of a project's (or one of its indicators') value: `p|CODE|executed`."""
    return SEP.join(
        ("p", project, field_name) if indicator is None else ("i", project, indicator, field_name)
    )


@dataclass
class ProjectForm:
    """One project's part of the page: the project and its indicators (read-only), the values as
    typed or pre-filled, where its report stands."""

    project: Project
    indicators: list[Indicator]
    values: dict[str, str]
    state: str = ""
    comment: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def locked(self) -> bool:
        return self.state in LOCKED


def _wan(fen: int | None) -> str:
    if fen is None:
        return ""
    text = f"{fen / FEN_PER_WAN:.6f}".rstrip("0").rstrip(".")
    return text


def _stored(
    report: ProjectReport | None, inds: Iterable[IndicatorReport | None], p: Project
) -> dict[str, str]:
    out: dict[str, str] = {}
    if report is not None:
        out[key(p.code, "executed")] = _wan(report.executed)
        out[key(p.code, "forecast_executed")] = _wan(report.forecast_executed)
    for r in inds:
        if r is not None:
            for name in INDICATOR_FIELDS:
                out[key(p.code, name, r.indicator_code)] = (getattr(r, name) or "").replace(";", "；")
    return out


def _previous(conn: Connection, checkpoint: str, codes: Sequence[str]) -> str | None:
    """The latest earlier checkpoint of the same year with a report of any of `codes`."""
    q = (
        select(PROJECT_REPORT.c.checkpoint)
        .where(
            PROJECT_REPORT.c.project_code.in_(list(codes)),
            PROJECT_REPORT.c.checkpoint < checkpoint,
            PROJECT_REPORT.c.checkpoint >= checkpoint[:4] + "-01",
        )
        .order_by(PROJECT_REPORT.c.checkpoint.desc())
        .limit(1)
    )
    return conn.execute(q).scalar()


def load_forms(conn: Connection, checkpoint: str, unit_code: str) -> list[ProjectForm]:
    """The unit's forms for `checkpoint`: its draft, else its stored report, else its previous one."""
    codes = list(conn.execute(select(PROJECT.c.code).where(PROJECT.c.unit_code == unit_code)).scalars())
    if not codes:
        return []
    now = load_inputs(conn, checkpoint, codes, units={})
    before = _previous(conn, checkpoint, codes)
    earlier = load_inputs(conn, before, codes, units={}) if before else None
    q = select(REPORT_FORM).where(
        REPORT_FORM.c.checkpoint == checkpoint, REPORT_FORM.c.project_code.in_(codes)
    )
    rows = {r.project_code: r for r in conn.execute(q)}
    out = []
    for p in now.projects:
        inds = list(now.indicators.get(p.code, ()))
        values = {}
        for source in (earlier, now):
            if source is not None:
                reports = (source.indicator_reports.get((p.code, i.code)) for i in inds)
                values.update(_stored(source.project_reports.get(p.code), reports, p))
        row = rows.get(p.code)
        if row is not None:
            values.update(json.loads(row.data))
        out.append(ProjectForm(p, inds, values, row.state if row else "", row.comment if row else None))
    return out


def fields_of(form: ProjectForm, fields: Mapping[str, str]) -> dict[str, str]:
    """The submitted fields that belong to `form`'s project, trimmed of what the page never shows."""
    names = [key(form.project.code, f) for f in PROJECT_FIELDS]
    names += [key(form.project.code, f, i.code) for i in form.indicators for f in INDICATOR_FIELDS]
    return {n: fields[n].strip()[:2000] for n in names if n in fields}


def event(
    conn: Connection,
    checkpoint: str,
    code: str,
    kind: str,
    now: dt.datetime,
    by: str,
    detail: str | None = None,
) -> None:
    """A step of a report (saved, submitted, returned, approved) through the web, kept for good."""
    row = {"checkpoint": checkpoint, "project_code": code, "kind": kind, "at": as_utc(now), "by": by}
    conn.execute(insert(REPORT_EVENT).values(**row, channel="web", detail=detail))


def _this(checkpoint: str, form: ProjectForm) -> tuple[Any, Any]:
    return REPORT_FORM.c.checkpoint == checkpoint, REPORT_FORM.c.project_code == form.project.code


def save(
    conn: Connection,
    checkpoint: str,
    forms: Sequence[ProjectForm],
    fields: Mapping[str, str],
    now: dt.datetime,
    by: str,
) -> list[str]:
    """Keep the fields of every form not locked as its draft; returns the codes saved."""
    saved = []
    for form in forms:
        if form.locked:
            continue
        data = json.dumps({**form.values, **fields_of(form, fields)}, ensure_ascii=False, sort_keys=True)
        state = "returned" if form.state == "returned" else "draft"
        if form.state:
            conn.execute(
                update(REPORT_FORM)
                .where(*_this(checkpoint, form))
                .values(data=data, state=state, saved_at=as_utc(now))
            )
        else:
            row = {
                "checkpoint": checkpoint,
                "project_code": form.project.code,
                "unit_code": form.project.unit_code,
            }
            conn.execute(insert(REPORT_FORM).values(**row, state=state, data=data, saved_at=as_utc(now)))
        event(conn, checkpoint, form.project.code, "saved", now, by)
        form.values.update(fields_of(form, fields))
        saved.append(form.project.code)
    return saved


# -- submitting: the fields through the canonical import ---------------------------------------------

_HEADERS = {
    "project_reports": ("checkpoint", "project_code", *PROJECT_FIELDS),
    "indicator_reports": ("checkpoint", "project_code", "indicator_code", *INDICATOR_FIELDS),
}
Where = dict[tuple[str, int], tuple[str, str | None]]  # (table, row) -> project, indicator


def tables(folder: Path, checkpoint: str, forms: Sequence[ProjectForm]) -> tuple[list[Path], Where]:
    """The canonical tables of the forms' fields (amounts in 万元 as typed), and where each row came from."""
    where: Where = {}
    rows: dict[str, list[list[str]]] = {kind: [] for kind in _HEADERS}
    for form in forms:
        code, v = form.project.code, form.values
        rows["project_reports"].append([checkpoint, code, *(v.get(key(code, f), "") for f in PROJECT_FIELDS)])
        where["project_reports", len(rows["project_reports"]) + 1] = (code, None)
        for ind in form.indicators:
            cells = [v.get(key(code, f, ind.code), "") for f in INDICATOR_FIELDS]
            if any(cells):
                rows["indicator_reports"].append([checkpoint, code, ind.code, *cells])
                where["indicator_reports", len(rows["indicator_reports"]) + 1] = (code, ind.code)
    paths = []
    for kind, table in rows.items():
        if table:
            path = folder / f"{kind}.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([list(_HEADERS[kind]), *table])
            paths.append(path)
    return paths, where


def chinese(message: str) -> str:
    """The Chinese part of a problem's message (`… （不是数字）` → `不是数字`), else the message."""
    if message.endswith("）") and "（" in message:
        return message[message.rindex("（") + 1 : -1]
    return message


def _missing(forms: Sequence[ProjectForm], month: int) -> None:
    for form in forms:
        name = key(form.project.code, "executed")
        if not form.values.get(name, "").strip():
            form.errors.setdefault(name, []).append(f"请填写1-{month}月执行数（万元）")


class _Checked(Exception):
    """Raised inside the import's transaction once it found no problem: nothing is kept (the
    submission is checked now and imported when the department approves it)."""


def _check_only(conn: Connection) -> None:
    raise _Checked


def submit(
    engine: Engine,
    checkpoint: str,
    unit_code: str,
    fields: Mapping[str, str],
    now: dt.datetime,
    by: str,
    counts_when: str = "submitted",
) -> list[ProjectForm]:
    """送审: the fields are kept as drafts first (nothing typed is lost), then every form not locked is
    checked by the canonical import and marked submitted. With `counts_when` "submitted" (the default)
    they are imported in the same transaction; with "approved" the import is rolled back once it found
    no problem, and the department's approval imports them (monitor.ingest.review). On any problem
    nothing is imported and the forms come back with their errors by field."""
    with engine.begin() as conn:
        forms = load_forms(conn, checkpoint, unit_code)
        save(conn, checkpoint, forms, fields, now, by)
    todo = [f for f in forms if not f.locked]
    _missing(todo, int(checkpoint[5:]))
    if not todo or any(f.errors for f in todo):
        return forms
    by_code = {f.project.code: f for f in todo}
    with tempfile.TemporaryDirectory(prefix="monitor-report-") as tmp:
        paths, where = tables(Path(tmp), checkpoint, todo)
        try:
            if counts_when == "approved":
                _check(engine, paths, now)
                with engine.begin() as conn:
                    _submitted(conn, checkpoint, todo, now, by)
            else:
                import_paths(
                    engine,
                    paths,
                    now,
                    also=lambda c: _submitted(c, checkpoint, todo, now, by),
                    channel="web",
                    source=f"{by}：送审",
                )
        except ImportFailed as exc:
            for p in exc.problems:
                kind = Path(p.file).stem
                code, ind = where.get((kind, p.row or 0), (None, None))
                form = by_code.get(code or "")
                if form is not None:
                    form.errors.setdefault(_field(form, p.column, ind), []).append(chinese(p.message))
    return forms


def _field(form: ProjectForm, column: str | None, indicator: str | None) -> str:
    """The field a problem names, or the project's `*` (a problem of the row as a whole)."""
    names = INDICATOR_FIELDS if indicator is not None else PROJECT_FIELDS
    if column is None or column not in names:
        return key(form.project.code, "*")
    return key(form.project.code, column, indicator)


def _submitted(
    conn: Connection, checkpoint: str, forms: Sequence[ProjectForm], now: dt.datetime, by: str
) -> None:
    for form in forms:
        done = {"state": "submitted", "submitted_at": as_utc(now)}
        conn.execute(update(REPORT_FORM).where(*_this(checkpoint, form)).values(**done))
        event(conn, checkpoint, form.project.code, "submitted", now, by)
        form.state = "submitted"


def _check(engine: Engine, paths: Sequence[Path], now: dt.datetime) -> None:
    """The canonical import of `paths`, every check made and nothing kept; ImportFailed on a problem."""
    try:
        import_paths(engine, paths, now, also=_check_only)
    except _Checked:
        return
