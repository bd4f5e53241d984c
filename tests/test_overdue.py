"""Units that have not reported: a reminder (催报) before the report deadline names that deadline; a
message dated after it is an overdue notice (逾期未报送) with the consequence and a new short deadline
for late reports, N working days after the message's own date. No message asks for anything by a day
before its Date. Every message is read back as a real .eml file, parsed strictly."""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import email.utils
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.core.workdays import add_working_days
from monitor.pipeline.queueing import queue_reminders

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
TZ = ZoneInfo("Asia/Shanghai")
DEADLINE = dt.date(2025, 9, 10)  # August's report deadline: month end + 10 days
ASKED_BY = re.compile(r"请(?:于|在)\s*(\d{4})年(\d{1,2})月(\d{1,2})日\s*(?:前|之前|以前)")


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def unreported(workdir: Path) -> Path:
    """The worked examples imported without the August reports of 2025-302-001 (unit 302) and
    2025-304-002 (unit 304); mail written as .eml files to `sent/`."""
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "mail: {mode: file, file_dir: sent}\n", encoding="utf-8")
    data = workdir / "data"
    data.mkdir()
    for name in ("units.csv", "projects.csv", "indicators.csv", "indicator_reports.csv"):
        (data / name).write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    lines = (EXAMPLES / "project_reports.csv").read_text(encoding="utf-8").splitlines()
    kept = [x for x in lines if not x.startswith(("2025-08,2025-302-001", "2025-08,2025-304-002"))]
    assert len(kept) == len(lines) - 2
    (data / "project_reports.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")
    res = cli(workdir, "import", str(data))
    assert res.exit_code == 0, res.output
    return workdir


