"""The bureau board's pages without a browser (Starlette's TestClient): every page behind the login and
showing no data without it; lights by department and unit with filters; the drill-down to a project's
explanation (the chain `monitor explain` prints) and its case history with the 催办/督办 events; the
outbox by status with the failed deliveries and no secret; the overdue list by the deadline the e-mail
announced; the exemptions in force; the reports generated behind the login, with no path from the URL."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient
from test_web import ANSWER, EXAMPLES, PASSWORD, SECRET, Clock, answer, cli, csrf, link, login

from monitor.app import App
from monitor.cases.store import cases
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.core.rows import OutboxEntry
from monitor.core.workdays import as_utc
from monitor.db import tables as t
from monitor.db.engine import OUTBOX, OUTBOX_MESSAGE, table
from monitor.deliver import leases, outbox, outcomes
from monitor.notify import messages
from monitor.service.http import HttpEndpoint
from monitor.web.app import create_app
from monitor.web.site import Recent

SMTP_PASSWORD = "smtp-Pa55word-never-shown"
ENV = {"MONITOR_WEB_SECRET": SECRET, "MONITOR_SMTP_PASSWORD": SMTP_PASSWORD}
CASE_EVENT = table(t.CaseEventRow)
EXEMPTION = table(t.ExemptionRow)
PAGES = (
    "/board",
    "/board?checkpoint=2025-05&unit=302",
    "/board/project?code=2025-302-001&checkpoint=2025-05",
    "/board/outbox?checkpoint=2025-05",
    "/board/exemptions?all=1",
    "/board/reports/2025-05/xlsx",
    "/board/reports/2025-05/html",
)


@pytest.fixture
def may(workdir: Path) -> Path:
    """The worked examples imported and run for 2025-05 (messages queued, not sent, cases opened), a
    bureau user `kz`."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    res = cli(workdir, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    return workdir


def make(workdir: Path, clock: Clock | None = None, follow: bool = True) -> tuple[App, TestClient]:
    app = App(load_settings(workdir / "config.yaml", env=ENV))
    return app, TestClient(create_app(app, clock=clock), follow_redirects=follow)


def bureau(workdir: Path, clock: Clock | None = None) -> tuple[App, TestClient]:
    app, client = make(workdir, clock)
    assert login(client) == 200
    return app, client


def section(page: str, name: str) -> str:
    return page.split(f'id="{name}"', 1)[1].split("</section>", 1)[0]


def test_every_bureau_page_needs_a_login_and_shows_no_data_without_it(may: Path) -> None:
    _, client = make(may, follow=False)
    for path in PAGES:
        res = client.get(path)
        assert res.status_code == 303, path
        assert res.headers["location"].startswith("/login"), path
        assert "葡萄酒" not in res.text and "PK" not in res.text[:2]
    res = client.post("/board/review", data={"case_id": "1", "decision": "accept", "comment": ""})
    assert res.status_code == 303 and res.headers["location"] == "/login"
    _, client = make(may)
    page = client.get("/board/project?code=2025-302-001&checkpoint=2025-05")
    assert page.url.path == "/login" and "葡萄酒" not in page.text and "预算执行" not in page.text


def test_the_login_leads_back_to_the_page_asked_for_and_never_to_another_site(may: Path) -> None:
    _, client = make(may)
    page = client.get("/board/project?code=2025-302-001&checkpoint=2025-05")
    form = {"name": "kz", "password": PASSWORD, "csrf": csrf(page.text)}
    nxt = re.search(r'name="next" value="([^"]+)"', page.text)
    assert nxt
    res = client.post("/login", data={**form, "next": html.unescape(nxt.group(1))})
    assert res.url.path == "/board/project" and "葡萄酒产业宣传推介" in res.text
    _, other = make(may, follow=False)
    page = other.get("/login")
    for evil in ("//evil.example/board", "https://evil.example/board", "/board\\@evil.example"):
        res = other.post("/login", data={**form, "csrf": csrf(page.text), "next": evil})
        assert res.status_code == 303 and res.headers["location"] == "/board", evil
        other.cookies.clear()
        page = other.get("/login")


