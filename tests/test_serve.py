"""`monitor serve` as real processes: a checkpoint run on schedule (clock override) with e-mails at a
real SMTP server, SIGHUP reloads (a broken rule file is rejected and mailed to the admins, a valid
one is taken), a clean SIGTERM, and two instances on one database running each duty once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailserver import MailServer
from sqlalchemy import select

from monitor.cli.main import main
from monitor.db.engine import SCHEDULED_EVENT, SERVICE_EVENT, make_engine
from monitor.db.results import runs
from monitor.deliver import outbox
from monitor.rules.load import load_rules

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
BEFORE_MAY_RUN = "2025-06-11T08:59:58+08:00"


def configure(workdir: Path, port: int, lease: float = 30) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"""schedule:
  reconcile_seconds: 0.5
  watch_seconds: 0
  lease_seconds: {lease}
mail:
  mode: smtp
  bureau_recipients: [jxk@czj.example.gov.cn]
  admin_recipients: [admin@czj.example.gov.cn]
  smtp: {{host: 127.0.0.1, port: {port}}}
  retry: {{backoff_seconds: 0.1, inline_wait_seconds: 5}}
""",
        encoding="utf-8",
    )
    res = CliRunner().invoke(main, ["import", str(EXAMPLES), "--config", str(cfg)], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def serve(workdir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "monitor",
        "serve",
        "--config",
        str(workdir / "config.yaml"),
        "--clock-start",
        BEFORE_MAY_RUN,
        "--instance",
        log.stem,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def query(db_url: str, fn: Callable[[Any], Any]) -> Any:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return fn(conn)
    finally:
        engine.dispose()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for p in running:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_serve_runs_on_schedule_reloads_safely_and_stops_cleanly(
    workdir: Path, db_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    with MailServer() as server:
        configure(workdir, server.port)
        log = workdir / "serve.log"
        proc = serve(workdir, log)
        procs.append(proc)
        server.wait_for(5, timeout=40)  # four unit digests and the bureau summary, at 09:00 Shanghai time
        assert sorted(m.message["X-Monitor-Kind"] for m in server.messages) == ["summary"] + ["warning"] * 4

        bad = workdir / "rules" / "zz_bad.yaml"
        bad.write_text("budget:\n  red_below: lots\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        admin = wait_until(
            lambda: [m for m in server.messages if "admin@czj.example.gov.cn" in m.recipients],
            what="the admin e-mail",
        )
        text = admin[0].message.get_body(("plain",)).get_content()
        assert f"{bad}:2: budget.red_below" in text
        log_text = log.read_text(encoding="utf-8")
        assert f"{bad}:2: budget.red_below" in log_text and "reload (SIGHUP) rejected" in log_text

        bad.unlink()
        (workdir / "rules" / "zz_local.yaml").write_text("budget: {yellow_below: 0.85}\n", encoding="utf-8")
        new_hash = load_rules(workdir / "rules").hash
        proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: f"reload (SIGHUP) ok: rules {new_hash[:12]}" in log.read_text(encoding="utf-8"),
            what="reload",
        )

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert query(db_url, lambda c: outbox.counts(c))["sending"] == 0
    kinds = query(db_url, lambda c: [(r.kind, r.ok) for r in c.execute(select(SERVICE_EVENT))])
    assert kinds == [("start", True), ("reload", False), ("reload", True), ("stop", True)]
    res = CliRunner().invoke(main, ["status", "--config", str(workdir / "config.yaml")])
    assert "last reload: " in res.output and new_hash[:12] in res.output


class StallingServer(MailServer):
    def __init__(self) -> None:
        super().__init__()
        self.stalled = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        while self.stalled:
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_two_instances_on_one_database_run_each_checkpoint_once(
    workdir: Path, db_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    with MailServer() as server:
        configure(workdir, server.port)
        procs += [serve(workdir, workdir / "a.log"), serve(workdir, workdir / "b.log")]
        server.wait_for(5, timeout=40)
        time.sleep(2)  # give the other instance every chance to run it again
        for p in procs:
            p.send_signal(signal.SIGTERM)
        assert [p.wait(timeout=30) for p in procs] == [0, 0]
        ids = [m.message["Message-ID"] for m in server.messages]
    assert len(ids) == 5 and len(set(ids)) == 5  # every message exactly once
    assert query(db_url, lambda c: [r["checkpoint"] for r in runs(c)]) == ["2025-05"]
    owners = query(db_url, lambda c: [r.owner for r in c.execute(select(SCHEDULED_EVENT))])
    assert len(owners) == 1


def test_killing_the_running_instance_mid_run_lets_the_other_finish(
    workdir: Path, db_url: str, procs: list[subprocess.Popen[bytes]]
) -> None:
    with StallingServer() as server:
        server.stalled = True
        configure(workdir, server.port, lease=2)
        procs += [serve(workdir, workdir / "a.log"), serve(workdir, workdir / "b.log")]
        events = SCHEDULED_EVENT

        def running_owner() -> str | None:
            rows = query(db_url, lambda c: list(c.execute(select(events.c.owner, events.c.status))))
            sending = query(db_url, lambda c: outbox.counts(c))["sending"]
            return rows[0].owner if rows and rows[0].status == "running" and sending else None

        owner = wait_until(running_owner, what="a run stuck delivering")
        victim = next(p for p in procs if owner.endswith(f":{p.pid}"))
        in_flight = set(query(db_url, lambda c: [m["message_id"] for m in outbox.messages(c, "sending")]))
        victim.kill()
        victim.wait()
        server.stalled = False
        survivor = next(p for p in procs if p is not victim)

        def finished() -> bool:
            rows = query(db_url, lambda c: list(c.execute(select(events.c.owner, events.c.status))))
            return (
                bool(rows)
                and rows[0].status == "finished"
                and query(db_url, lambda c: outbox.counts(c))["sent"] == 5
            )

        wait_until(finished, timeout=40, what="the other instance to take over")
        row = query(db_url, lambda c: c.execute(select(events)).one())
        assert row.owner.endswith(f":{survivor.pid}") and row.late
        all_ids = set(query(db_url, lambda c: [m["message_id"] for m in outbox.messages(c)]))
        received = [m.message["Message-ID"] for m in server.wait_for(5)]
        assert set(received) == all_ids  # nothing lost
        assert {mid for mid in received if received.count(mid) > 1} <= in_flight
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0
