"""The answer workbook a warning e-mail carries (no signing secret) is made from a skeleton kept per
process (core.xlsx_skeleton: openpyxl's save of the layout, the cases' rows written as openpyxl writes
them and spliced in) instead of a whole openpyxl save per unit. It must stay the workbook `monitor responses
template --unit` writes: every part of the .xlsx the same bytes (but docProps/core.xml, which holds the
save time), so the same sheet, header, dropdowns, text and date checks, styles, widths, frozen panes and
page setup; LibreOffice opens it. Its speed is bench/bench_workbook.py's; the import of a filled-in one
is test_answer's."""

from __future__ import annotations

import datetime as dt
import io
import threading
import zipfile
from pathlib import Path
from typing import Any, cast

import openpyxl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openpyxl.utils.exceptions import IllegalCharacterError
from test_answer import cli, mails, shipped  # noqa: F401 (fixture)
from test_report_print import libreoffice_pdf, pdf_pages

from monitor.cases import rectification as rc
from monitor.cases.rectification import CAUSES
from monitor.core import xlsx_skeleton
from monitor.ingest.workbook import AnswerRow, answer_workbook, write_template

CORE = "docProps/core.xml"


def parts(data: bytes) -> dict[str, bytes]:
    """The parts of an .xlsx by name, in the archive's order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def same_but_the_time(made: bytes, saved: bytes) -> None:
    a, b = parts(made), parts(saved)
    assert sorted(a) == sorted(b)
    assert {name: a[name] for name in a if name != CORE} == {name: b[name] for name in b if name != CORE}


def test_the_workbook_of_a_warning_mail_is_the_units_template_part_for_part(
    shipped: Path,  # noqa: F811 (fixture)
    tmp_path: Path,
) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    warnings = mails(shipped / "outbox", "warning")  # parsed with email.policy.strict
    assert len(warnings) >= 2
    for (checkpoint, unit), msg in warnings.items():
        (part,) = list(msg.iter_attachments())
        attached = cast(bytes, part.get_content())
        out = tmp_path / f"{unit}.xlsx"
        res = cli(
            shipped, "responses", "template", "--checkpoint", checkpoint, "--unit", unit, "--out", str(out)
        )
        assert res.exit_code == 0, res.output
        same_but_the_time(attached, out.read_bytes())

    attached = cast(bytes, next(warnings[("2025-05", "304")].iter_attachments()).get_content())
    wb = openpyxl.load_workbook(io.BytesIO(attached))
    assert wb.sheetnames == ["整改反馈"]
    assert (
        before - dt.timedelta(minutes=5)
        <= wb.properties.modified
        <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    )
    ws = wb["整改反馈"]
    assert [ws[f"{c}4"].value for c in "ABDGH"] == ["2025-05", "304", "2025-304-001", "待反馈", None]
    assert ws.max_row == 5 and ws["D5"].value == "2025-304-002"
    checks = {str(d.sqref): d for d in ws.data_validations.dataValidation}
    assert sorted(checks) == ["I4:I5", "J4:J5", "K4:K5", "L4:L5", "M4:M5"]
    assert checks["I4:I5"].type == "list" and checks["I4:I5"].formula1 == '"' + ",".join(CAUSES) + '"'
    assert (
        checks["K4:K5"].type == "list"
        and checks["K4:K5"].formula1 == '"' + ",".join(rc.MEASURES.values()) + '"'
    )
    assert checks["J4:J5"].type == checks["L4:L5"].type == "textLength"
    assert checks["M4:M5"].type == "date"
    assert all(d.showErrorMessage for d in checks.values())
    for row in (4, 5):
        assert all(ws.cell(row, i).number_format == "@" for i in range(1, 9))  # identity stays text
        assert all(ws.cell(row, i).fill.fgColor.rgb == "00FFF2CC" for i in range(9, 14))  # answer cells
        assert all(ws.cell(row, i).alignment.wrap_text for i in range(9, 14))
        assert ws.cell(row, 13).number_format == "yyyy-mm-dd"
    assert ws["A3"].font.bold and ws["I3"].fill.fgColor.rgb == "00FFF2CC"
    assert ws.freeze_panes == "A4" and ws.print_title_rows == "$3:$3"
    assert ws.column_dimensions["E"].width == 30 and ws.column_dimensions["J"].width == 40

    book = (
        tmp_path / "反馈表-304-2025-05.xlsx"
    )  # its parts in another order than openpyxl's: LibreOffice reads it
    book.write_bytes(attached)
    (page,) = pdf_pages(libreoffice_pdf(book, tmp_path))
    assert "整改反馈表" in page and "2025-304-001" in page and "2025-304-002" in page


def case(n: int, state: str = rc.State.OPEN.value, comment: str = "") -> AnswerRow:
    return AnswerRow(
        checkpoint="2025-05",
        unit_code="304",
        project_code=f"2025-304-{n:03d}",
        project_name=f" 路灯<改造>&维护 {n} ",  # spaces kept, XML's characters escaped
        light=("red", "yellow")[n % 2],
        state=state,
        comment=comment,
    )


def saved(found: list[AnswerRow], names: dict[str, str], day: dt.date, checkpoint: str = "2025-05") -> bytes:
    buf = io.BytesIO()
    write_template(buf, checkpoint, found, names, day)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("found", "day", "checkpoint"),
    [
        ([case(1)], dt.date(2025, 6, 10), "2025-05"),
        ([case(i) for i in range(1, 4)], dt.date(2025, 6, 10), "2025-05"),
        ([case(1, rc.State.RETURNED.value, " 请补充说明 ")] * 2, dt.date(2025, 6, 11), "2025-05"),
        ([case(i) for i in range(1, 41)], dt.date(2026, 1, 1), "2025-08"),
        ([], dt.date(2025, 6, 10), "2025-05"),  # nothing waits: the template's placeholder rows
    ],
)
def test_the_answer_workbook_is_openpyxls_whole_save_part_for_part(
    found: list[AnswerRow], day: dt.date, checkpoint: str
) -> None:
    names = {"304": "州交通局（本级）"}
    for _ in range(2):  # the skeleton made, then kept
        same_but_the_time(
            answer_workbook(checkpoint, found, names, day), saved(found, names, day, checkpoint)
        )


def test_threads_making_workbooks_at_once_each_get_their_own() -> None:
    day, failures = dt.date(2025, 6, 10), []

    def make(k: int) -> None:
        for n in range(1, 11):
            found, names = [case(i) for i in range(n)], {"304": f"单位{k}-{n}"}
            try:
                same_but_the_time(answer_workbook("2025-05", found, names, day), saved(found, names, day))
            except AssertionError as e:
                failures.append(e)

    threads = [threading.Thread(target=make, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


class Rows:
    """A sheet with a header and `rows` numbered rows of two cells (an xlsx_skeleton.Layout)."""

    first_row = 2

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __hash__(self) -> int:
        return self.rows

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rows) and other.rows == self.rows

    def lay_out(self, ws: Any) -> None:
        ws["A1"] = "编号"
        for n in range(2, self.rows + 2):
            ws.cell(n, 1, "").font = openpyxl.styles.Font(bold=True)
            ws.cell(n, 2).number_format = "@"


def test_rows_the_placeholders_did_not_take_are_refused_not_spliced() -> None:
    assert xlsx_skeleton.made(Rows(2), [("1",), ("2", None)]) is not None
    assert xlsx_skeleton.made(Rows(2), [("1",), ("2",), ("3",)]) is None  # another number of rows
    assert xlsx_skeleton.made(Rows(2), [("1",), ("2", "b", "c")]) is None  # more cells than it has
    assert xlsx_skeleton.made(Rows(2), [("1",), ("a\x07b",)]) is None  # a character no cell holds


texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from(" \t\r\n&<>\"'\u3000=\x07\x1f"),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=4), texts)
@example([(" ", "\u3000", " a ")], "\r\n")  # spaces alone are not marked to be kept, around text they are
@example([("a&b", "<名>", "=1+1")], "x\x07")
@example([("P1", "长" * 40_000, "")], "")  # longer than a cell holds
def test_any_text_is_written_as_openpyxl_writes_it_or_refused_as_it_refuses_it(
    rows: list[tuple[str, str, str]], unit_name: str
) -> None:
    """Hostile and careless texts (XML's own characters, spaces at either end, control characters, a
    text of spaces, astral characters, `=…`) in the names, codes and comments a row shows: the rows
    written directly are openpyxl's, part for part, or refused as openpyxl refuses them."""
    found = [
        AnswerRow(
            checkpoint="2025-05",
            unit_code="304",
            project_code=code,
            project_name=name,
            light="red",
            state=rc.State.RETURNED.value,
            comment=comment,
        )
        for code, name, comment in rows
    ]
    day, names = dt.date(2025, 6, 10), {"304": unit_name}
    try:
        whole = saved(found, names, day)
    except IllegalCharacterError:
        with pytest.raises(IllegalCharacterError):
            answer_workbook("2025-05", found, names, day)
        return
    same_but_the_time(answer_workbook("2025-05", found, names, day), whole)
