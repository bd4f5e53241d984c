"""The bureau's decisions on reporting (issue 20): a unit's later deadline (延期, `monitor reporting
extend`) is named in its reminder and its reporting page, and keeps it from being 逾期 until it passes;
a submitted report opened again (`monitor reporting reopen`) is editable on the unit's page with the
reason shown. Bad input is refused naming the value, with nothing written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text
from test_overdue import TZ, body, mails, reminder_round, unreported  # noqa: F401 (fixture)
from test_reporting import CP, P1, P2, august  # noqa: F401 (fixture)
from test_web import cli, csrf, link, make

from monitor.app import App
from monitor.config.settings import load_settings


def _count(workdir: Path, table: str) -> int:
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def late(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("unreported")
    assert isinstance(path, Path)
    return path


def test_an_extended_unit_is_reminded_of_its_own_deadline_while_the_others_are_late(late: Path) -> None:
    for args, said in (
        (
            ["--unit", "302", "--until", "2025-09-05", "--reason", "系统故障"],
            "must be after the report deadline",
        ),
        (
            ["--unit", "999", "--until", "2025-09-20", "--reason", "系统故障"],
            "unit '999' is not in the database",
        ),
        (["--unit", "302", "--until", "2025-09-20", "--reason", " "], "--reason"),
    ):
        res = cli(late, "reporting", "extend", "--checkpoint", CP, *args)
        assert res.exit_code == 1 and said in res.output, res.output
    assert _count(late, "report_extension") == 0 and _count(late, "report_event") == 0
    res = cli(
        late,
        "reporting",
        "extend",
        "--checkpoint",
        CP,
        "--unit",
        "302",
        "--until",
        "2025-09-20",
        "--reason",
        "系统故障",
    )
    assert res.exit_code == 0 and "2025-09-10 → 2025-09-20" in res.output, res.output
    assert _count(late, "report_event") == 1  # 302's one project, the grant recorded

    app = App(load_settings(late / "config.yaml"), lambda: dt.datetime(2025, 9, 12, 9, 0, tzinfo=TZ))
    assert reminder_round(app, "2025-08:extra") == [("overdue", "304"), ("reminder", "302")]
    (to_302,) = [m for m in mails(late) if str(m["X-Monitor-Unit"]) == "302"]
    assert "2025年9月20日" in body(to_302, "plain") and "逾期" not in body(to_302, "plain")


@pytest.fixture
def reporting(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("august")
    assert isinstance(path, Path)
    return path


def test_the_reporting_page_names_the_extended_deadline_and_a_reopened_report_is_editable(
    reporting: Path,
) -> None:
    res = cli(
        reporting,
        "reporting",
        "extend",
        "--checkpoint",
        CP,
        "--unit",
        "304",
        "--until",
        "2025-09-25",
        "--reason",
        "机构调整",
    )
    assert res.exit_code == 0, res.output
    _, client = make(reporting)
    url = link(reporting, "304", CP).replace("/u/", "/r/")
    page = client.get(url).text
    assert "2025年9月25日" in page and "已延期：机构调整" in page
    fields = {"csrf": csrf(page), "action": "submit", f"p|{P1}|executed": "60", f"p|{P2}|executed": "39.99"}
    assert f'id="p-{P1}" data-project="{P1}" disabled' in client.post(url, data=fields).text

    res = cli(
        reporting,
        "reporting",
        "reopen",
        "--checkpoint",
        CP,
        "--project",
        P1,
        "--reason",
        "执行数与国库支付不符",
    )
    assert res.exit_code == 0, res.output
    page = client.get(url).text
    assert (
        f'id="p-{P1}" data-project="{P1}">' in page and "执行数与国库支付不符" in page
    )  # editable, reason shown
    assert f'id="p-{P2}" data-project="{P2}" disabled' in page
    again = cli(reporting, "reporting", "reopen", "--checkpoint", CP, "--project", P1, "--reason", "再次")
    assert again.exit_code == 1 and "only a submitted or approved report" in again.output
