"""A checkpoint's messages are queued once, and a run stopped half-way is completed: two real `monitor
run` processes of one checkpoint at once (one runs, the other waits or says who runs it; no message
queued twice), a run killed (SIGKILL, through MONITOR_FAILPOINTS) between storing its results and
queueing its messages (status flags it; `monitor send` or the service completes it, cases and messages
together), duty and run claims taken over in seconds, and the outbox keyed so that one decision is
never queued twice."""

from __future__ import annotations

import os
import re
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

from monitor.db.engine import OUTBOX, SCHEDULED_EVENT, WARNING_CASE, create_schema, make_engine
from monitor.db.results import runs

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
    engine = make_engine(db_url)
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
    o = OUTBOX
    return [tuple(r) for r in conn.execute(select(o.c.checkpoint, o.c.kind, o.c.unit_code))]


def doubles(db_url: str) -> dict[tuple[str, str, str | None], int]:
    """(checkpoint, kind, unit) queued more than once."""
    keys = query(db_url, queued_keys)
    return {k: n for k, n in Counter(keys).items() if n > 1}


def run_rows(db_url: str) -> list[dict[str, Any]]:
    return list(query(db_url, lambda c: runs(c)))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 projects: a run takes a few seconds, long enough for two started at once to overlap."""
    from monitor.tools.sample import write_sample

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
        # a time a person reads: in the bureau's zone (config time_zone), with its offset
        assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d\+08:00", text), text
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
    return int(conn.execute(select(func.count()).select_from(WARNING_CASE)).scalar_one())


def messages(conn: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one())


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
    statuses = query(db_url, lambda c: Counter(r[0] for r in c.execute(select(OUTBOX.c.status))))
    assert statuses == {"sent": queued}
    assert len(list((imported / "outbox").glob("*.eml"))) == queued
    code, text = monitor(imported, "status")
    assert code == 0, text

    code, text = monitor(imported, "send")  # once only
    assert code == 0 and "completed run" not in text, text
    assert query(db_url, messages) == queued and doubles(db_url) == {}


def test_send_completes_nothing_while_the_run_is_under_way(imported: Path, db_url: str) -> None:
    """A run paused between storing and queueing holds its claim: `monitor send` and `monitor status`
    leave it to that run (status does not flag it), which then finishes as usual."""
    first = spawn(imported, "run", "--checkpoint", CP, "--no-send")
    try:
        wait_until(lambda: [r for r in run_rows(db_url) if r["status"] == "evaluated"], what="evaluated")
        first.send_signal(signal.SIGSTOP)
        code, text = monitor(imported, "send")
        assert code == 0 and "completed run" not in text, text
        code, text = monitor(imported, "status")
        assert "evaluated, its messages were never queued" not in text, text
    finally:
        first.send_signal(signal.SIGCONT)
    out = first.communicate(timeout=120)
    assert first.returncode == 0, out
    assert [r["status"] for r in run_rows(db_url)] == ["finished"] and doubles(db_url) == {}


# --- claims ----------------------------------------------------------------------------------------------


def test_claims_are_taken_at_once_from_a_dead_process_never_from_a_live_one_and_elsewhere_after_the_lease(
    db_url: str,
) -> None:
    import datetime as dt

    from monitor.db import claims

    engine = make_engine(db_url)
    create_schema(engine)
    lock, here, now = claims.RUN_LOCK, socket.gethostname(), claims.wall_clock()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:

        def held_by(key: str, owner: str, silent: float) -> None:
            at = now - dt.timedelta(seconds=silent)
            with engine.begin() as conn:
                conn.execute(lock.insert().values(key=key, owner=owner, started_at=at, heartbeat_at=at))

        held_by("dead", f"{here}:{gone.pid}", 0)  # heartbeat fresh, process gone: at once
        held_by("alive", f"{here}:{alive.pid}", 3600)  # heartbeat an hour late, process alive: never
        held_by("elsewhere", "other-host:4242", 5)
        held_by("silent", "other-host:4243", 21)  # beyond the 20 s lease
        me = "test-host:1"
        assert claims.take(engine, lock, "dead", me, now, 20)[0] is None
        assert claims.take(engine, lock, "alive", me, now, 20)[0] == claims.Holder(
            f"{here}:{alive.pid}",
            *query(
                db_url,
                lambda c: c.execute(
                    select(lock.c.started_at, lock.c.heartbeat_at).where(lock.c.key == "alive")
                ).one(),
            ),
        )
        assert claims.take(engine, lock, "elsewhere", me, now, 20)[0] is not None
        assert claims.take(engine, lock, "silent", me, now, 20)[0] is None
        assert claims.take(engine, lock, "new", me, now, 20)[0] is None
        with pytest.raises(claims.Busy, match=f"alive is being run by {here}:{alive.pid} since "):
            claims.acquire(engine, lock, "alive", me, 20, "alive", wait=0.3, poll=0.1)
        owners = dict(query(db_url, lambda c: list(c.execute(select(lock.c.key, lock.c.owner)))))
        assert owners == {
            "dead": me,
            "alive": f"{here}:{alive.pid}",
            "elsewhere": "other-host:4242",
            "silent": me,
            "new": me,
        }
    finally:
        alive.kill()
        alive.wait()
        engine.dispose()


def test_takeover_is_a_matter_of_seconds_by_default() -> None:
    from monitor.config.settings import ScheduleConfig

    sched = ScheduleConfig()
    # another host: the lease, then the next reconcile; this host: the next reconcile
    assert sched.lease_seconds + sched.reconcile_seconds <= 30


# --- the service -----------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def service_at(workdir: Path, moment: str) -> Any:
    import datetime as dt

    from monitor.service.runner import Service, fixed_start_clock

    start = dt.datetime.fromisoformat(moment).astimezone(dt.UTC)
    return Service(workdir / "config.yaml", None, fixed_start_clock(start), instance="test")


def test_the_service_run_duty_waits_for_a_run_by_hand(workdir: Path, db_url: str) -> None:
    """The service's run of a checkpoint while an operator's run of it holds the claim: it waits for
    that run to end instead of failing; stopping meanwhile leaves the duty owed, not failed."""
    import threading

    from monitor.db import claims

    code, text = monitor(workdir, "import", str(EXAMPLES))
    assert code == 0, text
    hand = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a run by hand, alive
    engine = make_engine(db_url)
    try:
        now = claims.wall_clock()
        with engine.begin() as conn:
            owner = f"{socket.gethostname()}:{hand.pid}"
            conn.execute(
                claims.RUN_LOCK.insert().values(key=CP, owner=owner, started_at=now, heartbeat_at=now)
            )
        svc = service_at(workdir, "2025-06-11T10:00:00+08:00")
        done: list[bool] = []
        duty = threading.Thread(target=lambda: done.append(svc.fire_key(f"run:{CP}")))
        duty.start()
        time.sleep(2)
        assert duty.is_alive() and run_rows(db_url) == []
        events = query(
            db_url,
            lambda c: [tuple(r) for r in c.execute(select(SCHEDULED_EVENT.c.key, SCHEDULED_EVENT.c.status))],
        )
        assert events == [(f"run:{CP}", "running")]
        svc.stopping.set()  # stopping while waiting: not carried out, owed again
        duty.join(timeout=10)
        assert done == [False] and query(db_url, lambda c: c.execute(select(SCHEDULED_EVENT)).all()) == []

        svc = service_at(workdir, "2025-06-11T10:00:00+08:00")
        done.clear()
        duty = threading.Thread(target=lambda: done.append(svc.fire_key(f"run:{CP}")))
        duty.start()
        time.sleep(1)
        assert duty.is_alive()
        with engine.begin() as conn:  # the hand run ends
            conn.execute(claims.RUN_LOCK.delete())
        duty.join(timeout=60)
        assert done == [True]
        assert [r["status"] for r in run_rows(db_url)] == ["finished"]
        (event,) = query(db_url, lambda c: c.execute(select(SCHEDULED_EVENT)).all())
        assert event.status == "finished" and "red 4" in event.detail
    finally:
        hand.kill()
        hand.wait()
        engine.dispose()


def test_the_service_completes_a_run_killed_before_queueing(workdir: Path, db_url: str) -> None:
    code, text = monitor(workdir, "import", str(EXAMPLES))
    assert code == 0, text
    code, text = monitor(workdir, "run", "--checkpoint", CP, failpoints="run:after-results-stored")
    assert code == -signal.SIGKILL, text
    assert [r["status"] for r in run_rows(db_url)] == ["evaluated"]
    svc = service_at(workdir, "2025-05-20T10:00:00+08:00")  # no duty due: only the completion
    assert svc.reconcile() == []
    assert [r["status"] for r in run_rows(db_url)] == ["finished"]
    statuses = query(db_url, lambda c: [r[0] for r in c.execute(select(OUTBOX.c.status))])
    assert len(statuses) == 5 and set(statuses) == {"sent"}  # four digests and the summary, delivered
    assert query(db_url, cases) > 0
    assert svc.reconcile() == [] and query(db_url, messages) == 5


def test_an_instance_killed_mid_run_is_taken_over_in_seconds(workdir: Path, db_url: str) -> None:
    """Two `monitor serve` instances with the default lease and reconcile interval; the one running
    the checkpoint is killed (SIGKILL) between storing results and queueing: the other completes it
    within seconds, each message queued once."""
    code, text = monitor(workdir, "import", str(EXAMPLES))
    assert code == 0, text
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "schedule:\n  watch_seconds: 0\n", encoding="utf-8")

    def serve(name: str, clock: str, failpoints: str = "") -> subprocess.Popen[str]:
        return spawn(workdir, "serve", "--clock-start", clock, "--instance", name, failpoints=failpoints)

    doomed = serve("a", "2025-06-11T08:59:59+08:00", "run:after-results-stored")  # runs it first
    other = serve("b", "2025-06-11T08:59:30+08:00")  # its 09:00 comes 29 s later
    try:
        doomed.communicate(timeout=60)
        assert doomed.returncode == -signal.SIGKILL
        died = time.monotonic()
        wait_until(lambda: query(db_url, messages) == 5, timeout=30, what="the other instance to queue")
        assert time.monotonic() - died < 15
        wait_until(
            lambda: (
                {r[0] for r in query(db_url, lambda c: c.execute(select(OUTBOX.c.status)).all())} == {"sent"}
            ),
            what="delivery",
        )
        finishing = select(SCHEDULED_EVENT.c.status, SCHEDULED_EVENT.c.owner)
        _, owner = wait_until(
            lambda: next(
                (r for r in query(db_url, lambda c: c.execute(finishing).all()) if r[0] == "finished"), None
            ),
            timeout=60,
            what="the duty taken over",
        )
        assert owner.endswith(f":{other.pid}")
        assert doubles(db_url) == {} and query(db_url, messages) == 5
        assert run_rows(db_url)[0]["status"] == "finished"  # completed, not left evaluated
    finally:
        for p in (doomed, other):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.communicate(timeout=30)


# --- the outbox keyed by decision --------------------------------------------------------------------------


def test_a_decision_queued_twice_is_refused_with_a_clear_error(
    workdir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever lets two processes decide against the same outbox state (here: the decision reads an
    outbox without the messages another run queued meanwhile), the second cannot queue: nothing of
    it is queued and the error says why."""
    from monitor.app import App
    from monitor.config.settings import load_settings
    from monitor.core.model import Checkpoint
    from monitor.deliver import outbox
    from monitor.pipeline import queueing

    code, text = monitor(workdir, "import", str(EXAMPLES))
    assert code == 0, text
    code, text = monitor(workdir, "run", "--checkpoint", CP, "--no-send")
    assert code == 0, text
    before = query(db_url, messages)
    app = App(load_settings(workdir / "config.yaml"))
    monkeypatch.setattr(outbox, "last_queued", lambda *_a, **_k: {})  # read before the other run queued
    with pytest.raises(queueing.QueuedMeanwhile) as caught:
        queueing.queue_notifications(
            app.engine, app.settings, app.templates(), Checkpoint.parse(CP), app.clock
        )
    assert str(caught.value) == (
        f"messages of checkpoint {CP} were queued by another run meanwhile; nothing was queued by this one"
    )
    assert query(db_url, messages) == before
    app.engine.dispose()