def test_the_board_shows_lights_by_department_and_unit_with_filters(may: Path) -> None:
    _, client = bureau(may)
    units = section(client.get("/board").text, "units")
    # 市农业农村局 has no project of its own: its line is the subtotal of 市动物疫病预防控制中心
    assert "市农业农村局" in units and "市动物疫病预防控制中心" in units and "市城市管理局" in units
    row = units.split("市城市管理局</a>", 1)[1].split("</tr>", 1)[0]
    assert re.findall(r'class="num">(\d+)<', row) == ["2", "0", "0", "0"]  # two red, nothing else
    assert "城市路灯维护（边界例一）" in row and "城市照明节能改造（边界例二）" in row

    by_dept = section(client.get("/board?checkpoint=2025-05&dept=301").text, "units")
    assert "市动物疫病预防控制中心" in by_dept and "市商务局" not in by_dept and "市城市管理局" not in by_dept
    yellow = section(client.get("/board?checkpoint=2025-05&light=yellow").text, "units")
    assert "市动物疫病预防控制中心" in yellow and "市商务局" not in yellow  # 302 is red, not yellow
    named = section(client.get("/board?checkpoint=2025-05&q=林业").text, "units")
    assert "市林业和草原局" in named and "市商务局" not in named
    assert "没有符合条件的单位" in section(client.get("/board?light=none").text, "units")

    page = client.get("/board?checkpoint=2025-05&unit=304").text
    projects = section(page, "projects")
    assert "市城市管理局" in projects and "城市路灯维护（边界例一）" in projects
    assert "葡萄酒" not in projects and "市商务局" not in section(page, "units")


def test_a_project_link_drills_down_to_the_chain_monitor_explain_prints(may: Path) -> None:
    _, client = bureau(may)
    board = client.get("/board").text
    href = "/board/project?code=2025-304-001&amp;checkpoint=2025-05"
    assert href in section(board, "units")
    page = client.get(html.unescape(href))
    assert page.status_code == 200
    text = page.text
    assert "城市路灯维护（边界例一）" in text and "市城市管理局" in text
    assert "路灯故障平均修复时长" in section(text, "explanation")  # its indicator, with its light
    res = cli(may, "explain", "2025-304-001", "--checkpoint", "2025-05", "--rules-version", "used")
    assert res.exit_code == 0, res.output
    chain = html.unescape(text.split('id="chain">', 1)[1].split("</pre>", 1)[0])
    assert chain.strip().splitlines() == res.output.strip().splitlines()
    # the rules now, as plain `monitor explain` (the rules have not changed: the same lights)
    current = client.get("/board/project?code=2025-304-001&checkpoint=2025-05&rules=current").text
    assert "规则目录中现行的规则" in current and 'id="stored-differs"' not in current
    missing = client.get("/board/project?code=2099-000-000&checkpoint=2025-05")
    assert missing.status_code == 404 and "没有项目 2099-000-000" in missing.text
    assert client.get("/board/project?code=2025-304-001&checkpoint=May").status_code == 400


def test_the_drill_down_shows_the_case_history_with_answers_reviews_and_follow_up(may: Path) -> None:
    app, unit = make(may)
    path = link(may, "302")
    assert answer(unit, path)[0] == 200
    _, client = bureau(may)
    board = client.get("/board").text
    m = re.search(r'id="review-(\d+)"', board)
    assert m
    res = client.post(
        "/board/review",
        data={"csrf": csrf(board), "case_id": m.group(1), "decision": "return", "comment": "请补充到位时间"},
    )
    assert res.status_code == 200
    with app.engine.connect() as conn:
        (case,) = [c for c in cases(conn) if c["project_code"] == "2025-302-001"]
    now = dt.datetime.now(dt.UTC)
    with app.engine.begin() as conn:  # what the service records when nobody answers in time
        conn.execute(
            insert(CASE_EVENT),
            [
                {"case_id": case["id"], "kind": "reminded", "round": 1, "at": now, "detail": "催办邮件 #12"},
                {
                    "case_id": case["id"],
                    "kind": "escalated",
                    "round": 1,
                    "at": now,
                    "detail": "督办：抄送市商务局",
                },
            ],
        )
    history = section(client.get("/board/project?code=2025-302-001&checkpoint=2025-05").text, "history")
    assert "已退回待重新反馈" in history
    assert ANSWER["explanation"] in history and "请补充到位时间" in history and "财政局退回" in history
    assert "催办" in history and "催办邮件 #12" in history and "督办：抄送市商务局" in history


def fail_one(app: App, error: str) -> OutboxEntry:
    """Claim the warning to unit 302 and fail it for good, as the sender does on a 5xx."""
    with app.engine.begin() as conn:
        (row,) = [m for m in outbox.messages(conn, "pending", "2025-05") if m["unit_code"] == "302"]
        assert len(leases.claim_many(conn, [row["id"]], "test:1", dt.datetime.now(dt.UTC))) == 1
        outcomes.mark_failed(conn, row["id"], "test:1", dt.datetime.now(dt.UTC), error)
    return row


