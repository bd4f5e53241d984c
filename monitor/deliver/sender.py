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
from monitor.deliver import leases, outcomes
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
    row: leases.Claimed
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
    run = Delivery(
        engine,
        transport,
        sender,
        retry,
        parallel,
        clock,
        worker or workers.new_worker_id(),
        should_stop,
        batch or max(parallel * 8, 32),
    )
    return await run.deliver()


class Delivery:
    """One call of deliver_pending: its queue, its events and its counts, and the steps that share them
    (claiming, sending, recording, watching for a stop, keeping the claims alive), each a method."""

    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        sender: str,
        retry: RetryConfig,
        parallel: int,
        clock: Clock,
        worker: str,
        should_stop: Callable[[], bool],
        size: int,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.sender = sender
        self.retry = retry
        self.parallel = parallel
        self.clock = clock
        self.worker = worker
        self.should_stop = should_stop
        self.size = size
        self.tally: Counter[str] = Counter()
        self.queue: asyncio.Queue[leases.Claimed | None] = asyncio.Queue(maxsize=size)
        self.done: list[Outcome] = []  # outcomes not yet recorded
        self.wake = asyncio.Event()  # set when an outcome is waiting for the recorder, or when it should end
        self.stopping = asyncio.Event()
        self.over = asyncio.Event()  # sending and recording are over
        self.closing = False
        self.in_flight = 0  # claimed and neither recorded nor given up by a stop
        self.settled = asyncio.Event()  # set whenever nothing claimed is left unrecorded
        self.settled.set()
        self.on_the_wire: set[asyncio.Task[Outcome]] = set()
        # Outcomes not yet committed: at most this many (a sender waits before sending more), recorded
        # together when that many are waiting or RECORD_WITHIN after the first.
        self.most_unrecorded = max(2 * parallel, MOST_UNRECORDED)
        self.unrecorded = 0
        self.full = asyncio.Event()  # most_unrecorded outcomes are waiting
        self.recorded = asyncio.Event()  # a commit ended

    async def deliver(self) -> Counter[str]:
        """Release what a dead process left `sending`, run the steps until nothing is due, and put back
        in the queue whatever this run claimed and did not record."""
        with self.engine.begin() as conn:
            released = leases.release_stale(
                conn, self.clock(), dt.timedelta(seconds=self.retry.lease_seconds)
            )
        self.tally["released"] += len(released)
        for outbox_id in released:
            log.warning("message %s was left 'sending' by a stopped process; queued again", outbox_id)
        try:
            async with self.transport, asyncio.TaskGroup() as group:  # a failure cancels the others
                group.create_task(self.watch())
                group.create_task(self.keep_alive())
                recording = group.create_task(self.recorder())
                working = [group.create_task(self.send_from_queue()) for _ in range(self.parallel)]
                working.append(group.create_task(self.produce()))
                await asyncio.gather(*working)
                self.closing = True
                self.wake.set()
                await recording
                self.over.set()
        finally:
            left = await asyncio.to_thread(_release_mine, self.engine, self.worker, self.clock())
            if left:
                self.tally["released"] += left
                log.warning("%d claimed message(s) not sent before stopping: queued again", left)
        return self.tally

    # --- database work, in a thread ---------------------------------------------------------------

    def claim(self) -> tuple[list[leases.Claimed], dt.datetime | None]:
        with self.engine.begin() as conn:
            ids = leases.due(conn, self.clock(), limit=self.size)
            if ids:
                return leases.claim_many(conn, ids, self.worker, self.clock()), None
            return [], leases.next_due_at(conn)

    def record_all(self, finished: list[Outcome]) -> Counter[str]:
        counts: Counter[str] = Counter()
        with self.engine.begin() as conn:
            sent = [o for o in finished if o.whole]
            outcomes.mark_sent_many(conn, [(o.row.id, None) for o in sent], self.worker, self.clock())
            counts["sent"] += len(sent)
            for o in finished:
                if not o.whole:
                    counts[record(conn, o, self.retry, self.worker, self.clock())] += 1
        for o in sent:
            log.info("sent message %s (%s %s) to %s", o.row.id, o.row.kind, o.row.reason, o.row.recipients)
        return counts

    def keep_claims(self) -> None:
        with self.engine.begin() as conn:
            leases.keep_claims(conn, self.worker, self.clock())

    def settle(self, n: int) -> None:
        self.in_flight -= n
        if self.in_flight == 0:
            self.settled.set()

    # --- the steps, run together ------------------------------------------------------------------

    async def recorder(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            done = self.done
            if done and not self.closing and len(done) < self.most_unrecorded and not self.queue.empty():
                await _first(self.full, timeout=RECORD_WITHIN)  # a few more outcomes share the commit
            if done:
                batch = done[:]
                del done[:]
                self.full.clear()
                self.tally.update(await asyncio.to_thread(self.record_all, batch))
                self.unrecorded -= len(batch)
                self.recorded.set()
                self.settle(len(batch))
            elif self.closing:
                return

    async def send_from_queue(self) -> None:
        while (row := await self.queue.get()) is not None:
            if self.stopping.is_set():  # stays claimed; released below
                self.settle(1)
                continue
            while self.unrecorded >= self.most_unrecorded:  # the bound on what a kill can send twice
                self.recorded.clear()
                await self.recorded.wait()
            task = asyncio.ensure_future(attempt(self.transport, row, self.sender))
            self.on_the_wire.add(task)
            try:
                outcome = await task
            except asyncio.CancelledError:
                if _cancelling():  # this sender itself is being cancelled
                    raise
                self.settle(1)  # a stop cut the send short: released below
                continue
            finally:
                self.on_the_wire.discard(task)
            self.done.append(outcome)
            self.unrecorded += 1
            self.wake.set()
            if len(self.done) >= self.most_unrecorded:
                self.full.set()

    async def produce(self) -> None:
        try:
            while not self.stopping.is_set():
                rows, next_at = await asyncio.to_thread(self.claim)
                if rows:
                    self.in_flight += len(rows)
                    self.settled.clear()
                    for row in rows:
                        await self.queue.put(row)
                    continue
                if self.in_flight:  # outcomes still to come may be retries due soon: wait, then look again
                    await _first(self.settled, self.stopping)
                    continue
                wait = (next_at - self.clock()).total_seconds() if next_at else None
                if wait is None or wait > self.retry.inline_wait_seconds:
                    break
                await _first(self.stopping, timeout=max(wait, 0.01))
        finally:
            for _ in range(self.parallel):
                await self.queue.put(None)

    async def watch(self) -> None:
        """Turn `should_stop` into `stopping`; then give the sends on the wire their grace, and cut
        the rest short."""
        while not self.should_stop():
            if await _first(self.over, timeout=0.1):
                return
        self.stopping.set()
        loop = asyncio.get_running_loop()
        grace = self.retry.stop_grace_seconds
        log.info("stopping: no new message is sent; %d on the wire get %.0f s", len(self.on_the_wire), grace)
        deadline = loop.time() + grace
        while self.on_the_wire and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self.on_the_wire):
            task.cancel()

    async def keep_alive(self) -> None:
        while not await _first(self.over, timeout=self.retry.lease_seconds / 4):
            try:
                await asyncio.to_thread(self.keep_claims)
            except Exception as exc:  # the next turn tries again; the lease is four turns long
                log.warning("could not refresh this sender's claims: %s", exc)


def _release_mine(engine: Engine, worker: str, now: dt.datetime) -> int:
    try:
        with engine.begin() as conn:
            return leases.release_mine(conn, worker, now)
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


async def attempt(transport: Transport, row: leases.Claimed, sender: str) -> Outcome:
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
        status = outcomes.settle(conn, row.id, worker, now, answers, retry_at)
        for address, (state, answer) in answers.items():
            if state != "sent":
                log.warning("message %s: recipient <%s> %s: %s", row.id, address, state, answer)
        return {"pending": "retry"}.get(status, status)
    error = o.detail or "unknown error"
    if o.result == "failed" or last:
        status = outcomes.mark_failed(conn, row.id, worker, now, error)
        log.error("message %s to %s failed: %s", row.id, ";".join(row.recipients), error)
        return status
    outcomes.mark_retry(conn, row.id, worker, now, error, retry_at)
    log.warning("message %s to %s: %s; will retry", row.id, ";".join(row.recipients), error)
    return "retry"
