"""The reporting notice (监控任务通知, issue 20): when reporting opens, every unit with projects is sent its
notice once, naming its projects and the deadline, with the signed link to its reporting page, which
opens that page; a reminder (催报) and an overdue notice carry the link too. Read back as real .eml
files, parsed strictly."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_overdue import TZ, asked_by, body, mails, unreported  # noqa: F401 (fixture)
from test_web import ENV

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.pipeline.queueing import queue_reminders, queue_tasks
from monitor.web.app import create_app

AUG = Checkpoint(2025, 8)


@pytest.fixture
def data(request: pytest.FixtureRequest) -> Path:
    """The worked examples without two August reports (tests/test_overdue.py), mail written to files."""
    path = request.getfixturevalue("unreported")
    assert isinstance(path, Path)
    return path


LINK = re.compile(r"http://127\.0\.0\.1:8650(/r/[A-Za-z0-9_.\-]+)")


def app_at(workdir: Path, moment: dt.datetime) -> App:
    return App(load_settings(workdir / "config.yaml", env=ENV), lambda: moment)


def test_reporting_opens_with_one_notice_per_unit_whose_link_opens_its_reporting_page(
    data: Path,
) -> None:
    app = app_at(data, dt.datetime(2025, 9, 1, 9, 0, tzinfo=TZ))
    queued = queue_tasks(app.engine, app.settings, app.templates(), AUG, app.clock)
    assert sorted(q["unit_code"] or "" for q in queued) == ["301001", "302", "303", "304"]
    assert queue_tasks(app.engine, app.settings, app.templates(), AUG, app.clock) == []  # never twice
    app.send()
    msgs = mails(data)
    assert {str(m["X-Monitor-Kind"]) for m in msgs} == {"task"} and len(msgs) == 4
    (to_304,) = [m for m in msgs if "304" in body(m, "plain").split("单位编码", 1)[1][:8]]
    text, html = body(to_304, "plain"), body(to_304, "html")
    assert str(to_304["Subject"]).startswith("【监控任务】2025年1-8月预算绩效运行监控")
    assert "2025-304-001" in text and "2025-304-002" in text and "填报1-8月预算执行数" in text
    assert set(asked_by(to_304)) == {dt.date(2025, 9, 10)}
    (path,) = set(LINK.findall(text))
    assert f"http://127.0.0.1:8650{path}" in html  # the button and the link written out
    client = TestClient(create_app(app), follow_redirects=True)
    page = client.get(path)
    assert page.status_code == 200 and "2025-304-002" in page.text and "2025-302-001" not in page.text


def test_a_reminder_carries_the_reporting_link(data: Path) -> None:
    app = app_at(data, dt.datetime(2025, 9, 7, 9, 0, tzinfo=TZ))
    queue_reminders(app.engine, app.settings, app.templates(), AUG, "2025-08:3d", app.clock)
    app.send()
    for msg in mails(data):
        assert str(msg["X-Monitor-Kind"]) == "reminder"
        assert LINK.search(body(msg, "plain")) and LINK.search(body(msg, "html"))


def test_without_a_signing_secret_the_notice_says_how_to_report_without_a_link(data: Path) -> None:
    app = App(load_settings(data / "config.yaml"), lambda: dt.datetime(2025, 9, 1, 9, 0, tzinfo=TZ))
    queue_tasks(app.engine, app.settings, app.templates(), AUG, app.clock)
    app.send()
    for msg in mails(data):
        assert "/r/" not in body(msg, "plain") and "报送我局" in body(msg, "plain")