def test_the_migration_chains_the_doubles_a_database_already_holds(db_url: str) -> None:
    """Revision 0008 on a database where two runs queued the same messages: each double supersedes the
    row before it, so the unique index can be created, and the rows stay."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from monitor.db import migrate

    engine = make_engine(db_url)
    migrate.upgrade(engine, "0007")
    row = (
        "INSERT INTO outbox (message_id, checkpoint, kind, reason, unit_code, recipients, subject,"
        " fingerprint, snapshot, status, attempts, next_attempt_at, created_at) VALUES (:mid, '2025-05',"
        " :kind, 'first', :unit, 'a@example.org', 's', 'f', '{}', 'pending', 0, :at, :at)"
    )
    at = "2025-06-11 01:00:00"
    with engine.begin() as conn:
        for i, (kind, unit) in enumerate(
            [("warning", "301"), ("warning", "302"), ("warning", "301"), ("summary", None), ("summary", None)]
        ):
            conn.execute(text(row), {"mid": f"<{i}@x>", "kind": kind, "unit": unit, "at": at})
    assert migrate.upgrade(engine, "0008") == ["0008"]
    with engine.connect() as conn:
        chain = conn.execute(text("SELECT id, supersedes FROM outbox ORDER BY id")).all()
    assert [tuple(r) for r in chain] == [(1, 0), (2, 0), (3, 1), (4, 0), (5, 4)]
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the same decision again
        conn.execute(
            text(row.replace("'first'", "'again'")),
            {"mid": "<5@x>", "kind": "summary", "unit": None, "at": at},
        )
    engine.dispose()
