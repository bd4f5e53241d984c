"""The engine behind a pooler in transaction mode (PgBouncer, as .ci/run runs the service, delivery and
evaluation tests through it: tests/pgbouncer.sh): each transaction may get another server connection,
so nothing a connection keeps between transactions may be relied on. On SQLite and on PostgreSQL
without a pooler the same steps run and must give the same answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from monitor.db.engine import make_engine

STATEMENT = text("SELECT CAST(:n AS INTEGER) + 1")


def test_a_statement_run_many_times_survives_the_pooler_changing_server_connections(db_url: str) -> None:
    """psycopg prepares a statement on the server once it ran 5 times, and then only names it: behind
    PgBouncer 1.18 in transaction mode the next transaction on another server connection would fail
    with 'prepared statement "_pg3_0" does not exist' unless the URL says ?pgbouncer=true."""
    engine, other = make_engine(db_url), make_engine(db_url)
    try:
        for n in range(8):  # prepared from the 6th run on (on the server connection free then)
            with engine.begin() as conn:
                assert conn.execute(STATEMENT, {"n": n}).scalar_one() == n + 1
        with other.begin() as busy:  # holds that server connection: the pooler hands out another one
            busy.execute(text("SELECT 1"))
            for n in range(8, 12):
                with engine.begin() as conn:
                    assert conn.execute(STATEMENT, {"n": n}).scalar_one() == n + 1
    finally:
        engine.dispose()
        other.dispose()


def test_a_wrong_pgbouncer_option_is_a_config_error_naming_its_line_and_value(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "time_zone: Asia/Shanghai\ndatabase:\n  url: postgresql+psycopg://monitor:s3cret@127.0.0.1:6432/m"
        "?pgbouncer=yes\n",
        encoding="utf-8",
    )
    res = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--config", str(cfg)], capture_output=True, text=True
    )
    assert res.returncode != 0
    assert f"{cfg}:3" in res.stderr and "database.url" in res.stderr and "'yes'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "s3cret" not in res.stderr
    env = {**os.environ, "MONITOR_DATABASE_URL": "postgresql+psycopg://monitor@127.0.0.1:6432/m?pgbouncer=1"}
    res = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode != 0
    assert "MONITOR_DATABASE_URL" in res.stderr and "'1'" in res.stderr, res.stderr
