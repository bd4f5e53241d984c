"""Outputs that turn data into code, and names used as file names (issue 17), through the CLI: text that
looks like a formula (`=0次`, `=HYPERLINK(…)`) stays text in every workbook the project writes (the
warning list, the bureau summary's attachment, the responses template; checked again after a round trip
through LibreOffice), CSV cells starting with = + - @ TAB CR are neutralised with a `'`, a code that is
no file name is refused at import, and a database that already holds one still previews and delivers
every message into its own folder."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from monitor.cli.main import main
from monitor.db.engine import make_engine
from monitor.deliver import outbox

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
LINK = '=HYPERLINK("http://x","点此")'


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


def edit(path: Path, change: Any) -> None:
    rows = read_csv(path)
    write_csv(path, [rows[0], *(change(dict(zip(rows[0], r, strict=True))) for r in rows[1:])])


def mail_config(workdir: Path) -> None:
    """File mode with the Excel warning list attached to the bureau summary; quick retries."""
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + """mail:
  mode: file
  file_dir: outbox
  summary_attachments: [xlsx]
  retry: {backoff_seconds: 0.05, backoff_max_seconds: 0.1, inline_wait_seconds: 1, max_attempts: 4}
""",
        encoding="utf-8",
    )


@pytest.fixture
def hostile_data(tmp_path: Path) -> Path:
    """The worked examples, with unit 302 and its project named `=HYPERLINK(…)`, an indicator of that
    project whose target is the ordinary `=0` 次 (missed in May)."""
    out = tmp_path / "hostile"
    shutil.copytree(EXAMPLES, out)
    edit(
        out / "units.csv",
        lambda r: [LINK if (k, r["unit_code"]) == ("unit_name", "302") else v for k, v in r.items()],
    )
    edit(
        out / "projects.csv",
        lambda r: [
            v if k != "project_name" or r["project_code"] != "2025-302-001" else LINK for k, v in r.items()
        ],
    )
    rows = read_csv(out / "indicators.csv")
    rows.append(["2025-302-001", "01", "产出指标", "数量", "安全事故次数", "=", "=0", "次", "", ""])
    write_csv(out / "indicators.csv", rows)
    rows = read_csv(out / "indicator_reports.csv")
    rows.append(["2025-05", "2025-302-001", "01", "2", "", "", "", "", ""])
    write_csv(out / "indicator_reports.csv", rows)
    return out


@pytest.fixture
def hostile(workdir: Path, hostile_data: Path) -> Path:
    """The hostile data imported and May run, its messages delivered as .eml files."""
    mail_config(workdir)
    res = cli(workdir, "import", str(hostile_data))
    assert res.exit_code == 0, res.output
    res = cli(workdir, "run", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    return workdir


def text_cells(book: Any) -> Iterator[tuple[str, Any]]:
    """(sheet, cell) of every cell holding text or a formula."""
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    yield ws.title, cell


def assert_all_text(book: Any, *expected: str) -> None:
    """Every text cell is a string cell (never a formula or an error), and `expected` are all there."""
    found = set()
    for sheet, cell in text_cells(book):
        assert cell.data_type == "s", f"{sheet}!{cell.coordinate} {cell.value!r} is {cell.data_type!r}"
        assert cell.hyperlink is None, f"{sheet}!{cell.coordinate}"
        found.add(cell.value)
    assert set(expected) <= found, set(expected) - found


# --- workbooks ---------------------------------------------------------------------------------------


def test_the_warning_list_writes_formula_looking_text_as_text_also_after_libreoffice(
    hostile: Path, tmp_path: Path
) -> None:
    original = tmp_path / "out" / "预警清单.xlsx"
    res = cli(hostile, "report", "--checkpoint", "2025-05", "--format", "xlsx", "--out", str(original))
    assert res.exit_code == 0, res.output
    book = openpyxl.load_workbook(original)
    assert_all_text(book, LINK, "=0次")
    names = {r[0]: r[4] for r in book["预警清单"].iter_rows(min_row=2, values_only=True)}
    assert names["302"] == LINK  # the unit code -> project name, unchanged
    (target,) = [
        r[7] for r in book["指标明细"].iter_rows(min_row=2, values_only=True) if r[1] == "2025-302-001"
    ]
    assert target == "=0次"

    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("LibreOffice is required for this test: apt-get install libreoffice-calc")
    profile = f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}"
    cmd = [
        soffice,
        profile,
        "--headless",
        "--convert-to",
        "xlsx",
        "--outdir",
        str(tmp_path / "lo"),
        str(original),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    again = openpyxl.load_workbook(tmp_path / "lo" / original.name)
    assert_all_text(again, LINK, "=0次")
    shown = openpyxl.load_workbook(tmp_path / "lo" / original.name, data_only=True)
    for sheet in shown.worksheets:
        for row in sheet.iter_rows(values_only=True):
            assert not any(isinstance(v, str) and v.startswith("#") for v in row), (sheet.title, row)
    for name in book.sheetnames:
        a = [[v for v in r if isinstance(v, str)] for r in book[name].iter_rows(values_only=True)]
        b = [[v for v in r if isinstance(v, str)] for r in again[name].iter_rows(values_only=True)]
        assert a == b[: len(a)], name


def test_the_bureau_summary_attachment_writes_formula_looking_text_as_text(hostile: Path) -> None:
    summaries = []
    for path in sorted((hostile / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["X-Monitor-Kind"] == "summary":
            summaries.append(msg)
    (summary,) = summaries
    (attachment,) = list(summary.iter_attachments())
    assert_all_text(openpyxl.load_workbook(io.BytesIO(attachment.get_content())), LINK, "=0次")


def test_the_responses_template_writes_formula_looking_text_as_text(hostile: Path, tmp_path: Path) -> None:
    out = tmp_path / "302.xlsx"
    res = cli(hostile, "responses", "template", "--checkpoint", "2025-05", "--unit", "302", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert_all_text(openpyxl.load_workbook(out), LINK)


# --- CSV ---------------------------------------------------------------------------------------------


def test_results_csv_neutralises_cells_that_spreadsheets_would_run(hostile: Path, tmp_path: Path) -> None:
    res = cli(hostile, "results", "--checkpoint", "2025-05", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    out = tmp_path / "results.csv"
    assert (
        cli(hostile, "results", "--checkpoint", "2025-05", "--format", "csv", "--out", str(out)).exit_code
        == 0
    )
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.DictReader(f)) == rows
    by_code = {r["project_code"]: r for r in rows}
    assert by_code["2025-302-001"]["project_name"] == "'" + LINK
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "@", "\t", "\r")), value
            assert not value.startswith("-") or float(value) < 0, value


# --- codes and file names ----------------------------------------------------------------------------


def test_a_code_that_is_no_file_name_is_refused_at_import(workdir: Path, tmp_path: Path) -> None:
    data = tmp_path / "bad"
    shutil.copytree(EXAMPLES, data)
    edit(data / "units.csv", lambda r: [{"302": "30/2", "303": "..303"}.get(v, v) for v in r.values()])
    edit(
        data / "indicators.csv",
        lambda r: [".01" if (k, v) == ("indicator_code", "02") else v for k, v in r.items()],
    )
    res = cli(workdir, "import", str(data))
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    for file, column, value in (
        ("units.csv", "unit_code", "30/2"),
        ("units.csv", "unit_code", "..303"),
        ("indicators.csv", "indicator_code", ".01"),
    ):
        (line,) = [x for x in lines if f"{file}:row " in x and f" {column}" in x and value in x]
        assert "letters, digits" in line, line
    assert "nothing" in res.output
    res = cli(workdir, "results", "--checkpoint", "2025-05", "--format", "json")
    assert res.exit_code == 1  # nothing was imported, nothing ran
    # codes of letters, digits, '-', '_' and '.' (and full-width digits) are fine
    ok = tmp_path / "ok"
    ok.mkdir()
    write_csv(
        ok / "units.csv",
        [
            ["unit_code", "unit_name", "email"],
            ["A-1_b.2", "县商务局", "swj@example.gov.cn"],
            ["３０９", "县林业局", "lyj@example.gov.cn"],
        ],
    )
    res = cli(workdir, "import", str(ok))
    assert res.exit_code == 0, res.output


def plant_bad_codes(workdir: Path, db_url: str) -> None:
    """As an old database might hold them: unit 302 under `../../escape`, unit 304 (two projects) under
    `a/b:c*?`, with their projects."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        for old, new in (("302", "../../escape"), ("304", "a/b:c*?")):
            conn.execute(
                text(
                    "INSERT INTO unit (code, name, email, supervisor_code) SELECT :new, name, email, "
                    "supervisor_code FROM unit WHERE code = :old"
                ),
                {"new": new, "old": old},
            )
            conn.execute(
                text("UPDATE project SET unit_code = :new WHERE unit_code = :old"), {"new": new, "old": old}
            )
            conn.execute(text("DELETE FROM unit WHERE code = :old"), {"old": old})
    engine.dispose()


