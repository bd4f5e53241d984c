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
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from monitor import outbox
from monitor.delivery import DeliveryError, Envelope, Transport, permanent_answer
from monitor.settings import RetryConfig

log = logging.getLogger("monitor.send")
Clock = Callable[[], dt.datetime]


def backoff(retry: RetryConfig, attempts: int) -> dt.timedelta:
    """Delay before the next attempt after `attempts` failed ones: base × 2^(attempts−1), capped."""
    seconds = min(retry.backoff_seconds * 2 ** max(attempts - 1, 0), retry.backoff_max_seconds)
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class Outcome:
    row: outbox.Claimed
    result: str  # sent (to every recipient not in `refused`) / retry / failed
    detail: str | None
    refused: dict[str, str] = field(default_factory=dict)  # recipient → the server's answer

    @property
    def whole(self) -> bool:
        """Sent to every recipient at once, with nothing to record per recipient."""
        return self.result == "sent" and not self.refused and not self.row.tracked


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
    of outcomes (sent / retry / failed / partial / released).

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
            sent = [o for o in outcomes if o.whole]
            outbox.mark_sent_many(conn, [(o.row.id, None) for o in sent], worker, clock())
            counts["sent"] += len(sent)
            for o in outcomes:
                if not o.whole:
                    counts[record(conn, o, retry, worker, clock())] += 1
        for o in sent:
            log.info("sent message %s (%s %s) to %s", o.row.id, o.row.kind, o.row.reason, o.row.recipients)
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


async def attempt(transport: Transport, row: outbox.Claimed, sender: str) -> Outcome:
    """Send one claimed row to the recipients it goes to now; no database work here."""
    label = f"{row.id:06d}-{row.kind}-{row.unit_code or 'bureau'}"
    envelope = Envelope(row.id, sender, row.recipients, row.raw.encode("ascii"), label)
    try:
        delivered = await transport.send(envelope)
    except DeliveryError as exc:
        if exc.refused:  # every recipient refused: each one's answer decides for it
            return Outcome(row, "refused", str(exc), dict(exc.refused))
        return Outcome(row, "failed" if exc.permanent else "retry", str(exc))
    except Exception as exc:  # an unexpected failure is treated as transient, and logged
        return Outcome(row, "retry", f"{type(exc).__name__}: {exc}")
    return Outcome(row, "sent", None, dict(delivered.refused))


def record(conn: Connection, o: Outcome, retry: RetryConfig, worker: str, now: dt.datetime) -> str:
    """Record an attempt that was not a plain success: per recipient when the server answered for them
    differently (a temporary refusal is tried again for that recipient alone, after backoff; a permanent
    one, or a temporary one at the last attempt, fails that recipient); else retry the whole message
    later with backoff, or fail it for good (also after max attempts). Returns the tally key."""
    row = o.row
    last = row.attempts >= retry.max_attempts
    retry_at = now + backoff(retry, row.attempts)
    if o.result in ("sent", "refused"):
        answers: dict[str, tuple[str, str | None]] = {}
        for address in row.recipients:
            answer = o.refused.get(address)
            if answer is None:
                answers[address] = ("sent", None)
            else:
                answers[address] = ("failed" if last or permanent_answer(answer) else "pending", answer)
        status = outbox.settle(conn, row.id, worker, now, answers, retry_at)
        for address, (state, answer) in answers.items():
            if state != "sent":
                log.warning("message %s: recipient <%s> %s: %s", row.id, address, state, answer)
        return {"pending": "retry"}.get(status, status)
    error = o.detail or "unknown error"
    if o.result == "failed" or last:
        status = outbox.mark_failed(conn, row.id, worker, now, error)
        log.error("message %s to %s failed: %s", row.id, ";".join(row.recipients), error)
        return status
    outbox.mark_retry(conn, row.id, worker, now, error, retry_at)
    log.warning("message %s to %s: %s; will retry", row.id, ";".join(row.recipients), error)
    return "retry"
