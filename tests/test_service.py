"""The background service with a fixed clock: the duty calendar in Asia/Shanghai, catch-up after
downtime (once), reminders only to units that have not reported, and the two APScheduler pitfalls
measured in the issue (replace_existing at start, the 1 s default misfire grace)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from click.testing import CliRunner
from sqlalchemy import select

from monitor.cli.main import main
from monitor.config.settings import ScheduleConfig
from monitor.db.engine import OUTBOX, SCHEDULED_EVENT, SERVICE_EVENT, make_engine
from monitor.db.results import runs
from monitor.deliver import outbox
from monitor.service import schedule
from monitor.service.runner import Service, fixed_start_clock

TZ = ZoneInfo("Asia/Shanghai")
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=TZ)


def test_default_schedule_fires_in_june_and_september_in_shanghai_time() -> None:
    duties = schedule.upcoming(ScheduleConfig(), at(2025, 1, 1), TZ, n=8)
    assert [(d.key, d.due_at.isoformat()) for d in duties] == [
        ("task:2025-05", "2025-06-01T09:00:00+08:00"),  # reporting opens the day after the month ends
        ("reminder:2025-05:3d", "2025-06-07T09:00:00+08:00"),
        ("reminder:2025-05:1d", "2025-06-09T09:00:00+08:00"),
        ("run:2025-05", "2025-06-11T09:00:00+08:00"),
        ("task:2025-08", "2025-09-01T09:00:00+08:00"),
        ("reminder:2025-08:3d", "2025-09-07T09:00:00+08:00"),
        ("reminder:2025-08:1d", "2025-09-09T09:00:00+08:00"),
        ("run:2025-08", "2025-09-11T09:00:00+08:00"),
    ]
    assert duties[3].due_at.astimezone(dt.UTC).isoformat() == "2025-06-11T01:00:00+00:00"


def test_an_admin_can_add_an_october_checkpoint_without_code(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + "schedule:\n  checkpoints:\n    - {month: 5}\n    - {month: 8}\n"
        + '    - {month: 10, report_deadline_days: 5, run_time: "08:30",\n'
        + "       reminder_days_before_deadline: [2]}\n",
        encoding="utf-8",
    )
    from monitor.config.settings import load_settings

    s = load_settings(cfg)
    keys = [(d.key, d.due_at.isoformat()) for d in schedule.upcoming(s.schedule, at(2025, 9, 12), TZ, n=3)]
    assert keys == [
        ("task:2025-10", "2025-11-01T09:00:00+08:00"),
        ("reminder:2025-10:2d", "2025-11-03T09:00:00+08:00"),
        ("run:2025-10", "2025-11-06T08:30:00+08:00"),
    ]


def cli(workdir: Path, *args: str) -> None:
    res = CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def service(workdir: Path, start: dt.datetime) -> Service:
    return Service(
        workdir / "config.yaml", None, fixed_start_clock(start.astimezone(dt.UTC)), instance="test"
    )


def events(db_url: str) -> list[dict[str, object]]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = [
            dict(r._mapping) for r in conn.execute(select(SCHEDULED_EVENT).order_by(SCHEDULED_EVENT.c.key))
        ]
    engine.dispose()
    return rows


def run_service_briefly(svc: Service, seconds: float = 0.3) -> None:
    svc.start()
    time.sleep(seconds)
    svc.shutdown()


def test_service_down_on_the_may_run_date_runs_may_once_at_start(workdir: Path, db_url: str) -> None:
    cli(workdir, "import", str(EXAMPLES))
    run_service_briefly(service(workdir, at(2025, 5, 20, 9)))  # installed in May: nothing due yet
    assert events(db_url) == []
    svc = service(workdir, at(2025, 6, 12, 10))  # down from May 20 to June 12: missed the June 11 run
    svc.start()
    try:
        assert [e["key"] for e in events(db_url)] == [
            "run:2025-05"
        ]  # reminders after the deadline are not owed
        (ev,) = events(db_url)
        assert ev["status"] == "finished" and ev["late"] and "red 4" in str(ev["detail"])
    finally:
        svc.shutdown()
    again = service(workdir, at(2025, 6, 12, 11))
    again.start()
    try:
        assert again.reconcile() == []
    finally:
        again.shutdown()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert [r["checkpoint"] for r in runs(conn)] == ["2025-05"]  # once
    engine.dispose()


def test_reminders_before_the_deadline_go_only_to_units_that_have_not_reported(
    workdir: Path, db_url: str
) -> None:
    data = workdir / "data"
    data.mkdir()
    for name in ("units.csv", "projects.csv", "indicators.csv"):
        (data / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    (data / "project_reports.csv").write_text(
        "checkpoint,project_code,executed\n2025-05,2025-301001-001,708\n2025-05,2025-304-001,25\n",
        encoding="utf-8",
    )
    cli(workdir, "import", str(data))
    svc = service(workdir, at(2025, 6, 7, 9, 0, 1))
    svc.start()
    try:
        # started after reporting opened (06-01): the reporting notices are caught up first
        assert sorted(str(e["key"]) for e in events(db_url)) == ["reminder:2025-05:3d", "task:2025-05"]
        engine = make_engine(db_url)
        with engine.connect() as conn:
            sent = outbox.messages(conn)
        engine.dispose()
        # every unit with projects got its reporting notice; 302 and 303 have not reported at all, 304
        # still owes 2025-304-002, 301001 has reported everything: reminded are the first three
        assert sorted((m["kind"], m["unit_code"]) for m in sent) == [
            ("reminder", "302"),
            ("reminder", "303"),
            ("reminder", "304"),
            ("task", "301001"),
            ("task", "302"),
            ("task", "303"),
            ("task", "304"),
        ]
        assert {m["status"] for m in sent} == {"sent"}
    finally:
        svc.shutdown()


def test_replace_existing_at_start_drops_a_run_missed_while_down_but_reconcile_does_not(
    tmp_path: Path,
) -> None:
    """APScheduler alone: a stored job whose time passed while the scheduler was down, re-added at the next
    start with replace_existing=True (as every service start does), is replaced and never runs."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    ran: list[str] = []
    first = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=TZ)
    first.start(paused=True)
    soon = dt.datetime.now(TZ) + dt.timedelta(seconds=0.5)
    first.add_job(print, "date", run_date=soon, id="run:2025-05", args=["x"], replace_existing=True)
    first.shutdown(wait=False)  # the service is down when the job is due
    time.sleep(1)
    second = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        timezone=TZ,
        job_defaults={"misfire_grace_time": 3600},
    )
    second.add_listener(lambda e: ran.append(e.job_id), EVENT_JOB_EXECUTED)
    later = dt.datetime.now(TZ) + dt.timedelta(days=365)  # the next occurrence, as a start re-plans it
    second.add_job(print, "date", run_date=later, id="run:2025-05", args=["x"], replace_existing=True)
    second.start()
    time.sleep(0.5)
    second.shutdown()
    assert ran == []  # silently dropped: no "missed" event either
    # The service never relies on that: the calendar is compared with the database (see the test above).


