"""Exemptions from warnings (豁免): a project, a reason, an approver and a last day in; stored rows, the
exemptions in force on a day (project code -> Exemption) and revocations out. An exempted project is
still evaluated and listed; it gets no warning in its unit's digest and no new warning case (a case
opened before goes on, with an `exempted` step in its history). Bad input raises ExemptionInvalid with
every problem, each naming the field and the value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.errors import BadInput, NotFound
from monitor.core.workdays import as_utc
from monitor.db.engine import PROJECT, WARNING_CASE, table
from monitor.db.tables import CaseEventRow, ExemptionRow

EXEMPTION: Table = table(ExemptionRow)
CASE_EVENT: Table = table(CaseEventRow)
DEFAULT_ZONE = "Asia/Shanghai"  # settings.time_zone's default, for callers that are not given one
MAX_TEXT = 2000


@dataclass(frozen=True)
class Exemption:
    id: int
    project_code: str
    reason: str
    approver: str
    expires_on: dt.date  # the last day it applies
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None

    def status(self, today: dt.date) -> str:
        """active / expired / revoked, on `today`."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_on >= today else "expired"


STATUS_WORD = {"active": "有效", "expired": "已过期", "revoked": "已撤销"}


class ExemptionInvalid(BadInput, ValueError):
    """An exemption refused; `problems` holds every reason, in Chinese, each naming field and value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def local_day(now: dt.datetime, time_zone: str = DEFAULT_ZONE) -> dt.date:
    """The bureau's calendar day at `now` (a naive `now` is taken to be UTC)."""
    return as_utc(now).astimezone(ZoneInfo(time_zone)).date()


def _row(r: Any) -> Exemption:
    return Exemption(
        r.id,
        r.project_code,
        r.reason,
        r.approver,
        r.expires_on,
        as_utc(r.created_at),
        r.created_by,
        as_utc(r.revoked_at) if r.revoked_at is not None else None,
        r.revoked_by,
    )


def parse_until(text: str) -> dt.date | str:
    """The --until date, or the problem with it."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return (
            f"有效期至（--until）“{text}”不是有效日期，请写作 YYYY-MM-DD，例如 2025-09-30"
            "（until: not a date）"
        )


def add(
    conn: Connection,
    project_code: str,
    reason: str,
    approver: str,
    until: dt.date | str,
    *,
    today: dt.date,
    now: dt.datetime,
    created_by: str,
) -> Exemption:
    """Record an exemption of `project_code` through `until` (inclusive); ExemptionInvalid listing every
    problem: an unknown project, a blank or overlong reason or approver, a date that is not one or has
    passed, an exemption of the project already in force."""
    code, reason, approver = project_code.strip(), reason.strip(), approver.strip()
    expires = parse_until(until) if isinstance(until, str) else until
    problems = _problems(conn, code, reason, approver, expires, today)
    if problems or isinstance(expires, str):
        raise ExemptionInvalid(problems)
    res = conn.execute(
        insert(EXEMPTION).values(
            project_code=code,
            reason=reason,
            approver=approver,
            expires_on=expires,
            created_at=as_utc(now),
            created_by=created_by,
        )
    )
    pk = res.inserted_primary_key
    assert pk is not None
    e = get(conn, int(pk[0]))
    _record_on_cases(conn, e, now)
    return e


def _problems(
    conn: Connection, code: str, reason: str, approver: str, expires: dt.date | str, today: dt.date
) -> list[str]:
    """Every reason `add` refuses the exemption, in the order the fields are given (see `add`)."""
    problems: list[str] = []
    if not code:
        problems.append("项目编码（PROJECT）不能为空（project: required）")
    elif conn.execute(select(PROJECT.c.code).where(PROJECT.c.code == code)).first() is None:
        problems.append(f"项目编码（PROJECT）“{code}”不存在，请先导入该项目（project: unknown）")
    if not reason:
        problems.append("豁免理由（--reason）不能为空，例如“预算调整已批准”（reason: required）")
    elif len(reason) > MAX_TEXT:
        problems.append(
            f"豁免理由（--reason）不能超过{MAX_TEXT}个字，现有{len(reason)}个字（reason: too long）"
        )
    if not approver:
        problems.append("批准人（--approver）不能为空（approver: required）")
    elif len(approver) > 64:
        problems.append(f"批准人（--approver）“{approver[:20]}…”超过64个字（approver: too long）")
    if isinstance(expires, str):
        problems.append(expires)
    elif expires < today:
        problems.append(
            f"有效期至（--until）“{expires.isoformat()}”已过去（今天是 {today.isoformat()}），"
            "豁免须至少到今天（until: in the past）"
        )
    if code and not problems:
        current = [e for e in exemptions(conn, project_code=code) if e.status(today) == "active"]
        if current:
            e = current[0]
            problems.append(
                f"项目“{code}”已有有效豁免（编号 {e.id}，至 {e.expires_on.isoformat()}），"
                f"如需变更请先撤销：monitor exempt revoke {e.id}（project: already exempted）"
            )
    return problems


def _record_on_cases(conn: Connection, e: Exemption, now: dt.datetime) -> None:
    """An `exempted` step in the history of the project's cases not yet resolved (opened before)."""
    ids = conn.execute(
        select(WARNING_CASE.c.id).where(
            WARNING_CASE.c.project_code == e.project_code, WARNING_CASE.c.state != "resolved"
        )
    ).scalars()
    detail = f"豁免 {e.id}：{e.reason}（批准人 {e.approver}，至 {e.expires_on.isoformat()}）"
    for case_id in ids.all():
        done = select(func.count()).where(CASE_EVENT.c.case_id == case_id, CASE_EVENT.c.kind == "exempted")
        conn.execute(
            insert(CASE_EVENT).values(
                case_id=case_id,
                kind="exempted",
                round=conn.execute(done).scalar_one() + 1,
                at=as_utc(now),
                detail=detail,
            )
        )


