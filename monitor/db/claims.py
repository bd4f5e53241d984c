"""Claims: one holder at a time for work that must not be done twice at once (a scheduled duty of the
service, the run of a checkpoint), as a row keyed by what is claimed with its owner (host:pid, or an
instance's name), since when, and a heartbeat the owner renews while it works.

Who may take a claim over from its owner:
- an owner that ran on this host and whose process is gone: at once (`workers.process_is_dead`);
- an owner that runs on this host and is alive: never, however late its heartbeat (on SQLite a long
  evaluation holds the write lock, so a heartbeat can wait minutes behind it);
- any other owner: once its heartbeat is older than the lease.
The row is read before anything is written: a claim that is held costs no write (no wait for SQLite's
write lock), and a conditional UPDATE decides between two that take over at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from monitor.core import workers
from monitor.core.errors import BadInput
from monitor.core.workdays import as_utc, local_time
from monitor.db import tables
from monitor.db.engine import table as stored_table

log = logging.getLogger("monitor.db.claims")
Clock = Callable[[], dt.datetime]

# The run of a checkpoint (key: the checkpoint, e.g. "2025-05"); deleted when the run ends.
RUN_LOCK = stored_table(tables.RunLockRow)

_held: set[tuple[str, str]] = set()  # (table, key) claimed by this process and not yet let go
_held_lock = threading.Lock()


def wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Holder:
    owner: str
    since: dt.datetime
    heartbeat_at: dt.datetime


class Busy(BadInput):
    """Someone else holds the claim (and is not stale)."""

    def __init__(self, what: str, holder: Holder) -> None:
        super().__init__(self.told("UTC", what, holder))
        self.what, self.holder = what, holder

    @staticmethod
    def told(time_zone: str, what: str, holder: Holder) -> str:
        """Who holds it and since when, the time in `time_zone` with its offset."""
        return f"{what} is being run by {holder.owner} since {local_time(holder.since, time_zone)}"


def is_stale(
    table: Table, key: str, owner: str, heartbeat_at: dt.datetime, now: dt.datetime, lease: float
) -> bool:
    """May the claim held by `owner` (last heartbeat `heartbeat_at`) be taken over at `now`?"""
    if owner == workers.worker_id():
        # this very process: stale only if it is a predecessor's (same pid again) it no longer holds
        with _held_lock:
            return (table.name, key) not in _held
    if workers.process_is_dead(owner):
        return True
    if workers.process_is_alive_here(owner):
        return False
    return as_utc(heartbeat_at) < as_utc(now) - dt.timedelta(seconds=lease)


def holder(engine: Engine, table: Table, key: str) -> Holder | None:
    """Who holds `key` now (stale or not), if anyone."""
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.key == key)).first()
    return None if row is None else Holder(row.owner or "", row.started_at, row.heartbeat_at)


def take(
    engine: Engine,
    table: Table,
    key: str,
    owner: str,
    now: dt.datetime,
    lease: float,
    *,
    values: Mapping[str, Any] | None = None,
    takeable: Callable[[Any], bool] | None = None,
    takeover: Mapping[str, Any] | None = None,
) -> tuple[Holder | None, Any]:
    """Claim `key` for `owner`: (None, the row taken over or None if new) when `owner` holds it now,
    else (the holder, its row). A new row gets `values` too; an existing one is taken over when
    `takeable(row)` says so (default: its owner is stale), setting `takeover` too."""
    with engine.connect() as conn:
        cur = conn.execute(select(table).where(table.c.key == key)).first()
    if cur is None:
        row = {"key": key, "owner": owner, "started_at": now, "heartbeat_at": now, **(values or {})}
        try:
            with engine.begin() as conn:
                conn.execute(insert(table).values(**row))
            _hold(table, key)
            return None, None
        except IntegrityError:  # another took it first
            with engine.connect() as conn:
                cur = conn.execute(select(table).where(table.c.key == key)).first()
            if cur is None:
                return take(
                    engine, table, key, owner, now, lease, values=values, takeable=takeable, takeover=takeover
                )
    if takeable is None:
        taken_over = is_stale(table, key, cur.owner or "", cur.heartbeat_at, now, lease)
    else:
        taken_over = takeable(cur)
    if not taken_over:
        return Holder(cur.owner or "", cur.started_at, cur.heartbeat_at), cur
    with engine.begin() as conn:
        cond = [table.c.key == key, table.c.heartbeat_at == cur.heartbeat_at]
        cond.append(table.c.owner == cur.owner if cur.owner is not None else table.c.owner.is_(None))
        taken = conn.execute(
            update(table)
            .where(*cond)
            .values(owner=owner, started_at=now, heartbeat_at=now, **(takeover or {}))
        ).rowcount
    if not taken:  # another took it over first
        return Holder(cur.owner or "", cur.started_at, cur.heartbeat_at), cur
    _hold(table, key)
    log.warning("took over %s %s from %s (last heartbeat %s)", table.name, key, cur.owner, cur.heartbeat_at)
    return None, cur


def acquire(
    engine: Engine,
    table: Table,
    key: str,
    owner: str,
    lease: float,
    what: str,
    *,
    wait: float | None = 0,
    clock: Clock = wall_clock,
    should_stop: Callable[[], bool] = lambda: False,
    on_wait: Callable[[Holder], None] | None = None,
    poll: float = 0.5,
) -> Any:
    """Take the claim on `key`, waiting up to `wait` seconds (None: as long as it takes, until
    `should_stop()`) for its holder to let go or go stale; Busy(what, holder) if it could not.
    `on_wait(holder)` is told once when waiting starts. Returns the row taken over, if any."""
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while True:
        held, row = take(engine, table, key, owner, clock(), lease)
        if held is None:
            return row
        left = None if deadline is None else deadline - time.monotonic()
        if should_stop() or (left is not None and left <= 0):
            raise Busy(what, held)
        if on_wait is not None and not told:
            on_wait(held)
            told = True
        time.sleep(poll if left is None else min(poll, left))


def release(engine: Engine, table: Table, key: str, owner: str) -> None:
    """Let go of `key` (the row is deleted if `owner` still holds it)."""
    forget(table, key)
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.key == key, table.c.owner == owner))


def forget(table: Table, key: str) -> None:
    """This process no longer holds `key` (its row stays, e.g. a duty finished)."""
    with _held_lock:
        _held.discard((table.name, key))


def _hold(table: Table, key: str) -> None:
    with _held_lock:
        _held.add((table.name, key))


class Heartbeat:
    """Renews the claim on `key` every `period` seconds on a thread, from `with` to its end. A renewal
    that fails (SQLite busy behind a long write, a database blip) is logged and tried again."""

    def __init__(
        self, engine: Engine, table: Table, key: str, owner: str, period: float, clock: Clock = wall_clock
    ) -> None:
        self.engine, self.table, self.key, self.owner = engine, table, key, owner
        self.period, self.clock = max(period, 0.2), clock
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {key}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        t = self.table
        while not self._done.wait(self.period):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        update(t)
                        .where(t.c.key == self.key, t.c.owner == self.owner)
                        .values(heartbeat_at=self.clock())
                    )
            except Exception as exc:  # keep beating: the claim is only as good as this thread
                log.warning("heartbeat of %s %s failed (%s); trying again", t.name, self.key, exc)
