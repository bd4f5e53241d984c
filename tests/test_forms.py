"""The official monitoring form by file, through the user's path: `monitor forms` writes one workbook per
unit (one sheet per project, 《项目支出绩效目标执行监控表》), a unit fills it in (here: openpyxl, with the
sample's own May report), `monitor import` reads it back by its layout, and the stored reports and the
lights are those of the canonical import of the same data; a bad cell is named by sheet and cell and
nothing is written; LibreOffice prints it; hostile codes and names stay harmless."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, delete, insert, select
from test_report_print import libreoffice_pdf, pdf_pages
from test_ruletools import cli, ok

from monitor.cli.main import main
from monitor.db.engine import INDICATOR_REPORT, PROJECT, PROJECT_REPORT, UNIT
from monitor.db.upserts import data_columns

CHECKPOINT = "2025-05"
TITLE = "项目支出绩效目标执行监控表"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    res = CliRunner().invoke(
        main, ["sample", "--out", str(out), "--projects", "40", "--may-only"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def base(workdir: Path, sample: Path) -> Path:
    """The sample's units, projects and indicators imported (no report)."""
    folder = workdir / "base"
    folder.mkdir()
    for kind in ("units", "projects", "indicators"):
        shutil.copy(sample / f"{kind}.csv", folder)
    ok(workdir, "import", str(folder))
    return workdir


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def stored(workdir: Path) -> tuple[list[Any], list[Any]]:
    engine = engine_of(workdir)
    with engine.connect() as conn:
        # the reports' values; their provenance (`batch`: which import wrote them) differs by design
        pr, ir = PROJECT_REPORT, INDICATOR_REPORT
        projects = conn.execute(select(*data(pr)).order_by(*pr.primary_key)).all()
        indicators = conn.execute(select(*data(ir)).order_by(*ir.primary_key)).all()
    engine.dispose()
    return [tuple(r) for r in projects], [tuple(r) for r in indicators]


def data(tbl: Any) -> list[Any]:
    return [tbl.c[n] for n in data_columns(tbl)]


def engine_of(workdir: Path) -> Any:
    url = (workdir / "config.yaml").read_text(encoding="utf-8").split("url: ", 1)[1].split("\n", 1)[0]
    return create_engine(url)


def fill(forms: Path, sample: Path) -> int:
    """Fill every form in `forms` with the sample's May report, as a unit would type it; the number of
    sheets filled."""
    projects = {r["project_code"]: r for r in rows_of(sample / "project_reports.csv")}
    indicators = {
        (r["project_code"], r["indicator_code"]): r for r in rows_of(sample / "indicator_reports.csv")
    }
    filled = 0
    for path in sorted(forms.glob("*.xlsx")):
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            code = ws["D2"].value
            report = projects.get(code)
            if report is None:
                continue
            filled += 1
            ws["D6"] = float(report["executed"])
            ws["F6"] = float(report["forecast_executed"]) if report["forecast_executed"] else None
            for row in range(12, ws.max_row + 1):
                answer = indicators.get((code, ws.cell(row, 14).value))
                if answer is None:
                    continue
                ws.cell(row, 5).value = answer["actual"] or None
                ws.cell(row, 6).value = answer["forecast"] or None
                ws.cell(row, 12).value = answer["possibility"] or None
                ws.cell(row, 13).value = answer["measures"] or None
                causes = [c for c in answer["causes"].split(";") if c]
                text = answer["cause_text"] or None
                for column, cause in enumerate(
                    ("经费保障", "制度保障", "人员保障", "硬件条件保障", "其他"), 7
                ):
                    if cause in causes:
                        ws.cell(row, column).value, text = text or "√", None
        wb.save(path)
    return filled


def results(workdir: Path) -> Any:
    ok(workdir, "run", "--checkpoint", CHECKPOINT, "--no-send")
    return json.loads(ok(workdir, "results", "--checkpoint", CHECKPOINT, "--format", "json").output)


def test_forms_filled_in_and_imported_store_what_the_canonical_import_stores(
    base: Path, sample: Path
) -> None:
    workdir = base
    ok(workdir, "import", str(sample / "project_reports.csv"), str(sample / "indicator_reports.csv"))
    canonical, lights = stored(workdir), results(workdir)
    assert canonical[0] and canonical[1]
    engine = engine_of(workdir)
    with engine.begin() as conn:  # the May reports removed: the bureau collects them by form
        conn.execute(delete(INDICATOR_REPORT))
        conn.execute(delete(PROJECT_REPORT))
    engine.dispose()

    res = ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(workdir / "forms"))
    written = sorted((workdir / "forms").glob("*.xlsx"))
    assert [str(p) for p in written] == res.stdout.split()
    units = {r["unit_code"] for r in rows_of(sample / "projects.csv")}
    assert {p.name for p in written} == {f"监控表-{u}-{CHECKPOINT}.xlsx" for u in units}
    assert fill(workdir / "forms", sample) == len(canonical[0])

    # a form cannot tell an indicator row given blank from no row (both: not measurable yet, and the
    # same light); the sample has such rows
    given = [r for r in canonical[1] if any(v is not None for v in r[3:])]
    assert 0 < len(canonical[1]) - len(given) < 5
    res = ok(workdir, "import", str(workdir / "forms"))
    assert f"project_reports {len(canonical[0])}, indicator_reports {len(given)}" in res.output
    assert stored(workdir) == (canonical[0], given)
    assert results(workdir) == lights


