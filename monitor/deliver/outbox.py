"""The outbox: messages as rows before anything is sent. Queue rows (each decided against what was last
queued for its unit and kind), read back what was queued, and the operator's view: counts, listings
with each tracked recipient's state, and failed messages put back to pending. Status: pending →
sending → sent | failed | partial. Claims and leases are in leases.py; attempts and their outcomes,
per recipient where the server answered differently for them, in outcomes.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from monitor.core.rows import OutboxEntry, row_of
from monitor.core.workdays import as_utc
from monitor.db.engine import OUTBOX, OUTBOX_MESSAGE, OUTBOX_RECIPIENT

STATUSES = ("pending", "sending", "sent", "failed", "partial")
DONE_BADLY = ("failed", "partial")  # need an operator's attention


def sent_snapshots(
    conn: Connection, checkpoint: str, units: tuple[str, str] | None = None
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """What was last queued for each (kind, unit) at `checkpoint`: the basis for 'did anything change'.
    `units` (first, last): only the units whose codes lie in that range (one chunk of a large run)."""
    return {key: snapshot for key, (_, snapshot) in last_queued(conn, checkpoint, units).items()}


def last_queued(
    conn: Connection, checkpoint: str, units: tuple[str, str] | None = None, kind: str | None = None
) -> dict[tuple[str, str | None], tuple[int, dict[str, Any]]]:
    """sent_snapshots with the id of each message: {(kind, unit): (outbox id, snapshot)}. A message
    decided against it is queued with that id as `supersedes` (0 when there was none), so a decision
    can be queued once only (uq_outbox_once). `kind`: that kind alone."""
    latest = select(func.max(OUTBOX.c.id)).where(OUTBOX.c.checkpoint == checkpoint)
    if units is not None:
        latest = latest.where(OUTBOX.c.unit_code.between(*units))
    if kind is not None:
        latest = latest.where(OUTBOX.c.kind == kind)
    rows = conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.kind, OUTBOX.c.unit_code, OUTBOX.c.snapshot).where(
            OUTBOX.c.id.in_(latest.group_by(OUTBOX.c.kind, OUTBOX.c.unit_code))
        )
    )
    return {(r.kind, r.unit_code): (int(r.id), json.loads(r.snapshot)) for r in rows}


def sent_snapshot(
    conn: Connection, checkpoint: str, kind: str, unit_code: str | None
) -> dict[str, Any] | None:
    """What was last queued of `kind` for `unit_code` (None: the bureau) at `checkpoint`, if anything."""
    unit = OUTBOX.c.unit_code.is_(None) if unit_code is None else OUTBOX.c.unit_code == unit_code
    snapshot = conn.execute(
        select(OUTBOX.c.snapshot)
        .where(OUTBOX.c.checkpoint == checkpoint, OUTBOX.c.kind == kind, unit)
        .order_by(OUTBOX.c.id.desc())
        .limit(1)
    ).scalar()
    return None if snapshot is None else dict(json.loads(snapshot))


def queue(conn: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Persist composed messages (messages.compose rows): the row, and its serialised message apart.
    Returns their outbox ids, in order. A row's `supersedes` is the id of the message its decision was
    based on (last_queued); a row without one supersedes what was last queued for its (checkpoint,
    kind, unit) now. A decision queued twice breaks uq_outbox_once: IntegrityError, nothing queued."""
    if not rows:
        return []
    fields = [{k: v for k, v in r.items() if k != "raw"} for r in rows]
    undecided = [f for f in fields if "supersedes" not in f]
    if undecided:
        keys = [(f["checkpoint"], f["kind"], f["unit_code"]) for f in undecided]
        if len(set(keys)) < len(keys):  # one supersedes the other: queue them one by one
            return [i for r in rows for i in queue(conn, [r])]
        latest = _latest_ids(conn, set(keys))
        for f, key in zip(undecided, keys, strict=True):
            f["supersedes"] = latest.get(key, 0)
    stmt = insert(OUTBOX).returning(OUTBOX.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in conn.execute(stmt, fields).scalars()]
    conn.execute(
        insert(OUTBOX_MESSAGE), [{"outbox_id": i, "raw": r["raw"]} for i, r in zip(ids, rows, strict=True)]
    )
    return ids