def test_the_outbox_page_counts_by_status_and_lists_failed_deliveries_without_secrets(may: Path) -> None:
    app, client = bureau(may)
    with app.engine.connect() as conn:
        queued = len(outbox.messages(conn, checkpoint="2025-05"))
        raw = conn.execute(
            select(OUTBOX_MESSAGE.c.raw).join(OUTBOX).where(OUTBOX.c.unit_code == "302")
        ).scalar_one()
    token = re.search(r"/u/([A-Za-z0-9_.\-]{20,})", raw.replace("=\n", ""))
    error = f"550 5.1.1 mailbox unavailable (login {SMTP_PASSWORD}) for http://127.0.0.1:8650/u/abc.DEF-123_x"
    row = fail_one(app, error)
    page = client.get("/board/outbox?checkpoint=2025-05").text
    total = section(page, "counts").split('id="total"', 1)[1]
    assert 'data-status="failed">1<' in total and f'data-status="pending">{queued - 1}<' in total
    failed = section(page, "failed")
    assert f"#{row['id']}" in failed and "swj@example.gov.cn" in failed
    assert html.escape(str(row["subject"])) in failed and "550 5.1.1 mailbox unavailable" in failed
    assert "永久失败" in failed and "发送失败" in failed
    assert "1</td>" in failed.split(f'id="message-{row["id"]}"', 1)[1]  # one attempt
    for page in [client.get(p).text for p in PAGES[:5]]:
        assert SMTP_PASSWORD not in page and SECRET not in page
        assert "abc.DEF-123_x" not in page
        assert token is None or token.group(1) not in page
    assert 'class="tag bad" id="outbox-failed">发送失败 <strong>1<' in client.get("/board").text


def test_a_message_delivered_in_part_is_flagged_with_each_recipients_answer(may: Path) -> None:
    app, client = bureau(may)
    now = dt.datetime.now(dt.UTC)
    with app.engine.begin() as conn:  # what the sender records when the server refuses one recipient
        (row,) = [m for m in outbox.messages(conn, "pending", "2025-05") if m["unit_code"] == "301001"]
        (claimed,) = leases.claim_many(conn, [row["id"]], "test:1", now)
        first, second = claimed.recipients
        answers = {first: ("sent", None), second: ("failed", "550 5.1.1 no such user")}
        assert outcomes.settle(conn, row["id"], "test:1", now, answers, now) == "partial"
    page = client.get("/board/outbox?checkpoint=2025-05").text
    assert 'data-status="partial">1<' in section(page, "counts")
    failed = section(page, "failed").split(f'id="message-{row["id"]}"', 1)[1]
    assert f"{first}：已送达" in failed and f"{second}：拒收（550 5.1.1 no such user）" in failed
    assert "部分送达" in failed
    assert 'id="outbox-partial">部分送达 <strong>1<' in client.get("/board").text


