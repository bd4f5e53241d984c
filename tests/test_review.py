"""The department's review (主管部门审核, issue 20) through HTTP: a unit submits on its reporting page,
its department's page (/d/<token>, or the board's) shows the state and the light, returns a project
with a comment (the unit's page shows it, editable again, and an e-mail with the comment and the
unit's /r/ link is queued and delivered), the unit re-submits, the department approves; with
`reporting.counts_when: approved` nothing reaches project_report before the approval. Links of the
wrong kind, of another department, tampered or expired, and posts without CSRF are refused with
nothing written."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from test_reporting import light_of
from test_web import ENV, PASSWORD, Clock, cli, csrf, link, login, make

from monitor.core import links


def scope_of(path: str) -> links.Scope:
    token = path.rsplit("/", 1)[1]
    return links.read_token(ENV["MONITOR_WEB_SECRET"], token, dt.timedelta(days=30), dt.datetime.now(dt.UTC))


EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
CP = "2025-08"
P1, P2 = "2025-304-001", "2025-304-002"
OURS = "project_code LIKE '2025-304-%'"
COMMENT = "1-8月执行数与国库支付记录不符，请核实后修改。"


@pytest.fixture
def reporting(workdir: Path) -> Path:
    """The worked examples with 304 (市城市管理局) under department 301 and 302 under 303, without
    304's August reports: 304 has yet to report."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    units = workdir / "units.csv"
    units.write_text(
        "unit_code,unit_name,email,supervisor_code\n"
        "304,市城市管理局,cgj@example.gov.cn,301\n302,市商务局,swj@example.gov.cn,303\n",
        encoding="utf-8",
    )
    assert cli(workdir, "import", str(units)).exit_code == 0
    app, _ = make(workdir)
    with app.engine.begin() as conn:
        for table in ("project_report", "indicator_report"):
            conn.execute(text(f"DELETE FROM {table} WHERE checkpoint = :cp AND {OURS}"), {"cp": CP})
    return workdir


def department_link(workdir: Path, code: str) -> str:
    res = cli(workdir, "link", "--unit", code, "--department", "--checkpoint", CP)
    assert res.exit_code == 0, res.output
    return res.output.strip().removeprefix("http://127.0.0.1:8650")


def _rows(workdir: Path, sql: str) -> list[Any]:
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"cp": CP})]


def _written(workdir: Path) -> dict[str, Any]:
    """Everything of 304 the review may write: states, comments, events, reports, outbox."""
    return {
        "forms": _rows(workdir, f"SELECT project_code, state, comment FROM report_form WHERE {OURS}"),
        "events": _rows(workdir, f"SELECT project_code, kind, by, detail FROM report_event WHERE {OURS}"),
        "reports": _rows(
            workdir, f"SELECT project_code, executed FROM project_report WHERE checkpoint = :cp AND {OURS}"
        ),
        "outbox": _rows(workdir, "SELECT kind, unit_code FROM outbox"),
    }


def _submit(client: TestClient, url: str, p1: str = "60", p2: str = "39.99") -> str:
    token = csrf(client.get(url).text)
    fields = {"csrf": token, "action": "submit", f"p|{P1}|executed": p1, f"p|{P2}|executed": p2}
    res = client.post(url, data=fields)
    assert res.status_code == 200 and "已送审" in res.text, res.text
    return str(res.text)


def _decide(client: TestClient, url: str, project: str, decision: str, comment: str = "") -> Any:
    token = csrf(client.get(url).text)
    data = {"csrf": token, "project": project, "decision": decision, "comment": comment}
    return client.post(url, data=data)


def _state(html: str, project: str) -> str:
    m = re.search(rf'id="p-{re.escape(project)}" data-state="(\w*)">.*?class="state">([^<]*)', html, re.S)
    assert m, project
    return m.group(2)


