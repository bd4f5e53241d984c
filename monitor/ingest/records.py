"""The records of a located table, a chunk at a time. In: a `Table` (ingest.locate). Out: chunks of
(row numbers, records) of the rows that read well (CSV through ingest.fastcsv, anything else and
every row it refuses through ingest.rows); the problems of the other rows, their keys as far as they
could be read (`unreadable`), and the references they hold (`Loose`, checked all the same).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Any

from monitor.core.cells import cell_text, is_blank
from monitor.ingest import exchange, fastcsv
from monitor.ingest.fastcsv import Memos
from monitor.ingest.locate import Table, data_rows
from monitor.ingest.problems import Problem, Source
from monitor.ingest.rows import BUILDERS, Record, Row

_CHUNK = 10_000  # records written (and checked) at a time
_TOTALS = frozenset({"合计", "总计", "小计"})


def _skipped(cells: Sequence[object], key_cell: object, header_key: object) -> bool:
    """A blank line, the header repeated (page breaks in exports) or a 合计 (total) line."""
    if all(is_blank(c) for c in cells) or key_cell == header_key:
        return True
    return (is_blank(key_cell) or key_cell in _TOTALS) and any(cell_text(c) in _TOTALS for c in cells)


Chunk = tuple[list[int], list[Record]]  # row numbers as Excel shows them, and their records


Loose = tuple[str, Source, int, dict[str, object]]  # kind, table, row and the readable cells of a failed row
_REFERENCES = {
    "units": ("supervisor_code",),
    "projects": ("unit_code",),
    "indicators": ("project_code",),
    "project_reports": ("project_code",),
    "indicator_reports": ("project_code", "indicator_code"),
}


def chunks(
    table: Table,
    out: list[Problem],
    unreadable: set[Hashable],
    memos: Memos,
    loose: list[Loose] | None = None,
) -> Iterator[Chunk]:
    """The readable rows of `table`, _CHUNK at a time; the problems of the others go to `out`, their
    keys (as far as they could be read) to `unreadable`, and the references they hold that could be
    read to `loose` (checked all the same: one wrong cell must not hide an unknown code)."""
    source, width = table.source, len(table.header)
    fast = (
        fastcsv.csv_parser(source.kind, source, width, memos)
        if table.path.suffix.lower() == ".csv" and not table.exchange
        else None
    )
    fallbacks = [(ix[0], ix[1:]) for ix in source.columns.values() if len(ix) > 1]
    key = source.columns["project_code" if "project_code" in source.columns else "unit_code"][0]
    header_key, blank, totals = table.header[key], [""] * width, _TOTALS
    build = exchange.distinct(source.kind, BUILDERS[source.kind]) if table.exchange else BUILDERS[source.kind]
    reference = Row(source, out)
    numbers: list[int] = []
    records: list[Record] = []
    with data_rows(table) as rows:
        for number, cells in rows:
            if len(records) >= _CHUNK:
                yield numbers, records
                numbers, records = [], []
            if fast is not None:  # CSV: every cell is text
                text = cells if len(cells) == width and not fallbacks else _csv_cells(cells, blank, fallbacks)
                key_cell = text[key]
                if key_cell != header_key and key_cell not in totals:
                    try:
                        records.append(fast(text))  # type: ignore[arg-type]
                        numbers.append(number)
                        continue
                    except ValueError:
                        pass  # the reference path says why, from the cells as they are
            key_cell = cells[key] if key < len(cells) else None
            if _skipped(cells, key_cell, header_key):
                continue
            reference.load(number, cells)
            record, record_key = build(reference)
            if record is exchange.SKIP:
                continue
            if record is None:
                unreadable.add(record_key)
                if loose is not None:
                    refs = {c: reference.values[c] for c in _REFERENCES[source.kind] if c in reference.values}
                    if refs:
                        loose.append((source.kind, source, number, refs))
            else:
                records.append(record)  # type: ignore[arg-type]
                numbers.append(number)
    if records:
        yield numbers, records


def _csv_cells(
    cells: Sequence[Any], blank: list[str], fallbacks: list[tuple[int, tuple[int, ...]]]
) -> list[Any]:
    """A CSV row cut or padded to the header's width (`blank`), a blank cell under the best alias
    filled from the next (调整后预算数 blank: 年初预算数)."""
    text = [*cells[: len(blank)], *blank[len(cells) :]]
    for first, others in fallbacks:
        if not text[first].strip():
            text[first] = next((text[i] for i in others if text[i].strip()), text[first])
    return text
