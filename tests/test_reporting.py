"""Units report through the system (issue 20): the reporting page /r/<token> of a unit at a checkpoint,
through HTTP (Starlette's TestClient) — pre-filled from the unit's previous report of the year, the
light its numbers would get shown live, drafts kept server-side, a mistake named beside its field with
nothing imported, a submission imported by the canonical import and then read-only, and a checkpoint
run that gives exactly the lights the page showed. Links that are tampered with, expired or of
another unit, and posts without the session's CSRF token, are refused with nothing written."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from test_web import Clock, cli, csrf, link, make

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
CP = "2025-08"
P1, P2 = "2025-304-001", "2025-304-002"


@pytest.fixture
def august(workdir: Path) -> Path:
    """The worked examples imported without unit 304's August reports: 304 has yet to report."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    app, _ = make(workdir)
    with app.engine.begin() as conn:
        for table in ("project_report", "indicator_report"):
            conn.execute(
                text(f"DELETE FROM {table} WHERE checkpoint = :cp AND project_code LIKE '2025-304-%'"),
                {"cp": CP},
            )
    return workdir


def _page(client: TestClient, url: str) -> str:
    res = client.get(url)
    assert res.status_code == 200, res.text
    return str(res.text)


def _field(html: str, name: str) -> str:
    m = re.search(rf'name="{re.escape(name)}" id="[^"]*" value="([^"]*)"', html)
    assert m, name
    return m.group(1)


OURS = "project_code LIKE '2025-304-%'"


def _pairs(workdir: Path, sql: str) -> dict[str, Any]:
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        return {r[0]: r[1] for r in conn.execute(text(sql), {"cp": CP})}


def _stored(workdir: Path) -> dict[str, Any]:
    reports = _pairs(
        workdir, f"SELECT project_code, executed FROM project_report WHERE checkpoint = :cp AND {OURS}"
    )
    states = _pairs(workdir, "SELECT project_code, state FROM report_form WHERE checkpoint = :cp")
    return {"reports": reports, "states": states}


def test_a_unit_reports_sees_its_light_live_keeps_a_draft_and_submits(august: Path) -> None:
    _, client = make(august)
    url = link(august, "304", CP).replace("/u/", "/r/")
    html = _page(client, url)
    # pre-filled from its May report; the indicator's read-only target shown
    assert _field(html, f"p|{P1}|executed") == "25" and _field(html, f"p|{P2}|executed") == "24.99"
    assert "年度指标值 ≤24小时" in html and "2025年1-8月" in html
    assert ">增加维修班组</textarea>" in html  # May's 纠偏措施 text, kept as written
    token = csrf(html)

    def light(executed: str) -> dict[str, Any]:
        res = client.post(f"{url}/light", data={"csrf": token, "project": P1, f"p|{P1}|executed": executed})
        assert res.status_code == 200, res.text
        return dict(res.json())

    # P = 8/12: 10 of 100 万元 is 15% of the time progress → red; 60 is 90% → green (the indicator
    # is pre-filled with May's 31 hours against ≤24: yellow within 5%? no, 29% off → red target)
    low, high = light("10"), light("60")
    assert low["light"] == "red" and "将为红灯" in low["words"]
    assert any("为序时进度的15.0%" in r for r in low["reasons"])
    assert high["light"] != "red" or any("路灯故障" in r for r in high["reasons"])
    assert light("１，２３4.5")["light"] is not None  # amounts as people type them (full-width, commas)
    assert light("abc")["light"] is None and "须为以万元为单位的金额" in light("abc")["words"]

    # a draft with a mistake: kept, nothing imported
    fields = {"csrf": token, "action": "save", f"p|{P1}|executed": "60", f"p|{P2}|executed": "abc"}
    fields[f"i|{P1}|01|actual"] = "23"
    assert client.post(url, data=fields).status_code == 200
    again = make(august)[1]  # another browser: the draft lives on the server, not in the tab
    html = _page(again, url)
    assert _field(html, f"p|{P2}|executed") == "abc" and _field(html, f"i|{P1}|01|actual") == "23"
    assert _stored(august) == {"reports": {}, "states": {P1: "draft", P2: "draft"}}

    # submitting names the mistake beside its field and imports nothing
    res = client.post(url, data={**fields, "action": "submit"})
    assert res.status_code == 400
    assert f'id="p|{P2}|executed-error"' in res.text and "须为以万元为单位的金额" in res.text
    assert _stored(august)["reports"] == {}

    # corrected: imported by the canonical import, read-only afterwards
    fields[f"p|{P2}|executed"] = "39.99"
    res = client.post(url, data={**fields, "action": "submit"})
    assert res.status_code == 200 and "已送审" in res.text
    assert _stored(august) == {
        "reports": {P1: 60_000_000, P2: 39_990_000},
        "states": {P1: "submitted", P2: "submitted"},
    }
    assert f'id="p-{P1}" data-project="{P1}" disabled' in res.text
    shown = {p: light_of(res.text, p) for p in (P1, P2)}

    # the checkpoint run gives the lights the page showed
    assert cli(august, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    stored = _pairs(
        august, f"SELECT project_code, light FROM project_result WHERE checkpoint = :cp AND {OURS}"
    )
    assert stored == shown and set(shown.values()) <= {"green", "yellow", "red"}


def light_of(html: str, project: str) -> str:
    m = re.search(
        rf'data-project="{re.escape(project)}"[^>]*>.*?class="prospect" data-light="(\w*)"', html, re.S
    )
    assert m, project
    return m.group(1)


def test_links_and_forms_that_cannot_be_trusted_are_refused_with_nothing_written(august: Path) -> None:
    clock = Clock()
    _, client = make(august, clock)
    url = link(august, "304", CP).replace("/u/", "/r/")
    other = link(august, "302", CP).replace("/u/", "/r/")
    token = csrf(_page(client, url))
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert client.get(tampered).status_code == 403
    assert client.post(tampered, data={"csrf": token, "action": "save"}).status_code == 403
    # another unit's link cannot reach 304's projects
    csrf(_page(client, other))
    res = client.post(f"{other}/light", data={"csrf": token, "project": P1, f"p|{P1}|executed": "1"})
    assert res.status_code == 404
    client.post(other, data={"csrf": token, "action": "save", f"p|{P1}|executed": "1"})
    # no CSRF token, or another session's
    assert client.post(url, data={"action": "save", f"p|{P1}|executed": "1"}).status_code == 403
    assert make(august)[1].post(url, data={"csrf": token, "action": "submit"}).status_code == 403
    assert client.post(f"{url}/light", data={"project": P1}).status_code == 403
    stored = _stored(august)  # 302 saved its own (empty) draft; nothing of 304's was written
    assert stored["reports"] == {} and P1 not in stored["states"] and P2 not in stored["states"]
    # expired
    clock.now += dt.timedelta(days=400)
    assert client.get(url).status_code == 403