def mails(workdir: Path, folder: str = "sent") -> list[email.message.EmailMessage]:
    """The .eml files written to `folder` of `workdir`, parsed strictly (a defect raises)."""
    out = []
    for path in sorted((workdir / folder).glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        assert isinstance(msg, email.message.EmailMessage)
        out.append(msg)
    return out


def body(msg: email.message.EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def sent_on(msg: email.message.EmailMessage) -> dt.date:
    """The local (bureau) day of the message's Date header."""
    return email.utils.parsedate_to_datetime(str(msg["Date"])).astimezone(TZ).date()


def asked_by(msg: email.message.EmailMessage) -> list[dt.date]:
    """Every 'by this day' the message asks for, in its subject, text and HTML (tags removed)."""
    html = re.sub(r"<[^>]+>", "", body(msg, "html"))
    texts = [str(msg["Subject"]), body(msg, "plain"), html]
    return [dt.date(int(y), int(m), int(d)) for t in texts for y, m, d in ASKED_BY.findall(t)]


def assert_no_deadline_before_its_date(msgs: list[email.message.EmailMessage]) -> None:
    for msg in msgs:
        for day in asked_by(msg):
            assert day >= sent_on(msg), (msg["X-Monitor-Kind"], msg["Subject"], day, msg["Date"])


def app_at(workdir: Path, moment: dt.datetime) -> App:
    return App(load_settings(workdir / "config.yaml"), lambda: moment)


def reminder_round(app: App, key: str) -> list[tuple[str | None, str | None]]:
    """pipeline.queue_reminders at the app's moment, its messages delivered: (kind, unit) queued."""
    queued = queue_reminders(app.engine, app.settings, app.templates(), Checkpoint(2025, 8), key, app.clock)
    app.send()
    return sorted((q["kind"], q["unit_code"]) for q in queued)


def test_a_run_after_the_report_deadline_sends_overdue_notices_with_a_new_deadline(unreported: Path) -> None:
    res = cli(unreported, "run", "--checkpoint", "2025-08")  # today: long after 2025-09-10
    assert res.exit_code == 0, res.output
    assert "overdue" in res.output  # "messages queued: … 2 overdue notices"
    msgs = mails(unreported)
    kinds = sorted((str(m["X-Monitor-Kind"]), str(m["X-Monitor-Unit"])) for m in msgs)
    assert ("reminder", "302") not in kinds and ("reminder", "304") not in kinds
    overdue = {str(m["X-Monitor-Unit"]): m for m in msgs if m["X-Monitor-Kind"] == "overdue"}
    assert sorted(overdue) == ["302", "304"]
    for unit, msg in overdue.items():
        assert "逾期未报送" in str(msg["Subject"])
        text = body(msg, "plain")
        project = {"302": "2025-302-001", "304": "2025-304-002"}[unit]
        assert project in text and project in body(msg, "html")
        assert "2025年9月10日" in text  # the deadline that passed, named as such
        assert "未报送" in text and "不能评定灯色" in text  # the consequence
        day = sent_on(msg)
        assert day > DEADLINE
        (late,) = set(asked_by(msg))
        assert late == add_working_days(day, 5) and late > day
    assert_no_deadline_before_its_date(msgs)


def test_the_late_report_deadline_counts_working_days_of_the_configured_calendar(unreported: Path) -> None:
    cfg = unreported / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + "notifications:\n  late_report_working_days: 2\n"
        + '  holidays: ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06"]\n'
        + '  extra_workdays: ["2025-09-28"]\n',
        encoding="utf-8",
    )
    app = app_at(unreported, dt.datetime(2025, 9, 26, 9, 0, tzinfo=TZ))  # a Friday
    app.run(Checkpoint(2025, 8))
    overdue = [m for m in mails(unreported) if m["X-Monitor-Kind"] == "overdue"]
    assert len(overdue) == 2
    for msg in overdue:
        assert str(msg["Date"]) == "Fri, 26 Sep 2025 09:00:00 +0800"
        # Sunday 28 September is worked in lieu (调休), Monday 29 is the second working day
        assert asked_by(msg) == [dt.date(2025, 9, 29)] * len(asked_by(msg)) and asked_by(msg)
        assert "2 个工作日内" in body(msg, "plain")


def test_a_reminder_round_before_the_deadline_names_the_deadline(unreported: Path) -> None:
    app = app_at(unreported, dt.datetime(2025, 9, 7, 9, 0, tzinfo=TZ))
    assert reminder_round(app, "2025-08:3d") == [("reminder", "302"), ("reminder", "304")]
    msgs = mails(unreported)
    assert {str(m["X-Monitor-Kind"]) for m in msgs} == {"reminder"}
    for msg in msgs:
        assert str(msg["Date"]) == "Sun, 07 Sep 2025 09:00:00 +0800"
        assert set(asked_by(msg)) == {DEADLINE}
        assert "逾期" not in body(msg, "plain")
    assert_no_deadline_before_its_date(msgs)


def test_a_run_before_the_deadline_reminds_and_one_after_it_tells_the_unit_it_is_late(
    unreported: Path,
) -> None:
    app_at(unreported, dt.datetime(2025, 9, 8, 10, 0, tzinfo=TZ)).run(Checkpoint(2025, 8))
    early = [m for m in mails(unreported) if m["X-Monitor-Unit"] == "302"]
    assert [str(m["X-Monitor-Kind"]) for m in early] == ["reminder"]
    assert set(asked_by(early[0])) == {DEADLINE}
    later = app_at(unreported, dt.datetime(2025, 9, 11, 9, 0, tzinfo=TZ))
    assert reminder_round(later, "late") == [("overdue", "302"), ("overdue", "304")]
    msgs = mails(unreported)
    assert_no_deadline_before_its_date(msgs)
    late = [m for m in msgs if m["X-Monitor-Kind"] == "overdue" and m["X-Monitor-Unit"] == "302"]
    assert set(asked_by(late[0])) == {add_working_days(dt.date(2025, 9, 11), 5)}
    # the same unreported projects a day later: the unit is not told again
    again = app_at(unreported, dt.datetime(2025, 9, 12, 9, 0, tzinfo=TZ))
    assert [q for q in again.run(Checkpoint(2025, 8)).queued if q["kind"] == "overdue"] == []


def test_the_outbox_and_explain_know_the_overdue_notice(unreported: Path) -> None:
    assert cli(unreported, "run", "--checkpoint", "2025-08").exit_code == 0
    listing = cli(unreported, "outbox")
    assert listing.exit_code == 0
    assert len([line for line in listing.output.splitlines() if "overdue" in line]) == 2
    res = cli(unreported, "explain", "2025-302-001", "--checkpoint", "2025-08")
    assert res.exit_code == 0, res.output
    assert "overdue" in res.output


def test_late_report_working_days_is_checked(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8") + "notifications:\n  late_report_working_days: 0\n", encoding="utf-8"
    )
    res = cli(workdir, "check")
    assert res.exit_code == 1
    assert "config.yaml:6: notifications.late_report_working_days" in res.output
