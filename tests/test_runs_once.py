"""A checkpoint's messages are queued once, and a run stopped half-way is completed: two real `monitor
run` processes of one checkpoint at once (one runs, the other waits or says who runs it; no message
queued twice), a run killed (SIGKILL, through MONITOR_FAILPOINTS) between storing its results and
queueing its messages (status flags it; `monitor send` or the service completes it, cases and messages
together), duty and run claims taken over in seconds, and the outbox keyed so that one decision is
never queued twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor import store

ROOT = Path(__file__).resolve().parent.parent
CP = "2025-05"


def spawn(workdir: Path, *args: str, failpoints: str = "") -> subprocess.Popen[str]:
    """`python -m monitor ARGS --config workdir/config.yaml` as a real process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_FAILPOINTS": failpoints}
    cmd = [sys.executable, "-m", "monitor", *args, "--config", str(workdir / "config.yaml")]
    return subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def monitor(workdir: Path, *args: str, failpoints: str = "", timeout: float = 120) -> tuple[int, str]:
    """Run the command to its end: (exit status, stdout and stderr)."""
    proc = spawn(workdir, *args, failpoints=failpoints)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def query(db_url: str, fn: Callable[[Any], Any]) -> Any:
    engine = store.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return fn(conn)
    finally:
        engine.dispose()


def wait_until(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def queued_keys(conn: Any) -> list[tuple[str, str, str | None]]:
    o = store.OUTBOX
    return [tuple(r) for r in conn.execute(select(o.c.checkpoint, o.c.kind, o.c.unit_code))]


def doubles(db_url: str) -> dict[tuple[str, str, str | None], int]:
    """(checkpoint, kind, unit) queued more than once."""
    keys = query(db_url, queued_keys)
    return {k: n for k, n in Counter(keys).items() if n > 1}


def run_rows(db_url: str) -> list[dict[str, Any]]:
    return list(query(db_url, lambda c: store.runs(c)))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 projects: a run takes a few seconds, long enough for two started at once to overlap."""
    from monitor.sample import write_sample

    out = tmp_path_factory.mktemp("sample") / "data"
    write_sample(out, projects=3000, seed=2025, year=2025, may_only=True)
    return out


@pytest.fixture
def imported(workdir: Path, sample: Path) -> Path:
    code, text = monitor(workdir, "import", str(sample))
    assert code == 0, text
    return workdir


# --- two runs of one checkpoint at once ---------------------------------------------------------------


def test_two_runs_started_at_once_queue_every_message_once(imported: Path, db_url: str) -> None:
    """Reproduces issue 16.2: an operator's `monitor run` while the same checkpoint runs. Before the run
    claim both ran (SQLite: units queued twice; PostgreSQL: a raw UniqueViolation)."""
    procs = [spawn(imported, "run", "--checkpoint", CP, "--no-send") for _ in range(2)]
    outputs = [p.communicate(timeout=180) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outputs
    winner, loser = (procs[0], procs[1]) if codes[0] == 0 else (procs[1], procs[0])
    out, err = outputs[procs.index(loser)]
    assert f"{CP} is being run by {socket.gethostname()}:{winner.pid} since " in err, (out, err)
    assert "nothing was written" in err and "Traceback" not in err
    assert doubles(db_url) == {}
    assert [r["status"] for r in run_rows(db_url)] == ["finished"]  # the loser wrote no run


def test_a_second_run_says_who_runs_or_waits_for_it(imported: Path, db_url: str) -> None:
    """The first run held still (SIGSTOP) mid-run: a second run says at once who runs the checkpoint
    and writes nothing; with --wait it waits for the first to finish, then runs (queueing nothing new)."""
    first = spawn(imported, "run", "--checkpoint", CP, "--no-send")
    try:
        wait_until(lambda: run_rows(db_url), what="the first run to start")
        first.send_signal(signal.SIGSTOP)
        code, text = monitor(imported, "run", "--checkpoint", CP, "--no-send", timeout=60)
        assert code == 1, text
        assert f"{CP} is being run by {socket.gethostname()}:{first.pid} since " in text
        assert "--wait" in text and "Traceback" not in text
        assert len(run_rows(db_url)) == 1
        waiting = spawn(imported, "run", "--checkpoint", CP, "--no-send", "--wait", "120")
        time.sleep(3)
        assert waiting.poll() is None  # still waiting
        assert len(run_rows(db_url)) == 1
    finally:
        first.send_signal(signal.SIGCONT)
    first_out = first.communicate(timeout=120)
    assert first.returncode == 0, first_out
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, (out, err)
    assert f"waiting for the run of {CP} by {socket.gethostname()}:{first.pid}" in err
    assert "messages: none new" in out
    assert doubles(db_url) == {}
    assert [r["status"] for r in run_rows(db_url)] == ["finished", "finished"]


# --- a run killed between storing its results and queueing its messages --------------------------------


def cases(conn: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(store.WARNING_CASE)).scalar_one())


def messages(conn: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(store.OUTBOX)).scalar_one())


@pytest.mark.parametrize("failpoint", ["run:after-results-stored", "run:after-cases-opened"])
def test_a_run_killed_before_queueing_is_flagged_and_completed_by_send(
    imported: Path, db_url: str, failpoint: str
) -> None:
    """Reproduces issue 16.3: kill -9 after the results were stored, before the messages were queued,
    left a `finished` run, no mail, cases opened and `monitor status` all well."""
    code, text = monitor(imported, "run", "--checkpoint", CP, failpoints=failpoint)
    assert code == -signal.SIGKILL, text
    (run,) = run_rows(db_url)
    assert run["status"] == "evaluated"
    assert query(db_url, messages) == 0
    assert query(db_url, cases) == 0  # cases are opened with the messages, in one transaction

    code, text = monitor(imported, "status")
    assert code == 1, text
    assert f"run #{run['id']} of {CP}: evaluated, its messages were never queued" in text

    code, text = monitor(imported, "send")
    assert code == 0, text
    assert f"completed run #{run['id']} of {CP}" in text
    (run,) = run_rows(db_url)
    assert run["status"] == "finished"
    queued = query(db_url, messages)
    assert queued > 600 and query(db_url, cases) > 0
    statuses = query(db_url, lambda c: Counter(r[0] for r in c.execute(select(store.OUTBOX.c.status))))
    assert statuses == {"sent": queued}
    assert len(list((imported / "outbox").glob("*.eml"))) == queued
    code, text = monitor(imported, "status")
    assert code == 0, text

    code, text = monitor(imported, "send")  # once only
    assert code == 0 and "completed run" not in text, text
    assert query(db_url, messages) == queued and doubles(db_url) == {}
