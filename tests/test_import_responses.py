"""Units' answers by file through the CLI: `monitor responses template` writes the workbook a bureau hands
out, `monitor import` reads answers back (kind `responses`) into the warning cases the May run of the
worked examples opened, through the web form's own checks and state machine; a bad workbook is
refused with every problem (row, column, value) and nothing is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from monitor.app import App
from monitor.cases.exemptions import local_day
from monitor.cases.store import cases, review
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.rows import CaseRecord
from monitor.db.engine import CASE_RESPONSE

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
TODAY = local_day(dt.datetime.now(dt.UTC))
DUE = TODAY + dt.timedelta(days=60)
HEADERS = ["监控期", "项目编码", "偏差原因类别", "原因说明", "整改措施", "措施说明", "预计完成时间"]


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture
def may(workdir: Path) -> Path:
    """The worked examples imported and run for 2025-05: a case open for each of the five projects."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    res = cli(workdir, "run", "--checkpoint", "2025-05", "--no-send")
    assert res.exit_code == 0, res.output
    return workdir


def workbook(path: Path, rows: list[list[Any]], headers: list[str] = HEADERS) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "整改反馈"
    ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def state(workdir: Path) -> dict[str, CaseRecord]:
    """project code -> its 2025-05 case with its answers."""
    engine = App(load_settings(workdir / "config.yaml")).engine
    with engine.connect() as conn:
        return {c["project_code"]: c for c in cases(conn) if c["checkpoint"] == "2025-05"}


def answers_stored(workdir: Path) -> int:
    engine = App(load_settings(workdir / "config.yaml")).engine
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CASE_RESPONSE)).scalar_one())


def test_a_responses_workbook_answers_the_cases_through_the_state_machine(may: Path, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "反馈.xlsx",
        [
            [
                "2025-05",
                "2025-302-001",
                "经费",
                "上级资金下达较晚，项目启动推迟",
                "继续实施",
                "加快招标采购，8月底前完成支付",
                dt.datetime.combine(DUE, dt.time()),
            ],
            [
                "2025年5月",
                "2025-304-002",
                "其它",
                "节能改造方案调整，需重新论证",
                "调减预算并同步调整目标",
                "调减预算50万元并同步调低目标",
                DUE.isoformat(),
            ],
        ],
    )
    res = cli(may, "import", str(path))
    assert res.exit_code == 0, res.output
    assert "responses 2" in res.output
    found = state(may)
    assert found["2025-302-001"]["state"] == "answered" and found["2025-304-002"]["state"] == "answered"
    assert found["2025-303-001"]["state"] == "open"
    (first,) = found["2025-302-001"]["answers"]
    assert (first["cause"], first["measure"], first["channel"]) == ("经费保障", "continue", "import")
    assert first["expected_date"] == DUE and first["explanation"] == "上级资金下达较晚，项目启动推迟"
    (second,) = found["2025-304-002"]["answers"]
    assert (second["cause"], second["measure"]) == ("其他", "reduce")


def test_a_bad_workbook_reports_every_problem_and_writes_nothing(may: Path, tmp_path: Path) -> None:
    past = (TODAY - dt.timedelta(days=1)).isoformat()
    headers = [*HEADERS[:2], "单位编码", *HEADERS[2:]]
    good = [
        "经费保障",
        "上级资金下达较晚，项目启动推迟",
        "继续实施",
        "加快招标采购，8月底前完成支付",
        DUE.isoformat(),
    ]
    path = workbook(
        tmp_path / "bad.xlsx",
        [
            ["2025-05", "2025-301001-001", "301001", *good],  # row 2: fine, but not written
            ["2025-13", "2025-302-001", "", *good],  # row 3
            ["2025-05", "2025-303-001", "", "资金不足", "短", "加快进度", "加快", past],  # row 4
            ["2025-05", "2025-999-001", "", *good],  # row 5: no such case
            ["2025-05", "2025-304-001", "302", *good],  # row 6: another unit's project
            ["2025-05", "2025-301001-001", "", *good],  # row 7: answered twice
            ["2025-05", "2025-304-002", "", *good[:4], "下月底"],  # row 8
            ["2025-05", "2025-302-001", "", "", "", "", "", ""],  # a template row left unanswered: skipped
        ],
        headers,
    )
    res = cli(may, "import", str(path))
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if "bad.xlsx" in line]
    expected = [
        ("row 3: checkpoint (监控期)", "'2025-13'"),
        ("row 4: cause (偏差原因类别)", "'资金不足'"),
        ("row 4: explanation (原因说明)", "'短'"),
        ("row 4: measure (整改措施)", "'加快进度'"),
        ("row 4: measure_text (措施说明)", "'加快'"),
        ("row 4: expected_date (预计完成时间)", f"'{past}'"),
        ("row 5: project_code (项目编码)", "'2025-999-001'"),
        ("row 6: unit_code (单位编码)", "'302'"),
        ("row 7: project_code (项目编码)", "'2025-301001-001'"),
        ("row 8: expected_date (预计完成时间)", "'下月底'"),
    ]
    assert len(lines) == len(expected), res.output
    for (where, value), line in zip(expected, lines, strict=True):
        assert where in line and line.endswith(f"(got {value})"), line
    assert "没有预警案件" in lines[6] and "该项目属于单位 304" in lines[7]
    assert "already answered at" in lines[8] and "row 2" in lines[8]
    assert "预计完成时间不能早于今天" in lines[5]
    assert "10 problem(s); nothing was imported." in res.output
    assert answers_stored(may) == 0
    assert {c["state"] for c in state(may).values()} == {"open"}


