"""A small table writer over openpyxl: a header and rows of plain values in, a formatted sheet out
(bold frozen header, autofilter, number formats, light cells filled in the light's colour and carrying
its word, column widths that fit Chinese text, where a CJK character counts as two, long text wrapped
in capped columns). Text is always written as text (`safe.put`), never as a formula. `print_setup`
gives a sheet its page setup (landscape A4, one page wide, header row on every page, title and page
numbers): every sheet of every workbook the project writes has it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.page import PageMargins

from monitor.core import wording
from monitor.core.model import FEN_PER_WAN
from monitor.core.safe import put
from monitor.core.wording import COLOUR, WORD, display_width

WAN = "#,##0.00"  # 万元 with two decimals
PERCENT = wording.PERCENT  # a ratio cell holds wording.shown: it reads as wording.percent
COUNT = "#,##0"
HEADER_FILL = PatternFill("solid", fgColor="FFE8ECF2")
THIN = Side(style="thin", color="FFC9CED6")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
MAX_WIDTH = 60
LINE_PT = 14.5  # one line of 11 pt text (等线 11: 14.25 pt)
LINE_FILL = 0.9  # the part of a column's width a wrapped line fills, in display columns (CJK = 2)
HEADER_ALIGN = Alignment(horizontal="center", vertical="center", wrap_text=True)
LIGHT_ALIGN = Alignment(horizontal="center", vertical="top", wrap_text=True)
TOP = Alignment(vertical="top")
WRAP = Alignment(vertical="top", wrap_text=True)


@dataclass(frozen=True)
class Col:
    header: str
    number_format: str | None = None  # WAN, PERCENT, COUNT
    max_width: int = MAX_WIDTH  # a longer header wraps
    wrap: bool = False  # long text: wrapped within max_width (the row grows), never cut


@dataclass(frozen=True)
class Lit:
    """A light cell: filled in the light's colour, showing its word (红/黄/绿/未报送)."""

    light: str | None
    word: str | None = None  # instead of the light's own word, e.g. 无可测指标

    @property
    def text(self) -> str:
        return self.word or WORD.get(self.light, self.light or "")


def wan_number(fen: int | None) -> Decimal | None:
    """fen as an exact number of 万元 (shown with two decimals)."""
    return None if fen is None else Decimal(fen) / FEN_PER_WAN


def share(n: int | None, d: int) -> Decimal | None:
    """n/d as the ratio every reader sees (wording.shown, format PERCENT): 0.23571 → 0.235."""
    return None if n is None or d <= 0 else wording.shown(Fraction(n, d))


def width(value: Any) -> int:
    """Display width of a value as Excel shows it: CJK (wide) characters count 2."""
    if value is None:
        return 0
    if isinstance(value, Lit):
        value = value.text
    elif isinstance(value, Decimal | float | int) and not isinstance(value, bool):
        value = f"{value:,.2f}"
    return display_width(str(value))


def fill(light: str | None) -> tuple[PatternFill, Font]:
    fg, bg = COLOUR.get(light, COLOUR[None])
    return PatternFill("solid", fgColor="FF" + bg.lstrip("#").upper()), Font(
        color="FF" + fg.lstrip("#").upper(), bold=True
    )


def write_table(ws: Any, cols: Sequence[Col], rows: Sequence[Sequence[Any]], start_row: int = 1) -> int:
    """Write a header and rows at `start_row`; freeze and filter when the table starts the sheet.
    Returns the last row written."""
    for j, col in enumerate(cols, 1):
        cell = put(ws, start_row, j, col.header)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = HEADER_ALIGN
    widths = [width(c.header) for c in cols]
    for i, values in enumerate(rows, start_row + 1):
        for j, (col, value) in enumerate(zip(cols, values, strict=True), 1):
            cell = put(ws, i, j, value.text if isinstance(value, Lit) else value)
            cell.border = BORDER
            if isinstance(value, Lit):
                cell.fill, cell.font = fill(value.light)
                cell.alignment = LIGHT_ALIGN
            else:
                cell.alignment = WRAP if col.wrap else TOP
                if col.number_format:
                    cell.number_format = col.number_format
            widths[j - 1] = max(widths[j - 1], width(value))
    last = start_row + len(rows)
    shown = [min(w, col.max_width) + 1.5 for w, col in zip(widths, cols, strict=True)]
    for j, w in enumerate(shown, 1):
        ws.column_dimensions[get_column_letter(j)].width = w
    wraps = [col.wrap for col in cols]
    fit_height(ws, start_row, [c.header for c in cols], [True] * len(cols), shown)
    for i, values in enumerate(rows, start_row + 1):
        fit_height(
            ws, i, values, [w or isinstance(v, Lit) for w, v in zip(wraps, values, strict=True)], shown
        )
    if start_row == 1:
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{max(last, 2)}"
    return last


def lines(value: Any, column_width: float) -> int:
    """Lines a wrapped cell takes in a column `column_width` wide (Excel's unit: one digit), with a
    margin for fonts wider than the digit (a CJK character is a little more than two digits)."""
    per_line = max(column_width * LINE_FILL - 1, 1)
    text = value.text if isinstance(value, Lit) else str(value)
    return sum(max(math.ceil(width(part) / per_line), 1) for part in text.split("\n"))


def fit_height(
    ws: Any, row: int, values: Sequence[Any], wrapped: Sequence[bool], widths: Sequence[float]
) -> None:
    """Give `row` the height its wrapped cells need: no spreadsheet program has to fit it on opening
    (LibreOffice does not, and would print the first line only)."""
    needed = max(
        (lines(v, w) for v, wrap, w in zip(values, wrapped, widths, strict=True) if wrap and v is not None),
        default=1,
    )
    if needed > 1:
        ws.row_dimensions[row].height = needed * LINE_PT + 2


def write_notes(ws: Any, row: int, lines: Sequence[str]) -> None:
    """Plain lines under a table (totals, criteria), bold, starting at `row`."""
    for i, line in enumerate(lines):
        put(ws, row + i, 1, line).font = Font(bold=True)


def print_setup(ws: Any, title: str, header_row: int = 1) -> None:
    """Print `ws` on A4 landscape, scaled to one page wide (as many pages down as it takes), row
    `header_row` repeated at the top of every page, `title` in the page header and 第 N 页，共 M 页 in the
    footer."""
    setup = ws.page_setup
    setup.orientation = ws.ORIENTATION_LANDSCAPE
    setup.paperSize = ws.PAPERSIZE_A4
    setup.fitToWidth, setup.fitToHeight = 1, 0  # 0: no limit down
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.print_options.horizontalCentered = True
    ws.page_margins = PageMargins(left=0.3, right=0.3, top=0.6, bottom=0.6, header=0.25, footer=0.25)
    ws.oddHeader.center.text = title.replace("&", "&&")  # & starts a code in a header
    ws.oddHeader.center.size = 12
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
