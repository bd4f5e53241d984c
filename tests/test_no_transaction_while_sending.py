"""No transaction is held open while a message is on the wire, and a run and a send open a bounded
number of database connections. A real SMTP server (aiosmtpd) holds each message for a moment; the
database is watched meanwhile: on PostgreSQL through pg_stat_activity (every backend of the test's
database, whatever process or pooler it serves), on SQLite through the transaction state of every
connection the engine's pools opened (sqlite3's in_transaction)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailserver import MailServer
from sqlalchemy import event, text
from sqlalchemy.pool import NullPool, Pool
from test_mail import EXAMPLES, smtp_config

from monitor.cli.main import main
from monitor.db.engine import make_engine

HOLD = 0.8  # seconds the server keeps each message before answering DATA
MARGIN = 0.4  # into a hold, a transaction begun before it is one that waits for the mail server
POOL_SIZE = 5  # SQLAlchemy's QueuePool default, which make_engine keeps
HELPER = 1  # the evaluation's second half on SQLite (monitor.evaluate.halves) has a connection of its own


class HoldingServer(MailServer):
    """Keeps each message HOLD seconds before accepting it, noting when (time.time()) each hold was."""

    def __init__(self) -> None:
        super().__init__()
        self.holds: list[tuple[float, float]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        start = time.time()
        await asyncio.sleep(HOLD)
        with self._lock:
            self.holds.append((start, time.time()))
        return await super().handle_DATA(server, session, envelope)


@dataclass
class Connections:
    """Every DBAPI connection the pools of this process open while counting (and the most at once)."""

    opened: list[Any] = field(default_factory=list)
    open: int = 0
    most: int = 0

    def connected(self, dbapi_conn: Any, _record: Any) -> None:
        self.opened.append(dbapi_conn)
        self.open += 1
        self.most = max(self.most, self.open)

    def closed(self, _dbapi_conn: Any, _record: Any) -> None:
        self.open -= 1


@contextmanager
def counting() -> Iterator[Connections]:
    seen = Connections()
    listeners = [("connect", seen.connected), ("close", seen.closed), ("close_detached", seen.closed)]
    for name, fn in listeners:
        event.listen(Pool, name, fn)
    try:
        yield seen
    finally:
        for name, fn in listeners:
            event.remove(Pool, name, fn)


@dataclass
class Sample:
    at: float  # when (epoch seconds)
    who: str  # the backend (PostgreSQL) or the connection (SQLite)
    since: float  # when its open transaction began (SQLite: when it was first seen open)


class Watcher:
    """Samples every 10 ms, in a thread, which of the database's connections have a transaction open."""

    def __init__(self, db_url: str, seen: Connections) -> None:
        self.seen = seen
        self.samples: list[Sample] = []
        self.rounds: list[float] = []  # when each sample was taken
        self.stop = threading.Event()
        self.pg = not db_url.startswith("sqlite")
        self.engine = make_engine(db_url, poolclass=NullPool)
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") if self.pg else None
        self.first_open: dict[int, float] = {}
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        if self.conn is not None:
            self.conn.close()
        self.engine.dispose()

    def loop(self) -> None:
        while not self.stop.is_set():
            self.rounds.append(time.time())
            self.samples.extend(self.postgresql() if self.pg else self.sqlite())
            time.sleep(0.01)

    def postgresql(self) -> list[Sample]:
        assert self.conn is not None
        rows = self.conn.execute(
            text(
                "SELECT extract(epoch FROM clock_timestamp()), pid, state, extract(epoch FROM xact_start)"
                " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND xact_start IS NOT NULL AND state <> 'idle'"  # idle: between transactions, a torn read
            )
        ).all()
        return [Sample(float(at), f"backend {pid} ({state})", float(since)) for at, pid, state, since in rows]

    def sqlite(self) -> list[Sample]:
        now = time.time()
        found = []
        for conn in list(self.seen.opened):
            try:
                busy = conn.in_transaction
            except Exception:  # closed meanwhile
                busy = False
            if not busy:
                self.first_open.pop(id(conn), None)
                continue
            since = self.first_open.setdefault(id(conn), now)
            found.append(Sample(now, f"sqlite connection {id(conn):x}", since))
        return found

    def across(self, holds: list[tuple[float, float]]) -> tuple[list[str], int]:
        """The transactions begun before a hold and still open well into it, and how many samples
        were taken well into a hold (the watch did look)."""
        looked = 0
        held = []
        for start, end in holds:
            looked += sum(1 for at in self.rounds if start + MARGIN <= at <= end)
            late = {s.who: s for s in self.samples if start + MARGIN <= s.at <= end and s.since < start}
            held += [
                f"{s.who}: a transaction open since {s.since - start:+.2f} s, seen {s.at - start:.2f} s into"
                " an SMTP conversation"
                for s in late.values()
            ]
        return held, looked


def cli(cfg: Path, *args: str) -> str:
    res = CliRunner().invoke(main, [*args, "--config", str(cfg)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture
def holding() -> Iterator[HoldingServer]:
    with HoldingServer() as server:
        yield server


@pytest.fixture
def cfg(workdir: Path, holding: HoldingServer) -> Path:
    """The worked examples imported, mail going to the holding server over two connections."""
    smtp_config(workdir, holding.port)
    cli(workdir / "config.yaml", "import", str(EXAMPLES))
    return workdir / "config.yaml"


def assert_no_transaction_across_a_hold(watch: Watcher, server: HoldingServer, messages: int) -> None:
    assert len(server.wait_for(messages, timeout=30)) == messages
    held, looked = watch.across(server.holds)
    assert looked >= len(server.holds), f"the watch took {looked} samples during {len(server.holds)} holds"
    assert held == [], "\n".join(held[:10])


def test_run_holds_no_transaction_open_while_a_message_is_on_the_wire(
    cfg: Path, db_url: str, holding: HoldingServer
) -> None:
    with counting() as seen, Watcher(db_url, seen) as watch:
        out = cli(cfg, "run", "--checkpoint", "2025-05")
    assert "sent 5" in out, out
    assert_no_transaction_across_a_hold(watch, holding, 5)


def test_send_holds_no_transaction_open_and_run_and_send_open_few_connections(
    cfg: Path, db_url: str, holding: HoldingServer
) -> None:
    with counting() as run:
        cli(cfg, "run", "--checkpoint", "2025-05", "--no-send")
    with counting() as send, Watcher(db_url, send) as watch:
        out = cli(cfg, "send")
    assert "sent 5" in out, out
    assert_no_transaction_across_a_hold(watch, holding, 5)
    for name, seen in (("run", run), ("send", send)):
        assert len(seen.opened) <= POOL_SIZE + HELPER, (
            f"`monitor {name}` opened {len(seen.opened)} connections"
        )
        assert 1 <= seen.most <= POOL_SIZE + HELPER, f"`monitor {name}` had {seen.most} open at once"