def test_a_case_already_answered_cannot_be_answered_again_by_file(may: Path, tmp_path: Path) -> None:
    row = [
        "2025-05",
        "2025-302-001",
        "制度保障",
        "审批流程较长，合同签订推迟",
        "继续实施",
        "压缩审批时限，尽快签约",
        DUE,
    ]
    path = workbook(tmp_path / "once.xlsx", [row])
    assert cli(may, "import", str(path)).exit_code == 0
    res = cli(may, "import", str(path))
    assert res.exit_code == 1
    assert "案件当前状态为“已反馈待审核”，不能反馈" in res.output
    assert answers_stored(may) == 1


def test_a_data_file_with_a_mistake_in_the_same_import_keeps_the_answers_out(
    may: Path, tmp_path: Path
) -> None:
    row = [
        "2025-05",
        "2025-302-001",
        "制度保障",
        "审批流程较长，合同签订推迟",
        "继续实施",
        "压缩审批时限，尽快签约",
        DUE,
    ]
    answers = workbook(tmp_path / "answers.xlsx", [row])
    bad = tmp_path / "projects.csv"
    bad.write_text(
        "project_code,project_name,unit_code,budget\n2025-302-002,新项目,302,-5\n", encoding="utf-8"
    )
    res = cli(may, "import", str(answers), str(bad))
    assert res.exit_code == 1 and "projects.csv:row 2: budget" in res.output
    assert answers_stored(may) == 0


def test_the_template_round_trips_and_a_returned_case_is_answered_again(may: Path, tmp_path: Path) -> None:
    out = tmp_path / "304.xlsx"
    res = cli(may, "responses", "template", "--checkpoint", "2025-05", "--unit", "304", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "wrote 2 case(s)" in res.output
    wb = openpyxl.load_workbook(out)
    ws = wb["整改反馈"]
    rows = list(ws.iter_rows(min_row=3, values_only=True))
    header, filled = rows[0], rows[1:]
    assert [r[header.index("项目编码")] for r in filled] == ["2025-304-001", "2025-304-002"]
    assert all(r[header.index("监控期")] == "2025-05" and r[header.index("灯色")] == "红灯" for r in filled)
    lists = {str(d.sqref): d.formula1 for d in ws.data_validations.dataValidation if d.type == "list"}
    assert lists == {
        "I4:I5": '"经费保障,制度保障,人员保障,硬件条件保障,其他"',
        "K4:K5": '"继续实施,调剂资金,调减预算并同步调整目标,取消项目"',
    }
    col = {h: i + 1 for i, h in enumerate(header)}
    for name, value in (
        ("偏差原因类别", "硬件条件保障"),
        ("原因说明", "路灯更换器材到货延迟"),
        ("纠偏措施", "继续实施"),
        ("措施说明", "督促供货商7月前到货"),
        ("预计完成时间", dt.datetime.combine(DUE, dt.time())),
    ):
        ws.cell(4, col[name], value)  # only the first project answered; the second row left as it is
    wb.save(out)
    res = cli(may, "import", str(out))
    assert res.exit_code == 0, res.output
    assert "responses 1" in res.output
    found = state(may)
    assert found["2025-304-001"]["state"] == "answered" and found["2025-304-002"]["state"] == "open"
    assert found["2025-304-001"]["answers"][0]["channel"] == "import"

    engine = App(load_settings(may / "config.yaml")).engine
    with engine.begin() as conn:
        review(
            conn, found["2025-304-001"]["id"], "return", "请补充到货时间依据", "kz", dt.datetime.now(dt.UTC)
        )
    again = tmp_path / "again.xlsx"
    assert (
        cli(
            may, "responses", "template", "--checkpoint", "2025-05", "--unit", "304", "--out", str(again)
        ).exit_code
        == 0
    )
    ws = openpyxl.load_workbook(again)["整改反馈"]
    rows = list(ws.iter_rows(min_row=4, values_only=True))
    returned = next(r for r in rows if r[col["项目编码"] - 1] == "2025-304-001")
    assert returned[col["案件状态"] - 1] == "已退回待重新反馈"
    assert returned[col["退回意见"] - 1] == "请补充到货时间依据"
    wb = openpyxl.load_workbook(again)
    ws = wb["整改反馈"]
    n = 4 + rows.index(returned)
    for name, value in (
        ("偏差原因类别", "硬件条件保障"),
        ("原因说明", "供货合同约定6月30日到货，已附合同"),
        ("纠偏措施", "继续实施"),
        ("措施说明", "每周跟踪到货进度"),
        ("预计完成时间", DUE.isoformat()),
    ):
        ws.cell(n, col[name], value)
    wb.save(again)
    assert cli(may, "import", str(again)).exit_code == 0
    answered = state(may)["2025-304-001"]
    assert answered["state"] == "answered" and len(answered["answers"]) == 2


def test_a_template_needs_a_known_unit_and_a_case_waiting(may: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "t.xlsx")
    res = cli(may, "responses", "template", "--checkpoint", "2025-05", "--unit", "999", "--out", out)
    assert res.exit_code == 1 and "单位编码 999 不存在" in res.output
    res = cli(may, "responses", "template", "--checkpoint", "2025-05", "--unit", "301", "--out", out)
    assert res.exit_code == 1 and "没有待反馈的预警案件" in res.output
    res = cli(may, "responses", "template", "--checkpoint", "2025-08", "--out", out)
    assert res.exit_code == 1 and "2025-08 没有待反馈的预警案件" in res.output
    assert not Path(out).exists()
