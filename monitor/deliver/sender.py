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

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from monitor.config.settings import RetryConfig
from monitor.core import workers
from monitor.core.safe import safe_name
from monitor.deliver import outbox
from monitor.deliver.transport import DeliveryError, Envelope, Transport, permanent_answer

log = logging.getLogger("monitor.send")
RECORD_WITHIN = 0.02  # seconds an outcome may wait for others to share its commit
MOST_UNRECORDED = 8  # outcomes not yet committed, at least (2 per connection otherwise)
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
    queue over the transport's connections; a recorder writes the outcomes in a thread while sending
    goes on, several in one transaction (group commit: when U = max(2 × `parallel`, MOST_UNRECORDED)
    are waiting, or RECORD_WITHIN after the first), and a sender waits before sending more while U
    outcomes are not yet committed. So a process killed at any moment has sent at most `parallel` + U
    messages whose outcome was not recorded (on the wire, or finished and not yet committed; 12 with 4
    connections): their rows stay `sending` and are released and sent again with the same Message-IDs.
    The claims are kept alive every quarter lease; another process releases them once the lease ran out.

    `should_stop` (polled every 0.1 s): no new message is sent, messages on the wire get
    `retry.stop_grace_seconds` to finish, then their sends are cut short; every row not recorded goes
    back to the queue before this returns."""
    worker = worker or workers.new_worker_id()
    size = batch or max(parallel * 8, 32)
    lease = dt.timedelta(seconds=retry.lease_seconds)
    tally: Counter[str] = Counter()
    with engine.begin() as conn:
        released = outbox.release_stale(conn, clock(), lease)
    tally["released"] += len(released)
    for outbox_id in released:
        log.warning("message %s was left 'sending' by a stopped process; queued again", outbox_id)

    queue: asyncio.Queue[outbox.Claimed | None] = asyncio.Queue(maxsize=size)
    done: list[Outcome] = []  # outcomes not yet recorded
    wake = asyncio.Event()  # set when an outcome is waiting for the recorder, or when it should end
    stopping = asyncio.Event()
    over = asyncio.Event()  # sending and recording are over
    closing = False
    in_flight = 0  # claimed and neither recorded nor given up by a stop
    settled = asyncio.Event()  # set whenever nothing claimed is left unrecorded
    settled.set()
    on_the_wire: set[asyncio.Task[Outcome]] = set()
    # Outcomes not yet committed: at most this many (a sender waits before sending more), recorded
    # together when that many are waiting or RECORD_WITHIN after the first.
    most_unrecorded = max(2 * parallel, MOST_UNRECORDED)
    unrecorded = 0
    full = asyncio.Event()  # most_unrecorded outcomes are waiting
    recorded = asyncio.Event()  # a commit ended

    def claim() -> tuple[list[outbox.Claimed], dt.datetime | None]:
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

    def keep_claims() -> None:
        with engine.begin() as conn:
            outbox.keep_claims(conn, worker, clock())

    def settle(n: int) -> None:
        nonlocal in_flight
        in_flight -= n
        if in_flight == 0:
            settled.set()

    async def recorder() -> None:
        nonlocal unrecorded
        while True:
            await wake.wait()
            wake.clear()
            if done and not closing and len(done) < most_unrecorded and not queue.empty():
                await _first(full, timeout=RECORD_WITHIN)  # a few more outcomes share the commit
            if done:
                outcomes = done[:]
                del done[:]
                full.clear()
                tally.update(await asyncio.to_thread(record_all, outcomes))
                unrecorded -= len(outcomes)
                recorded.set()
                settle(len(outcomes))
            elif closing:
                return

    async def send_from_queue() -> None:
        nonlocal unrecorded
        while (row := await queue.get()) is not None:
            if stopping.is_set():  # stays claimed; released below
                settle(1)
                continue
            while unrecorded >= most_unrecorded:  # the bound on what a kill can send twice
                recorded.clear()
                await recorded.wait()
            task = asyncio.ensure_future(attempt(transport, row, sender))
            on_the_wire.add(task)
            try:
                outcome = await task
            except asyncio.CancelledError:
                if _cancelling():  # this sender itself is being cancelled
                    raise
                settle(1)  # a stop cut the send short: released below
                continue
            finally:
                on_the_wire.discard(task)
            done.append(outcome)
            unrecorded += 1
            wake.set()
            if len(done) >= most_unrecorded:
                full.set()

    async def produce() -> None:
        nonlocal in_flight
        try:
            while not stopping.is_set():
                rows, next_at = await asyncio.to_thread(claim)
                if rows:
                    in_flight += len(rows)
                    settled.clear()
                    for row in rows:
                        await queue.put(row)
                    continue
                if in_flight:  # outcomes still to come may be retries due soon: wait, then look again
                    await _first(settled, stopping)
                    continue
                wait = (next_at - clock()).total_seconds() if next_at else None
                if wait is None or wait > retry.inline_wait_seconds:
                    break
                await _first(stopping, timeout=max(wait, 0.01))
        finally:
            for _ in range(parallel):
                await queue.put(None)

    async def watch() -> None:
        """Turn `should_stop` into `stopping`; then give the sends on the wire their grace, and cut
        the rest short."""
        while not should_stop():
            if await _first(over, timeout=0.1):
                return
        stopping.set()
        loop = asyncio.get_running_loop()
        log.info(
            "stopping: no new message is sent; %d on the wire get %.0f s",
            len(on_the_wire),
            retry.stop_grace_seconds,
        )
        deadline = loop.time() + retry.stop_grace_seconds
        while on_the_wire and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(on_the_wire):
            task.cancel()

    async def keep_alive() -> None:
        while not await _first(over, timeout=retry.lease_seconds / 4):
            try:
                await asyncio.to_thread(keep_claims)
            except Exception as exc:  # the next turn tries again; the lease is four turns long
                log.warning("could not refresh this sender's claims: %s", exc)

    try:
        async with transport, asyncio.TaskGroup() as group:  # a failure cancels the others
            group.create_task(watch())
            group.create_task(keep_alive())
            recording = group.create_task(recorder())
            working = [group.create_task(send_from_queue()) for _ in range(parallel)]
            working.append(group.create_task(produce()))
            await asyncio.gather(*working)
            closing = True
            wake.set()
            await recording
            over.set()
    finally:
        left = await asyncio.to_thread(_release_mine, engine, worker, clock())
        if left:
            tally["released"] += left
            log.warning("%d claimed message(s) not sent before stopping: queued again", left)
    return tally


def _release_mine(engine: Engine, worker: str, now: dt.datetime) -> int:
    try:
        with engine.begin() as conn:
            return outbox.release_mine(conn, worker, now)
    except Exception as exc:  # their lease runs out and another sender takes them
        log.error("could not release this sender's claims (%s): they are released when the lease ends", exc)
        return 0


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _first(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one of `events` is set (True) or `timeout` seconds passed (False)."""
    if any(e.is_set() for e in events):
        return True
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        finished, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return bool(finished)


async def attempt(transport: Transport, row: outbox.Claimed, sender: str) -> Outcome:
    """Send one claimed row to the recipients it goes to now; no database work here."""
    label = safe_name(f"{row.id:06d}-{row.kind}-{row.unit_code or 'bureau'}")
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
