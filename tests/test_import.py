"""The import stage end to end: real CSV (UTF-8, BOM, GBK) and XLSX files into a SQLite file database,
all problems reported at once with file/row/column/value, nothing written on failure, re-import as
an upsert."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select

from monitor.core.model import Direction, Kind
from monitor.db.engine import (
    INDICATOR,
    INDICATOR_REPORT,
    PROJECT,
    PROJECT_REPORT,
    UNIT,
    create_schema,
    make_engine,
)
from monitor.db.upserts import Batch, DanglingReferences, KnownCodes, import_transaction
from monitor.ingest import fastcsv, reader
from monitor.ingest.columns import ALIASES, REQUIRED, alias_table_markdown, detect_kind
from monitor.ingest.importer import ImportFailed, Problem, import_paths, read_paths, validate
from monitor.ingest.reading import Reading
from monitor.tools.sample import sample_summary, write_sample

DATA = Path(__file__).parent / "data" / "import"
WORKED = DATA / "worked_examples"
TABLES = (UNIT, PROJECT, INDICATOR, PROJECT_REPORT, INDICATOR_REPORT)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path}/m.db")
    create_schema(eng)
    return eng


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in TABLES}


def rows(engine: Engine, table: Any, **where: Any) -> list[dict[str, Any]]:
    q = select(table).where(*(table.c[k] == val for k, val in where.items()))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def write_csv(path: Path, table: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(table)
    return path


def refused(engine: Engine, *paths: Path) -> list[Problem]:
    with pytest.raises(ImportFailed) as failed:
        import_paths(engine, list(paths))
    return failed.value.problems


# --- the worked examples ---------------------------------------------------------------------------


def test_the_worked_examples_import_with_exact_amounts(engine: Engine) -> None:
    counts = import_paths(engine, [WORKED])
    assert counts == {
        "units": 5,
        "projects": 5,
        "indicators": 4,
        "project_reports": 10,
        "indicator_reports": 8,
    }
    budgets = {r["name"]: r["budget"] for r in rows(engine, PROJECT)}
    assert budgets["动物疫病强制免疫疫苗采购"] == 1_180_000_000
    assert budgets["葡萄酒产业宣传推介"] == 300_000_000
    assert budgets["森林草原防灭火专项经费"] == 380_000_000
    executed = {(r["checkpoint"], r["project_code"]): r["executed"] for r in rows(engine, PROJECT_REPORT)}
    assert executed["2025-05", "2025-304-001"] == 25_000_000
    assert executed["2025-05", "2025-304-002"] == 24_990_000
    assert executed["2025-08", "2025-304-002"] == 39_990_000
    assert executed["2025-05", "2025-303-001"] == 0


def test_the_worked_examples_indicators_keep_direction_target_and_kind(engine: Engine) -> None:
    import_paths(engine, [WORKED])
    found = {
        r["name"]: (r["direction"], r["target"], r["measure_unit"], r["kind"])
        for r in rows(engine, INDICATOR)
    }
    assert found == {
        "免疫注射牲畜": ("≥", "120000", "头", "cumulative"),
        "群体免疫密度": ("≥", "90", "%", "level"),
        "路灯故障平均修复时长": ("≤", "24", "小时", "level"),
        "项目开工时间": ("≤", "2025-06-30", "", "milestone"),
    }
    may = {
        (r["project_code"], r["indicator_code"]): r["actual"]
        for r in rows(engine, INDICATOR_REPORT, checkpoint="2025-05")
    }
    assert may == {
        ("2025-301001-001", "01"): "30000",
        ("2025-301001-001", "02"): "86",
        ("2025-304-001", "01"): "31",
        ("2025-303-001", "01"): None,
    }


def test_a_unit_with_two_addresses_keeps_both(engine: Engine) -> None:
    import_paths(engine, [WORKED])
    (unit,) = rows(engine, UNIT, code="301001")
    assert unit["email"] == "dwyf@example.gov.cn;nyj-cw@example.gov.cn"
    assert unit["supervisor_code"] == "301"


# --- encodings and Chinese headers ---------------------------------------------------------------------

CHINESE_UNITS = [
    ["单位编码", "单位名称", "联系邮箱", "主管部门编码"],
    ["501", "县财政局", "czj@example.gov.cn；bgs@example.gov.cn", ""],
]
CHINESE_PROJECTS = [
    ["项目编码", "项目名称", "实施单位编码", "年初预算数（万元）", "上年结转", "直达资金标识"],
    ["2025-501-001", "乡村道路养护", "501", "1,234.50", "１０．００", "1"],
]
CHINESE_INDICATORS = [
    ["项目编码", "指标编码", "一级指标", "二级指标", "三级指标", "指标方向", "年度指标值", "计量单位"],
    ["2025-501-001", "01", "效益指标", "社会效益", "道路优良率", "≥", "41.7%", "%"],
    ["2025-501-001", "02", "产出指标", "数量", "养护里程", "", "≥１２０", "公里"],
]
CHINESE_REPORTS = [
    ["《项目支出绩效目标执行监控表》"],
    ["监控期", "项目编码", "指标编码", "1—5月执行情况", "全年预计完成情况", "完成目标可能性"],
    ["2025年5月", "2025-501-001", "01", "38.5%", "42%", "确定能"],
    ["", "", "", "", "", ""],
    ["2025-5", "2025-501-001", "02", "５０", "120", "有可能"],
]


def _import_chinese_csvs(engine: Engine, folder: Path, encoding: str) -> dict[str, int]:
    folder.mkdir()
    for name, table in [("a.csv", CHINESE_UNITS), ("b.csv", CHINESE_PROJECTS), ("c.csv", CHINESE_INDICATORS),
                        ("d.csv", CHINESE_REPORTS)]:  # fmt: skip
        write_csv(folder / name, table, encoding)
    return import_paths(engine, [folder])


def _assert_chinese_csvs_imported(engine: Engine) -> None:
    (project,) = rows(engine, PROJECT)
    assert (project["budget"], project["carryover"], project["fund_flag"]) == (
        1_234_500_000,
        10_000_000,
        "01",
    )
    targets = {r["code"]: (r["direction"], r["target"]) for r in rows(engine, INDICATOR)}
    assert targets == {"01": ("≥", "41.7"), "02": ("≥", "120")}
    actuals = {r["indicator_code"]: (r["checkpoint"], r["actual"]) for r in rows(engine, INDICATOR_REPORT)}
    assert actuals == {"01": ("2025-05", "38.5"), "02": ("2025-05", "50")}
    (unit,) = rows(engine, UNIT)
    assert unit["email"] == "czj@example.gov.cn;bgs@example.gov.cn"


def test_a_gbk_csv_with_chinese_headers_imports(engine: Engine, tmp_path: Path) -> None:
    counts = _import_chinese_csvs(engine, tmp_path / "gbk", "gbk")
    assert counts == {
        "units": 1,
        "projects": 1,
        "indicators": 2,
        "project_reports": 0,
        "indicator_reports": 2,
    }
    _assert_chinese_csvs_imported(engine)


def test_a_utf8_csv_with_byte_order_mark_imports(engine: Engine, tmp_path: Path) -> None:
    _import_chinese_csvs(engine, tmp_path / "bom", "utf-8-sig")
    _assert_chinese_csvs_imported(engine)


def test_semicolon_and_tab_separated_files_are_recognised(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "units.csv").write_text(
        "单位编码;单位名称;联系邮箱\n601;县林业局;lyj@example.gov.cn\n", "utf-8"
    )
    (tmp_path / "more.csv").write_text(
        "单位编码\t单位名称\t联系邮箱\n602\t县水利局\tslj@example.gov.cn\n", "utf-8"
    )
    assert import_paths(engine, [tmp_path / "units.csv", tmp_path / "more.csv"])["units"] == 2


def test_month_range_headers_are_read_with_any_month_and_dash(engine: Engine, tmp_path: Path) -> None:
    import_paths(engine, [WORKED])
    report = write_csv(tmp_path / "r.csv", [["监控月份", "项目代码", "1至8月执行数", "全年预计执行数"],
                                             ["2025-08", "2025-302-001", "160", "300"]])  # fmt: skip
    import_paths(engine, [report])
    (row,) = rows(engine, PROJECT_REPORT, checkpoint="2025-08", project_code="2025-302-001")
    assert row["executed"] == 160_000_000


def test_a_sheet_name_decides_between_kinds_whose_columns_are_all_present() -> None:
    headers = ["监控期", "项目编码", "指标编码", "一级指标", "二级指标", "三级指标", "指标方向", "年度指标值",
               "计量单位", "1-5月执行情况"]  # fmt: skip
    assert detect_kind(headers).kind == "indicator_reports"  # the most specific
    assert detect_kind(headers, "指标").kind == "indicators"
    assert detect_kind(["项目编码", "项目名称", "预算数"], "项目").missing == ("unit_code",)


def test_a_workbook_without_any_data_sheet_is_a_problem(engine: Engine, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["说明：请按模板填写"])
    wb.save(tmp_path / "empty.xlsx")
    (problem,) = refused(engine, tmp_path / "empty.xlsx")
    assert "no sheet" in problem.message


def test_a_header_split_over_two_unmerged_rows_is_read_as_one(engine: Engine, tmp_path: Path) -> None:
    import_paths(engine, [WORKED])
    table = [
        ["《项目支出绩效目标执行监控表》"],
        ["单位", "万元"],
        ["监控期", "项目编码", "预算执行情况", ""],
        ["", "", "1-8月执行数", "全年预计执行数"],
        ["2025-08", "2025-302-001", "151.5", "300"],
    ]
    import_paths(engine, [write_csv(tmp_path / "r.csv", table)])
    (row,) = rows(engine, PROJECT_REPORT, checkpoint="2025-08", project_code="2025-302-001")
    assert (row["executed"], row["forecast_executed"]) == (151_500_000, 300_000_000)


def test_the_adjusted_budget_wins_over_the_initial_one() -> None:
    headers = ["项目编码", "项目名称", "单位编码", "年初预算数", "调整后预算数"]
    detected = detect_kind(headers)
    assert detected.kind == "projects"
    assert detected.columns["budget"] == (4, 3)  # 调整后预算数 first; 年初预算数 where it is blank


# --- Excel -------------------------------------------------------------------------------------------


def _title(ws: Any, text: str, width: int) -> None:
    ws.append([text])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)


REPORT_HEADERS = ["监控期", "项目编码", "指标编码", "1-5月执行情况", "全年预计完成情况", "完成目标可能性"]
REPORT_HEADERS += ["偏差原因", "原因说明", "纠偏措施"]


def _workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "填报说明"
    notes.append(["金额单位为万元；每个指标一行。"])
    units = wb.create_sheet("单位")
    _title(units, "《预算单位信息表》", 4)
    units.append(["单位编码", "单位名称", "联系邮箱", "主管部门编码"])
    units.append([701, "县农业农村局", "nyj@example.gov.cn", None])
    units.append([701001, "县动物疫病预防控制中心", "dwyf@example.gov.cn", 701])
    projects = wb.create_sheet("项目")
    _title(projects, "《项目支出绩效目标表》", 6)
    projects.append(
        ["项目编码", "项目名称", "实施单位编码", "年初预算数（万元）", "调整后预算数（万元）", "直达资金标识"]
    )
    projects.append(["2025-701001-001", "动物疫病强制免疫疫苗采购", 701001, 1000, 1180, 1])
    projects.append([None] * 6)
    projects.append(["2025-701-001", "高标准农田建设", 701, 24.99, None, None])
    projects.append(["合计", None, None, 1024.99, 1204.99, None])
    indicators = wb.create_sheet("指标")
    _title(indicators, "《项目支出绩效目标执行监控表》", 8)
    indicators.append(
        ["项目编码", "指标编码", "一级指标", "二级指标", "三级指标", "指标方向", "年度指标值", "计量单位"]
    )
    indicators.append(["2025-701001-001", "01", "产出指标", "数量", "免疫注射牲畜", "≥", 120000, "头"])
    indicators.append(["2025-701001-001", "02", None, "质量", "群体免疫密度", None, "≥90%", "%"])
    indicators.append(
        ["2025-701001-001", "03", None, "时效", "项目开工时间", "≤", dt.datetime(2025, 6, 30), ""]
    )
    indicators.merge_cells("C3:C5")  # 一级指标 产出指标 spans the three indicators
    reports = wb.create_sheet("项目执行")
    reports.append(["监控期", "项目编码", "预算执行情况", None])
    reports.merge_cells("C1:D1")
    reports.append([None, None, "1-5月执行数", "全年预计执行数"])
    reports.merge_cells("A1:A2")
    reports.merge_cells("B1:B2")
    reports.append([dt.datetime(2025, 5, 31), "2025-701001-001", 708, 1180])
    reports.append([dt.datetime(2025, 5, 31), "2025-701-001", 6.25, None])
    ind_reports = wb.create_sheet("指标执行")
    ind_reports.append(REPORT_HEADERS)
    ind_reports.append(["2025年5月", "2025-701001-001", "01", 30000, 120000, "确定能", None, None, None])
    ind_reports.append(["2025年5月", "2025-701001-001", "02", 0.86, 0.9, "有可能", "硬件条件保障",
                        "冷链设备不足\n部分乡镇滞后", "增配冷链设备"])  # fmt: skip
    ind_reports["D3"].number_format = "0%"
    ind_reports["E3"].number_format = "0.0%"
    ind_reports.append(["2025年5月", "2025-701001-001", "03", None, None, None, None, None, None])
    wb.save(path)
    return path


def test_an_excel_workbook_with_one_sheet_per_kind_imports(engine: Engine, tmp_path: Path) -> None:
    counts = import_paths(engine, [_workbook(tmp_path / "book.xlsx")])
    assert counts == {
        "units": 2,
        "projects": 2,
        "indicators": 3,
        "project_reports": 2,
        "indicator_reports": 3,
    }
    assert rows(engine, UNIT, code="701001")[0]["supervisor_code"] == "701"
    budgets = {r["code"]: (r["budget"], r["fund_flag"]) for r in rows(engine, PROJECT)}
    assert budgets == {"2025-701001-001": (1_180_000_000, "01"), "2025-701-001": (24_990_000, None)}
    indicators = {r["code"]: (r["level1"], r["direction"], r["target"]) for r in rows(engine, INDICATOR)}
    assert indicators == {
        "01": ("产出指标", "≥", "120000"),
        "02": ("产出指标", "≥", "90"),
        "03": ("产出指标", "≤", "2025-06-30"),
    }
    executed = {r["project_code"]: (r["checkpoint"], r["executed"]) for r in rows(engine, PROJECT_REPORT)}
    assert executed == {"2025-701001-001": ("2025-05", 708_000_000), "2025-701-001": ("2025-05", 6_250_000)}
    actuals = {
        r["indicator_code"]: (r["actual"], r["forecast"], r["cause_text"])
        for r in rows(engine, INDICATOR_REPORT)
    }
    assert actuals == {
        "01": ("30000", "120000", None),
        "02": ("86", "90", "冷链设备不足\n部分乡镇滞后"),
        "03": (None, None, None),
    }


def test_excel_problems_name_the_sheet_and_the_row_excel_shows(engine: Engine, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "book.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["项目"]["D5"] = "一千"  # under the title row and the header row
    wb.save(path)
    (problem,) = refused(engine, path)
    assert (problem.sheet, problem.row, problem.column, problem.value) == ("项目", 5, "budget", "一千")
    assert str(problem).startswith(
        f"{path}[项目]:row 5: budget (年初预算数（万元）): must be an amount in 万元"
    )


# --- problems ------------------------------------------------------------------------------------------


def test_ten_mistakes_are_all_reported_and_nothing_is_written(engine: Engine) -> None:
    import_paths(engine, [WORKED])
    before = dump(engine)
    problems = refused(engine, DATA / "ten_mistakes")
    found = {(Path(p.file).name, p.row, p.column, p.value) for p in problems}
    assert found == {
        ("units.csv", 2, "email", "wlj#example.gov.cn"),
        ("projects.csv", 2, "budget", "-5"),
        ("projects.csv", 3, "unit_code", "777"),
        ("projects.csv", 5, "project_code", "2025-306-001"),
        ("indicators.csv", 2, "direction", "约等于"),
        ("indicators.csv", 3, "target", "2025-06-31"),
        ("project_reports.csv", 2, "checkpoint", "2025-13"),
        ("project_reports.csv", 3, "executed", "350.00"),
        ("indicator_reports.csv", 2, "indicator_code", "09"),
        ("august_execution.csv", 1, "executed", None),
    }
    assert len(problems) == 10
    assert all(p.message for p in problems)
    assert dump(engine) == before


def test_a_missing_column_is_named_with_its_chinese_headers(engine: Engine) -> None:
    problems = refused(engine, DATA / "ten_mistakes" / "august_execution.csv")
    (missing,) = problems
    assert "1-X月执行数" in missing.message and "missing required column" in missing.message


def test_execution_beyond_budget_plus_carryover_is_a_problem_but_up_to_it_is_not(
    engine: Engine, tmp_path: Path
) -> None:
    import_paths(engine, [WORKED])
    ok = write_csv(
        tmp_path / "ok.csv", [["checkpoint", "project_code", "executed"], ["2025-08", "2025-302-001", "300"]]
    )
    import_paths(engine, [ok])
    over = write_csv(
        tmp_path / "over.csv",
        [["checkpoint", "project_code", "executed"], ["2025-08", "2025-302-001", "300.01"]],
    )
    (problem,) = refused(engine, over)
    assert problem.column == "executed" and "exceeds budget 300.00" in problem.message


def test_a_due_date_written_as_words_is_a_problem(engine: Engine, tmp_path: Path) -> None:
    import_paths(engine, [WORKED])
    header = [
        "project_code",
        "indicator_code",
        "level1",
        "level2",
        "name",
        "direction",
        "target",
        "measure_unit",
    ]
    table = [header, ["2025-303-001", "02", "产出指标", "时效", "防火通道完工时间", "≤", "10月底前", ""]]
    (problem,) = refused(engine, write_csv(tmp_path / "i.csv", table))
    assert (problem.column, problem.value) == ("target", "10月底前")
    assert "2025-06-30" in problem.message


def test_a_table_of_unknown_kind_lists_the_headers_seen(engine: Engine, tmp_path: Path) -> None:
    odd = write_csv(tmp_path / "odd.csv", [["序号", "名称", "金额"], ["1", "x", "2"]])
    (problem,) = refused(engine, odd)
    assert "序号, 名称, 金额" in problem.message and problem.row == 1


def test_missing_files_and_other_formats_are_problems(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    problems = refused(engine, tmp_path / "nope.csv", tmp_path / "old.xls")
    assert [Path(p.file).name for p in problems] == ["nope.csv", "old.xls"]


def test_a_unit_name_carrying_a_mail_header_is_rejected(engine: Engine, tmp_path: Path) -> None:
    table = [["unit_code", "unit_name", "email"], ["801", "县商务局\r\nBcc: x@y.cn", "swj@example.gov.cn"]]
    units = write_csv(tmp_path / "units.csv", table)
    (problem,) = refused(engine, units)
    assert (problem.row, problem.column) == (2, "unit_name")
    assert "control characters" in problem.message
    assert "\\r\\nBcc" in str(problem)
    assert dump(engine)["unit"] == []


def test_validate_works_on_a_batch_built_elsewhere() -> None:
    read, problems = read_paths([WORKED])
    assert problems == []
    nothing = KnownCodes(frozenset(), {}, frozenset())
    assert validate(read, nothing) == []
    # without 2025-301001-001, its two indicators and two project reports dangle
    batch = Batch(
        read.units, read.projects[1:], read.indicators, read.project_reports, read.indicator_reports
    )
    dangling = validate(batch, nothing)
    assert {(p.file, p.column, p.value) for p in dangling} == {
        ("<indicators>", "project_code", "2025-301001-001"),
        ("<project_reports>", "project_code", "2025-301001-001"),
    }
    assert len(dangling) == 4


# --- re-import -----------------------------------------------------------------------------------------


def test_reimport_is_an_upsert(engine: Engine, tmp_path: Path) -> None:
    import_paths(engine, [WORKED])
    counts_before = {name: len(table) for name, table in dump(engine).items()}
    projects = [
        ["project_code", "project_name", "unit_code", "budget"],
        ["2025-302-001", "葡萄酒产业宣传推介", "302", "360"],
    ]
    reports = [["checkpoint", "project_code", "executed"], ["2025-05", "2025-302-001", "90.00"]]
    changed = write_csv(tmp_path / "projects.csv", projects)
    corrected = write_csv(tmp_path / "reports.csv", reports)
    import_paths(engine, [changed, corrected])
    import_paths(engine, [WORKED / "indicators.csv"])
    assert {name: len(table) for name, table in dump(engine).items()} == counts_before
    assert rows(engine, PROJECT, code="2025-302-001")[0]["budget"] == 360_000_000
    (report,) = rows(engine, PROJECT_REPORT, checkpoint="2025-05", project_code="2025-302-001")
    assert report["executed"] == 90_000_000


def test_a_report_may_refer_to_codes_already_in_the_database(engine: Engine, tmp_path: Path) -> None:
    import_paths(engine, [WORKED / "units.csv", WORKED / "projects.csv", WORKED / "indicators.csv"])
    counts = import_paths(engine, [WORKED / "project_reports.csv", WORKED / "indicator_reports.csv"])
    assert counts["indicator_reports"] == 8


# --- the alias table -----------------------------------------------------------------------------------


def test_the_alias_table_lists_every_column_of_every_kind() -> None:
    table = alias_table_markdown()
    for kind, columns in ALIASES.items():
        assert set(REQUIRED[kind]) <= set(columns)
        for canonical, aliases in columns.items():
            assert f"| {kind} | `{canonical}` |" in table
            assert all(f"`{a}`" in table for a in aliases)


def test_model_values_come_out_as_model_types() -> None:
    batch, _ = read_paths([WORKED])
    assert {i.direction for i in batch.indicators} == {Direction.GE, Direction.LE}
    assert Kind.MILESTONE in {i.kind for i in batch.indicators}


# --- the fast CSV path, the reader process -------------------------------------------------------------

TRICKY = {
    "units.csv": [
        ["单位编码", "单位名称", "联系邮箱", "主管部门编码"],
        [" 901 ", "县财政局", "czj@example.gov.cn；bgs@example.gov.cn", ""],
        ["９０２", "县教育局", "jyj@example.gov.cn", "901"],
        ["", "", "", ""],
        ["单位编码", "单位名称", "联系邮箱", "主管部门编码"],
        ["903", "县卫健委", "wjw@example.gov.cn", "999"],
        ["904", "县商务局\tBcc", "swj@example.gov.cn", ""],
    ],
    "projects.csv": [
        [
            "项目编码",
            "项目名称",
            "实施单位编码",
            "年初预算数",
            "调整后预算数",
            "上年结转",
            "直达资金标识",
            "项目类别",
        ],
        ["2025-901-001", "乡村道路养护", "901", "1,234.50", "", "0", "1", "基本建设"],
        ["2025-901-002", "校舍维修", "902", "100", "１２０．５", "", "", ""],
        ["2025-902-001", "学生资助", "902", "300万元", "", "1.5"],
        ["2025-902-002", "预算为零", "902", "0", "", "", "", ""],
        ["合计", "", "", "1634.5", "120.5", "", "", ""],
    ],
    "indicators.csv": [
        [
            "项目编码",
            "指标编码",
            "一级指标",
            "二级指标",
            "三级指标",
            "指标方向",
            "年度指标值",
            "计量单位",
            "指标类型",
        ],
        ["2025-901-001", "01", "产出指标", "数量", "养护里程", "", "≥１２０", "公里", ""],
        ["2025-901-001", "02", "效益指标", "社会效益", "道路优良率", "≥", "90%", "%", "水平型"],
        ["2025-901-001", "03", "产出指标", "时效", "项目开工时间", "≤", "2025/6/30", "", "时间节点"],
        ["2025-901-002", "01", "满意度指标", "满意度", "群众反映", "≤", "按期办结", "", ""],
        ["2025-901-002", "02", "产出指标", "时效", "项目完工时间", "≤", "10月底前", "", ""],
        ["2025-901-002", "03", "效益指标", "社会效益", "群众满意", "定性", "明显改善", "", ""],
        ["2025-902-001", "01", "产出指标", "数量", "资助人数", "≥", "30000人", "", "累计型"],
        ["2025-902-001", "01", "产出指标", "数量", "资助人数（重复）", "≥", "300", "人", ""],
    ],
    "project_reports.csv": [
        ["监控期", "项目编码", "1-5月执行数", "全年预计执行数"],
        ["2025年5月", "2025-901-001", "600", "0"],
        ["2025-05", "2025-901-002", "50", ""],
        ["监控期", "项目编码", "1-5月执行数", "全年预计执行数"],
        ["2025-13", "2025-902-001", "10", ""],
        ["2025-05", "2025-902-001", "302", ""],
    ],
    "indicator_reports.csv": [
        [
            "项目编码",
            "监控期",
            "指标编码",
            "1-5月执行情况",
            "全年预计完成情况",
            "完成目标可能性",
            "偏差原因",
            "原因说明",
        ],
        ["2025-901-001", "2025-05", "01", "５０", "120", "确定能完成", "", ""],
        ["2025-901-001", "2025-05", "02", "38.5%", "-", "有可能", "经费、其它", "雨季\n停工", "extra"],
        ["2025-901-001", "2025-05", "03", "2025-06-30", "", "", "", ""],
        ["2025-901-001", "2025-05", "02", "40", "", "", "", ""],
        ["2025-901-002", "2025-05", "09", "1", "", "", "", ""],
        ["2025-901-001", "2025-05"],
    ],
}


def _tricky(folder: Path) -> Path:
    folder.mkdir()
    for name, table in TRICKY.items():
        write_csv(folder / name, table)
    return folder


def _reference_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastcsv, "csv_parser", lambda *_: None)


def _read(paths: list[Path]) -> tuple[Any, ...]:
    batch, problems = read_paths(paths)
    kinds = ("units", "projects", "indicators", "project_reports", "indicator_reports")
    return tuple(getattr(batch, k) for k in kinds), batch.origins, batch.unreadable, problems


def test_the_fast_csv_path_reads_exactly_what_the_reference_path_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _tricky(tmp_path / "tricky")
    sample = list(write_sample(tmp_path / "sample", projects=300).values())
    fast = _read([folder]), _read(sample), _read([WORKED]), _read([DATA / "ten_mistakes"])
    _reference_path_only(monkeypatch)
    assert (_read([folder]), _read(sample), _read([WORKED]), _read([DATA / "ten_mistakes"])) == fast
    records, _, _, problems = fast[0]
    assert {(p.row, p.column) for p in problems} >= {(7, "unit_name"), (5, "budget"), (6, "target")}
    assert records[3][0].forecast_executed == 0  # `0`, not blank
    (budget,) = [p for p in problems if p.column == "budget"]
    assert budget.header == "年初预算数"  # 调整后预算数 is blank on that row


def test_a_tricky_folder_is_refused_with_the_same_problems_either_way(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _tricky(tmp_path / "tricky")
    fast = refused(engine, folder)
    _reference_path_only(monkeypatch)
    assert refused(engine, folder) == fast
    found = {(Path(p.file).name, p.row, p.column) for p in fast}
    assert {
        ("units.csv", 6, "supervisor_code"),  # 999: unknown
        ("indicators.csv", 9, "indicator_code"),  # 2025-902-001/01 twice
        ("project_reports.csv", 5, "checkpoint"),
        ("project_reports.csv", 6, "executed"),  # 302 > 300 + 1.5
        ("indicator_reports.csv", 5, "indicator_code"),  # 02 twice in 2025-05
        ("indicator_reports.csv", 6, "indicator_code"),  # 2025-901-002 has no indicator 09
    } <= found
    (duplicate,) = [p for p in fast if p.file.endswith("indicator_reports.csv") and p.row == 5]
    assert duplicate.message.startswith(
        f"duplicate: already given at {folder / 'indicator_reports.csv'}:row 3"
    )
    assert dump(engine) == {t.name: [] for t in TABLES}


@pytest.fixture
def in_reader_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of any size read and check in a forked process (as large ones do)."""
    monkeypatch.setattr(reader, "worth_a_reader_process", lambda reading: True)


