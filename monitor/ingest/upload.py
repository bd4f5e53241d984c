"""A unit's filled workbook uploaded on its reporting page instead of typing (填报 by file). In: the file
(the official form workbook `monitor forms` writes, or monitoring data in the canonical layout, .xlsx or
.csv) saved under a name of our own, the unit and checkpoint of the link. Out: the file imported by the
canonical import, the forms it covers kept and marked submitted in the same transaction exactly as a
typed submission (monitor.ingest.reporting); or `Refused` with every problem in Chinese, named by
sheet and cell or row, field and value, and nothing written.

Scoped: only the unit's own projects at the link's checkpoint, only monitoring data (no units,
projects or indicators, which would change what the bureau manages), no formula-looking text, no
report that is read-only (submitted or approved, until returned).
"""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from monitor.core.errors import BadInput
from monitor.core.model import IndicatorReport, ProjectReport
from monitor.core.wording import period
from monitor.ingest import reporting
from monitor.ingest.importer import ImportFailed, Problem, import_paths
from monitor.ingest.locate import Table
from monitor.ingest.reading import Reading
from monitor.ingest.reporting import INDICATOR_FIELDS, PROJECT_FIELDS, ProjectForm, key

MAX_BYTES = 10 << 20  # the file as uploaded
MAX_UNPACKED = 100 << 20  # a workbook's parts together, uncompressed (a form of 100 projects is < 1 MB)
SUFFIXES = (".xlsx", ".csv")
REPORT_KINDS = ("project_reports", "indicator_reports")
KIND_WORDS = {"units": "单位信息", "projects": "项目信息", "indicators": "绩效指标", "responses": "预警反馈"}
TEXT_FIELDS = ("actual", "forecast", "possibility", "causes", "cause_text", "measures")
FORMULA = ("=", "@")
NOT_A_WORKBOOK = (
    "不是有效的 .xlsx 工作簿（文件已损坏，或只是改了扩展名）。请在 Excel 或 WPS 中另存为 .xlsx 后再上传。"
)
ONLY = "本页只接收本单位的监控信息：下发的《项目支出绩效目标执行监控表》，或执行数与指标完成情况表"