def test_a_run_killed_before_queueing_and_claims_left_by_a_dead_sender_are_flagged(may: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    env["MONITOR_FAILPOINTS"] = "run:after-results-stored"
    command = ["run", "--checkpoint", "2025-08", "--no-send", "--config", str(may / "config.yaml")]
    killed = subprocess.run(
        [sys.executable, "-m", "monitor", *command],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    app, client = bureau(may)
    now = dt.datetime.now(dt.UTC)
    with app.engine.begin() as conn:  # a sender on another host claimed two messages, then fell silent
        leases.claim_many(
            conn, leases.due(conn, now, limit=2), "other-host:7:1", now - dt.timedelta(minutes=5)
        )
    attention = client.get("/board").text.split('id="attention"', 1)[1].split("</ul>", 1)[0]
    assert "2 封邮件超过租约仍处于“发送中”" in attention
    assert "2025-08 批次的监控结果已保存，但预警邮件尚未排队" in attention
    metrics = HttpEndpoint(0, lambda: app.engine, lambda: False).metrics()
    assert "monitor_runs_missing_messages 1.0" in metrics and "monitor_outbox_stuck_messages 2.0" in metrics


def test_the_overdue_list_uses_the_deadline_the_email_announced(may: Path) -> None:
    clock = Clock()
    app, client = bureau(may, clock)
    assert "没有逾期未反馈的预警" in section(client.get("/board").text, "overdue")
    with app.engine.connect() as conn:
        (case,) = [c for c in cases(conn) if c["project_code"] == "2025-302-001"]
    announced = messages.options(
        app.settings, Checkpoint(2025, 5), as_utc(case["opened_at"])
    ).response_deadline
    zone = ZoneInfo(app.settings.time_zone)
    clock.now = dt.datetime.combine(announced, dt.time(12), zone)  # the last day: not overdue yet
    assert "葡萄酒产业宣传推介" not in section(client.get("/board").text, "overdue")
    clock.now += dt.timedelta(days=1)
    with app.engine.begin() as conn:
        conn.execute(insert(CASE_EVENT).values(case_id=case["id"], kind="reminded", round=1, at=clock.now))
    overdue = section(client.get("/board").text, "overdue")
    assert "葡萄酒产业宣传推介" in overdue and announced.isoformat() in overdue
    assert "已催办" in overdue and "尚未催办" in overdue  # 302 was reminded, the others not yet
    assert "/board/project?code=2025-302-001&amp;checkpoint=2025-05" in overdue


def test_the_exemptions_page_lists_the_exemptions_in_force(may: Path) -> None:
    clock = Clock()
    app, client = bureau(may, clock)
    today = clock.now.astimezone(ZoneInfo(app.settings.time_zone)).date()

    def row(code: str, reason: str, days: int, **more: object) -> dict[str, object]:
        return {
            "project_code": code,
            "reason": reason,
            "approver": "局长办公会",
            "expires_on": today + dt.timedelta(days=days),
            "created_at": clock.now,
            "created_by": "kz",
            "revoked_at": None,
            "revoked_by": None,
            **more,  # executemany takes its columns from the first row: every row names them all
        }

    with app.engine.begin() as conn:  # as monitor.cases.exemptions writes them
        conn.execute(
            insert(EXEMPTION),
            [
                row("2025-304-002", "预算调整已批复（财预〔2025〕12号）", 30),
                row("2025-303-001", "上期豁免，已到期", -1),
                row("2025-302-001", "误登记，已撤销", 30, revoked_at=clock.now, revoked_by="kz"),
            ],
        )
    page = section(client.get("/board/exemptions").text, "exemptions")
    assert "城市照明节能改造（边界例二）" in page and "预算调整已批复（财预〔2025〕12号）" in page
    assert "局长办公会" in page and (today + dt.timedelta(days=30)).isoformat() in page
    assert "上期豁免" not in page and "误登记" not in page
    everything = section(client.get("/board/exemptions?all=1").text, "exemptions")
    assert "上期豁免，已到期" in everything and "已到期" in everything and "已撤销（kz" in everything
    project = client.get("/board/project?code=2025-304-002&checkpoint=2025-05").text
    assert "预算调整已批复" in section(project, "exemption")
    assert "有效豁免</a> <strong>1<" in client.get("/board").text
    with app.engine.begin() as conn:
        conn.execute(update(EXEMPTION).values(revoked_at=clock.now, revoked_by="kz"))
    assert "目前没有有效的豁免" in client.get("/board/exemptions").text


def test_the_reports_are_generated_on_request_behind_the_login(may: Path) -> None:
    _, client = bureau(may)
    board = client.get("/board").text
    assert 'href="/board/reports/2025-05/xlsx"' in board and 'href="/board/reports/2025-05/html"' in board
    xlsx = client.get("/board/reports/2025-05/xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert "spreadsheetml" in xlsx.headers["content-type"]
    assert "attachment" in xlsx.headers["content-disposition"]
    assert "%E9%A2%84%E8%AD%A6%E6%B8%85%E5%8D%95-2025-05.xlsx" in xlsx.headers["content-disposition"]
    report = client.get("/board/reports/2025-05/html")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "葡萄酒产业宣传推介" in report.text and "<script" not in report.text.lower()


@pytest.mark.parametrize(
    "path",
    [
        "/board/reports/..%2F..%2Fconfig.yaml/html",
        "/board/reports/2025-05/..%2F..%2Fconfig.yaml",
        "/board/reports/2025-05/xlsx%2F..%2F..%2F..%2Fconfig.yaml",
        "/board/reports/%2E%2E/config.yaml",
        "/board/reports/2025-05/yaml",
        "/board/reports/2024-13/xlsx",
        "/board/reports/2025-08/html",  # a checkpoint that never ran
    ],
)
def test_a_report_link_outside_the_known_reports_is_refused(may: Path, path: str) -> None:
    _, client = bureau(may)
    res = client.get(path)
    assert res.status_code == 404, path
    assert "database:" not in res.text and "sqlite" not in res.text and "postgresql" not in res.text


def test_a_report_is_built_once_for_clicks_close_together_and_again_after_a_new_run() -> None:
    built: list[str] = []

    def build(name: str) -> bytes:
        built.append(name)
        return name.encode()

    recent = Recent(ttl=600, size=2)
    assert recent.get(("2025-05", "xlsx", 1), lambda: build("a")) == b"a"
    assert recent.get(("2025-05", "xlsx", 1), lambda: build("b")) == b"a"  # the same run: not rebuilt
    assert recent.get(("2025-05", "xlsx", 2), lambda: build("c")) == b"c"  # a new run of the checkpoint
    assert recent.get(("2025-08", "html", 3), lambda: build("d")) == b"d"
    assert built == ["a", "c", "d"] and len(recent.entries) == 2  # the oldest entry made room
    stale = Recent(ttl=0)
    stale.get("k", lambda: build("e"))
    stale.get("k", lambda: build("f"))
    assert built[-2:] == ["e", "f"]  # past its time: built again
