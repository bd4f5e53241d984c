"""What a row of the exchange table lacks (ingest.exchange). In: the import's problems and the sources
of its exchange tables. Out: the same problems, each unknown unit, project or indicator the reference
checker found in an exchange table said as what the row lacks to create it, once per row and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from monitor.ingest import columns as cols
from monitor.ingest.exchange import INDEX
from monitor.ingest.exchange_fields import LABELS
from monitor.ingest.problems import Problem, Source
from monitor.ingest.references import UNKNOWN_INDICATOR, UNKNOWN_PROJECT, UNKNOWN_UNIT


def explain(problems: list[Problem], sources: Sequence[Source]) -> list[Problem]:
    """The problems, with each unknown unit, project or indicator of an exchange table said as what the
    row lacks to create it (one problem per row and column)."""
    tables = {(s.file, s.sheet): s for s in sources}
    kept: list[Problem] = []
    said: set[tuple[str, str | None, int | None, str | None]] = set()
    for p in problems:
        source = tables.get((p.file, p.sheet))
        if source is not None:
            p = _lacking(p, source)
        place = (p.file, p.sheet, p.row, p.column)
        if source is None or place not in said:
            said.add(place)
            kept.append(p)
    return kept


def _lacking(p: Problem, source: Source) -> Problem:
    def header(field: str) -> str:
        named = (h for h in source.headers if INDEX.get(cols.normalize_header(h)) == field)
        return next(named, LABELS[field])

    if p.message == UNKNOWN_PROJECT:
        message = (f"project {p.value} is not in the database nor given with its budget in this import: a "
                   "new project needs 全年预算数 on its rows（新项目须填写全年预算数）")  # fmt: skip
        return replace(p, column="budget", header=header("budget"), value=None, message=message)
    if p.message == UNKNOWN_INDICATOR:
        message = (f"indicator {p.value} is not in the database nor given with its target in this "
                   "import: a new indicator needs 年度指标值 and 指标方向 on its row"
                   "（新指标须填写年度指标值与指标方向）")  # fmt: skip
        return replace(p, column="target", header=header("kpi_val"), value=None, message=message)
    if p.message == UNKNOWN_UNIT:
        message = (f"unit {p.value} is not in the database nor in this import: import the units file "
                   "(with the e-mail addresses) together with the exchange table"
                   "（单位不存在，请同时导入单位表）")  # fmt: skip
        return replace(p, message=message)
    return p
