"""What became of each delivery attempt: every attempt recorded (delivery_attempt), and the claimed
message settled: sent, pending again for a retry, failed or partial.

Delivery is tracked per recipient once the server answers differently for the recipients of one
message (some accepted, some refused): outbox_recipient then holds each one's state and the server's
answer, the next attempt goes to the pending ones alone, and the message is done when none is pending:
`sent` (every recipient), `failed` (none) or `partial` (some refused for good). Until then a message
goes to all its recipients at once and needs no recipient rows (the common case costs nothing more).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.workdays import as_utc
from monitor.db.engine import DELIVERY_ATTEMPT, OUTBOX, OUTBOX_RECIPIENT


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


def mark_failed(conn: Connection, outbox_id: int, worker: str, now: dt.datetime, error: str) -> str:
    """Failed for good: every recipient still pending fails with `error`; the message ends `failed`, or
    `partial` when some recipients had accepted it earlier. Returns that status."""
    r = OUTBOX_RECIPIENT.c
    conn.execute(
        update(OUTBOX_RECIPIENT)
        .where(r.outbox_id == outbox_id, r.status == "pending")
        .values(status="failed", answer=error, at=as_utc(now))
    )
    states = Counter(s for (s,) in conn.execute(select(r.status).where(r.outbox_id == outbox_id)))
    status = "partial" if states["sent"] else "failed"
    _finish(conn, outbox_id, worker, {"status": status, "last_error": error})
    _attempt(conn, outbox_id, worker, now, "permanent", error)
    return status


def settle(
    conn: Connection,
    outbox_id: int,
    worker: str,
    now: dt.datetime,
    answers: Mapping[str, tuple[str, str | None]],
    retry_at: dt.datetime,
) -> str:
    """Record what the server answered for each recipient of an attempt (address → (pending / sent /
    failed, its answer)) and settle the message: pending again at `retry_at` while a recipient is
    pending, else sent / partial / failed. Returns the message's status."""
    at = as_utc(now)
    r = OUTBOX_RECIPIENT.c
    conn.execute(OUTBOX_RECIPIENT.delete().where(r.outbox_id == outbox_id, r.address.in_(list(answers))))
    conn.execute(
        insert(OUTBOX_RECIPIENT),
        [
            {"outbox_id": outbox_id, "address": a, "status": st, "answer": ans, "at": at}
            for a, (st, ans) in answers.items()
        ],
    )
    states = Counter(s for (s,) in conn.execute(select(r.status).where(r.outbox_id == outbox_id)))
    refused = "; ".join(f"<{a}> {st}: {ans}" for a, (st, ans) in answers.items() if st != "sent")
    values: dict[str, Any] = {"last_error": refused or None}
    if states["pending"]:
        values.update(status="pending", next_attempt_at=as_utc(retry_at))
        outcome = "transient"
    else:
        values["status"] = "sent" if not states["failed"] else "partial" if states["sent"] else "failed"
        outcome = {"sent": "sent", "partial": "partial", "failed": "permanent"}[values["status"]]
    if any(st == "sent" for st, _ in answers.values()):
        values["sent_at"] = at
    _finish(conn, outbox_id, worker, values)
    accepted = ", ".join(f"<{a}>" for a, (st, _) in answers.items() if st == "sent")
    detail = "; ".join(x for x in (f"accepted for {accepted}" if accepted else "", refused) if x)
    _attempt(conn, outbox_id, worker, now, outcome, detail)
    return str(values["status"])