def test_a_large_import_reads_in_a_second_process_with_the_same_result(
    db_url: str, tmp_path: Path, in_reader_process: None
) -> None:
    engine = make_engine(db_url)
    sample = list(write_sample(tmp_path / "sample", projects=200).values())
    counts = import_paths(engine, sample)
    assert counts == sample_summary(dict(zip(("units", "projects", "indicators", "project_reports",
                                              "indicator_reports"), sample, strict=True)))  # fmt: skip
    other = make_engine(f"sqlite:///{tmp_path / 'in_process.db'}")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(reader, "worth_a_reader_process", lambda reading: False)
        import_paths(other, sample)
    assert dump(engine) == dump(other)
    engine.dispose()


def test_problems_found_in_the_reader_process_are_all_reported_and_nothing_is_written(
    db_url: str, in_reader_process: None
) -> None:
    engine = make_engine(db_url)
    import_paths(engine, [WORKED])
    before = dump(engine)
    problems = refused(engine, DATA / "ten_mistakes")
    assert len(problems) == 10
    assert any("duplicate: already given at" in p.message and p.row == 5 for p in problems)
    assert dump(engine) == before
    engine.dispose()


def test_a_report_of_an_indicator_the_database_lacks_names_the_indicator(
    engine: Engine, tmp_path: Path
) -> None:
    import_paths(engine, [WORKED])
    report = write_csv(tmp_path / "r.csv", [["checkpoint", "project_code", "indicator_code", "actual"],
                                             ["2025-08", "2025-301001-001", "02", "88"],
                                             ["2025-08", "2025-301001-001", "07", "1"],
                                             ["2025-08", "2099-000-001", "01", "1"]])  # fmt: skip
    problems = refused(engine, report)
    assert [(p.row, p.column, p.value) for p in problems] == [
        (3, "indicator_code", "07"),
        (4, "project_code", "2099-000-001"),
    ]


