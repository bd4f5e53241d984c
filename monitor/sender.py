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
from typing import Any

from sqlalchemy import Engine

from monitor import outbox
from monitor.delivery import DeliveryError, Envelope, Transport
from monitor.settings import RetryConfig

log = logging.getLogger("monitor.send")
Clock = Callable[[], dt.datetime]


def backoff(retry: RetryConfig, attempts: int) -> dt.timedelta:
    """Delay before the next attempt after `attempts` failed ones: base × 2^(attempts−1), capped."""
    seconds = min(retry.backoff_seconds * 2 ** max(attempts - 1, 0), retry.backoff_max_seconds)
    return dt.timedelta(seconds=seconds)


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
) -> Counter[str]:
    """Send every due message; wait for retries due within `retry.inline_wait_seconds`. Returns counts
    of outcomes (sent / retry / failed / released)."""
    worker = worker or outbox.worker_id()
    tally: Counter[str] = Counter()
    with engine.begin() as conn:
        released = outbox.release_stale(conn, clock(), dt.timedelta(seconds=retry.lease_seconds))
    tally["released"] += len(released)
    for outbox_id in released:
        log.warning("message %s was left 'sending' by a stopped process; queued again", outbox_id)
    gate = asyncio.Semaphore(parallel)

    async def one(outbox_id: int) -> None:
        async with gate:
            if should_stop():
                return  # shutting down: leave it pending, never half-claimed
            with engine.begin() as conn:
                row = outbox.claim(conn, outbox_id, worker, clock())
            if row is None:
                return  # another sender has it
            tally[await send_row(engine, transport, row, sender, retry, worker, clock)] += 1

    async with transport:
        while not should_stop():
            with engine.connect() as conn:
                ids = outbox.due(conn, clock())
                next_at = outbox.next_due_at(conn) if not ids else None
            if ids:
                await asyncio.gather(*(one(i) for i in ids))
                continue
            wait = (next_at - clock()).total_seconds() if next_at else None
            if wait is None or wait > retry.inline_wait_seconds:
                break
            await asyncio.sleep(max(wait, 0.01))
    return tally


async def send_row(
    engine: Engine, transport: Transport, row: Any, sender: str, retry: RetryConfig, worker: str, clock: Clock
) -> str:
    """Send one claimed row and record the outcome: 'sent', 'retry' or 'failed'."""
    label = f"{row.id:06d}-{row.kind}-{row.unit_code or 'bureau'}"
    envelope = Envelope(row.id, sender, tuple(row.recipients.split(";")), row.raw.encode("ascii"), label)
    try:
        delivered = await transport.send(envelope)
    except DeliveryError as exc:
        error, permanent = str(exc), exc.permanent
    except Exception as exc:  # an unexpected failure is treated as transient, and logged
        error, permanent = f"{type(exc).__name__}: {exc}", False
    else:
        refused = "; ".join(f"{a}: {m}" for a, m in delivered.refused.items()) or None
        with engine.begin() as conn:
            outbox.mark_sent(
                conn, row.id, worker, clock(), f"refused by the server: {refused}" if refused else None
            )
        log.info("sent message %s (%s %s) to %s", row.id, row.kind, row.reason, row.recipients)
        if refused:
            log.warning("message %s: some recipients refused: %s", row.id, refused)
        return "sent"
    now = clock()
    with engine.begin() as conn:
        if permanent or row.attempts >= retry.max_attempts:
            outbox.mark_failed(conn, row.id, worker, now, error)
            log.error("message %s to %s failed: %s", row.id, row.recipients, error)
            return "failed"
        outbox.mark_retry(conn, row.id, worker, now, error, now + backoff(retry, row.attempts))
    log.warning("message %s to %s: %s; will retry", row.id, row.recipients, error)
    return "retry"
