"""Every time a person reads is in the bureau's time zone (config `time_zone`) with its offset: the
Date of every e-mail, `monitor explain`, `monitor rules history`, the HTML report. And the demo runs
on the sample year's calendar: each checkpoint at its scheduled run time, so its e-mails are dated in
2025 and every deadline they name comes after their Date."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from pathlib import Path

import pytest
from test_overdue import EXAMPLES, TZ, asked_by, cli, mails


@pytest.fixture
def ran(workdir: Path) -> Path:
    """The worked examples imported and May run (today, by the wall clock, which is in UTC here or
    anywhere); mail written as .eml files to `sent/`."""
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "mail: {mode: file, file_dir: sent}\n", encoding="utf-8")
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    return workdir


def local_now() -> dt.datetime:
    return dt.datetime.now(TZ)


def test_every_mail_is_dated_in_the_bureau_time_zone(ran: Path) -> None:
    for msg in mails(ran):
        date = str(msg["Date"])
        assert date.endswith(" +0800"), date
        sent = email.utils.parsedate_to_datetime(date)
        assert abs(sent - local_now()) < dt.timedelta(minutes=10)


def test_explain_shows_when_a_message_was_sent_in_the_bureau_time_zone(ran: Path) -> None:
    res = cli(ran, "explain", "2025-302-001", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    assert "UTC" not in res.output
    today = local_now().date().isoformat()
    assert re.search(rf"{today} \d\d:\d\d\+08:00", res.output), res.output


def test_rules_history_shows_times_in_the_bureau_time_zone(ran: Path) -> None:
    res = cli(ran, "rules", "history")
    assert res.exit_code == 0, res.output
    assert "UTC" not in res.output
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d\+08:00", res.output)) == 2  # first seen, the run


def test_the_report_says_when_it_was_made_with_the_offset(ran: Path) -> None:
    out = ran / "report.html"
    assert cli(ran, "report", "--checkpoint", "2025-05", "--format", "html", "--out", str(out)).exit_code == 0
    html = out.read_text(encoding="utf-8")
    assert re.search(r"生成时间 \d{4}-\d\d-\d\d \d\d:\d\d\+08:00", html)


def test_the_demo_runs_on_the_sample_year_calendar(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)  # the demo writes its reports into ./reports and mail into ./outbox
    res = cli(workdir, "demo", "--out", str(workdir / "demo"), "--projects", "60")
    assert res.exit_code == 0, res.output
    msgs = mails(workdir, "outbox")
    runs = {
        "2025-05": dt.datetime(2025, 6, 11, 9, 0, tzinfo=TZ),
        "2025-08": dt.datetime(2025, 9, 11, 9, 0, tzinfo=TZ),
    }
    kinds = set()
    for msg in msgs:
        date = str(msg["Date"])
        assert date.endswith(" +0800"), date
        sent = email.utils.parsedate_to_datetime(date)
        run = runs[str(msg["X-Monitor-Checkpoint"])]
        assert run <= sent < run + dt.timedelta(hours=1), (date, msg["X-Monitor-Checkpoint"])
        kinds.add(str(msg["X-Monitor-Kind"]))
        for day in asked_by(msg):
            assert day > sent.date(), (msg["Subject"], day, date)
    assert {"warning", "summary"} <= kinds
    report = (workdir / "reports" / "监控报告-2025-08.html").read_text(encoding="utf-8")
    assert "生成时间 2025-09-11 09:" in report
