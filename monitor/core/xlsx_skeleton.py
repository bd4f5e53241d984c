"""A one-sheet workbook made many times over with only its last rows changing (the answer workbook each
warning e-mail carries), made in a fraction of openpyxl's time for a whole save: the rest (every part of
the .xlsx, the sheet's XML before and after those rows) is openpyxl's save of the same layout with
placeholder rows, kept per process and layout; the rows are written here, cell for cell as openpyxl
writes a text cell (`<c r=… s=… t="inlineStr"><is><t>…</t></is></c>`, escaped as its XML writer
escapes, `xml:space="preserve"` where it puts it), each cell styled as the placeholder's of its column,
and spliced in between; the sheet and docProps/core.xml (its time) are added to an archive of the other
parts compressed once (so they come last in it). The result is the whole save's, part for part;
tests/test_answer_workbook_mail.py holds it to that, for hostile texts too.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import re
import threading
import zipfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from xml.sax.saxutils import escape

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.xml.functions import tostring

SHEET_PART = "xl/worksheets/sheet1.xml"
CORE_PART = "docProps/core.xml"  # its created and modified times are each save's own


class Layout(Hashable, Protocol):
    """A workbook but its last rows: `lay_out` writes its one sheet whole, with placeholder rows from
    `first_row` on, styled as the real ones; equal layouts write equal workbooks."""

    @property
    def first_row(self) -> int: ...

    def lay_out(self, ws: Any) -> None: ...


@dataclass
class _Skeleton:
    props: Any  # the workbook's document properties (docProps/core.xml but its times)
    archive: bytes  # an .xlsx archive of every other part as saved (compressed once)
    head: bytes  # the sheet's XML up to the first varying row
    tail: bytes  # from the end of the rows on
    rows: int  # how many placeholder rows the layout has
    row: str  # the placeholder's <row> element's attributes but its number
    styles: tuple[tuple[str, str], ...]  # each cell of a placeholder row: its column, its ` s="…"` or ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    core: tuple[dt.datetime, bytes] | None = None  # the last docProps/core.xml written, of its second


def made(layout: Layout, rows: Sequence[Sequence[str | None]]) -> bytes | None:
    """The .xlsx `layout` makes with `rows` in place of its placeholder rows: each row the texts of its
    first cells (None: an empty cell), the rest of its cells empty, every cell styled as the
    placeholder's of its column, as openpyxl would write them (text cells, never formulas); None when
    the rows do not fit the placeholders (another number of rows, more values than cells) or hold a
    character a worksheet cannot (then only a whole save makes that workbook, or refuses it)."""
    sk = _skeleton(layout)
    if len(rows) != sk.rows or any(len(values) > len(sk.styles) for values in rows):
        return None
    out: list[str] = []
    for n, values in enumerate(rows, layout.first_row):
        out.append(f'<row r="{n}"{sk.row}>')
        for i, (column, style) in enumerate(sk.styles):
            value = values[i] if i < len(values) else None
            if value is None:
                out.append(f'<c r="{column}{n}"{style} t="n" />')
                continue
            value = value[:MAX_CELL]  # as openpyxl keeps it
            if ILLEGAL_CHARACTERS_RE.search(value):
                return None
            if value == "":
                out.append(f'<c r="{column}{n}"{style} t="inlineStr" />')
                continue
            stripped = value.strip()
            space = ' xml:space="preserve"' if stripped and value != stripped else ""
            out.append(f'<c r="{column}{n}"{style} t="inlineStr"><is><t{space}>{escape(value)}</t></is></c>')
        out.append("</row>")
    with sk.lock:
        core = _core(sk, _now())
    buf = io.BytesIO(sk.archive)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(SHEET_PART, sk.head + "".join(out).encode() + sk.tail)
        archive.writestr(CORE_PART, core)
    return buf.getvalue()


MAX_CELL = 32767  # characters a cell holds; openpyxl cuts a longer text there
_ROW = re.compile(rb'<row r="(\d+)"([^>]*)>(.*?)</row>', re.S)
_CELL = re.compile(rb'<c r="([A-Z]+)(\d+)"( s="\d+")?[ >/]')


@functools.lru_cache(maxsize=64)
def _skeleton(layout: Layout) -> _Skeleton:
    book = openpyxl.Workbook()
    ws = book.active
    layout.lay_out(ws)
    rows = ws.max_row - layout.first_row + 1
    buf = io.BytesIO()
    book.save(buf)
    with zipfile.ZipFile(buf) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts[SHEET_PART]
    start, end = sheet.index(b'<row r="%d"' % layout.first_row), sheet.index(b"</sheetData>")
    first = _ROW.match(sheet, start)
    assert first is not None, "openpyxl writes <row r=…>"
    styles = tuple((c[1].decode(), (c[3] or b"").decode()) for c in _CELL.finditer(first[3]))
    rest = io.BytesIO()
    with zipfile.ZipFile(rest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, data in parts.items():
            if name not in (SHEET_PART, CORE_PART):
                archive.writestr(name, data)
    return _Skeleton(
        book.properties, rest.getvalue(), sheet[:start], sheet[end:], rows, first[2].decode(), styles
    )


def _now() -> dt.datetime:
    """As openpyxl stamps a save: UTC, naive, whole seconds as written."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _core(sk: _Skeleton, now: dt.datetime) -> bytes:
    """docProps/core.xml saved `now` (created then too, as a workbook made and saved at once)."""
    if sk.core is None or sk.core[0] != now:
        props = copy.copy(sk.props)
        props.created = props.modified = now
        sk.core = (now, bytes(tostring(props.to_tree())))
    return sk.core[1]