def test_a_form_is_pre_filled_with_what_is_stored_and_reads_back_unchanged(base: Path, sample: Path) -> None:
    workdir = base
    ok(workdir, "import", str(sample / "project_reports.csv"), str(sample / "indicator_reports.csv"))
    canonical = stored(workdir)
    ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(workdir / "forms"))
    ok(workdir, "import", str(workdir / "forms"))
    assert stored(workdir) == canonical  # the blank rows stored stay: an import adds and replaces


def test_a_bad_cell_is_named_by_sheet_and_cell_and_nothing_is_written(base: Path, sample: Path) -> None:
    workdir = base
    ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(workdir / "forms"))
    fill(workdir / "forms", sample)
    path = sorted((workdir / "forms").glob("*.xlsx"))[0]
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws["D6"] = "一百万"
    ws["L13"] = "也许吧"
    wb.save(path)

    res = cli(workdir, "import", str(workdir / "forms"))
    assert res.exit_code == 1, res.output
    assert f"{ws.title}!D6: executed (1-5月执行数): " in res.output and "(got '一百万')" in res.output
    assert f"{ws.title}!L13: possibility (完成目标可能性): " in res.output and "(got '也许吧')" in res.output
    assert "nothing was imported" in res.output
    assert stored(workdir) == ([], [])


def test_input_cells_are_unlocked_everything_else_protected_with_a_dropdown(base: Path) -> None:
    workdir = base
    ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(workdir / "forms"))
    ws = openpyxl.load_workbook(sorted((workdir / "forms").glob("*.xlsx"))[0]).worksheets[0]
    assert ws.protection.sheet and not ws.protection.password
    assert ws["A1"].value == TITLE and ws["A2"].value == "监控期" and ws["B2"].value == CHECKPOINT
    assert ws.title == ws["D2"].value
    locked = ["B2", "D2", "B3", "C6", "E6", "A12", "B12", "C12", "D12", "N12", "C5", "G11"]
    unlocked = ["D6", "F6", "C7", "D7", "F8", "B9", "I9", "E12", "F12", "G12", "K12", "L12", "M12"]
    assert [c for c in locked if not ws[c].protection.locked] == []
    assert [c for c in unlocked if ws[c].protection.locked] == []
    last = max(r for r in range(12, ws.max_row + 1) if ws.cell(r, 14).value)
    (dv,) = ws.data_validations.dataValidation
    assert (dv.type, dv.formula1, str(dv.sqref)) == ("list", '"确定能,有可能,完全不可能"', f"L12:L{last}")
    setup = ws.page_setup
    assert (setup.orientation, int(setup.paperSize), setup.fitToWidth) == ("landscape", 9, 1)
    assert TITLE in ws.oddHeader.center.text


def test_libreoffice_prints_a_form_with_its_title(base: Path, sample: Path, tmp_path: Path) -> None:
    workdir = base
    ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(workdir / "forms"))
    path = sorted((workdir / "forms").glob("*.xlsx"))[0]
    ws = openpyxl.load_workbook(path).worksheets[0]
    pages = pdf_pages(libreoffice_pdf(path, tmp_path))
    assert len(pages) >= len(openpyxl.load_workbook(path).worksheets)
    assert TITLE in pages[0] and "".join(str(ws["B3"].value).split()) in pages[0]
    assert "年度资金总额" in pages[0] and "完成目标可能性" in pages[0]


def test_hostile_codes_and_names_make_safe_files_and_sheets(workdir: Path) -> None:
    ok(workdir, "db", "upgrade")
    engine = engine_of(workdir)
    unit, name = "../../etc/passwd", '=HYPERLINK("http://evil.example","点我")'
    codes = ["A:B*?[1]/x", "a:b*?[1]/x", "History", "'quoted'"]
    with engine.begin() as conn:  # codes an older database may hold (the import refuses them today)
        conn.execute(
            insert(UNIT).values(code=unit, name=name, email="a@example.gov.cn", supervisor_code=None)
        )
        for code in codes:
            conn.execute(
                insert(PROJECT).values(code=code, name=name, unit_code=unit, budget=100, carryover=0)
            )
    engine.dispose()
    out = workdir / "forms"
    ok(workdir, "forms", "--checkpoint", CHECKPOINT, "--out", str(out))
    (path,) = out.iterdir()
    assert path.name == f"监控表-_.._.._etc_passwd-{CHECKPOINT}.xlsx"  # in out/, never above it
    wb = openpyxl.load_workbook(path)
    titles = [ws.title for ws in wb.worksheets]
    assert len({t.lower() for t in titles}) == 4 and "history" not in {t.lower() for t in titles}
    assert all(not set(t) & set("[]:*?/\\'") and len(t) <= 31 for t in titles)
    ws = wb.worksheets[0]
    assert (ws["B3"].value, ws["B3"].data_type) == (name, "s")
    assert [ws["D2"].value for ws in wb.worksheets] == sorted(codes)
