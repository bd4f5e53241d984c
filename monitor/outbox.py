"""The outbox: messages as rows before anything is sent. Queue rows; claim them with a conditional
UPDATE (only the process that changed a row sends it); record every attempt; release rows left
`sending` by a dead process or an expired lease. Status: pending → sending → sent | failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from monitor.store import DELIVERY_ATTEMPT, OUTBOX, OUTBOX_MESSAGE, as_utc


def worker_id() -> str:
    """This process, as recorded in claimed_by: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_is_dead(worker: str) -> bool:
    """True only when `worker` ran on this host and its process no longer exists."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def sent_snapshots(
    conn: Connection, checkpoint: str, units: tuple[str, str] | None = None
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """What was last queued for each (kind, unit) at `checkpoint`: the basis for 'did anything change'.
    `units` (first, last): only the units whose codes lie in that range (one chunk of a large run)."""
    latest = select(func.max(OUTBOX.c.id)).where(OUTBOX.c.checkpoint == checkpoint)
    if units is not None:
        latest = latest.where(OUTBOX.c.unit_code.between(*units))
    rows = conn.execute(
        select(OUTBOX.c.kind, OUTBOX.c.unit_code, OUTBOX.c.snapshot).where(
            OUTBOX.c.id.in_(latest.group_by(OUTBOX.c.kind, OUTBOX.c.unit_code))
        )
    )
    return {(r.kind, r.unit_code): json.loads(r.snapshot) for r in rows}


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
    Returns their outbox ids, in order."""
    if not rows:
        return []
    fields = [{k: v for k, v in r.items() if k != "raw"} for r in rows]
    stmt = insert(OUTBOX).returning(OUTBOX.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in conn.execute(stmt, fields).scalars()]
    conn.execute(
        insert(OUTBOX_MESSAGE), [{"outbox_id": i, "raw": r["raw"]} for i, r in zip(ids, rows, strict=True)]
    )
    return ids


def due(conn: Connection, now: dt.datetime, limit: int = 500) -> list[int]:
    q = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= as_utc(now))
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(q)]


def next_due_at(conn: Connection) -> dt.datetime | None:
    value = conn.execute(
        select(func.min(OUTBOX.c.next_attempt_at)).where(OUTBOX.c.status == "pending")
    ).scalar()
    return as_utc(value) if value else None


def claim_many(conn: Connection, ids: Sequence[int], worker: str, now: dt.datetime) -> list[Any]:
    """Take the pending rows among `ids` for sending in one statement; returns the rows this worker got."""
    at = as_utc(now)
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(list(ids)), OUTBOX.c.status == "pending")
        .values(status="sending", claimed_by=worker, claimed_at=at, attempts=OUTBOX.c.attempts + 1)
    )
    q = select(OUTBOX, OUTBOX_MESSAGE.c.raw).join(OUTBOX_MESSAGE, OUTBOX_MESSAGE.c.outbox_id == OUTBOX.c.id)
    q = q.where(
        OUTBOX.c.id.in_(list(ids)),
        OUTBOX.c.status == "sending",
        OUTBOX.c.claimed_by == worker,
        OUTBOX.c.claimed_at == at,
    )
    return list(conn.execute(q.order_by(OUTBOX.c.id)))


def _attempt(
    conn: Connection, outbox_id: int, worker: str, now: dt.datetime, outcome: str, detail: str | None
) -> None:
    conn.execute(
        insert(DELIVERY_ATTEMPT).values(
            outbox_id=outbox_id, at=as_utc(now), worker=worker, outcome=outcome, detail=detail
        )
    )


def _finish(conn: Connection, outbox_id: int, worker: str, values: dict[str, Any]) -> None:
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == worker)
        .values(claimed_by=None, claimed_at=None, **values)
    )


def mark_sent_many(
    conn: Connection, sent: Sequence[tuple[int, str | None]], worker: str, now: dt.datetime
) -> None:
    """mark_sent for a batch: two executemany statements instead of two per message."""
    if not sent:
        return
    at = as_utc(now)
    stmt = (
        update(OUTBOX)
        .where(OUTBOX.c.id == bindparam("oid"), OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == worker)
        .values(status="sent", sent_at=at, last_error=bindparam("detail"), claimed_by=None, claimed_at=None)
    )
    conn.execute(stmt, [{"oid": i, "detail": d} for i, d in sent])
    conn.execute(
        insert(DELIVERY_ATTEMPT),
        [{"outbox_id": i, "at": at, "worker": worker, "outcome": "sent", "detail": d} for i, d in sent],
    )


def mark_retry(
    conn: Connection, outbox_id: int, worker: str, now: dt.datetime, error: str, at: dt.datetime
) -> None:
    _finish(
        conn, outbox_id, worker, {"status": "pending", "next_attempt_at": as_utc(at), "last_error": error}
    )
    _attempt(conn, outbox_id, worker, now, "transient", error)


def mark_failed(conn: Connection, outbox_id: int, worker: str, now: dt.datetime, error: str) -> None:
    _finish(conn, outbox_id, worker, {"status": "failed", "last_error": error})
    _attempt(conn, outbox_id, worker, now, "permanent", error)


def release_stale(
    conn: Connection, now: dt.datetime, lease: dt.timedelta, is_dead: Callable[[str], bool] = process_is_dead
) -> list[int]:
    """Put back rows left `sending` by a dead process (or whose lease expired): they will be sent again,
    with the same Message-ID, so a server or client can recognise a duplicate."""
    rows = conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.claimed_by, OUTBOX.c.claimed_at).where(OUTBOX.c.status == "sending")
    )
    limit = as_utc(now - lease)
    stale = [
        r.id
        for r in rows
        if (r.claimed_at is not None and r.claimed_at < limit) or is_dead(r.claimed_by or "")
    ]
    for outbox_id in stale:
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == "sending")
            .values(status="pending", claimed_by=None, claimed_at=None, next_attempt_at=as_utc(now))
        )
        _attempt(
            conn, outbox_id, worker_id(), now, "released", "left 'sending' by a stopped process; queued again"
        )
    return stale


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    out = {"pending": 0, "sending": 0, "sent": 0, "failed": 0}
    out.update({r[0]: int(r[1]) for r in rows})
    return out


def messages(
    conn: Connection, status: str | None = None, checkpoint: str | None = None
) -> list[dict[str, Any]]:
    cols = [c for c in OUTBOX.c if c.name != "snapshot"]
    q = select(*cols).order_by(OUTBOX.c.id)
    if status:
        q = q.where(OUTBOX.c.status == status)
    if checkpoint:
        q = q.where(OUTBOX.c.checkpoint == checkpoint)
    return [dict(r._mapping) for r in conn.execute(q)]


def requeue(conn: Connection, ids: Iterable[int] | None, now: dt.datetime) -> int:
    """Put failed (or given) messages back to pending, attempts reset; never touches rows in flight."""
    cond = (
        OUTBOX.c.status == "failed"
        if ids is None
        else and_(OUTBOX.c.id.in_(list(ids)), or_(OUTBOX.c.status == "failed", OUTBOX.c.status == "pending"))
    )
    res = conn.execute(
        update(OUTBOX).where(cond).values(status="pending", attempts=0, next_attempt_at=as_utc(now))
    )
    return int(res.rowcount)
