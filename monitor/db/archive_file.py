"""The archive file of `monitor db archive` (monitor.db.archive): one zip of UTF-8 CSV members and a
manifest.json naming each member's table, row count and SHA-256, and the schema revision it was written
at. In: rows. Out: the file written, fsynced and verified; or, reading one back, its members' rows,
every hostile part refused first (a zip bomb, a member path outside the archive's own names, hashes or
counts that do not match, a newer schema, a cell that begins like a spreadsheet formula), each problem
naming the member and the row.

Cells: NULL is `\\N`; a text cell that begins with `'`, `\\N` or a formula character (= + - @ TAB CR) is
written with one `'` before it, which the reader takes off; an unescaped cell beginning with a formula
character is refused. The report members (project_reports.csv, indicator_reports.csv) are in the
canonical import layout, where a blank cell is NULL.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer
from sqlalchemy.types import TypeDecorator

from monitor.core.errors import BadInput
from monitor.core.safe import FORMULA_START

MANIFEST = "manifest.json"
FORMAT = "monitor-archive"
NULL = "\\N"
MEMBER_NAME = re.compile(r"(?:(?:tables|provenance)/)?[a-z_]+\.csv")
MAX_MEMBERS = 64
MAX_RATIO = 200  # uncompressed / compressed: CSV compresses ~5-20×; a bomb by thousands
MAX_MANIFEST_BYTES = 1 << 20
CHUNK_ROWS = 5000


class ArchiveError(BadInput):
    """An archive that cannot be read back as it is: every problem, each naming the member and row."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def encode(value: Any, *, blank_null: bool = False) -> str:
    """A database value as a cell (see the module's docstring)."""
    if value is None:
        return "" if blank_null else NULL
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if text.startswith(("'", *FORMULA_START)) or text == NULL:
        return "'" + text
    return text


def decode_text(cell: str, *, blank_null: bool = False) -> str | None:
    """A cell as text: `\\N` (or blank, for report members) → None, one leading `'` taken off; a cell
    beginning with a formula character is a ValueError."""
    if cell == NULL or (blank_null and cell == ""):
        return None
    if cell.startswith("'"):
        return cell[1:]
    if cell.startswith(FORMULA_START):
        raise ValueError(f"cell {cell[:20]!r} begins like a spreadsheet formula")
    return cell


def decode(cell: str, column: Column[Any]) -> Any:
    """A cell as the value of `column` (its SQL type decides)."""
    kind = column.type
    if isinstance(kind, TypeDecorator):  # e.g. sqlmodel's time zone aware DateTime
        kind = kind.impl_instance
    if cell == NULL:
        return None
    numeric = isinstance(kind, Integer | Float)
    if cell.startswith(FORMULA_START) and not (numeric and cell[0] == "-"):
        raise ValueError(f"cell {cell[:20]!r} begins like a spreadsheet formula")
    if isinstance(kind, Boolean):
        if cell not in ("0", "1"):
            raise ValueError(f"{column.name}: {cell!r} is not 0 or 1")
        return cell == "1"
    if isinstance(kind, Integer):
        return int(cell)
    if isinstance(kind, Float):
        return float(cell)
    if isinstance(kind, DateTime):
        return dt.datetime.fromisoformat(cell)
    if isinstance(kind, Date):
        return dt.date.fromisoformat(cell)
    return decode_text(cell)


