"""Exemptions (豁免) through the CLI, on the worked examples: an exempted project is evaluated and listed
but warns nobody and gets no case; it is listed apart in a digest its unit gets for other warnings;
an expired or revoked exemption warns again; bad input is refused with every problem named."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.app import App
from monitor.cases import exemptions
from monitor.cases.exemptions import CASE_EVENT
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.db.engine import WARNING_CASE

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
TODAY = exemptions.local_day(dt.datetime.now(dt.UTC))
LATER = (TODAY + dt.timedelta(days=90)).isoformat()


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def loaded(workdir: Path) -> Path:
    """The worked examples imported; mail written as .eml files to `sent/`. In May every project is
    yellow or red: 301001 one yellow, 302 and 303 one red each, 304 two red."""
    cfg = workdir / "config.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + "mail: {mode: file, file_dir: sent}\n", encoding="utf-8")
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def exempt(workdir: Path, project: str, until: str = LATER) -> int:
    res = cli(
        workdir,
        "exempt",
        "add",
        project,
        "--reason",
        "预算调整已批准",
        "--approver",
        "张科长",
        "--until",
        until,
    )
    assert res.exit_code == 0, res.output
    assert f"项目 {project} 至 {until}" in res.output
    return int(res.output.split("已登记豁免 ")[1].split("：")[0])


def run_may(workdir: Path) -> str:
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    return res.output


def digests(workdir: Path) -> dict[str, list[email.message.EmailMessage]]:
    """unit code -> its warning digests so far, oldest first."""
    out: dict[str, list[email.message.EmailMessage]] = {}
    for path in sorted((workdir / "sent").glob("*-warning-*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        out.setdefault(path.stem.split("-warning-")[1], []).append(msg)
    return out


def text(msg: email.message.EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def cases(workdir: Path) -> dict[str, str]:
    """project code -> state of its 2025-05 case."""
    engine = App(load_settings(workdir / "config.yaml")).engine
    with engine.connect() as conn:
        q = select(WARNING_CASE.c.project_code, WARNING_CASE.c.state)
        return {r[0]: r[1] for r in conn.execute(q.where(WARNING_CASE.c.checkpoint == "2025-05"))}


def test_an_exempted_project_gets_no_mail_and_no_case_but_is_listed_in_results(loaded: Path) -> None:
    exempt(loaded, "2025-302-001")
    out = run_may(loaded)
    assert "3 warning digests" in out  # 301001, 303, 304; not 302
    assert set(digests(loaded)) == {"301001", "303", "304"}
    assert set(cases(loaded)) == {"2025-301001-001", "2025-303-001", "2025-304-001", "2025-304-002"}
    table = cli(loaded, "results", "--checkpoint", "2025-05")
    row = next(line for line in table.output.splitlines() if "2025-302-001" in line)
    assert "红（已豁免）" in row
    assert "已豁免" not in next(line for line in table.output.splitlines() if "2025-303-001" in line)
    rows = json.loads(cli(loaded, "results", "--checkpoint", "2025-05", "--format", "json").output)
    assert {r["project_code"]: r["light"] for r in rows}["2025-302-001"] == "red"  # still evaluated


def test_a_digest_for_other_warnings_lists_the_exempted_project_apart(loaded: Path) -> None:
    exempt(loaded, "2025-304-001")
    run_may(loaded)
    (msg,) = digests(loaded)["304"]
    assert "红灯项目1个" in msg["Subject"]
    body = text(msg)
    assert "红灯项目 1 个、黄灯项目 0 个（另有绿灯 0 个、未报送 0 个、已豁免 1 个）" in body
    warned, apart = body.split("已豁免项目（经批准豁免，本期不预警，无需反馈）：")
    assert "【红灯】2025-304-002" in warned and "2025-304-001" not in warned
    assert "2025-304-001 城市路灯维护（边界例一）（红灯）：预算调整已批准，批准人 张科长" in apart
    html = msg.get_body(("html",))
    assert html is not None and "已豁免项目" in html.get_content()
    assert "2025-304-001" not in cases(loaded) and cases(loaded)["2025-304-002"] == "open"


def test_exempting_a_project_already_warned_tells_the_unit_once_and_the_case_records_it(loaded: Path) -> None:
    run_may(loaded)
    assert len(digests(loaded)["303"]) == 1
    exempt(loaded, "2025-303-001")
    out = run_may(loaded)
    assert "1 warning digests" in out
    update = digests(loaded)["303"][1]
    assert "预警好转" in update["Subject"]
    assert "2025-303-001 森林草原防灭火专项经费：红灯 → 已豁免\n" in text(update)
    assert "目前已无需反馈的红灯、黄灯项目。" in text(update)
    assert "messages: none new" in run_may(loaded)  # nothing changed since
    engine = App(load_settings(loaded / "config.yaml")).engine
    with engine.connect() as conn:
        (event,) = conn.execute(select(CASE_EVENT)).all()
    assert event.kind == "exempted" and "预算调整已批准" in event.detail  # the case opened before goes on
    assert cases(loaded)["2025-303-001"] == "open"


def test_a_revoked_exemption_warns_again_at_the_next_run(loaded: Path) -> None:
    number = exempt(loaded, "2025-302-001")
    run_may(loaded)
    assert "302" not in digests(loaded)
    res = cli(loaded, "exempt", "revoke", str(number), "--by", "kz")
    assert res.exit_code == 0 and f"已撤销豁免 {number}" in res.output
    assert "1 warning digests" in run_may(loaded)
    (msg,) = digests(loaded)["302"]
    assert "【红灯】2025-302-001" in text(msg) and "已豁免" not in text(msg)
    assert cases(loaded)["2025-302-001"] == "open"
    listed = cli(loaded, "exempt", "list")
    assert "2025-302-001" not in listed.output and "0 项豁免" in listed.output
    everything = cli(loaded, "exempt", "list", "--all")
    assert "已撤销（kz）" in everything.output and "2025-302-001" in everything.output
    again = cli(loaded, "exempt", "revoke", str(number))
    assert again.exit_code == 1 and "由 kz 撤销（already revoked）" in again.output
    missing = cli(loaded, "exempt", "revoke", "999")
    assert missing.exit_code == 1 and "没有编号为 999 的豁免" in missing.output


def test_an_exemption_holds_through_its_last_day_and_an_expired_one_warns(loaded: Path) -> None:
    """Recorded earlier (the API takes the day), one ending today and one that ended yesterday."""
    yesterday = TODAY - dt.timedelta(days=1)
    engine = App(load_settings(loaded / "config.yaml")).engine
    with engine.begin() as conn:
        for code, until in (("2025-302-001", TODAY), ("2025-303-001", yesterday)):
            exemptions.add(
                conn,
                code,
                "预算调整已批准",
                "张科长",
                until,
                today=TODAY - dt.timedelta(days=30),
                now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
                created_by="kz",
            )
    run_may(loaded)
    assert "302" not in digests(loaded) and "303" in digests(loaded)
    assert "2025-302-001" not in cases(loaded) and cases(loaded)["2025-303-001"] == "open"
    listed = cli(loaded, "exempt", "list", "--all").output
    assert "已过期" in listed and "有效" in listed
    assert "2025-303-001" not in cli(loaded, "exempt", "list").output


def test_bad_exemption_input_is_refused_with_every_problem_named(loaded: Path) -> None:
    res = cli(
        loaded, "exempt", "add", "2025-999-001", "--reason", " ", "--approver", "", "--until", "2025-13-01"
    )
    assert res.exit_code == 1
    assert "项目编码（PROJECT）“2025-999-001”不存在" in res.output
    assert "豁免理由（--reason）不能为空" in res.output
    assert "批准人（--approver）不能为空" in res.output
    assert "有效期至（--until）“2025-13-01”不是有效日期" in res.output
    assert "4 个问题，未登记豁免。" in res.output
    past = (TODAY - dt.timedelta(days=1)).isoformat()
    res = cli(
        loaded, "exempt", "add", "2025-302-001", "--reason", "调整", "--approver", "张", "--until", past
    )
    assert res.exit_code == 1 and f"有效期至（--until）“{past}”已过去" in res.output
    exempt(loaded, "2025-302-001")
    res = cli(
        loaded, "exempt", "add", "2025-302-001", "--reason", "再次", "--approver", "张", "--until", LATER
    )
    assert res.exit_code == 1 and "已有有效豁免" in res.output
    assert "1 项豁免" in cli(loaded, "exempt", "list").output  # nothing else was recorded