def _latest_ids(
    conn: Connection, keys: set[tuple[str, str, str | None]]
) -> dict[tuple[str, str, str | None], int]:
    """The id last queued for each (checkpoint, kind, unit) of `keys` (one query)."""
    q = (
        select(OUTBOX.c.checkpoint, OUTBOX.c.kind, OUTBOX.c.unit_code, func.max(OUTBOX.c.id))
        .where(
            OUTBOX.c.checkpoint.in_({k[0] for k in keys}),
            OUTBOX.c.kind.in_({k[1] for k in keys}),
        )
        .group_by(OUTBOX.c.checkpoint, OUTBOX.c.kind, OUTBOX.c.unit_code)
    )
    return {(c, k, u): int(i) for c, k, u, i in conn.execute(q) if (c, k, u) in keys}


def recipient_states(conn: Connection, ids: Sequence[int]) -> dict[int, list[tuple[str, str, str | None]]]:
    """The recipients of messages `ids` tracked one by one: outbox id → [(address, status, answer)]."""
    r = OUTBOX_RECIPIENT.c
    out: dict[int, list[tuple[str, str, str | None]]] = {}
    for i in range(0, len(ids), 500):
        for oid, address, status, answer in conn.execute(
            select(r.outbox_id, r.address, r.status, r.answer)
            .where(r.outbox_id.in_(list(ids[i : i + 500])))
            .order_by(r.outbox_id, r.address)
        ):
            out.setdefault(oid, []).append((address, status, answer))
    return out


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    out = dict.fromkeys(STATUSES, 0)
    out.update({r[0]: int(r[1]) for r in rows})
    return out


def failed_recipients(conn: Connection) -> int:
    """Recipients refused for good, not re-queued since."""
    r = OUTBOX_RECIPIENT.c
    return int(conn.execute(select(func.count()).where(r.status == "failed")).scalar_one())


def messages(conn: Connection, status: str | None = None, checkpoint: str | None = None) -> list[OutboxEntry]:
    """The queued messages (of `status`, of `checkpoint`) in the order they were queued."""
    cols = [c for c in OUTBOX.c if c.name != "snapshot"]
    q = select(*cols).order_by(OUTBOX.c.id)
    if status:
        q = q.where(OUTBOX.c.status == status)
    if checkpoint:
        q = q.where(OUTBOX.c.checkpoint == checkpoint)
    rows = list(conn.execute(q))
    states = recipient_states(conn, [r.id for r in rows if r.status != "sent"])
    return [row_of(OutboxEntry, {**r._mapping, "recipient_states": states.get(r.id, [])}) for r in rows]


def requeue(conn: Connection, ids: Iterable[int] | None, now: dt.datetime) -> int:
    """Put failed and partly delivered (or given) messages back to pending, attempts reset: a partly
    delivered one goes again to the recipients that refused it alone. Never touches rows in flight."""
    cond = (
        OUTBOX.c.status.in_(DONE_BADLY)
        if ids is None
        else and_(
            OUTBOX.c.id.in_(list(ids)), or_(OUTBOX.c.status.in_(DONE_BADLY), OUTBOX.c.status == "pending")
        )
    )
    again = [int(i) for i in conn.execute(select(OUTBOX.c.id).where(cond)).scalars()]
    r = OUTBOX_RECIPIENT.c
    for i in range(0, len(again), 500):
        chunk = again[i : i + 500]
        conn.execute(
            update(OUTBOX_RECIPIENT)
            .where(r.outbox_id.in_(chunk), r.status == "failed")
            .values(status="pending")
        )
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(chunk), cond)
            .values(status="pending", attempts=0, next_attempt_at=as_utc(now))
        )
    return len(again)
