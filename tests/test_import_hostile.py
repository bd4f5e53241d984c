"""Hostile and careless input to `monitor import` (issue 17): workbooks that inflate to gigabytes or
expand XML entities, duplicate columns, values that would be stored wrong, supervisor cycles, a unit
re-imported under a new code, bytes that are no text, floods of errors, and the reader process left
behind when the import is killed. Every case goes through the CLI as a user runs it: a clear error
naming the file, exit 1, the database exactly as before, in bounded time."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from monitor.cli.main import main
from monitor.db.engine import INDICATOR, INDICATOR_REPORT, PROJECT, PROJECT_REPORT, UNIT, cores, make_engine
from monitor.ingest import files

EXAMPLES = Path(__file__).parent / "data" / "import" / "worked_examples"
TABLES = (UNIT, PROJECT, INDICATOR, PROJECT_REPORT, INDICATOR_REPORT)
SHEET = "xl/worksheets/sheet1.xml"
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")])


def dump(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in TABLES}
    finally:
        engine.dispose()


@pytest.fixture
def loaded(workdir: Path) -> Path:
    """The worked examples imported: a database with something to keep unchanged."""
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def refused(workdir: Path, db_url: str, *args: str, seconds: float = 120) -> str:
    """Run `monitor import ARGS`: it must fail with exit 1 and no traceback, in bounded time, and
    leave the database as it was; returns what it printed. The bound guards against a hang (two
    billion empty rows, a billion padded cells would take hours), not a speed: generous, for a loaded
    machine (performance is bench/'s)."""
    before = dump(db_url)
    started = time.monotonic()
    res = cli(workdir, "import", *args)
    took = time.monotonic() - started
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert took < seconds, f"took {took:.1f} s"
    assert dump(db_url) == before
    return res.output


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def units_workbook(path: Path, rows: list[list[Any]]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "单位"
    ws.append(["unit_code", "unit_name", "email", "supervisor_code"])
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def replace_part(path: Path, name: str, chunks: Any) -> Path:
    """The workbook at `path` with its part `name` replaced by the bytes of `chunks` (streamed)."""
    with zipfile.ZipFile(path) as zin:
        parts = [(i, zin.read(i.filename)) for i in zin.infolist() if i.filename != name]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info, data in parts:
            zout.writestr(info, data)
        with zout.open(name, "w", force_zip64=True) as f:
            for chunk in chunks:
                f.write(chunk)
    return path


def sheet_xml(rows: str, dimension: str = "A1:D2", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{prolog}'
        f'<worksheet xmlns="{MAIN_NS}"><dimension ref="{dimension}"/>'
        f"<sheetData>{rows}</sheetData></worksheet>"
    ).encode()


HEADER_ROW = "".join(
    f'<c r="{c}1" t="inlineStr"><is><t>{h}</t></is></c>'
    for c, h in zip("ABCD", ("unit_code", "unit_name", "email", "supervisor_code"), strict=True)
)


# --- workbooks that inflate ------------------------------------------------------------------------


def test_a_workbook_that_inflates_a_thousandfold_is_refused_before_it_is_read(
    loaded: Path, db_url: str, tmp_path: Path
) -> None:
    """~100 MB of sheet XML in ~100 KB: refused from the archive's declared sizes, in seconds."""
    book = units_workbook(tmp_path / "bomb.xlsx", [])
    head, tail = sheet_xml(f'<row r="1">{HEADER_ROW}</row>@').split(b"@")
    filler = b'<row><c t="inlineStr"><is><t>                </t></is></c></row>' * 20_000
    replace_part(book, SHEET, [head, *[filler] * 100, tail])
    assert book.stat().st_size < 1_000_000
    out = refused(loaded, db_url, str(book))
    assert str(book) in out and SHEET in out
    assert "compression ratio" in out


def test_a_part_larger_than_the_limit_is_refused(
    loaded: Path, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = units_workbook(
        tmp_path / "big.xlsx", [[f"U{i}", os.urandom(20).hex(), "a@example.org", None] for i in range(2000)]
    )
    monkeypatch.setattr(files, "XLSX_MAX_PART_BYTES", 50_000)
    out = refused(loaded, db_url, str(book))
    assert str(book) in out and SHEET in out and "50,000 bytes" in out


def test_a_sheet_declaring_a_huge_dimension_is_refused(loaded: Path, db_url: str, tmp_path: Path) -> None:
    book = units_workbook(tmp_path / "wide.xlsx", [])
    replace_part(book, SHEET, [sheet_xml(f'<row r="1">{HEADER_ROW}</row>', dimension="A1:XFD1048576")])
    out = refused(loaded, db_url, str(book))
    assert str(book) in out and "A1:XFD1048576" in out


def test_rows_beyond_excel_limits_are_refused_quickly(loaded: Path, db_url: str, tmp_path: Path) -> None:
    """A row numbered 2,000,000,000 would make the reader yield two billion empty rows; a cell in
    column XFD on every row would make it pad every row to 16,384 cells."""
    far = units_workbook(tmp_path / "far.xlsx", [])
    replace_part(
        far,
        SHEET,
        [
            sheet_xml(
                f'<row r="1">{HEADER_ROW}</row><row r="2000000000"><c r="A2000000000"'
                ' t="inlineStr"><is><t>X</t></is></c></row>'
            )
        ],
    )
    out = refused(loaded, db_url, str(far))
    assert str(far) in out and "1,048,576" in out
    wide = units_workbook(tmp_path / "wide.xlsx", [])
    rows = "".join(
        f'<row r="{r}"><c r="XFD{r}" t="inlineStr"><is><t>x</t></is></c></row>' for r in range(2, 60_000)
    )
    replace_part(wide, SHEET, [sheet_xml(f'<row r="1">{HEADER_ROW}</row>{rows}')])
    out = refused(loaded, db_url, str(wide), "--errors", str(tmp_path / "errors.txt"))
    assert str(wide) in out and "cells" in out


def test_an_xml_entity_bomb_in_a_workbook_is_a_clear_error(loaded: Path, db_url: str, tmp_path: Path) -> None:
    book = units_workbook(tmp_path / "laughs.xlsx", [])
    entities = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    doctype = f"<!DOCTYPE worksheet [{entities}]>"
    rows = f'<row r="1">{HEADER_ROW}</row><row r="2"><c r="A2" t="inlineStr"><is><t>&a9;</t></is></c></row>'
    replace_part(book, SHEET, [sheet_xml(rows, prolog=doctype)])
    out = refused(loaded, db_url, str(book))
    assert str(book) in out and "XML entit" in out
    assert "EntitiesForbidden" not in out and "ParseError" not in out


# --- duplicate columns ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "letters"),
    [("unit_code", "A and E"), ("单位编码", "A and E")],
    ids=["the-same-header-twice", "a-header-and-its-alias"],
)
def test_a_column_given_twice_is_refused_naming_both(
    loaded: Path, db_url: str, tmp_path: Path, second: str, letters: str
) -> None:
    units = write_csv(
        tmp_path / "units.csv",
        [
            ["unit_code", "unit_name", "email", "supervisor_code", second],
            ["901", "县财政局", "czj@example.gov.cn", "", "902"],
        ],
    )
    out = refused(loaded, db_url, str(units))
    assert f"{units}:row 1: unit_code" in out
    assert f"columns {letters}" in out and "'unit_code'" in out and repr(second) in out


def test_the_initial_and_the_adjusted_budget_may_both_be_given(loaded: Path, tmp_path: Path) -> None:
    """The one intended pair: 年初预算数 fills in where 调整后预算数 is blank (not a duplicate)."""
    projects = write_csv(
        tmp_path / "projects.csv",
        [
            ["项目编码", "项目名称", "单位编码", "年初预算数", "调整后预算数"],
            ["2025-301-009", "新项目", "301", "10", ""],
        ],
    )
    res = cli(loaded, "import", str(projects))
    assert res.exit_code == 0, res.output


# --- values that would be stored wrong -------------------------------------------------------------


def test_a_boolean_cell_used_as_a_code_is_refused(loaded: Path, db_url: str, tmp_path: Path) -> None:
    book = units_workbook(tmp_path / "bool.xlsx", [[True, "县财政局", "czj@example.gov.cn", None]])
    out = refused(loaded, db_url, str(book))
    assert f"{book}[单位]:row 2: unit_code" in out and "TRUE/FALSE" in out


def test_a_formula_without_a_stored_value_is_named_as_a_formula(
    loaded: Path, db_url: str, tmp_path: Path
) -> None:
    """openpyxl writes formulas without a cached value, as many tools do: data_only reading sees None."""
    book = units_workbook(
        tmp_path / "formula.xlsx",
        [["901", '=B3&"局"', "czj@example.gov.cn", None], ["902", "县财政局", "=C2", None]],
    )
    out = refused(loaded, db_url, str(book))
    assert f"{book}[单位]:row 2: unit_name" in out and f"{book}[单位]:row 3: email" in out
    assert out.count("is a formula") == 2 and "value is required" not in out


def test_an_excel_error_value_is_not_taken_for_text(loaded: Path, db_url: str, tmp_path: Path) -> None:
    book = units_workbook(tmp_path / "error.xlsx", [["901", "#N/A", "czj@example.gov.cn", None]])
    out = refused(loaded, db_url, str(book))
    assert f"{book}[单位]:row 2: unit_name" in out and "Excel error value" in out


@pytest.mark.parametrize(
    ("rows", "cycle"),
    [
        ([["901", "县财政局", "a@example.gov.cn", "901"]], "901 → 901"),
        (
            [
                ["901", "县财政局", "a@example.gov.cn", "902"],
                ["902", "县教育局", "b@example.gov.cn", "903"],
                ["903", "县卫健委", "c@example.gov.cn", "901"],
            ],
            "901 → 902 → 903 → 901",
        ),
        ([["301", "市农业农村局", "nyj@example.gov.cn", "301001"]], "301 → 301001 → 301"),  # via the database
    ],
    ids=["itself", "three-units", "through-the-database"],
)
def test_a_supervisor_cycle_is_refused_naming_the_cycle(
    loaded: Path, db_url: str, tmp_path: Path, rows: list[list[str]], cycle: str
) -> None:
    units = write_csv(tmp_path / "units.csv", [["unit_code", "unit_name", "email", "supervisor_code"], *rows])
    out = refused(loaded, db_url, str(units))
    assert f"{units}:row 2: supervisor_code" in out and cycle in out


def test_a_unit_reimported_under_a_new_code_is_warned_about(loaded: Path, tmp_path: Path) -> None:
    units = write_csv(
        tmp_path / "units.csv",
        [
            ["unit_code", "unit_name", "email", "supervisor_code"],
            ["302-new", "市商务局", "swj@example.gov.cn", ""],
        ],
    )
    res = cli(loaded, "import", str(units))
    assert res.exit_code == 0, res.output
    assert "warning" in res.output and "市商务局" in res.output and "'302'" in res.output
    assert f"{units}:row 2" in res.output


def test_bytes_that_are_no_text_are_named_by_line(loaded: Path, db_url: str, tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    lines = ["unit_code,unit_name,email,supervisor_code"] + [
        f"9{i:02d},单位{i},u{i}@example.gov.cn," for i in range(40)
    ]
    data = "\n".join(lines).encode("gb18030").split(b"\n")
    data[30] = data[30].replace(b"u29", b"u\xff29")  # 0xFF: neither UTF-8 nor GB18030
    units.write_bytes(b"\n".join(data))
    out = refused(loaded, db_url, str(units))
    assert f"{units}:row 31" in out and "0xff" in out
    assert "position" not in out


# --- floods of errors ------------------------------------------------------------------------------


def _bad_reports(path: Path, n: int) -> Path:
    return write_csv(
        path,
        [
            ["checkpoint", "project_code", "executed"],
            *[["2025-05", f"2099-{i:06d}", "many"] for i in range(n)],
        ],
    )


def test_twenty_thousand_bad_rows_print_a_capped_list_and_keep_all_in_a_file(
    loaded: Path, db_url: str, tmp_path: Path
) -> None:
    reports = _bad_reports(tmp_path / "project_reports.csv", 20_000)
    out = refused(loaded, db_url, str(reports))
    assert len(out) < 20_000, len(out)
    assert "40000 problem(s)" in out
    assert "executed: 20000" in out and "project_code: 20000" in out  # counted per column
    listed = [line for line in out.splitlines() if line.startswith(str(reports))]
    assert len(listed) == 50
    (kept,) = [
        line.split("all problems: ", 1)[1].strip() for line in out.splitlines() if "all problems: " in line
    ]
    assert len(Path(kept).read_text(encoding="utf-8").splitlines()) == 40_000
    Path(kept).unlink()


def test_errors_option_writes_every_problem_to_the_named_file(
    loaded: Path, db_url: str, tmp_path: Path
) -> None:
    reports = _bad_reports(tmp_path / "project_reports.csv", 60)
    target = tmp_path / "errors.txt"
    out = refused(loaded, db_url, str(reports), "--errors", str(target))
    assert f"all problems: {target}" in out
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 120 and all(line.startswith(str(reports)) for line in lines)


def test_unknown_references_are_reported_even_when_other_cells_are_wrong(
    loaded: Path, db_url: str, tmp_path: Path
) -> None:
    projects = write_csv(
        tmp_path / "projects.csv",
        [["project_code", "project_name", "unit_code", "budget"], ["2025-999-001", "新项目", "999", "lots"]],
    )
    reports = write_csv(
        tmp_path / "indicator_reports.csv",
        [
            ["checkpoint", "project_code", "indicator_code", "actual", "possibility"],
            ["2025-05", "2025-301001-001", "77", "1", "maybe"],
        ],
    )
    out = refused(loaded, db_url, str(projects), str(reports))
    assert f"{projects}:row 2: budget" in out and f"{projects}:row 2: unit_code" in out
    assert f"{reports}:row 2: possibility" in out and f"{reports}:row 2: indicator_code" in out


# --- the reader process ----------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(x) for x in task.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or cores() < 2, reason="the reader needs fork and 2 cores"
)
def test_killing_monitor_import_ends_its_reader_process(workdir: Path, tmp_path: Path) -> None:
    from monitor.ingest.importer import READER_PROCESS_BYTES
    from monitor.tools.sample import write_sample

    paths = write_sample(tmp_path / "sample", projects=12_000)
    assert sum(p.stat().st_size for p in paths.values()) > 3 * READER_PROCESS_BYTES
    monitor = Path(sys.executable).parent / "monitor"
    proc = subprocess.Popen(
        [str(monitor), "import", str(tmp_path / "sample"), "--config", str(workdir / "config.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    child = None
    try:
        deadline = time.monotonic() + 60
        while child is None and time.monotonic() < deadline and proc.poll() is None:
            kids = _children(proc.pid)
            child = kids[0] if kids else None
            time.sleep(0.02)
        assert child is not None, "no reader process seen"
        time.sleep(0.5)  # the reader is reading and sending
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the reader outlived the killed import"
    finally:
        if proc.poll() is None:
            proc.kill()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
