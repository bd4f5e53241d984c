"""The import's fast path for CSV text: parsed values remembered by cell text. In: a CSV table's
`Source` and the import's memos. Out: a function from a row's cells to its record (the same record
ingest.rows reads), raising ValueError where ingest.rows must look.

A CSV cell is text and every parser of ingest.rows is a pure function of it, so a value seen before (a
checkpoint, an indicator code, `≥`, `100`, an empty cell) is looked up instead of parsed again. A row's
values are looked up in one `map` over the memos; a text not seen yet is parsed then. A row that does
not parse goes to the reference path (ingest.rows), which parses it again and says what is wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from monitor.core.cells import parse_emails, parse_free_text, parse_text
from monitor.core.dates import parse_checkpoint
from monitor.core.errors import MonitorError
from monitor.core.model import Kind
from monitor.core.numeric import parse_amount
from monitor.core.values import parse_actual, parse_causes, parse_fund_flag, parse_kind, parse_possibility
from monitor.ingest import columns as cols
from monitor.ingest.problems import Source
from monitor.ingest.rows import (
    BLANK_REQUIRED,
    Record,
    depends_on_name,
    direction_and_target,
    parse_budget,
    parse_project_code,
    parse_unit_code,
)

T = TypeVar("T")
_MEMO_SIZE = 100_000  # texts per column; emptied when full (codes of a million projects would not fit)


class _NeedsName(MonitorError, ValueError):
    """The target's check looks at the indicator's name (see rows.target_problem): not remembered."""


class _Memo(dict[Any, Any]):
    """Parsed values by cell text: a text not seen yet is parsed (ValueError if it cannot be) and kept."""

    def __init__(self, parse: Callable[[Any], Any]) -> None:
        super().__init__()
        self.parse = parse

    def __missing__(self, text: Any) -> Any:
        value = self.parse(text)
        if len(self) >= _MEMO_SIZE:
            self.clear()
        self[text] = value
        return value


def _required(parse: Callable[[str], T]) -> Callable[[str], T]:
    def cell(text: str) -> T:
        if not text.strip():
            raise ValueError(BLANK_REQUIRED)
        return parse(text)

    return cell


def _optional(parse: Callable[[str], T], blank: Any = None) -> Callable[[str], T | Any]:
    return lambda text: parse(text) if text.strip() else blank


def _kind_value(text: str) -> str | None:
    kind = parse_kind(text)
    return kind.value if kind else None


def _tail(texts: Sequence[str], name: str | None) -> Record:
    """An indicator's (direction, target, measure unit, kind, profile) from their texts; with
    `name` None, _NeedsName where the target's check would look at the name."""
    direction, target, unit, kind, profile = texts
    u, k, pro = _PARSE["measure_unit"](unit), _PARSE["kind"](kind), _PARSE["profile"](profile)
    d, t, failures = direction_and_target(direction, target, name or "", u, Kind(k) if k else None)
    if failures or d is None or t is None:
        raise ValueError(failures[0][2] if failures else BLANK_REQUIRED)
    if name is None and depends_on_name(t, d, Kind(k) if k else None):
        raise _NeedsName(t)
    return (d.value, t, u, k, pro)


# column -> how its text is parsed, as the reference path does (blank: a problem, or the blank value)
_PARSE: dict[str, Callable[[str], Any]] = {
    "unit_code": _required(parse_unit_code),
    "unit_name": _required(parse_text),
    "email": _required(lambda text: ";".join(parse_emails(text))),
    "supervisor_code": _optional(parse_unit_code),
    "project_code": _required(parse_project_code),
    "project_name": _required(parse_text),
    "budget": _required(parse_budget),
    "carryover": _optional(parse_amount, 0),
    "fund_flag": _optional(parse_fund_flag),
    "category": _optional(parse_text),
    "profile": _optional(parse_text),
    "indicator_code": _required(parse_unit_code),
    "level1": _required(parse_text),
    "level2": _required(parse_text),
    "name": _required(parse_text),
    "measure_unit": _optional(parse_text, ""),
    "kind": _optional(_kind_value),
    "checkpoint": _required(parse_checkpoint),
    "executed": _required(parse_amount),
    "forecast_executed": _optional(parse_amount),
    "actual": _optional(parse_actual),
    "forecast": _optional(parse_actual),
    "possibility": _optional(parse_possibility),
    "causes": _optional(parse_causes),
    "cause_text": _optional(parse_free_text),
    "measures": _optional(parse_free_text),
}
_SHARED = {"forecast": "actual", "measures": "cause_text"}  # same parser, one memo
_UNIQUE = frozenset(
    {"unit_name", "email", "project_name", "budget", "carryover", "executed", "forecast_executed"}
)
_TAIL = ("direction", "target", "measure_unit", "kind", "profile")  # an indicator's, parsed together
Memos = dict[str, _Memo]


def _memo(memos: Memos, column: str) -> Any:
    if column in _UNIQUE:
        return _direct(_PARSE[column])
    name = _SHARED.get(column, column)
    if name not in memos:
        memos[name] = _Memo(_PARSE[name])
    return memos[name]


def _direct(parse: Callable[[str], Any]) -> Any:
    """Stands in for a memo where texts rarely repeat (names, amounts): `[text]` parses every time,
    calling `parse` directly (a staticmethod __getitem__: no frame in between)."""
    return type("Direct", (), {"__getitem__": staticmethod(parse), "__slots__": ()})()


def csv_parser(
    kind: str, source: Source, width: int, memos: Memos
) -> Callable[[Sequence[str]], Record] | None:
    """A function from the cells of a CSV row (`width` of them) to its record, raising ValueError
    where the reference path must look (None: the reference path reads every row). `memos`: the
    import's, shared by its tables."""
    index, extra = {}, 0
    for column in cols.ALIASES[kind]:
        if column in source.columns:
            index[column] = source.columns[column][0]
        else:  # an absent optional column reads as an empty cell appended to the row
            index[column] = width + extra
            extra += 1
    head = [c for c in cols.ALIASES[kind] if kind != "indicators" or c not in _TAIL]
    dicts = [_memo(memos, c) for c in head]
    at = [index[c] for c in head]
    pick = operator.itemgetter(*at)
    getitem = operator.getitem
    parse: Callable[[Sequence[str]], Record]
    if kind == "indicators":
        tails = memos.setdefault("tail", _Memo(lambda texts: _tail(texts, None)))
        pick_tail, pick_name = (
            operator.itemgetter(*(index[c] for c in _TAIL)),
            operator.itemgetter(index["name"]),
        )

        def parse(cells: Sequence[str]) -> Record:
            head = tuple(map(getitem, dicts, pick(cells)))
            try:
                tail: Record = tails[pick_tail(cells)]
            except _NeedsName:
                tail = _tail(pick_tail(cells), pick_name(cells))
            return head + tail

    elif at == list(range(len(at))):  # the first cells, in order (as `monitor sample` writes them)
        parse = lambda cells: tuple(map(getitem, dicts, cells))  # noqa: E731
    else:
        parse = lambda cells: tuple(map(getitem, dicts, pick(cells)))  # noqa: E731
    if not extra:
        return parse
    pad = [""] * extra
    return lambda cells: parse([*cells, *pad])
