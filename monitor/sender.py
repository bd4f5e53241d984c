"""The delivery loop: pending outbox rows in, delivered (or failed) rows out. Releases rows a dead
process left `sending`, claims each row before sending it, sends over the transport's reused
connections, and records every attempt; transient failures come back later with exponential backoff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from monitor import outbox
from monitor.delivery import DeliveryError, Envelope, Transport
from monitor.settings import RetryConfig

log = logging.getLogger("monitor.send")
Clock = Callable[[], dt.datetime]


def backoff(retry: RetryConfig, attempts: int) -> dt.timedelta:
    """Delay before the next attempt after `attempts` failed ones: base × 2^(attempts−1), capped."""
    seconds = min(retry.backoff_seconds * 2 ** max(attempts - 1, 0), retry.backoff_max_seconds)
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Outcome:
    row: Any
    result: str  # sent / retry / failed
    detail: str | None


async def deliver_pending(
    engine: Engine,
    transport: Transport,
    *,
    sender: str,
    retry: RetryConfig,
    parallel: int,
    clock: Clock,
    worker: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    batch: int | None = None,
) -> Counter[str]:
    """Send every due message; wait for retries due within `retry.inline_wait_seconds`. Returns counts
    of outcomes (sent / retry / failed / released).

    A pipeline, so that the connections never wait for the database: messages are claimed a batch at a
    time (one transaction) into a queue at most one batch ahead; `parallel` senders take them from the
    queue over the transport's connections; outcomes are recorded a batch at a time (one transaction),
    in a thread while sending goes on. Nothing is sent unclaimed; a sender killed mid-way leaves its
    claimed rows `sending` (at most about two batches: `batch`, default 8 per connection and at least
    32), to be released and sent again with the same Message-IDs."""
    worker = worker or outbox.worker_id()
    size = batch or max(parallel * 8, 32)
    tally: Counter[str] = Counter()
    with engine.begin() as conn:
        released = outbox.release_stale(conn, clock(), dt.timedelta(seconds=retry.lease_seconds))
    tally["released"] += len(released)
    for outbox_id in released:
        log.warning("message %s was left 'sending' by a stopped process; queued again", outbox_id)

    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)
    done: list[Outcome] = []
    in_flight = 0  # claimed and not yet recorded
    settled = asyncio.Event()  # set whenever nothing claimed is left unrecorded
    settled.set()
    lock = asyncio.Lock()  # one recording transaction at a time

    def claim() -> tuple[list[Any], dt.datetime | None]:
        with engine.begin() as conn:
            ids = outbox.due(conn, clock(), limit=size)
            if ids:
                return outbox.claim_many(conn, ids, worker, clock()), None
            return [], outbox.next_due_at(conn)

    def record_all(outcomes: list[Outcome]) -> Counter[str]:
        counts: Counter[str] = Counter()
        with engine.begin() as conn:
            sent = [o for o in outcomes if o.result == "sent"]
            outbox.mark_sent_many(conn, [(o.row.id, o.detail) for o in sent], worker, clock())
            counts["sent"] += len(sent)
            for o in outcomes:
                if o.result != "sent":
                    counts[record(conn, o, retry, worker, clock())] += 1
        for o in sent:
            log.info("sent message %s (%s %s) to %s", o.row.id, o.row.kind, o.row.reason, o.row.recipients)
            if o.detail:
                log.warning("message %s: %s", o.row.id, o.detail)
        return counts

    async def flush(force: bool) -> None:
        nonlocal in_flight
        async with lock:
            if not done or (len(done) < size and not force):
                return
            outcomes = done[:]
            del done[:]
            tally.update(await asyncio.to_thread(record_all, outcomes))
            in_flight -= len(outcomes)
            if in_flight == 0:
                settled.set()

    async def send_from_queue() -> None:
        while (row := await queue.get()) is not None:
            done.append(await attempt(transport, row, sender))
            await flush(force=queue.empty())

    async def produce() -> None:
        nonlocal in_flight
        try:
            while not should_stop():
                rows, next_at = await asyncio.to_thread(claim)
                if rows:
                    in_flight += len(rows)
                    settled.clear()
                    for row in rows:
                        await queue.put(row)
                    continue
                if in_flight:  # outcomes still to come may be retries due soon: wait, then look again
                    await settled.wait()
                    continue
                wait = (next_at - clock()).total_seconds() if next_at else None
                if wait is None or wait > retry.inline_wait_seconds:
                    break
                await asyncio.sleep(max(wait, 0.01))
        finally:
            for _ in range(parallel):
                await queue.put(None)

    async with transport:
        async with asyncio.TaskGroup() as group:  # a failure cancels the others
            group.create_task(produce())
            for _ in range(parallel):
                group.create_task(send_from_queue())
        await flush(force=True)
    return tally


async def attempt(transport: Transport, row: Any, sender: str) -> Outcome:
    """Send one claimed row; no database work here."""
    label = f"{row.id:06d}-{row.kind}-{row.unit_code or 'bureau'}"
    envelope = Envelope(row.id, sender, tuple(row.recipients.split(";")), row.raw.encode("ascii"), label)
    try:
        delivered = await transport.send(envelope)
    except DeliveryError as exc:
        return Outcome(row, "failed" if exc.permanent else "retry", str(exc))
    except Exception as exc:  # an unexpected failure is treated as transient, and logged
        return Outcome(row, "retry", f"{type(exc).__name__}: {exc}")
    refused = "; ".join(f"{a}: {m}" for a, m in delivered.refused.items())
    return Outcome(row, "sent", f"refused by the server: {refused}" if refused else None)


def record(conn: Connection, o: Outcome, retry: RetryConfig, worker: str, now: dt.datetime) -> str:
    """Record a failed attempt: retry later with backoff, or failed for good (also after max attempts)."""
    row = o.row
    error = o.detail or "unknown error"
    if o.result == "failed" or row.attempts >= retry.max_attempts:
        outbox.mark_failed(conn, row.id, worker, now, error)
        log.error("message %s to %s failed: %s", row.id, row.recipients, error)
        return "failed"
    outbox.mark_retry(conn, row.id, worker, now, error, now + backoff(retry, row.attempts))
    log.warning("message %s to %s: %s; will retry", row.id, row.recipients, error)
    return "retry"
