"""The bureau's reporting progress page (issue 20): /board/reporting after the login shows, per
department and unit, the projects, how many have a report that counts (through any channel), the
states of the reports on the units' pages, the units still missing reports, and the reports submitted
after the checkpoint's last run (its results stale until it runs again)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_reporting import CP, P1, P2, august  # noqa: F401 (fixture)
from test_web import PASSWORD, cli, csrf, link, login, make


def _row(html: str, unit: str) -> list[str]:
    m = re.search(rf"<tr[^>]*><td>[^<]*<span class=\"muted\">{unit}</span>.*?</tr>", html, re.S)
    assert m, unit
    return re.findall(r"<td>([^<]*)</td>", m.group(0))


@pytest.fixture
def data(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("august")
    assert isinstance(path, Path)
    return path


def test_the_bureau_follows_reporting_by_unit_and_sees_reports_that_came_after_the_run(data: Path) -> None:
    work = data
    res = cli(work, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    _, client = make(work)
    assert client.get(f"/board/reporting?checkpoint={CP}").url.path == "/login"  # behind the login
    assert login(client) == 200
    page = client.get(f"/board/reporting?checkpoint={CP}")
    assert page.status_code == 200 and "报送期限：2025年9月10日" in page.text
    assert _row(page.text, "304")[:3] == ["2", "0", "2"]  # 2 projects, none reported yet
    assert _row(page.text, "302")[:3] == ["1", "1", "0"]  # reported by import

    # the checkpoint runs without 304; then 304 reports on its page
    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    assert 'id="stale"' not in client.get(f"/board/reporting?checkpoint={CP}").text
    url = link(work, "304", CP).replace("/u/", "/r/")
    _, unit = make(work)
    token = csrf(unit.get(url).text)
    fields = {"csrf": token, "action": "submit", f"p|{P1}|executed": "60", f"p|{P2}|executed": "39.99"}
    assert "已送审" in unit.post(url, data=fields).text
    page = client.get(f"/board/reporting?checkpoint={CP}")
    assert _row(page.text, "304")[:4] == ["2", "2", "0", ""] and "已送审" in page.text
    stale = re.search(r'id="stale"[^>]*>(.*?)</p>', page.text, re.S)
    assert stale and P1 in stale.group(1) and P2 in stale.group(1)  # results do not include them yet
    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    assert 'id="stale"' not in client.get(f"/board/reporting?checkpoint={CP}").text  # the re-run took them
    assert client.get("/board/reporting?checkpoint=2025-13").status_code == 400