class Refused(BadInput):
    """The upload was refused: `problems` say why, in Chinese, a line each; nothing was written."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.problems = list(dict.fromkeys(lines))
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Covered:
    """What a file holds for the unit: the projects it reports and their fields as the page keeps them."""

    codes: tuple[str, ...]
    fields: dict[str, str]


def describe(p: Problem, chinese: bool = False) -> str:
    """A problem as the page shows it: where (sheet!cell, or sheet and row), the field, the value, why
    (the Chinese part of an import's message; `chinese`: the message is Chinese already)."""
    if p.cell:
        where = f"{p.sheet}!{p.cell}"
    else:
        where = (f"工作表“{p.sheet}”" if p.sheet else "") + (f"第{p.row}行" if p.row is not None else "")
    parts = [where or "文件", p.header or p.column or "", f"“{p.value}”" if p.value is not None else ""]
    return "，".join(x for x in parts if x) + "：" + (p.message if chinese else reporting.chinese(p.message))


def check_archive(path: Path) -> None:
    """A workbook is a zip archive whose parts, uncompressed, stay below MAX_UNPACKED."""
    if path.suffix.lower() != ".xlsx":
        return
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(i.file_size for i in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        raise Refused([NOT_A_WORKBOOK]) from None
    if unpacked > MAX_UNPACKED:
        raise Refused([f"工作簿解压后超过 {MAX_UNPACKED >> 20} MB，不像是监控表，未导入。"])


def _foreign(tables: Sequence[Table]) -> list[str]:
    out = []
    for t in tables:
        if t.source.kind not in REPORT_KINDS:
            where = f"工作表“{t.source.sheet}”" if t.source.sheet else "文件"
            out.append(f"{where}是{KIND_WORDS.get(t.source.kind, t.source.kind)}，不是监控信息。{ONLY}。")
    return out


def _scope(
    record: ProjectReport | IndicatorReport, checkpoint: str, forms: Mapping[str, ProjectForm]
) -> list[tuple[str, object, str]]:
    """What is wrong with a record for this link: (column, value, message)."""
    if record.checkpoint != checkpoint:
        return [
            ("checkpoint", record.checkpoint, f"监控期应为 {checkpoint}（本链接填报{period(checkpoint)}）")
        ]
    form = forms.get(record.project_code)
    if form is None:
        return [("project_code", record.project_code, "该项目不属于本单位，不能在本单位的填报页上传")]
    if form.locked:
        word = reporting.STATE_WORDS[form.state]
        return [
            ("project_code", record.project_code, f"该项目的报告{word}，只读；如需修改，请联系主管部门退回")
        ]
    texts = [(f, getattr(record, f)) for f in TEXT_FIELDS if isinstance(record, IndicatorReport)]
    return [
        (f, v, "内容像是公式（以“=”或“@”开头）；请填写数值或文字，不要填写公式")
        for f, v in texts
        if isinstance(v, str) and v.startswith(FORMULA)
    ]


def read(path: Path, checkpoint: str, forms: Mapping[str, ProjectForm]) -> Covered:
    """The file read and checked against the link's scope; `Refused` with every problem found."""
    check_archive(path)
    reading = Reading([path])
    foreign = _foreign([*reading.tables, *reading.responses])
    if foreign:
        raise Refused(foreign)
    problems: list[Problem] = []
    projects: dict[str, ProjectReport] = {}
    indicators: dict[str, list[IndicatorReport]] = {}
    first: dict[str, tuple[Table, int]] = {}
    for table in reading.tables:
        for numbers, records in reading.chunks(table):
            for number, values in zip(numbers, records, strict=True):
                record: ProjectReport | IndicatorReport
                if table.source.kind == "project_reports":
                    record = ProjectReport(*values)
                else:
                    record = IndicatorReport(*values)
                wrong = _scope(record, checkpoint, forms)
                problems += [table.source.problem(number, c, v, m) for c, v, m in wrong]
                if wrong:
                    continue
                first.setdefault(record.project_code, (table, number))
                if isinstance(record, ProjectReport):
                    projects[record.project_code] = record
                else:
                    indicators.setdefault(record.project_code, []).append(record)
    lines = [describe(p) for p in reading.out] + [describe(p, chinese=True) for p in problems]
    if not lines:
        month = int(checkpoint[5:])
        for code in sorted(set(indicators) - set(projects)):
            table, number = first[code]
            message = f"项目 {code} 未填写1-{month}月执行数（万元）"
            lines.append(describe(table.source.problem(number, "project_code", code, message), chinese=True))
    if not lines and not first:
        lines.append(f"文件中没有填写任何监控信息。{ONLY}。")
    if lines:
        raise Refused(lines)
    return Covered(tuple(sorted(first)), _fields(projects, indicators, forms))


def _fields(
    projects: Mapping[str, ProjectReport],
    indicators: Mapping[str, list[IndicatorReport]],
    forms: Mapping[str, ProjectForm],
) -> dict[str, str]:
    """The page's fields of every project covered: what the file holds, blank where it holds nothing."""
    out: dict[str, str] = {}
    for code, report in projects.items():
        form = forms[code]
        out.update({key(code, f): "" for f in PROJECT_FIELDS})
        out.update({key(code, f, i.code): "" for i in form.indicators for f in INDICATOR_FIELDS})
        out.update(reporting._stored(report, indicators.get(code, ()), form.project))
    return out


def submit_file(
    engine: Engine,
    checkpoint: str,
    unit_code: str,
    upload: tuple[Path, str],
    now: dt.datetime,
    by: str,
    counts_when: str = "submitted",
) -> tuple[str, ...]:
    """送审 by file: `upload` (our copy of the file, the name it was sent under, made safe) checked and
    imported; the projects it covers kept and marked submitted as typing them would. With `counts_when`
    "approved" the import only checks (the department's approval imports the kept fields). Returns the
    projects submitted; `Refused` with every problem, and nothing written."""
    path, name = upload
    with engine.connect() as conn:
        forms = {f.project.code: f for f in reporting.load_forms(conn, checkpoint, unit_code)}
    covered = read(path, checkpoint, forms)

    def keep(conn: Connection) -> None:
        mine = [
            f for f in reporting.load_forms(conn, checkpoint, unit_code) if f.project.code in covered.codes
        ]
        if any(f.locked for f in mine) or len(mine) != len(covered.codes):  # changed meanwhile
            raise Refused(["本单位的报告刚刚有变动（已送审或已审核），请刷新页面后再试。"])
        reporting.save(conn, checkpoint, mine, covered.fields, now, by)
        reporting._submitted(conn, checkpoint, mine, now, by)

    try:
        if counts_when == "approved":
            reporting._check(engine, [path], now)
            with engine.begin() as conn:
                keep(conn)
        else:
            import_paths(engine, [path], now, also=keep, channel="web", source=f"{by}：上传 {name}")
    except ImportFailed as exc:
        raise Refused([describe(p) for p in exc.problems]) from None
    return covered.codes
