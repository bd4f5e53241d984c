"""Fuzzing the CSV/XLSX import (issue 17): random bytes as a CSV file, random headers and cells in CSV
text, random cells in a workbook (text, numbers, TRUE/FALSE, dates, formulas, huge strings, control
characters). Through the function `monitor import` calls: it either imports or raises ImportFailed
with the project's own problems (never another exception), and on ImportFailed the database is
exactly as before. Each case has a deadline; the example counts are modest so this runs in seconds."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Engine, select

from monitor.db.engine import INDICATOR, INDICATOR_REPORT, PROJECT, PROJECT_REPORT, UNIT, make_engine
from monitor.ingest.columns import ALIASES, SHEET_NAMES
from monitor.ingest.importer import ImportFailed, Problem, import_paths

EXAMPLES = Path(__file__).parent / "data" / "import" / "worked_examples"
TABLES = (UNIT, PROJECT, INDICATOR, PROJECT_REPORT, INDICATOR_REPORT)
EXAMPLES_EACH = int(os.environ.get("MONITOR_FUZZ_EXAMPLES", "25"))  # set it higher to hunt (random cases)
FUZZ = settings(
    max_examples=EXAMPLES_EACH,
    deadline=dt.timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize="MONITOR_FUZZ_EXAMPLES" not in os.environ,  # by default the same cases every run
)
_cases = itertools.count()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    import_paths(eng, [EXAMPLES])
    yield eng
    eng.dispose()


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in TABLES}


def imports_or_refuses_cleanly(engine: Engine, path: Path) -> None:
    """Counts, or ImportFailed with Problems naming files and nothing written."""
    before = dump(engine)
    try:
        counts = import_paths(engine, [path])
    except ImportFailed as exc:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
        assert all(p.file.startswith(str(path.parent)) or p.file.startswith("<") for p in exc.problems)
        assert all(str(p) and "Traceback" not in str(p) for p in exc.problems)
        assert dump(engine) == before
    else:
        assert set(counts) >= {"units", "projects"}


def new_path(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / f"case{next(_cases)}"
    folder.mkdir()
    return folder / name


HEADERS = sorted({h for columns in ALIASES.values() for c, aliases in columns.items() for h in (c, *aliases)})
FILE_NAMES = ["units", "projects", "indicators", "project_reports", "indicator_reports", "data", "单位"]
headers = st.lists(st.one_of(st.sampled_from(HEADERS), st.text(max_size=12)), min_size=1, max_size=12)
codes = st.sampled_from(["301", "302", "301001", "2025-301001-001", "2025-302-001", "01", "02", "2025-05"])
short_text = st.text(max_size=30)
controls = st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=10)  # ASCII and C0/C1 controls
numbers_as_text = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        ["1,234.50", "41.7%", "１２３", "1e309", "-0", "≥90%", "2025年5月", "2025-13-01", "合计"]
    ),
)
text_cells = st.one_of(codes, short_text, controls, numbers_as_text, st.just(""))


@FUZZ
@given(
    data=st.binary(max_size=3000),
    header=st.sampled_from(
        [
            b"",
            b"unit_code,unit_name,email\n",
            b"project_code,project_name,unit_code,budget\n",
            b"checkpoint,project_code,executed\n",
        ]
    ),
)
def test_random_bytes_as_a_csv_file(engine: Engine, tmp_path: Path, data: bytes, header: bytes) -> None:
    path = new_path(tmp_path, "units.csv")
    path.write_bytes(header + data)
    imports_or_refuses_cleanly(engine, path)


@FUZZ
@given(
    name=st.sampled_from(FILE_NAMES),
    header=headers,
    rows=st.lists(st.lists(text_cells, max_size=12), max_size=8),
    delimiter=st.sampled_from([",", "\t", ";"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
)
def test_random_headers_and_cells_in_a_csv_file(
    engine: Engine,
    tmp_path: Path,
    name: str,
    header: list[str],
    rows: list[list[str]],
    delimiter: str,
    encoding: str,
) -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows([header, *rows])
    path = new_path(tmp_path, f"{name}.csv")
    path.write_bytes(out.getvalue().encode(encoding, errors="replace"))
    imports_or_refuses_cleanly(engine, path)


cells = st.one_of(
    st.none(),
    text_cells,
    st.text(min_size=1, max_size=40).map(lambda s: "=" + s),  # a formula, never calculated
    st.sampled_from(["=1+1", "=SUM(A1:A3)", '="30"&"1"', "=A2", "=1/0"]),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 12, 31)),
    st.builds(lambda n: "长" * n, st.integers(1000, 40_000)),  # huge strings
)


def _writable(value: Any) -> Any:
    """What openpyxl can write: characters XML cannot hold dropped (a real workbook cannot hold them)."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


@FUZZ
@given(
    sheets=st.lists(
        st.tuples(
            st.sampled_from([n for names in SHEET_NAMES.values() for n in names] + ["Sheet", "说明"]),
            headers,
            st.lists(st.lists(cells, max_size=10), max_size=6),
            st.sampled_from([None, "0%", "0.0%", "yyyy-mm-dd", "@"]),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_random_cells_in_a_workbook(engine: Engine, tmp_path: Path, sheets: list[Any]) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for i, (title, header, rows, number_format) in enumerate(sheets):
        ws = wb.create_sheet(f"{title}{i or ''}")
        ws.append([_writable(h) for h in header])
        for row in rows:
            ws.append([_writable(c) for c in row])
        if number_format and ws.max_row > 1:
            for cell in ws[2]:
                cell.number_format = number_format
    path = new_path(tmp_path, "book.xlsx")
    wb.save(path)
    imports_or_refuses_cleanly(engine, path)
