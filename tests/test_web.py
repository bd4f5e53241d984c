"""Rectification and the web pages without a browser (Starlette's TestClient): signed unit links that
cannot be altered, outlive their expiry or reach another unit; CSRF; login limiting; the answer →
return → answer → accept cycle; resolution at a later checkpoint when the project turns green."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from monitor.app import App
from monitor.cases import rectification as rc
from monitor.cases.store import cases
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core import links
from monitor.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
SECRET = "test-web-secret-4Kq9Zx2Lm7Rt8Vb3Nw6Hc1Jd5Fy0GsPe"  # strong: weak ones are refused
ENV = {"MONITOR_WEB_SECRET": SECRET}
PASSWORD = "correct horse battery"


def cli(workdir: Path, *args: str, input: str | None = None) -> Result:
    res = CliRunner(env=ENV).invoke(
        main, [*args, "--config", str(workdir / "config.yaml")], input=input, catch_exceptions=False
    )
    return res


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def may(workdir: Path) -> Path:
    """The worked examples imported and run for 2025-05, cases opened, a bureau user `kz`."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    res = cli(workdir, "cases", "open", "--checkpoint", "2025-05")  # `run` opened them already
    assert res.exit_code == 0, res.output
    assert "0 case(s) opened, 5 already open" in res.output  # idempotent
    res = cli(workdir, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    return workdir


def make(workdir: Path, clock: Clock | None = None) -> tuple[App, TestClient]:
    app = App(load_settings(workdir / "config.yaml", env=ENV))
    return app, TestClient(create_app(app, clock=clock), follow_redirects=True)


def link(workdir: Path, unit: str, checkpoint: str = "2025-05") -> str:
    res = cli(workdir, "link", "--unit", unit, "--checkpoint", checkpoint)
    assert res.exit_code == 0, res.output
    url = res.output.strip()
    assert url.startswith("http://127.0.0.1:8650/u/")
    return url.removeprefix("http://127.0.0.1:8650")


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def case_id(html: str) -> int:
    m = re.search(r'name="case_id" value="(\d+)"', html)
    assert m, html
    return int(m.group(1))


ANSWER = {
    "cause": "经费保障",
    "explanation": "上级资金下达较晚，项目启动推迟",
    "measure": "continue",
    "measure_text": "加快招标采购，8月底前完成支付",
    "expected_date": "",
}


def answer(client: TestClient, path: str, **changes: str) -> tuple[int, str]:
    page = client.get(path)
    form = {
        **ANSWER,
        "expected_date": (dt.date.today() + dt.timedelta(days=60)).isoformat(),
        "csrf": csrf(page.text),
        "case_id": str(case_id(page.text)),
        **changes,
    }
    res = client.post(path, data=form)
    return res.status_code, res.text


def login(client: TestClient, name: str = "kz", password: str = PASSWORD) -> int:
    page = client.get("/login")
    # starlette types TestClient on httpx2 (not installed here): its responses are Any to mypy
    status: int = client.post(
        "/login", data={"name": name, "password": password, "csrf": csrf(page.text)}
    ).status_code
    return status


def test_the_state_machine_refuses_accepting_an_unanswered_case() -> None:
    assert rc.transition("open", "answer") is rc.State.ANSWERED
    assert rc.transition("answered", "return") is rc.State.RETURNED
    assert rc.transition("returned", "answer") is rc.State.ANSWERED
    assert rc.transition("answered", "accept") is rc.State.ACCEPTED
    assert rc.transition("accepted", "resolve") is rc.State.RESOLVED
    with pytest.raises(rc.IllegalTransition, match="不能认可"):
        rc.transition("open", "accept")
    with pytest.raises(rc.IllegalTransition):
        rc.transition("resolved", "answer")


def test_a_unit_link_shows_only_that_units_projects(may: Path) -> None:
    _, client = make(may)
    page = client.get(link(may, "302"))
    assert page.status_code == 200
    assert "市商务局" in page.text and "葡萄酒产业宣传推介" in page.text
    assert "动物疫病强制免疫疫苗采购" not in page.text and "城市路灯维护" not in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=lax" in cookie and "httponly" in cookie and "secure" not in cookie  # http base_url


def test_a_tampered_link_shows_a_message_and_no_data(may: Path) -> None:
    _, client = make(may)
    path = link(may, "302")
    bad = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    page = client.get(bad)
    assert page.status_code == 403
    assert "此链接无效" in page.text
    assert "葡萄酒" not in page.text and "市商务局" not in page.text


def test_an_expired_link_shows_a_message_and_no_data(may: Path) -> None:
    clock = Clock()
    _, client = make(may, clock)
    path = link(may, "302")
    assert client.get(path).status_code == 200
    clock.now += dt.timedelta(days=31)  # web.link_days defaults to 30
    page = client.get(path)
    assert page.status_code == 403
    assert "此链接已过期" in page.text and "葡萄酒" not in page.text


def test_a_unit_cannot_answer_another_units_case(may: Path) -> None:
    _, client = make(may)
    other = client.get(link(may, "304")).text
    other_case = case_id(other)
    mine = link(may, "302")
    status, text = answer(client, mine, case_id=str(other_case))
    assert status == 404 and "不属于本单位" in text
    app, _ = make(may)
    with app.engine.connect() as conn:
        assert all(c["state"] == "open" for c in cases(conn, unit_code="304"))


def test_a_form_without_the_sessions_csrf_token_is_refused(may: Path) -> None:
    app, client = make(may)
    path = link(may, "302")
    status, text = answer(client, path, csrf="forged")
    assert status == 403 and "页面已过期" in text
    _, stranger = make(may)  # another browser: no session, so no token
    page = client.get(path)
    res = stranger.post(path, data={**ANSWER, "csrf": csrf(page.text), "case_id": str(case_id(page.text))})
    assert res.status_code == 403
    with app.engine.connect() as conn:
        assert [c["state"] for c in cases(conn, unit_code="302")] == ["open"]


def test_invalid_answers_are_explained_in_chinese_and_not_stored(may: Path) -> None:
    app, client = make(may)
    status, text = answer(client, link(may, "302"), cause="天气", explanation="", expected_date="明天")
    assert status == 400
    assert "请选择偏差原因类别" in text and "请填写原因说明" in text and "YYYY-MM-DD" in text
    with app.engine.connect() as conn:
        assert [c["state"] for c in cases(conn, unit_code="302")] == ["open"]


def test_each_failed_login_doubles_the_wait_before_the_next(may: Path) -> None:
    clock = Clock()
    _, client = make(may, clock)
    for n in range(1, 6):
        assert login(client, password="wrong password") == 401
        clock.now += dt.timedelta(seconds=2**n - 1)
        assert login(client) == 429  # even the right password waits 2^n s after the n-th failure
        clock.now += dt.timedelta(seconds=1)
    assert login(client) == 200
    assert "待审核的反馈" in client.get("/board").text


def test_the_board_needs_a_login(may: Path) -> None:
    _, client = make(may)
    page = client.get("/board")
    assert page.url.path == "/login"
    assert "动物疫病" not in page.text


def review(client: TestClient, decision: str, comment: str) -> str:
    board = client.get("/board").text
    m = re.search(r'id="review-(\d+)"', board)
    assert m, board
    res = client.post(
        "/board/review",
        data={"csrf": csrf(board), "case_id": m.group(1), "decision": decision, "comment": comment},
    )
    assert res.status_code == 200, res.text
    page: str = res.text
    return page


def test_answer_return_answer_again_accept(may: Path) -> None:
    app, unit = make(may)
    path = link(may, "302")
    status, text = answer(unit, path)
    assert status == 200 and "反馈已保存" in text and "已反馈待审核" in text
    _, bureau = make(may)
    assert login(bureau) == 200
    assert "上级资金下达较晚" in bureau.get("/board").text
    review(bureau, "return", "请补充资金到位的具体时间")
    page = unit.get(path).text
    assert "已退回待重新反馈" in page and "请补充资金到位的具体时间" in page
    status, text = answer(unit, path, explanation="省级资金7月10日到位，已启动采购")
    assert status == 200 and "已反馈待审核" in text
    done = review(bureau, "accept", "同意")
    assert "没有待审核的反馈" in done
    page = unit.get(path).text
    assert "已认可" in page and 'class="answer-form"' not in page
    with app.engine.connect() as conn:
        (case,) = cases(conn, unit_code="302")
    assert case["state"] == "accepted"
    assert [a["review"]["decision"] if a["review"] else None for a in case["answers"]] == ["return", "accept"]


def test_returning_without_a_comment_is_refused(may: Path) -> None:
    _, unit = make(may)
    answer(unit, link(may, "302"))
    _, bureau = make(may)
    login(bureau)
    board = bureau.get("/board").text
    cid = re.search(r'id="review-(\d+)"', board)
    assert cid
    res = bureau.post(
        "/board/review",
        data={"csrf": csrf(board), "case_id": cid.group(1), "decision": "return", "comment": ""},
    )
    assert res.status_code == 400 and "退回时请填写审核意见" in res.text


def test_open_cases_past_the_deadline_are_overdue(may: Path) -> None:
    clock = Clock()
    _, bureau = make(may, clock)
    login(bureau)
    assert "没有逾期未反馈的预警" in bureau.get("/board").text
    clock.now += dt.timedelta(days=20)  # 10 working days are at most 14 calendar days plus holidays
    board = bureau.get("/board").text
    overdue = board.split('id="overdue"', 1)[1].split("</section>", 1)[0]
    assert "葡萄酒产业宣传推介" in overdue and "城市路灯维护" in overdue


def test_a_case_is_resolved_when_the_project_is_green_at_a_later_checkpoint(
    may: Path, tmp_path: Path
) -> None:
    fixed = tmp_path / "corrected"
    fixed.mkdir()
    shutil.copy(EXAMPLES / "project_reports.csv", fixed / "project_reports.csv")
    # the corrected August report: 路灯维护 fully executed and its repair time on target → green
    (fixed / "project_reports.csv").write_text(
        "checkpoint,project_code,executed,forecast_executed\n2025-08,2025-304-001,100.00,100.00\n",
        encoding="utf-8",
    )
    (fixed / "indicator_reports.csv").write_text(
        "checkpoint,project_code,indicator_code,actual,forecast,possibility,causes,cause_text,measures\n"
        "2025-08,2025-304-001,01,20,24,确定能,,,\n",
        encoding="utf-8",
    )
    assert cli(may, "import", str(fixed)).exit_code == 0
    assert cli(may, "run", "--checkpoint", "2025-08", "--no-send").exit_code == 0
    res = cli(may, "cases", "open", "--checkpoint", "2025-08")  # the run resolved it already: idempotent
    assert res.exit_code == 0 and "0 earlier case(s) resolved" in res.output, res.output
    app, _ = make(may)
    with app.engine.connect() as conn:
        states = {(c["checkpoint"], c["project_code"]): c for c in cases(conn)}
    lamp = states[("2025-05", "2025-304-001")]
    assert lamp["state"] == "resolved" and lamp["resolved_checkpoint"] == "2025-08"
    assert states[("2025-05", "2025-302-001")]["state"] == "open"  # still yellow in August
    assert ("2025-08", "2025-304-001") not in states  # green in August: no new case


def test_a_link_needs_the_secret(may: Path) -> None:
    res = CliRunner(env={"MONITOR_WEB_SECRET": ""}).invoke(
        main, ["link", "--unit", "302", "--checkpoint", "2025-05", "--config", str(may / "config.yaml")]
    )
    assert res.exit_code == 1 and "MONITOR_WEB_SECRET" in res.output


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = links.make_token("another secret", links.Scope("302", "2025-05"))
    with pytest.raises(links.BadLink) as exc:
        links.read_token(SECRET, token, dt.timedelta(days=30), dt.datetime.now(dt.UTC))
    assert not exc.value.expired
