"""A small table writer over openpyxl: a header and rows of plain values in, a formatted sheet out
(bold frozen header, autofilter, number formats, light cells filled in the light's colour and carrying
its word, column widths that fit Chinese text, where a CJK character counts as two). Text is always
written as text (`safe.put`), never as a formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from monitor.model import FEN_PER_WAN
from monitor.reports.figures import display_width
from monitor.safe import put
from monitor.views import COLOUR, WORD

WAN = "#,##0.00"  # 万元 with two decimals
PERCENT = "0.0%"
COUNT = "#,##0"
HEADER_FILL = PatternFill("solid", fgColor="FFE8ECF2")
THIN = Side(style="thin", color="FFC9CED6")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
MAX_WIDTH = 60


@dataclass(frozen=True)
class Col:
    header: str
    number_format: str | None = None  # WAN, PERCENT, COUNT
    max_width: int = MAX_WIDTH


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
    """n/d truncated to 0.1 % (as the `0.0%` format shows it): a rate just under a threshold never
    reads as the threshold itself."""
    return None if n is None or d <= 0 else Decimal((n * 1000) // d).scaleb(-3)


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
        cell.alignment = Alignment(horizontal="center", vertical="center")
    widths = [width(c.header) for c in cols]
    for i, values in enumerate(rows, start_row + 1):
        for j, (col, value) in enumerate(zip(cols, values, strict=True), 1):
            cell = put(ws, i, j, value.text if isinstance(value, Lit) else value)
            cell.border = BORDER
            if isinstance(value, Lit):
                cell.fill, cell.font = fill(value.light)
                cell.alignment = Alignment(horizontal="center")
            elif col.number_format:
                cell.number_format = col.number_format
            widths[j - 1] = max(widths[j - 1], width(value))
    last = start_row + len(rows)
    for j, col in enumerate(cols, 1):
        ws.column_dimensions[get_column_letter(j)].width = min(widths[j - 1], col.max_width) + 2
    if start_row == 1:
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(cols))}{max(last, 2)}"
    return last


def write_notes(ws: Any, row: int, lines: Sequence[str]) -> None:
    """Plain lines under a table (totals, criteria), bold, starting at `row`."""
    for i, line in enumerate(lines):
        put(ws, row + i, 1, line).font = Font(bold=True)
