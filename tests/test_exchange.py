"""The exchange table of the 一体化 systems (issue 20, domain.md §7) through the CLI: `monitor results
--format exchange` writes it with the lights, `monitor import` reads it back (Chinese labels or English
field names, CSV or XLSX) into the same lights; repeated project values that disagree, a new project
without its budget and hostile cells are refused with nothing written."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli.main import main
from monitor.db.engine import (
    INDICATOR,
    INDICATOR_REPORT,
    PROJECT,
    PROJECT_REPORT,
    UNIT,
    create_schema,
    make_engine,
)
from monitor.ingest.exchange_fields import FIELDS
from monitor.tools.sample import write_sample

TABLES = (UNIT, PROJECT, INDICATOR, PROJECT_REPORT, INDICATOR_REPORT)


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


def dump(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(db_url)
    try:
        create_schema(engine)  # the empty database of these tests, as an import finds it
        with engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in TABLES}
    finally:
        engine.dispose()


def lights(config: Path) -> dict[tuple[str, ...], object]:
    """Every project's three lights and every indicator's light at 2025-05, from the JSON results."""
    res = cli(config, "results", "--checkpoint", "2025-05", "--format", "json")
    assert res.exit_code == 0, res.output
    found: dict[tuple[str, ...], object] = {}
    for r in json.loads(res.output):
        found[(r["project_code"],)] = (r["budget_light"], r["target_light"], r["light"])
        found.update(((r["project_code"], i["indicator_code"]), i["light"]) for i in r["indicators"])
    return found


@pytest.fixture
def exported(workdir: Path, tmp_path: Path) -> tuple[Path, Path, dict[tuple[str, ...], object]]:
    """The sample imported canonically into a database of its own, run at 2025-05 and exported with
    --format exchange: (the exchange file, the sample's units file, the lights)."""
    sample = write_sample(tmp_path / "sample", projects=40, seed=7)
    source = tmp_path / "source.yaml"
    text = (workdir / "config.yaml").read_text(encoding="utf-8")
    source.write_text(
        text.replace(text.split("url: ")[1].split("\n")[0], f"sqlite:///{tmp_path / 'source.db'}")
    )
    assert cli(source, "import", str(tmp_path / "sample")).exit_code == 0
    res = cli(source, "run", "--checkpoint", "2025-05", "--no-send")
    assert res.exit_code == 0, res.output
    out = tmp_path / "exchange.csv"
    res = cli(source, "results", "--checkpoint", "2025-05", "--format", "exchange", "--out", str(out))
    assert res.exit_code == 0, res.output
    return out, sample["units"], lights(source)


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def imported_lights(workdir: Path, *paths: Path) -> dict[tuple[str, ...], object]:
    config = workdir / "config.yaml"
    res = cli(config, "import", *map(str, paths))
    assert res.exit_code == 0, res.output
    assert cli(config, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    return lights(config)


def test_the_exported_table_imported_into_an_empty_database_gives_the_same_lights(
    workdir: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, before = exported
    rows = read_rows(table)
    assert rows[0][:7] == [
        "年度",
        "财政区划编码",
        "主管部门编码",
        "主管部门名称",
        "单位编码",
        "单位名称",
        "项目编码",
    ]
    assert rows[0][-5:] == ["预算执行预警", "目标完成预警", "项目预警", "指标预警", "预警原因"]
    assert {r[rows[0].index("项目预警")] for r in rows[1:]} <= {"绿灯", "黄灯", "红灯", "未报送"}
    assert len(before) > 40
    assert imported_lights(workdir, table, units) == before


def test_english_field_names_in_a_workbook_read_the_same(
    workdir: Path, tmp_path: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, before = exported
    rows = read_rows(table)
    field = {label: name for name, label, _ in FIELDS}
    rows[0] = [field.get(h, h) for h in rows[0]]
    order = list(reversed(range(len(rows[0]))))  # any column order
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "监控数据"
    for row in rows:
        ws.append([row[i] for i in order])
    book.save(tmp_path / "exchange.xlsx")
    assert "pro_code" in rows[0] and "项目编码" not in rows[0]
    assert imported_lights(workdir, units, tmp_path / "exchange.xlsx") == before


def refused(workdir: Path, db_url: str, *paths: Path) -> str:
    before = dump(db_url)
    res = cli(workdir / "config.yaml", "import", *map(str, paths))
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert dump(db_url) == before
    return res.output


def test_a_project_whose_rows_disagree_is_refused_naming_both_rows(
    workdir: Path, db_url: str, tmp_path: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, _ = exported
    rows = read_rows(table)
    budget = rows[0].index("全年预算数")
    assert rows[1][6] == rows[2][6]  # the first project has two indicator rows (rows 2 and 3)
    rows[2][budget] = "999999.99"
    bad = write_rows(tmp_path / "bad.csv", rows)
    out = refused(workdir, db_url, bad, units)
    assert f"{bad}:row 3: budget (全年预算数): differs from row 2, which gives '{rows[1][budget]}'" in out
    assert "与第2行的“全年预算数”不一致" in out and "999999.99" in out


def test_a_new_project_without_its_budget_is_refused_naming_row_and_column(
    workdir: Path, db_url: str, tmp_path: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, _ = exported
    rows = read_rows(table)
    budget, code = rows[0].index("全年预算数"), rows[1][6]
    for row in rows[1:]:
        if row[6] == code:
            row[budget] = ""
    bad = write_rows(tmp_path / "bad.csv", rows)
    out = refused(workdir, db_url, bad, units)
    assert f"{bad}:row 2: budget (全年预算数): project {code} is not in the database" in out
    assert "新项目须填写全年预算数" in out
    assert out.count(":row 2:") == 1  # one problem per row, not one per kind read from it


def test_a_table_without_the_checkpoint_column_says_so(
    workdir: Path, db_url: str, tmp_path: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, _ = exported
    rows = read_rows(table)
    at = rows[0].index("监控期")
    bad = write_rows(tmp_path / "bad.csv", [[c for i, c in enumerate(r) if i != at] for r in rows])
    out = refused(workdir, db_url, bad, units)
    assert (
        f"{bad}:row 1: checkpoint: the exchange table gives the checkpoint of each row in a column 监控期"
        in out
    )


def test_hostile_cells_are_kept_as_text_or_refused_and_never_run(
    workdir: Path, db_url: str, tmp_path: Path, exported: tuple[Path, Path, dict[tuple[str, ...], object]]
) -> None:
    table, units, _ = exported
    rows = read_rows(table)
    name, code, ind = rows[0].index("项目名称"), rows[1][6], rows[0].index("三级指标")
    formula = "=cmd|' /C calc'!A0"
    for row in rows[1:]:
        if row[6] == code:
            row[name] = formula
    rows[1][ind] = "长" * 1_000_000
    bad = write_rows(tmp_path / "bad.csv", rows)
    out = refused(workdir, db_url, bad, units)
    assert f"{bad}: cannot read this file: field larger than field limit" in out and len(out) < 2_000
    rows[1][ind] = "示范基地"
    good = write_rows(tmp_path / "good.csv", rows)
    config = workdir / "config.yaml"
    assert cli(config, "import", str(good), str(units)).exit_code == 0
    assert cli(config, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    back = tmp_path / "back.csv"
    res = cli(config, "results", "--checkpoint", "2025-05", "--format", "exchange", "--out", str(back))
    assert res.exit_code == 0, res.output
    names = {r[6]: r[name] for r in read_rows(back)[1:]}
    assert names[code] == "'" + formula  # stored as text, written neutralised (core.safe.csv_cell)