def _review_light(html: str, project: str) -> str:
    m = re.search(rf'id="p-{re.escape(project)}".*?class="prospect" data-light="(\w*)"', html, re.S)
    assert m, project
    return m.group(1)


def test_a_department_returns_a_report_with_a_comment_and_approves_the_corrected_one(reporting: Path) -> None:
    _, client = make(reporting)
    unit = link(reporting, "304", CP).replace("/u/", "/r/")
    dept = department_link(reporting, "301")
    before = client.get(dept).text
    assert _state(before, P1) == "未开始" and "市城市管理局" in before and "市动物疫病预防控制中心" in before
    submitted = _submit(client, unit)

    page = client.get(dept)
    assert page.status_code == 200 and "市农业农村局" in page.text
    assert _state(page.text, P1) == "已送审" and _state(page.text, P2) == "已送审"
    assert _review_light(page.text, P1) == light_of(submitted, P1) != ""

    # returning needs a comment: refused without one, nothing written
    assert _decide(client, dept, P1, "return").status_code == 400
    assert ("2025-304-001", "returned", None) not in _written(reporting)["forms"]
    res = _decide(client, dept, P1, "return", COMMENT)
    assert res.status_code == 200 and "已退回" in res.text and _state(res.text, P1) == "已退回"
    assert _decide(client, dept, P1, "return", COMMENT).status_code == 409  # twice: not queued twice

    # the unit's page shows the comment, the returned project editable again, the other still locked
    html = client.get(unit).text
    assert f"主管部门退回意见：{COMMENT}" in html
    assert f'id="p-{P1}" data-project="{P1}">' in html and f'id="p-{P2}" data-project="{P2}" disabled' in html

    # the e-mail: queued with the return, once; delivered with the comment and the /r/ link
    written = _written(reporting)
    assert written["outbox"].count(("report_returned", "304")) == 1
    assert cli(reporting, "send").exit_code == 0
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.strict)
        for p in (reporting / "outbox").glob("*.eml")
    ]
    returned = [m for m in mails if m["X-Monitor-Kind"] == "report_returned"]
    assert len(returned) == 1 and returned[0]["To"].addresses[0].addr_spec == "cgj@example.gov.cn"
    part = returned[0].get_body(("plain",))
    assert part is not None
    body = part.get_content()
    assert COMMENT in body and P1 in body and "退回" in str(returned[0]["Subject"])
    sent_link = re.search(r"http://127\.0\.0\.1:8650(/r/\S+)", body)
    assert sent_link  # the unit's own reporting page (a token signed at another second reads the same)
    assert scope_of(sent_link.group(1)) == scope_of(unit) == links.Scope("304", "2025-08")

    # corrected and re-submitted; the department approves both
    _submit(client, unit, p1="61")
    assert _state(client.get(dept).text, P1) == "已送审"
    for project in (P1, P2):
        assert _decide(client, dept, project, "approve").status_code == 200
    final = client.get(dept).text
    assert _state(final, P1) == "已审核" and _state(final, P2) == "已审核"
    assert 'id="decide-' not in final
    written = _written(reporting)
    assert sorted(written["forms"]) == [(P1, "approved", None), (P2, "approved", None)]
    decisions = [e for e in written["events"] if e[1] in ("returned", "approved")]
    assert decisions == [
        (P1, "returned", "department:301", COMMENT),
        (P1, "approved", "department:301", None),
        (P2, "approved", "department:301", None),
    ]
    assert sorted(written["reports"]) == [(P1, 61_000_000), (P2, 39_990_000)]