def test_default_misfire_grace_drops_a_late_run_and_the_service_sets_days(workdir: Path) -> None:
    events_seen: list[tuple[str, int]] = []

    def listen(e: JobExecutionEvent) -> None:
        events_seen.append((e.job_id, e.code))

    for grace, job_id in ((None, "default"), (3600, "ours")):
        sched = BackgroundScheduler(
            timezone=TZ, job_defaults={} if grace is None else {"misfire_grace_time": grace}
        )
        sched.add_listener(listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
        sched.add_job(
            print, "date", run_date=dt.datetime.now(TZ) - dt.timedelta(seconds=5), id=job_id, args=[""]
        )
        sched.start()  # started 5 s after the job was due
        time.sleep(0.5)
        sched.shutdown()
    assert events_seen == [("default", EVENT_JOB_MISSED), ("ours", EVENT_JOB_EXECUTED)]
    svc = service(workdir, at(2025, 1, 1))
    svc.start()
    try:
        assert svc.scheduler._job_defaults["misfire_grace_time"] == 30 * 86400
        assert svc.scheduler._job_defaults["coalesce"] is True
        ids = {j.id for j in svc.scheduler.get_jobs()}
        assert {"run:2025-05", "run:2025-08", "reminder:2025-05:3d", "reconcile", "deliver"} <= ids
    finally:
        svc.shutdown()


def test_two_triggers_for_the_same_duty_at_once_run_it_once(workdir: Path, db_url: str) -> None:
    cli(workdir, "import", str(EXAMPLES))
    svc = service(workdir, at(2025, 6, 11, 9, 0, 1))
    duty = next(d for d in schedule.upcoming(ScheduleConfig(), at(2025, 6, 1), TZ) if d.key == "run:2025-05")
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(svc.fire(duty))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert len(runs(conn, "2025-05")) == 1
    engine.dispose()


def test_status_tells_the_truth_and_fails_when_something_needs_attention(workdir: Path, db_url: str) -> None:
    from monitor.app import App
    from monitor.config.settings import load_settings
    from monitor.service.status import as_text, build

    cli(workdir, "import", str(EXAMPLES))
    run_service_briefly(service(workdir, at(2025, 6, 11, 9, 0, 1)))  # runs May on time
    app = App(load_settings(workdir / "config.yaml"))
    report = build(app.engine, app.settings, at(2025, 6, 12))
    text = "\n".join(as_text(report, "db"))
    assert report.attention == [] and "run:2025-05            finished by test" in text
    assert "run:2025-08            due 2025-09-11T09:00+08:00" in text and "#1 2025-05 finished" in text
    late = build(app.engine, app.settings, at(2025, 9, 12))  # the service was not running since June
    assert late.attention == [  # May's unanswered cases were neither chased nor escalated either
        "chase:2025-05 missed: it was due 2025-06-26T09:00+08:00",
        "escalate:2025-05 missed: it was due 2025-07-03T09:00+08:00",
        "run:2025-08 missed: it was due 2025-09-11T09:00+08:00",
    ]
    with app.engine.begin() as conn:  # a delivery that failed for good
        conn.execute(OUTBOX.update().where(OUTBOX.c.id == 1).values(status="failed", last_error="550"))
    res = CliRunner().invoke(main, ["status", "--config", str(workdir / "config.yaml")])
    assert res.exit_code == 1 and "1 message(s) failed" in res.output


def test_a_changed_rule_file_is_picked_up_without_a_signal(workdir: Path, db_url: str) -> None:
    svc = service(workdir, at(2025, 1, 1))
    svc.start()
    try:
        before = svc.state.rules.hash
        svc.tick()
        assert svc.state.rules.hash == before  # nothing changed: no reload
        (workdir / "rules" / "zz_local.yaml").write_text("budget: {yellow_below: 0.85}\n", encoding="utf-8")
        svc.tick()
        assert svc.state.rules.hash != before and str(svc.state.rules.budget_yellow_below) == "0.85"
        (workdir / "rules" / "zz_local.yaml").write_text("budget: {yellow_below: lots}\n", encoding="utf-8")
        svc.tick()
        assert str(svc.state.rules.budget_yellow_below) == "0.85"  # a broken change keeps the rules in force
    finally:
        svc.shutdown()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        reloads = [
            (r.ok, r.detail)
            for r in conn.execute(select(SERVICE_EVENT).where(SERVICE_EVENT.c.kind == "reload"))
        ]
    engine.dispose()
    assert [ok for ok, _ in reloads] == [True, False]
    assert "zz_local.yaml:1: budget.yellow_below" in str(reloads[1][1])