def get(conn: Connection, exemption_id: int) -> Exemption:
    """The exemption `exemption_id`; NotFound (a LookupError) if there is none."""
    row = conn.execute(select(EXEMPTION).where(EXEMPTION.c.id == exemption_id)).first()
    if row is None:
        raise NotFound(f"没有编号为 {exemption_id} 的豁免（no exemption {exemption_id}）")
    return _row(row)


def revoke(conn: Connection, exemption_id: int, *, now: dt.datetime, by: str) -> Exemption:
    """End an exemption now: the project is warned again from the next run. NotFound for an unknown
    id, ExemptionInvalid for one already revoked."""
    e = get(conn, exemption_id)
    if e.revoked_at is not None:
        when = f"{e.revoked_at:%Y-%m-%d %H:%M} UTC"
        raise ExemptionInvalid([f"豁免 {exemption_id} 已于 {when} 由 {e.revoked_by} 撤销（already revoked）"])
    conn.execute(
        update(EXEMPTION)
        .where(EXEMPTION.c.id == exemption_id, EXEMPTION.c.revoked_at.is_(None))
        .values(revoked_at=as_utc(now), revoked_by=by)
    )
    return get(conn, exemption_id)


def exemptions(conn: Connection, *, project_code: str | None = None) -> list[Exemption]:
    """Every exemption (of one project), newest first."""
    q = select(EXEMPTION).order_by(EXEMPTION.c.id.desc())
    if project_code is not None:
        q = q.where(EXEMPTION.c.project_code == project_code)
    return [_row(r) for r in conn.execute(q)]


@dataclass(frozen=True)
class Listed:
    """An exemption as `monitor exempt list` shows it: with its project, its unit and its status."""

    exemption: Exemption
    project_name: str  # "" when the project is gone
    unit_code: str
    status: str  # active / expired / revoked
    status_word: str


def listing(conn: Connection, today: dt.date, *, include_ended: bool = False) -> list[Listed]:
    """Exemptions with their project, unit and status on `today`, newest first; only those in force
    unless `include_ended`."""
    q = (
        select(EXEMPTION, PROJECT.c.name.label("project_name"), PROJECT.c.unit_code)
        .join(PROJECT, PROJECT.c.code == EXEMPTION.c.project_code, isouter=True)
        .order_by(EXEMPTION.c.id.desc())
    )
    out = []
    for r in conn.execute(q):
        e = _row(r)
        status = e.status(today)
        if include_ended or status == "active":
            out.append(Listed(e, r.project_name or "", r.unit_code or "", status, STATUS_WORD[status]))
    return out


def active(conn: Connection, on: dt.date) -> dict[str, Exemption]:
    """project code -> the exemption in force on day `on` (not revoked, `expires_on` >= `on`)."""
    q = (
        select(EXEMPTION)
        .where(EXEMPTION.c.revoked_at.is_(None), EXEMPTION.c.expires_on >= on)
        .order_by(EXEMPTION.c.expires_on)
    )
    return {e.project_code: e for e in map(_row, conn.execute(q))}  # the latest expiry wins
