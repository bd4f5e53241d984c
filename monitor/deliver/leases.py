"""Who holds an outbox message while it is sent: due messages claimed with a conditional UPDATE (only
the process that changed a row sends it, status pending → sending), claims kept alive as a lease, and
rows left `sending` by a dead process, an expired lease or a stopping sender put back to pending.
What an attempt came to is recorded by outcomes.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.workdays import as_utc
from monitor.core.workers import on_this_host, process_is_dead, worker_id
from monitor.db.engine import DELIVERY_ATTEMPT, OUTBOX, OUTBOX_MESSAGE, OUTBOX_RECIPIENT


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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message claimed for sending: the recipients it goes to now (all of them, or the ones still
    pending when the server answered differently for them before: `tracked`)."""

    id: int
    kind: str
    reason: str
    unit_code: str | None
    recipients: tuple[str, ...]
    raw: str
    attempts: int
    tracked: bool


def claim_many(conn: Connection, ids: Sequence[int], worker: str, now: dt.datetime) -> list[Claimed]:
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
    rows = list(conn.execute(q.order_by(OUTBOX.c.id)))
    tracked: dict[int, list[str]] = {}
    if rows:
        r = OUTBOX_RECIPIENT.c
        for oid, address in conn.execute(
            select(r.outbox_id, r.address)
            .where(r.outbox_id.in_([row.id for row in rows]), r.status == "pending")
            .order_by(r.outbox_id, r.address)
        ):
            tracked.setdefault(oid, []).append(address)
    return [
        Claimed(
            row.id,
            row.kind,
            row.reason,
            row.unit_code,
            tuple(tracked[row.id]) if row.id in tracked else tuple(row.recipients.split(";")),
            row.raw,
            row.attempts,
            row.id in tracked,
        )
        for row in rows
    ]


def release_stale(
    conn: Connection, now: dt.datetime, lease: dt.timedelta, is_dead: Callable[[str], bool] = process_is_dead
) -> list[int]:
    """Put back rows left `sending` by a dead process, or by one on another host whose claim was not
    kept alive (keep_claims) for `lease`: they will be sent again, with the same Message-ID, so a
    server or client can recognise a duplicate. A claim of a live process on this host stays: it is
    sending, however slowly (`monitor status` flags it once it is older than the lease)."""
    limit = as_utc(now - lease)
    rows = conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.claimed_by, OUTBOX.c.claimed_at).where(OUTBOX.c.status == "sending")
    )
    stale = [
        r.id
        for r in rows
        if is_dead(r.claimed_by or "")
        or (not on_this_host(r.claimed_by or "") and (r.claimed_at is None or as_utc(r.claimed_at) < limit))
    ]
    for i in range(0, len(stale), 500):
        chunk = stale[i : i + 500]
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(chunk), OUTBOX.c.status == "sending")
            .values(status="pending", claimed_by=None, claimed_at=None, next_attempt_at=as_utc(now))
        )
        detail = "left 'sending' by a stopped process; queued again"
        conn.execute(
            insert(DELIVERY_ATTEMPT),
            [
                {
                    "outbox_id": o,
                    "at": as_utc(now),
                    "worker": worker_id(),
                    "outcome": "released",
                    "detail": detail,
                }
                for o in chunk
            ],
        )
    return stale


def keep_claims(conn: Connection, worker: str, now: dt.datetime) -> None:
    """Renew the lease of every row `worker` holds `sending` (claimed_at is its last renewal)."""
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == worker)
        .values(claimed_at=as_utc(now))
    )


def release_mine(conn: Connection, worker: str, now: dt.datetime) -> int:
    """Put back every row `worker` still holds `sending` (claimed, outcome never recorded: not sent, or
    cut short by a stop): the attempt it counted is given back. Returns how many."""
    ids = [
        int(i)
        for i in conn.execute(
            select(OUTBOX.c.id).where(OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == worker)
        ).scalars()
    ]
    if not ids:
        return 0
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.status == "sending", OUTBOX.c.claimed_by == worker)
        .values(
            status="pending",
            claimed_by=None,
            claimed_at=None,
            attempts=OUTBOX.c.attempts - 1,
            next_attempt_at=as_utc(now),
        )
    )
    detail = "claimed, not sent before the sender stopped; queued again"
    conn.execute(
        insert(DELIVERY_ATTEMPT),
        [
            {"outbox_id": i, "at": as_utc(now), "worker": worker, "outcome": "released", "detail": detail}
            for i in ids
        ],
    )
    return len(ids)


def stuck(conn: Connection, now: dt.datetime, lease: dt.timedelta) -> dict[str, int]:
    """Rows `sending` whose claim was not renewed for longer than `lease`: claimed_by → how many."""
    rows = conn.execute(
        select(OUTBOX.c.claimed_by, func.count())
        .where(OUTBOX.c.status == "sending", OUTBOX.c.claimed_at < as_utc(now - lease))
        .group_by(OUTBOX.c.claimed_by)
    )
    return {str(who): int(n) for who, n in rows}
