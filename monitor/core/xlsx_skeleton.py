"""A one-sheet workbook made many times over with only its last rows changing (the answer workbook each
warning e-mail carries), made in a fraction of openpyxl's time for a whole save: the rest (every part of
the .xlsx, the sheet's XML before and after those rows) is openpyxl's save of the same layout with
placeholder rows, kept per process and layout; the rows are written by openpyxl into a sheet of that
saved workbook (so their style numbers are the saved stylesheet's) and spliced in between; the sheet
and docProps/core.xml (its time) are added to an archive of the other parts compressed once (so they
come last in it). The result is the whole save's, part for part; tests/test_answer_workbook_mail.py
holds it to that.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import threading
import zipfile
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import openpyxl
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.worksheet import Worksheet
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
    book: Any  # the workbook saved, its sheet taken out: its styles number the rows' cells
    archive: bytes  # an .xlsx archive of every other part as saved (compressed once)
    head: bytes  # the sheet's XML up to the first varying row
    tail: bytes  # from the end of the rows on
    extent: tuple[int, int, int]  # first row, last row, last column of the varying rows
    styles: tuple[int, ...]
    lock: threading.Lock = field(default_factory=threading.Lock)
    core: tuple[dt.datetime, bytes] | None = None  # the last docProps/core.xml written, of its second


def made(layout: Layout, fill: Callable[[Any], None]) -> bytes | None:
    """The .xlsx `layout` makes with `fill` writing its rows from layout.first_row on (openpyxl's calls,
    the styles the placeholders have); None when `fill` wrote other rows, columns or styles than the
    placeholders took (then only a whole save makes that workbook)."""
    sk = _skeleton(layout)
    with sk.lock:  # the rows' styles are looked up (and could be added) in the shared workbook
        ws = Worksheet(sk.book)
        fill(ws)
        if (ws.min_row, ws.max_row, ws.max_column) != sk.extent or _styles(sk.book) != sk.styles:
            _skeleton.cache_clear()  # its workbook may hold a style its stylesheet lacks
            return None
        out = io.BytesIO()
        writer = WorksheetWriter(ws, out)
        writer.write_rows()
        writer.close()
        core = _core(sk, _now())
    xml = out.getvalue()
    rows = xml[xml.index(b"<sheetData>") + len(b"<sheetData>") : xml.rindex(b"</sheetData>")]
    buf = io.BytesIO(sk.archive)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(SHEET_PART, sk.head + rows + sk.tail)
        archive.writestr(CORE_PART, core)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def _skeleton(layout: Layout) -> _Skeleton:
    book = openpyxl.Workbook()
    ws = book.active
    layout.lay_out(ws)
    extent = (layout.first_row, ws.max_row, ws.max_column)
    buf = io.BytesIO()
    book.save(buf)
    with zipfile.ZipFile(buf) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts[SHEET_PART]
    head = sheet[: sheet.index(b'<row r="%d"' % layout.first_row)]
    tail = sheet[sheet.index(b"</sheetData>") :]
    book.remove(ws)
    rest = io.BytesIO()
    with zipfile.ZipFile(rest, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, data in parts.items():
            if name not in (SHEET_PART, CORE_PART):
                archive.writestr(name, data)
    return _Skeleton(book, rest.getvalue(), head, tail, extent, _styles(book))


def _styles(book: Any) -> tuple[int, ...]:
    """How many styles of each kind the workbook holds: a cell styled otherwise adds one."""
    kinds = ("_cell_styles", "_fonts", "_fills", "_borders", "_alignments", "_protections", "_number_formats")
    return tuple(len(getattr(book, kind)) for kind in kinds)


def _now() -> dt.datetime:
    """As openpyxl stamps a save: UTC, naive, whole seconds as written."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _core(sk: _Skeleton, now: dt.datetime) -> bytes:
    """docProps/core.xml saved `now` (created then too, as a workbook made and saved at once)."""
    if sk.core is None or sk.core[0] != now:
        props = copy.copy(sk.book.properties)
        props.created = props.modified = now
        sk.core = (now, bytes(tostring(props.to_tree())))
    return sk.core[1]
