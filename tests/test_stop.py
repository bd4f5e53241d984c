"""Stopping and claim leases of delivery (issue 16, point 4 and failover), with real processes:
SIGTERM of `monitor serve` while it delivers to a mail server that never answers exits within seconds
and puts every claimed message back in the queue; a message claimed by a process that stopped
answering is flagged and released once its lease runs out."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailserver import MailServer
from sqlalchemy import update

from monitor.cli.main import main
from monitor.db.engine import OUTBOX, make_engine
from monitor.deliver import leases, outbox

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
AT_THE_MAY_RUN = "2025-06-11T08:59:59+08:00"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (a hung mail server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def configure(workdir: Path, port: int) -> Path:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"""schedule:
  reconcile_seconds: 0.5
  watch_seconds: 0
mail:
  mode: smtp
  smtp: {{host: 127.0.0.1, port: {port}}}
""",
        encoding="utf-8",
    )
    res = CliRunner().invoke(main, ["import", str(EXAMPLES), "--config", str(cfg)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return cfg


def counts(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return outbox.counts(conn)
    finally:
        engine.dispose()


def test_sigterm_while_delivering_to_a_silent_server_exits_within_seconds_and_releases_every_claim(
    workdir: Path, db_url: str, silent_server: int
) -> None:
    cfg = configure(workdir, silent_server)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "monitor", "serve", "--config", str(cfg), "--clock-start", AT_THE_MAY_RUN]
    log = workdir / "serve.log"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 60
        while counts(db_url)["sending"] == 0:  # the May run is delivering: every message claimed, hanging
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            time.sleep(0.1)
        time.sleep(1)
        queued = sum(counts(db_url).values())
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 10, f"stopping took {took:.1f} s"
    after = counts(db_url)
    assert after["sending"] == 0 and after["pending"] == queued  # every message back in the queue
    assert "service" in log.read_text(encoding="utf-8") and "stopped" in log.read_text(encoding="utf-8")


def test_sigterm_of_monitor_send_to_a_silent_server_exits_within_seconds_and_releases_every_claim(
    workdir: Path, db_url: str, silent_server: int
) -> None:
    cfg = configure(workdir, silent_server)
    res = CliRunner().invoke(main, ["run", "--checkpoint", "2025-05", "--no-send", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    queued = counts(db_url)["pending"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "monitor", "send", "--config", str(cfg)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while counts(db_url)["sending"] == 0:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 10 and proc.returncode == 1, (took, proc.returncode)
    assert "stopped by a signal" in out
    after = counts(db_url)
    assert after["sending"] == 0 and after["pending"] == queued


def test_a_claim_whose_owner_went_silent_is_flagged_and_released_after_its_lease(
    workdir: Path, db_url: str
) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "mail:\n  retry: {lease_seconds: 20}\n", encoding="utf-8"
    )
    res = CliRunner().invoke(main, ["import", str(EXAMPLES), "--config", str(cfg)], catch_exceptions=False)
    assert res.exit_code == 0
    res = CliRunner().invoke(main, ["run", "--checkpoint", "2025-05", "--no-send", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    engine = make_engine(db_url)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # another host claimed two messages, then went silent 30 s ago
        ids = leases.due(conn, now, limit=2)
        leases.claim_many(conn, ids, "other-host:4242", now - dt.timedelta(seconds=30))
    status = CliRunner().invoke(main, ["status", "--config", str(cfg)])
    assert status.exit_code == 1
    assert "2 message(s) stuck in 'sending'" in status.output and "other-host:4242" in status.output
    with engine.begin() as conn:  # ... but a claim refreshed 5 s ago is alive
        conn.execute(
            update(OUTBOX).where(OUTBOX.c.id == ids[0]).values(claimed_at=now - dt.timedelta(seconds=5))
        )
    engine.dispose()
    sent = CliRunner().invoke(main, ["send", "--config", str(cfg)])
    assert sent.exit_code == 0, sent.output
    after = counts(db_url)
    assert after["sending"] == 1 and after["sent"] == sum(after.values()) - 1


class SlowServer(MailServer):
    """Takes 30 ms to accept each message, as a loaded mail server does."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def test_kill_9_of_a_sender_sends_again_at_most_the_outcomes_it_had_not_recorded(
    workdir: Path, db_url: str, tmp_path: Path
) -> None:
    """With 4 connections a sender keeps at most 4 messages on the wire and 8 outcomes uncommitted:
    killed at any moment, at most 12 messages arrive twice (it used to record 32 at a time)."""
    sample = tmp_path / "sample"
    res = CliRunner().invoke(main, ["sample", "--out", str(sample), "--projects", "400"])
    assert res.exit_code == 0, res.output
    with SlowServer() as server:
        cfg = configure(workdir, server.port)
        res = CliRunner().invoke(main, ["import", str(sample), "--config", str(cfg)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        res = CliRunner().invoke(main, ["run", "--checkpoint", "2025-05", "--no-send", "--config", str(cfg)])
        assert res.exit_code == 0, res.output
        queued = counts(db_url)["pending"]
        assert queued >= 60
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "monitor", "send", "--config", str(cfg)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            server.wait_for(30, timeout=60)
        finally:
            proc.kill()
            proc.wait()
        time.sleep(0.2)  # what was on the wire arrives or not
        res = CliRunner().invoke(main, ["send", "--config", str(cfg)])
        assert res.exit_code == 0, res.output
        received = Counter((m.message["Message-ID"], r) for m in server.messages for r in m.recipients)
    assert counts(db_url)["sent"] == queued
    expected = len(received)  # every (message, recipient) pair arrived ...
    assert len({mid for mid, _ in received}) == queued
    twice = {pair: n for pair, n in received.items() if n > 1}
    messages_twice = {mid for mid, _ in twice}
    assert len(messages_twice) <= 12, f"{len(messages_twice)} of {expected} arrived twice"