def files_under(folder: Path) -> set[Path]:
    """Files written under folder, leaving out the SQLite database's own (its -wal/-shm come and go)."""
    return {p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("monitor.db")}


def test_preview_mail_keeps_bad_codes_of_an_old_database_inside_its_folder(
    workdir: Path, db_url: str
) -> None:
    mail_config(workdir)
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    plant_bad_codes(workdir, db_url)
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    before = files_under(workdir.parent)
    out = workdir / "preview"
    res = cli(workdir, "preview-mail", "--checkpoint", "2025-05", "--out", str(out))
    assert res.exit_code == 0, res.output
    new = files_under(workdir.parent) - before
    assert new and all(p.parent == out for p in new), sorted(new)
    names = sorted(p.name for p in new)
    assert any("-warning-.._.._escape." in n for n in names), names
    assert any("-warning-a_b_c__." in n for n in names), names
    assert {p.suffix for p in new} == {".eml", ".html"}


def test_file_delivery_keeps_bad_codes_of_an_old_database_inside_its_folder(
    workdir: Path, db_url: str
) -> None:
    mail_config(workdir)
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    plant_bad_codes(workdir, db_url)
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    before = files_under(workdir.parent)
    res = cli(workdir, "send")
    assert res.exit_code == 0, res.output
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = outbox.messages(conn)
    engine.dispose()
    assert rows and {r["status"] for r in rows} == {"sent"}, [(r["status"], r["last_error"]) for r in rows]
    delivered = files_under(workdir.parent) - before
    assert len(delivered) == len(rows) and all(p.parent == workdir / "outbox" for p in delivered)
    assert not any(p.name.startswith(".") for p in delivered)


def test_the_helpers_neutralise_only_text_and_name_files_safely() -> None:
    from monitor.core.safe import MAX_NAME_BYTES, csv_cell, safe_name

    assert [csv_cell(x) for x in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx")] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
    ]
    assert [csv_cell(x) for x in (-0.25, -3, None, "", "a=b", "市局")] == [-0.25, -3, None, "", "a=b", "市局"]
    assert [safe_name(x) for x in ("", ".", "..", ".hidden", "a/b", "..\\x", "市局-01.2")] == [
        "_",
        "_.",
        "_..",
        "_.hidden",
        "a_b",
        "_.._x",
        "市局-01.2",
    ]
    long = safe_name("局" * 300)
    assert len(long.encode("utf-8")) <= MAX_NAME_BYTES and long == "局" * (MAX_NAME_BYTES // 3)