def csv_bytes(rows: Iterable[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


@dataclass
class Member:
    """One member of an archive as the manifest describes it."""

    name: str
    table: str
    rows: int
    sha256: str
    kept: bool = False  # rows copied into the archive but left in the database


@dataclass
class Written:
    """What a writer put into an archive: its members, in order."""

    members: list[Member] = field(default_factory=list)


class Writer:
    """Members written into a zip one after the other, each hashed and counted as it goes."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.written = Written()

    def member(
        self, name: str, table: str, header: Sequence[str], rows: Iterable[Sequence[str]], kept: bool = False
    ) -> Member:
        digest, count = hashlib.sha256(), 0
        with self.zf.open(name, "w", force_zip64=True) as out:
            for chunk in _chunks([list(header)], rows):
                data = csv_bytes(chunk)
                out.write(data)
                digest.update(data)
                count += len(chunk)
        made = Member(name, table, count - 1, digest.hexdigest(), kept)
        self.written.members.append(made)
        return made


def _chunks(first: list[Sequence[str]], rows: Iterable[Sequence[str]]) -> Iterator[list[Sequence[str]]]:
    chunk = first
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def manifest_bytes(members: Sequence[Member], info: dict[str, Any]) -> bytes:
    body = {
        "format": FORMAT,
        "version": 1,
        **info,
        "members": [
            {"name": m.name, "table": m.table, "rows": m.rows, "sha256": m.sha256, "kept_in_database": m.kept}
            for m in members
        ],
    }
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------------------------


@dataclass
class Archive:
    """An archive opened for reading, its manifest checked: `rows(name)` yields (row number, cells)."""

    path: Path
    zf: zipfile.ZipFile
    manifest: dict[str, Any]
    members: dict[str, Member]

    def rows(self, name: str) -> Iterator[tuple[int, list[str]]]:
        """Every row of a member with its line number (the header is row 1)."""
        limit = self.zf.getinfo(name).file_size
        with self.zf.open(name) as raw:
            text = io.TextIOWrapper(_Bounded(raw, limit, name), encoding="utf-8", newline="")
            yield from enumerate(csv.reader(text), start=1)

    def close(self) -> None:
        self.zf.close()


class _Bounded(io.RawIOBase):
    """A member's stream that refuses to give more bytes than the zip declared (a lying header)."""

    def __init__(self, raw: IO[bytes], limit: int, name: str) -> None:
        self.raw, self.left, self.name = raw, limit, name

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        self.left -= len(data)
        if self.left < 0:
            raise ArchiveError([f"{self.name}: holds more bytes than the archive declares (a zip bomb?)"])
        b[: len(data)] = data
        return len(data)


def open_archive(path: Path, revisions: Sequence[str]) -> Archive:
    """Open `path` and check it whole before anything is read into a database: member names and sizes,
    the manifest, every member's row count and SHA-256, and the schema revision (one of `revisions`,
    oldest first, the last being this program's). ArchiveError with every problem."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError([f"{path}: not a readable archive: {exc}"]) from exc
    try:
        archive = _checked(path, zf, revisions)
    except BaseException:
        zf.close()
        raise
    return archive


def _checked(path: Path, zf: zipfile.ZipFile, revisions: Sequence[str]) -> Archive:
    infos = zf.infolist()
    problems = [f"{path}: {n} members, more than an archive holds ({MAX_MEMBERS})" for n in [len(infos)]
                if n > MAX_MEMBERS]  # fmt: skip
    for info in infos:
        name = info.filename
        if name != MANIFEST and not MEMBER_NAME.fullmatch(name):
            problems.append(
                f"{path}: member {name!r}: not a name an archive holds (paths such as '..' refused)"
            )
        elif info.file_size > MAX_RATIO * max(info.compress_size, 1 << 14):
            problems.append(
                f"{path}: member {name}: {info.file_size} bytes from {info.compress_size} compressed"
                " (a zip bomb?)"
            )
    if problems:
        raise ArchiveError(problems)
    names = {i.filename for i in infos}
    if MANIFEST not in names or zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
        raise ArchiveError([f"{path}: no {MANIFEST} (or a huge one): not an archive of `monitor db archive`"])
    try:
        manifest = json.loads(zf.read(MANIFEST).decode("utf-8"))
        members = {
            m["name"]: Member(
                m["name"], m["table"], int(m["rows"]), str(m["sha256"]), bool(m["kept_in_database"])
            )
            for m in manifest["members"]
        }
        revision, fmt = manifest["schema_revision"], manifest["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveError([f"{path}: {MANIFEST}: not a manifest of `monitor db archive`: {exc}"]) from exc
    if fmt != FORMAT:
        problems.append(f"{path}: {MANIFEST}: format {fmt!r}, not {FORMAT!r}")
    if revision not in revisions:
        newer = revisions and str(revision) > revisions[-1]
        why = "newer than this program's" if newer else "unknown to this program"
        problems.append(
            f"{path}: {MANIFEST}: schema revision {revision!r} is {why}"
            f" ({revisions[-1] if revisions else '?'}): upgrade monitor before importing it"
        )
    for name in sorted(names - set(members) - {MANIFEST}):
        problems.append(f"{path}: member {name}: not named in {MANIFEST}")
    for name in sorted(set(members) - names):
        problems.append(f"{path}: member {name}: named in {MANIFEST} but missing")
    if problems:
        raise ArchiveError(problems)
    archive = Archive(path, zf, manifest, members)
    for member in members.values():
        problems += _verify_member(archive, member)
    if problems:
        raise ArchiveError(problems)
    return archive


def _verify_member(archive: Archive, member: Member) -> list[str]:
    digest = hashlib.sha256()
    limit = archive.zf.getinfo(member.name).file_size
    with archive.zf.open(member.name) as raw:
        bounded = _Bounded(raw, limit, member.name)
        while data := bounded.read(1 << 20):
            digest.update(data)
    where = f"{archive.path}: member {member.name}"
    if digest.hexdigest() != member.sha256:
        return [f"{where}: SHA-256 {digest.hexdigest()} does not match the manifest's {member.sha256}"]
    counted = sum(1 for _ in archive.rows(member.name)) - 1  # records, not lines: cells may hold line breaks
    if counted != member.rows:
        return [f"{where}: {counted} rows, the manifest says {member.rows}"]
    return []


def verify(path: Path, members: Sequence[Member], revisions: Sequence[str]) -> None:
    """Reopen a just-written archive and check it holds `members` exactly (counts and hashes)."""
    archive = open_archive(path, revisions)
    try:
        found = [(m.name, m.rows, m.sha256) for m in archive.members.values()]
        if found != [(m.name, m.rows, m.sha256) for m in members]:
            raise ArchiveError([f"{path}: reopened, its members differ from what was written"])
    finally:
        archive.close()
