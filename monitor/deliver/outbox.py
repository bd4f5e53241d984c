"""The outbox: messages as rows before anything is sent. Queue rows; claim them with a conditional
UPDATE (only the process that changed a row sends it); record every attempt; release rows left
`sending` by a dead process or an expired lease. Status: pending → sending → sent | failed | partial.

Delivery is tracked per recipient once the server answers differently for the recipients of one
message (some accepted, some refused): outbox_recipient then holds each one's state and the server's
answer, the next attempt goes to the pending ones alone, and the message is done when none is pending:
`sent` (every recipient), `failed` (none) or `partial` (some refused for good). Until then a message
goes to all its recipients at once and needs no recipient rows (the common case costs nothing more).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from monitor.core.workdays import as_utc
from monitor.core.workers import on_this_host, process_is_dead, worker_id
from monitor.db.engine import DELIVERY_ATTEMPT, OUTBOX, OUTBOX_MESSAGE, OUTBOX_RECIPIENT

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


def release_stale(
    conn: Connection, now: dt.datetime, lease: dt.timedelta, is_dead: Callable[[str], bool] = process_is_dead
) -> list[int]:
    """Put back rows left `sending` by a dead process, or by one on another host whose claim was not
    kept alive (outbox.keep_claims) for `lease`: they will be sent again, with the same Message-ID, so a
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


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    out = dict.fromkeys(STATUSES, 0)
    out.update({r[0]: int(r[1]) for r in rows})
    return out


def failed_recipients(conn: Connection) -> int:
    """Recipients refused for good, not re-queued since."""
    r = OUTBOX_RECIPIENT.c
    return int(conn.execute(select(func.count()).where(r.status == "failed")).scalar_one())


def messages(
    conn: Connection, status: str | None = None, checkpoint: str | None = None
) -> list[dict[str, Any]]:
    cols = [c for c in OUTBOX.c if c.name != "snapshot"]
    q = select(*cols).order_by(OUTBOX.c.id)
    if status:
        q = q.where(OUTBOX.c.status == status)
    if checkpoint:
        q = q.where(OUTBOX.c.checkpoint == checkpoint)
    out = [dict(r._mapping) for r in conn.execute(q)]
    states = recipient_states(conn, [m["id"] for m in out if m["status"] != "sent"])
    for m in out:
        m["recipient_states"] = states.get(m["id"], [])
    return out


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