def test_in_approved_mode_a_report_counts_once_approved(reporting: Path) -> None:
    with (reporting / "config.yaml").open("a", encoding="utf-8") as f:
        f.write("reporting:\n  counts_when: approved\n")
    _, client = make(reporting)
    unit = link(reporting, "304", CP).replace("/u/", "/r/")
    dept = department_link(reporting, "301")
    # a mistake is still named beside its field at submission (checked by the import), nothing kept
    token = csrf(client.get(unit).text)
    bad = {"csrf": token, "action": "submit", f"p|{P1}|executed": "60", f"p|{P2}|executed": "abc"}
    res = client.post(unit, data=bad)
    assert res.status_code == 400 and f'id="p|{P2}|executed-error"' in res.text
    _submit(client, unit)
    assert _written(reporting)["reports"] == []
    page = client.get(dept).text
    shown = {p: _review_light(page, p) for p in (P1, P2)}
    assert cli(reporting, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    assert (
        _rows(
            reporting,
            f"SELECT project_code FROM project_result WHERE checkpoint = :cp AND {OURS} AND light <> ''",
        )
        == []
    )

    for project in (P1, P2):
        assert _decide(client, dept, project, "approve").status_code == 200
    assert sorted(_written(reporting)["reports"]) == [(P1, 60_000_000), (P2, 39_990_000)]
    assert cli(reporting, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    lights = _rows(
        reporting, f"SELECT project_code, light FROM project_result WHERE checkpoint = :cp AND {OURS}"
    )
    assert dict(lights) == shown and set(shown.values()) <= {"green", "yellow", "red"}


def test_the_bureau_reviews_from_the_board(reporting: Path) -> None:
    assert cli(reporting, "run", "--checkpoint", CP, "--no-send").exit_code == 0  # the board's checkpoint
    assert cli(reporting, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    _, client = make(reporting)
    board = f"/board/department/301?checkpoint={CP}"
    assert client.get(board).url.path == "/login"  # behind the login
    _submit(client, link(reporting, "304", CP).replace("/u/", "/r/"))
    assert login(client) == 200
    assert f'href="/board/department/301?checkpoint={CP}"' in client.get(f"/board?checkpoint={CP}").text
    assert _decide(client, board, P1, "return", COMMENT).status_code == 200
    events = _written(reporting)["events"]
    assert (P1, "returned", "bureau:kz", COMMENT) in events


def test_links_of_the_wrong_kind_or_department_and_forms_without_csrf_write_nothing(reporting: Path) -> None:
    clock = Clock()
    _, client = make(reporting, clock)
    unit = link(reporting, "304", CP)
    dept, other = department_link(reporting, "301"), department_link(reporting, "303")
    _submit(client, unit.replace("/u/", "/r/"))
    before = _written(reporting)
    # a unit's token does not open a department's page, nor the reverse
    assert client.get(unit.replace("/u/", "/d/")).status_code == 403
    assert client.get(link(reporting, "301", CP).replace("/u/", "/d/")).status_code == 403
    assert client.get(dept.replace("/d/", "/r/")).status_code == 403
    assert client.get(dept.replace("/d/", "/u/")).status_code == 403
    token = csrf(client.get(dept).text)
    # another department cannot act on 301's units; 302 is no department at all
    res = client.post(other, data={"csrf": token, "project": P1, "decision": "approve"})
    assert res.status_code == 409
    res = client.post(other, data={"csrf": token, "project": P1, "decision": "return", "comment": "x"})
    assert res.status_code == 409
    assert P1 not in client.get(other).text
    assert client.get(department_link(reporting, "302")).status_code == 404
    # tampered, no CSRF token, another session's token
    tampered = dept[:-3] + ("aaa" if not dept.endswith("aaa") else "bbb")
    assert (
        client.post(tampered, data={"csrf": token, "project": P1, "decision": "approve"}).status_code == 403
    )
    assert client.post(dept, data={"project": P1, "decision": "approve"}).status_code == 403
    stranger = make(reporting)[1]
    assert stranger.post(dept, data={"csrf": token, "project": P1, "decision": "approve"}).status_code == 403
    # expired
    clock.now += dt.timedelta(days=31)
    assert client.post(dept, data={"csrf": token, "project": P1, "decision": "approve"}).status_code == 403
    assert client.get(dept).status_code == 403
    assert _written(reporting) == before
