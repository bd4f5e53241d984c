"""`monitor import ARCHIVE.zip`: an archive of `monitor db archive` read back. The archive is checked
whole first (monitor.db.archive_file: members, hashes, counts, schema revision, every cell; then rows
the database holds otherwise under the same keys), nothing written on any problem; its reports go
through the canonical import (the same checks as any file), and in the same transaction its other
tables are restored as they were, ids kept, with the reports' provenance (monitor.db.archive.restore).
Rows the database already holds alike are left as they are: importing an archive twice is harmless.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine, delete, select
from sqlalchemy.engine import Connection

from monitor.core.errors import BadInput
from monitor.db import archive as arc
from monitor.db import archive_file as af
from monitor.db.engine import REPORT_BATCH, create_schema
from monitor.ingest.problems import ImportFailed

SUFFIX = ".zip"
REPORT_MEMBERS = (arc.PROJECT_REPORTS, arc.INDICATOR_REPORTS)


def is_archive(path: Path) -> bool:
    """A file `monitor import` reads as an archive (.xlsx files are zips too: the name decides)."""
    return path.suffix.lower() == SUFFIX


Importer = Callable[..., dict[str, int]]  # monitor.ingest.importer.import_paths (which calls this module)


def import_archive(
    engine: Engine,
    paths: Sequence[Path],
    now: dt.datetime | None,
    warnings: list[str] | None,
    importer: Importer,
) -> dict[str, int]:
    """Read one archive back into the database (see the module's docstring); counts per table; its reports
    through `importer` (the canonical import)."""
    if len(paths) != 1 or not paths[0].is_file():
        raise BadInput("an archive is imported on its own: `monitor import ARCHIVE.zip`")
    path = paths[0]
    create_schema(engine)
    archive = af.open_archive(path, arc.revisions())
    try:
        problems = arc.cell_problems(archive)
        if not problems:
            with engine.connect() as conn:
                problems = arc.conflicts(conn, archive, REPORT_MEMBERS)
        if problems:
            raise af.ArchiveError(problems)
        return _import(engine, archive, now, warnings, importer)
    finally:
        archive.close()


def _import(
    engine: Engine,
    archive: af.Archive,
    now: dt.datetime | None,
    warnings: list[str] | None,
    importer: Importer,
) -> dict[str, int]:
    source = f"archive {archive.path.name}"
    restored: dict[str, int] = {}

    def also(conn: Connection) -> None:
        restored.update(arc.restore(conn, archive))
        mine = (
            select(REPORT_BATCH.c.id)
            .where(REPORT_BATCH.c.source == source)
            .order_by(REPORT_BATCH.c.id.desc())
        )
        made = conn.execute(mine.limit(1)).scalar()  # this import's own batch: the rows name theirs again
        if made is not None and made not in arc.named_batches(conn):
            conn.execute(delete(REPORT_BATCH).where(REPORT_BATCH.c.id == made))

    with tempfile.TemporaryDirectory(prefix="monitor-archive-") as tmp:
        files = [_extract(archive, name, Path(tmp)) for name in REPORT_MEMBERS if archive.members[name].rows]
        if not files:
            with engine.begin() as conn:
                also(conn)
            return restored
        try:
            counts = importer(engine, files, now, warnings, also=also, source=source)
        except ImportFailed as exc:
            at = {str(f): f"{archive.path}:{f.name}" for f in files}
            raise ImportFailed(
                [dataclasses.replace(p, file=at.get(p.file, p.file)) for p in exc.problems]
            ) from exc
    return {**counts, **restored}


def _extract(archive: af.Archive, name: str, folder: Path) -> Path:
    """A report member as a plain CSV for the canonical import (cells unescaped: checked already)."""
    out = folder / name
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        for number, cells in archive.rows(name):
            writer.writerow(
                cells if number == 1 else [af.decode_text(c, blank_null=True) or "" for c in cells]
            )
    return out