def test_a_small_import_is_read_in_this_process() -> None:
    assert not reader.worth_a_reader_process(Reading([WORKED]))


def test_the_import_gives_sqlite_its_page_cache_back(engine: Engine) -> None:
    with engine.connect() as conn:
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    import_paths(engine, [WORKED])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == before


@pytest.mark.parametrize("check_at_end", [False, True], ids=["each-row", "at-the-end"])
def test_the_database_refuses_a_dangling_reference_either_way_and_keeps_enforcing_after(
    engine: Engine, check_at_end: bool
) -> None:
    """The importer checks references itself; the database agrees, per row or (a first load on SQLite)
    once before committing. Either way nothing is written, and foreign keys stay on afterwards."""
    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    create_schema(engine)
    orphan = {"project_code": "NOPE", "code": "I1", "level1": "产出", "level2": "数量", "name": "n"}
    orphan |= {"direction": "≥", "target": "1", "measure_unit": ""}
    unit = {"code": "U1", "name": "财政局", "email": "a@example.org"}
    expected = DanglingReferences if check_at_end else IntegrityError
    with pytest.raises(expected), import_transaction(engine, check_at_end=check_at_end) as conn:
        conn.execute(insert(UNIT), [unit])
        conn.execute(insert(INDICATOR), [orphan])
    assert dump(engine)["unit"] == [] and dump(engine)["indicator"] == []
    for _ in range(3):  # every pooled connection still enforces them
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(INDICATOR), [orphan])


def test_a_first_load_checks_references_at_the_end_and_a_later_import_row_by_row(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    real = import_transaction

    def spy(engine: Engine, check_at_end: bool = False) -> Any:
        seen.append(check_at_end)
        return real(engine, check_at_end)

    monkeypatch.setattr("monitor.ingest.importer.import_transaction", spy)
    paths = list(write_sample(tmp_path / "s", projects=30).values())
    import_paths(engine, paths)
    import_paths(engine, paths)
    assert seen == [True, False]  # the first into an empty database, the second into a loaded one
