"""`monitor db archive --before YYYY`: every checkpoint of a year before YYYY written into ONE archive file
(monitor.db.archive_file: a zip of CSV members with a manifest), the file verified, then the rows deleted
in one transaction; and the way back (`restore`: the rows of an archive into a database, ids kept), which
`monitor import ARCHIVE.zip` (monitor.ingest.archive) calls after importing the reports canonically.

Table by table (checkpoints are 'YYYY-MM' strings, so `checkpoint < 'YYYY'` selects the earlier years):
- project_report, indicator_report: moved; in the canonical import layout (project_reports.csv,
  indicator_reports.csv, amounts in 万元 exact to the fen) and read back by the canonical import (same
  checks); the report_batch each row names (provenance) goes into provenance/*.csv and is set back.
- project_report_version, indicator_report_version, run, project_result, indicator_result,
  report_form, report_event, report_extension, warning_case, outbox: moved (rows of those checkpoints).
- run_policy (of those runs), outbox_message, outbox_recipient, delivery_attempt (of those messages),
  case_response, case_review, case_event (of those cases): moved with their parents.
- report_batch: the batches archived rows name are copied; deleted only when no row left in the database
  names them and they are not the newest batch (its id must not be used again: runs compare batch ids).
- rule_version (the rules those runs used): copied, kept (shared by later runs, small).
- scheduled_event: copied, KEPT: it is the service's memory of the duties done; without it the
  service's catch-up would carry them out again (re-run the checkpoint, send its e-mails again).
- unit, project, indicator, exemption: master data of no checkpoint, kept (the reports need them back).
- run_lock, service_event, web_user, login_attempt, alembic_version: not checkpoint data, untouched.
Refused, nothing written: a year not before the current one; a checkpoint with an unfinished run
(running / evaluated, or its run lock held) or undelivered messages (pending / sending / partial).

Order of safety: the archive is written under a temporary name, fsynced, reopened and checked (counts and
hashes), renamed (the folder fsynced) and only then are the rows deleted, in ONE transaction that first
renders them again and compares them with the manifest (a row changed meanwhile: nothing deleted) and
checks each table's deleted count. A kill at any moment leaves the rows in the database, or a complete
archive and the rows (running again finds the same archive and goes on), or a complete archive alone.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from monitor.core import failpoints
from monitor.core.errors import BadInput
from monitor.db import archive_file as af
from monitor.db import partitions
from monitor.db.engine import (
    CASE_RESPONSE,
    CASE_REVIEW,
    DELIVERY_ATTEMPT,
    INDICATOR_REPORT,
    INDICATOR_REPORT_VERSION,
    INDICATOR_RESULT,
    OUTBOX,
    OUTBOX_MESSAGE,
    OUTBOX_RECIPIENT,
    PROJECT_REPORT,
    PROJECT_REPORT_VERSION,
    PROJECT_RESULT,
    REPORT_BATCH,
    REPORT_EVENT,
    REPORT_EXTENSION,
    REPORT_FORM,
    RULE_VERSION,
    RUN,
    RUN_POLICY,
    SCHEDULED_EVENT,
    WARNING_CASE,
    table,
)
from monitor.db.tables import CaseEventRow, RunLockRow

CASE_EVENT = table(CaseEventRow)
RUN_LOCK = table(RunLockRow)
UNDELIVERED = ("pending", "sending", "partial")
UNFINISHED = ("running", "evaluated")
PROJECT_REPORTS = "project_reports.csv"
INDICATOR_REPORTS = "indicator_reports.csv"
PR_HEADER = ("checkpoint", "project_code", "executed", "forecast_executed")
IR_HEADER = ("checkpoint", "project_code", "indicator_code", "actual", "forecast", "possibility", "causes",
             "cause_text", "measures")  # fmt: skip
FEN_PER_WAN = Decimal(1_000_000)


@dataclass(frozen=True)
class Part:
    """One member: which rows of which table (`where` of the bound 'YYYY'), how written. mode: move
    (archived and deleted), copy (archived, kept), view (another view of rows a move part deletes)."""

    member: str
    table: Table
    mode: str
    via: tuple[Table, str] | None = None  # (parent, this table's column naming the parent's id)
    header: tuple[str, ...] | None = None  # None: every column of the table, encoded
    render: Callable[[Sequence[Any]], list[str]] | None = None

    def where(self, bound: str) -> ColumnElement[bool]:
        if self.table is REPORT_BATCH:
            return REPORT_BATCH.c.id.in_(_named_batches(bound))
        if self.table is RULE_VERSION:
            return RULE_VERSION.c.hash.in_(select(RUN.c.rules_hash).where(RUN.c.checkpoint < bound))
        if self.via is not None:
            parent, column = self.via
            return self.table.c[column].in_(select(parent.c.id).where(parent.c.checkpoint < bound))
        return self.table.c.checkpoint < bound

    def names(self) -> tuple[str, ...]:
        return self.header or tuple(c.name for c in self.table.columns)

    def query(self, bound: str) -> Select[Any]:
        keys = list(self.table.primary_key.columns)
        if self.header is None:
            return select(*self.table.columns).where(self.where(bound)).order_by(*keys)
        return select(*(self.table.c[n] for n in self.header)).where(self.where(bound)).order_by(*keys)

    def cells(self, row: Sequence[Any]) -> list[str]:
        return self.render(row) if self.render else [af.encode(v) for v in row]


def _amount(fen: int | None) -> str:
    return "" if fen is None else f"{Decimal(fen) / FEN_PER_WAN:f}"


def _project_report(row: Sequence[Any]) -> list[str]:
    return [af.encode(row[0]), af.encode(row[1]), _amount(row[2]), _amount(row[3])]


def _indicator_report(row: Sequence[Any]) -> list[str]:
    return [af.encode(v, blank_null=True) for v in row]


def _named_batches(bound: str) -> Any:
    """The report_batch ids the rows of checkpoints before `bound` name."""
    pv, iv = PROJECT_REPORT_VERSION, INDICATOR_REPORT_VERSION
    named = [
        select(PROJECT_REPORT.c.batch).where(PROJECT_REPORT.c.checkpoint < bound),
        select(INDICATOR_REPORT.c.batch).where(INDICATOR_REPORT.c.checkpoint < bound),
        select(pv.c.batch).where(pv.c.checkpoint < bound),
        select(pv.c.replaced_by).where(pv.c.checkpoint < bound),
        select(iv.c.batch).where(iv.c.checkpoint < bound),
        select(iv.c.replaced_by).where(iv.c.checkpoint < bound),
        select(RUN.c.reports_upto).where(RUN.c.checkpoint < bound),
    ]
    return named[0].union(*named[1:])


# In the order rows are restored (parents first); deleted in the reverse order.
PARTS: tuple[Part, ...] = (
    Part("tables/report_batch.csv", REPORT_BATCH, "copy"),
    Part("tables/rule_version.csv", RULE_VERSION, "copy"),
    Part(PROJECT_REPORTS, PROJECT_REPORT, "move", header=PR_HEADER, render=_project_report),
    Part(INDICATOR_REPORTS, INDICATOR_REPORT, "move", header=IR_HEADER, render=_indicator_report),
    Part(
        "provenance/project_report.csv",
        PROJECT_REPORT,
        "view",
        header=("checkpoint", "project_code", "batch"),
    ),
    Part(
        "provenance/indicator_report.csv",
        INDICATOR_REPORT,
        "view",
        header=("checkpoint", "project_code", "indicator_code", "batch"),
    ),
    Part("tables/project_report_version.csv", PROJECT_REPORT_VERSION, "move"),
    Part("tables/indicator_report_version.csv", INDICATOR_REPORT_VERSION, "move"),
    Part("tables/run.csv", RUN, "move"),
    Part("tables/run_policy.csv", RUN_POLICY, "move", via=(RUN, "run_id")),
    Part("tables/project_result.csv", PROJECT_RESULT, "move"),
    Part("tables/indicator_result.csv", INDICATOR_RESULT, "move"),
    Part("tables/report_form.csv", REPORT_FORM, "move"),
    Part("tables/report_event.csv", REPORT_EVENT, "move"),
    Part("tables/report_extension.csv", REPORT_EXTENSION, "move"),
    Part("tables/outbox.csv", OUTBOX, "move"),
    Part("tables/outbox_message.csv", OUTBOX_MESSAGE, "move", via=(OUTBOX, "outbox_id")),
    Part("tables/outbox_recipient.csv", OUTBOX_RECIPIENT, "move", via=(OUTBOX, "outbox_id")),
    Part("tables/delivery_attempt.csv", DELIVERY_ATTEMPT, "move", via=(OUTBOX, "outbox_id")),
    Part("tables/warning_case.csv", WARNING_CASE, "move"),
    Part("tables/case_response.csv", CASE_RESPONSE, "move", via=(WARNING_CASE, "case_id")),
    Part("tables/case_review.csv", CASE_REVIEW, "move", via=(WARNING_CASE, "case_id")),
    Part("tables/case_event.csv", CASE_EVENT, "move", via=(WARNING_CASE, "case_id")),
    Part("tables/scheduled_event.csv", SCHEDULED_EVENT, "copy"),
)
BY_MEMBER = {p.member: p for p in PARTS}


def bound_of(before: int) -> str:
    if not 1000 <= before <= 9999:
        raise BadInput(f"--before {before}: a year such as 2025")
    return f"{before:04d}"


def refusals(conn: Connection, before: int, this_year: int) -> list[str]:
    """Why the checkpoints before `before` cannot be archived now ([] when they can)."""
    if before > this_year:
        return [
            f"--before {before}: checkpoints of the current year {this_year} are never archived "
            f"(use --before {this_year} or earlier)"
        ]
    bound, out = bound_of(before), []
    runs = select(RUN.c.checkpoint, RUN.c.id, RUN.c.status).where(
        RUN.c.checkpoint < bound, RUN.c.status.in_(UNFINISHED)
    )
    for cp, run_id, status in conn.execute(runs.order_by(RUN.c.id)):
        out.append(
            f"checkpoint {cp}: run {run_id} is unfinished ({status}): let it end, or complete it with "
            "`monitor send`, then archive"
        )
    for key, owner in conn.execute(select(RUN_LOCK.c.key, RUN_LOCK.c.owner).where(RUN_LOCK.c.key < bound)):
        out.append(f"checkpoint {key}: a run is in progress ({owner}): archive once it has ended")
    pending = (
        select(OUTBOX.c.checkpoint, OUTBOX.c.status, func.count())
        .where(OUTBOX.c.checkpoint < bound, OUTBOX.c.status.in_(UNDELIVERED))
        .group_by(OUTBOX.c.checkpoint, OUTBOX.c.status)
        .order_by(OUTBOX.c.checkpoint, OUTBOX.c.status)
    )
    for cp, status, n in conn.execute(pending):
        out.append(
            f"checkpoint {cp}: {n} undelivered message(s) ({status}): deliver them first "
            "(`monitor send`, `monitor outbox`)"
        )
    return out


def plan(conn: Connection, before: int) -> list[tuple[str, str, int]]:
    """(table, checkpoint or '*', rows) of what an archive before `before` would hold."""
    bound, out = bound_of(before), []
    for part in PARTS:
        if part.mode == "view":
            continue
        t = part.table
        if part.via is not None:
            parent, column = part.via
            q = (
                select(parent.c.checkpoint, func.count())
                .select_from(t.join(parent, t.c[column] == parent.c.id))
                .where(parent.c.checkpoint < bound)
                .group_by(parent.c.checkpoint)
            )
        elif "checkpoint" in t.c:
            q = select(t.c.checkpoint, func.count()).where(part.where(bound)).group_by(t.c.checkpoint)
        else:
            n = int(conn.execute(select(func.count()).select_from(t).where(part.where(bound))).scalar_one())
            out += [(t.name, "*", n)] if n else []
            continue
        out += [(t.name, str(cp), int(n)) for cp, n in conn.execute(q.order_by(q.selected_columns[0]))]
    return out


def _rows(conn: Connection, part: Part, bound: str, lock: bool = False) -> Iterator[list[str]]:
    query = part.query(bound)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    for row in conn.execute(query.execution_options(yield_per=af.CHUNK_ROWS)):
        yield part.cells(row)


def default_name(before: int) -> str:
    return f"monitor-archive-before-{before:04d}.zip"


def write(
    engine: Engine, before: int, out: Path, revision: str, revisions: Sequence[str], now: str
) -> tuple[Path, list[af.Member], bool]:
    """Write the archive of the checkpoints before `before` to `out` (a folder: its default name inside)
    and verify it; returns (path, members, whether an identical archive was already there)."""
    bound = bound_of(before)
    target = out / default_name(before) if out.is_dir() else out
    if not target.parent.is_dir():
        raise BadInput(f"--out {out}: no such folder {target.parent}")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with engine.connect() as conn, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            writer = af.Writer(zf)
            checkpoints = sorted({cp for _, cp, _ in plan(conn, before) if cp != "*"})
            for part in PARTS:
                writer.member(
                    part.member, part.table.name, part.names(), _rows(conn, part, bound), part.mode == "copy"
                )
            info = {
                "before": before,
                "schema_revision": revision,
                "created_at": now,
                "checkpoints": checkpoints,
            }
            zf.writestr(af.MANIFEST, af.manifest_bytes(writer.written.members, info))
        af.fsync_path(tmp)
        members = writer.written.members
        af.verify(tmp, members, revisions)
        failpoints.hit("archive:before-rename")
        if target.exists():
            existing = af.open_archive(target, revisions)
            try:
                same = [(m.name, m.sha256) for m in existing.members.values()] == [
                    (m.name, m.sha256) for m in members
                ]
            finally:
                existing.close()
            if not same:
                raise BadInput(
                    f"{target} exists and holds other rows than the database's: nothing deleted; "
                    "move it away or choose another --out"
                )
            return target, members, True
        os.replace(tmp, target)
        af.fsync_path(target.parent)
        return target, members, False
    finally:
        tmp.unlink(missing_ok=True)


def drop(engine: Engine, before: int, members: Sequence[af.Member]) -> dict[str, int]:
    """Delete the archived rows in ONE transaction, after checking they are still exactly the archive's
    (rendered again and hashed); returns the rows deleted per table."""
    bound, expected = bound_of(before), {m.name: m for m in members}
    deleted: dict[str, int] = {}
    failpoints.hit("archive:before-delete")
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":  # take the write lock first: nobody writes while we compare
            conn.execute(update(RUN).where(RUN.c.id.is_(None)).values(status=RUN.c.status))
        for part in PARTS:
            digest, rows = hashlib.sha256(), 0
            for chunk in af._chunks([list(part.names())], _rows(conn, part, bound, lock=True)):
                digest.update(af.csv_bytes(chunk))
                rows += len(chunk)
            if digest.hexdigest() != expected[part.member].sha256:
                raise BadInput(
                    f"{part.table.name}: rows changed since the archive was written; nothing deleted: "
                    "remove the archive file and run again"
                )
        batches = {
            r[0]
            for r in conn.execute(
                select(REPORT_BATCH.c.id).where(REPORT_BATCH.c.id.in_(_named_batches(bound)))
            )
        }
        for number, part in enumerate(reversed(PARTS)):
            if part.mode != "move":
                continue
            n = conn.execute(delete(part.table).where(part.where(bound))).rowcount
            if n != expected[part.member].rows:
                raise BadInput(
                    f"{part.table.name}: {n} rows to delete, the archive holds {expected[part.member].rows}"
                )
            deleted[part.table.name] = n
            if number == len(PARTS) // 2:
                failpoints.hit("archive:mid-delete")
        deleted["report_batch"] = _drop_batches(conn, batches)
        partitions.drop_empty_before(conn, before)  # PostgreSQL: their emptied result partitions too
    return deleted


def named_batches(conn: Connection) -> set[int]:
    """The report_batch ids some row of the database names."""
    return {r[0] for r in conn.execute(_named_batches("9999-99")) if r[0] is not None}


def _drop_batches(conn: Connection, batches: set[int]) -> int:
    newest = conn.execute(select(func.max(REPORT_BATCH.c.id))).scalar()
    gone = [b for b in sorted(batches) if b != newest]
    if not gone:
        return 0
    named = named_batches(conn)
    gone = [b for b in gone if b not in named]
    if gone:
        conn.execute(delete(REPORT_BATCH).where(REPORT_BATCH.c.id.in_(gone)))
    return len(gone)


# --- restoring --------------------------------------------------------------------------------------


def cell_problems(archive: af.Archive) -> list[str]:
    """Every cell of the archive that cannot be read back, naming member, row and column."""
    out: list[str] = []
    for name in archive.members:
        part = BY_MEMBER.get(name)
        if part is None:
            out.append(f"{archive.path}: member {name}: not a member of this program's archives")
            continue
        columns = [part.table.c[n] for n in part.names()]
        for number, cells in archive.rows(name):
            if number == 1:
                if tuple(cells) != part.names():
                    out.append(f"{archive.path}: {name} row 1: header {cells}, expected {list(part.names())}")
                    break
                continue
            if len(cells) != len(columns):
                out.append(
                    f"{archive.path}: {name} row {number}: {len(cells)} cells, expected {len(columns)}"
                )
                continue
            for cell, column in zip(cells, columns, strict=True):
                try:
                    if part.render is not None:
                        af.decode_text(cell, blank_null=True)
                    else:
                        af.decode(cell, column)
                except ValueError as exc:
                    out.append(f"{archive.path}: {name} row {number}, column {column.name}: {exc}")
            if len(out) > 50:
                return out
    return out


def conflicts(conn: Connection, archive: af.Archive, members: Sequence[str]) -> list[str]:
    """Rows of `members` the database holds with the same key and other values."""
    out: list[str] = []
    for name in members:
        part = BY_MEMBER[name]
        for batch in _batches(archive, name):
            for cells, held in _matches(conn, part, batch):
                if held is not None and held != cells:
                    key = ", ".join(cells[i] for i in _key_positions(part))
                    out.append(
                        f"{archive.path}: {name}: {part.table.name} ({key}): the database holds other values"
                    )
    return out


def restore(conn: Connection, archive: af.Archive) -> dict[str, int]:
    """Insert the archive's rows of its own tables that the database lacks (ids kept); rows it holds
    alike are left; other values under the same key: BadInput naming them. Then the reports' batches
    (provenance) are set back. Returns the rows inserted per table."""
    own = [p.member for p in PARTS if p.render is None and p.header is None]
    clash = conflicts(conn, archive, own)
    if clash:
        raise af.ArchiveError(clash)
    counts: dict[str, int] = {}
    for name in own:
        part = BY_MEMBER[name]
        for batch in _batches(archive, name):
            new = [cells for cells, held in _matches(conn, part, batch) if held is None]
            if new:
                columns = list(part.table.columns)
                values = [
                    {c.name: af.decode(v, c) for c, v in zip(columns, cells, strict=True)} for cells in new
                ]
                if part.table.name in partitions.TABLES:  # PostgreSQL: into their checkpoints' partitions
                    for cp in sorted({str(v["checkpoint"]) for v in values}):
                        partitions.ensure(conn, cp)
                conn.execute(insert(part.table), values)
            counts[part.table.name] = counts.get(part.table.name, 0) + len(new)
    for name, t in (
        ("provenance/project_report.csv", PROJECT_REPORT),
        ("provenance/indicator_report.csv", INDICATOR_REPORT),
    ):
        keys = BY_MEMBER[name].header or ()
        for batch in _batches(archive, name):
            params = [
                {f"k_{k}": af.decode(c, t.c[k]) for k, c in zip(keys, cells, strict=True)} for cells in batch
            ]
            stmt = update(t).where(*(t.c[k] == _bind(k) for k in keys[:-1])).values(batch=_bind("batch"))
            conn.execute(stmt, params)
    if conn.dialect.name == "postgresql":
        _advance_sequences(conn, [BY_MEMBER[n].table for n in own])
    return counts


def _advance_sequences(conn: Connection, tables: Sequence[Table]) -> None:
    """PostgreSQL: each id sequence past the ids restored (a database that never held them)."""
    for t in tables:
        if "id" not in t.c or not t.c.id.autoincrement or len(t.primary_key.columns) != 1:
            continue
        seq = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": t.name}).scalar()
        top = conn.execute(select(func.max(t.c.id))).scalar()
        if seq and top and top > conn.execute(text(f"SELECT last_value FROM {seq}")).scalar_one():
            conn.execute(text("SELECT setval(:s, :v)"), {"s": seq, "v": top})


def _bind(name: str) -> Any:
    return bindparam(f"k_{name}")


def _batches(archive: af.Archive, name: str) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for number, cells in archive.rows(name):
        if number == 1:
            continue
        batch.append(cells)
        if len(batch) >= 500:
            yield batch
            batch = []
    if batch:
        yield batch


def _key_positions(part: Part) -> list[int]:
    names = part.names()
    keys = [c.name for c in part.table.primary_key.columns]
    return [names.index(k) for k in keys if k in names]


def _key_value(part: Part, name: str, cell: str) -> Any:
    if part.render is None:
        return af.decode(cell, part.table.c[name])
    return af.decode_text(cell, blank_null=True)


def _matches(
    conn: Connection, part: Part, batch: list[list[str]]
) -> Iterator[tuple[list[str], list[str] | None]]:
    """Each archived row of `batch` with the database's row of the same key rendered alike (None: none)."""
    names, positions = part.names(), _key_positions(part)
    keys = [part.table.c[names[i]] for i in positions]
    wanted = [tuple(_key_value(part, names[i], cells[i]) for i in positions) for cells in batch]
    where = keys[0].in_([w[0] for w in wanted]) if len(keys) == 1 else tuple_(*keys).in_(wanted)
    query = select(*(part.table.c[n] for n in names)).where(where)
    held = {}
    for row in conn.execute(query):
        rendered = part.cells(row)
        held[tuple(rendered[i] for i in positions)] = rendered
    for cells in batch:
        yield cells, held.get(tuple(cells[i] for i in positions))


def revisions() -> list[str]:
    """This program's schema revisions, oldest first (the last is what it writes and reads)."""
    from monitor.db import migrate

    return [r.revision for r in reversed(list(migrate._script(()).walk_revisions()))]
