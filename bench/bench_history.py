"""History does not slow the present (issue 21): the May evaluation and the queueing of its messages
(as `monitor run` does them, without delivery), timed on a database holding the imported inputs alone
(an empty history), then on the same database holding four earlier checkpoints of the same size
(two years: 2023-05, 2023-08, 2024-05, 2024-08): their project and indicator reports, their run, its
policies, its project and indicator results, and their outbox rows with the messages (delivered).
Prints the medians of both and their ratio next to the goal (≤ 1.2×).

    .venv/bin/python bench/bench_history.py [--projects 100000] [--repeat 3] [--database-url URL]

The earlier checkpoints are made quickly, not by running them: the May checkpoint is run once on a
copy of the data (untimed), then INSERT … SELECT copies each of its rows with the checkpoint replaced
(the Message-IDs get a suffix, the copies are marked sent), and the May rows of that run are deleted.
Each timed run is on a fresh copy of one of the two databases (SQLite: a file copy; PostgreSQL:
CREATE DATABASE … TEMPLATE), in a fresh process, the two in turns. With --database-url
postgresql+psycopg://…, the databases are created next to the one named (`bench_history_…`, dropped
at the end): the role needs CREATEDB.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench_scale import (
    CHECKPOINT,
    _evaluate_and_queue,
    _import,
    _sample,
    is_pg,
    pg_database,
    scratch_database,
    stage,
    write_config,
)
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url

GOAL_RATIO = 1.2
HISTORY = ("2023-05", "2023-08", "2024-05", "2024-08")


def _columns(conn: Connection, table: str) -> list[str]:
    return [c["name"] for c in inspect(conn).get_columns(table)]


def _copy(conn: Connection, table: str, where: str, values: dict[str, str], params: dict[str, str]) -> int:
    """INSERT INTO table SELECT its rows matching `where`, with `values` (column → SQL expression)
    replacing their columns (a column mapped to "" is left out: the database numbers it)."""
    cols = [c for c in _columns(conn, table) if values.get(c) != ""]
    exprs = [values.get(c, f"t.{c}") for c in cols]
    sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {table} t WHERE {where}"
    return conn.execute(text(sql), params).rowcount


def make_history(url: str) -> dict[str, int]:
    """Copy the May checkpoint's stored rows to the four earlier checkpoints, then delete May's run
    (its results and outbox rows): the database holds the May inputs and two years of history."""
    engine = create_engine(url)
    rows: dict[str, int] = {}
    cat = "||"
    with engine.begin() as conn:
        (may_run,) = conn.execute(
            text("SELECT id FROM run WHERE checkpoint = :m"), {"m": str(CHECKPOINT)}
        ).one()
        for cp in HISTORY:
            p = {"m": str(CHECKPOINT), "sfx": f".h{cp}"}
            c = f"'{cp}'"  # a constant of this file: a literal, of the column's type on PostgreSQL
            new_run = f"(SELECT id FROM run WHERE checkpoint = {c})"
            n = {
                "project_report": _copy(conn, "project_report", "t.checkpoint = :m", {"checkpoint": c}, p),
                "indicator_report": _copy(
                    conn, "indicator_report", "t.checkpoint = :m", {"checkpoint": c}, p
                ),
                "run": _copy(conn, "run", "t.checkpoint = :m", {"id": "", "checkpoint": c}, p),
            }
            n["run_policy"] = _copy(conn, "run_policy", f"t.run_id = {may_run}", {"run_id": new_run}, p)
            n["project_result"] = _copy(
                conn, "project_result", "t.checkpoint = :m", {"checkpoint": c, "run_id": new_run}, p
            )
            n["indicator_result"] = _copy(conn, "indicator_result", "t.checkpoint = :m", {"checkpoint": c}, p)
            n["outbox"] = _copy(
                conn,
                "outbox",
                "t.checkpoint = :m",
                {
                    "id": "",
                    "checkpoint": c,
                    "message_id": f"t.message_id {cat} :sfx",
                    "status": "'sent'",
                    "sent_at": "t.created_at",
                    "attempts": "1",
                },
                p,
            )
            n["outbox_message"] = conn.execute(
                text(
                    "INSERT INTO outbox_message (outbox_id, raw)"
                    " SELECT n.id, m.raw FROM outbox o JOIN outbox_message m ON m.outbox_id = o.id"
                    f" JOIN outbox n ON n.message_id = o.message_id {cat} :sfx WHERE o.checkpoint = :m"
                ),
                p,
            ).rowcount
            for k, v in n.items():
                rows[k] = rows.get(k, 0) + v
        m = {"m": str(CHECKPOINT), "r": may_run}
        for sql in (
            "DELETE FROM outbox_message WHERE outbox_id IN (SELECT id FROM outbox WHERE checkpoint = :m)",
            "DELETE FROM outbox WHERE checkpoint = :m",
            "DELETE FROM indicator_result WHERE checkpoint = :m",
            "DELETE FROM project_result WHERE checkpoint = :m",
            "DELETE FROM run_policy WHERE run_id = :r",
            "DELETE FROM run WHERE id = :r",
        ):
            conn.execute(text(sql), m)
    engine.dispose()
    return rows


def settle(url: str) -> None:
    """The database as a run finds it long after it was written: PostgreSQL vacuumed and analyzed
    (as autovacuum would have); SQLite's write-ahead log copied into the file."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if is_pg(url) else "PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@contextmanager
def copy_of(url: str, work: Path) -> Iterator[str]:
    """A fresh copy of the database `url` names, removed afterwards."""
    if is_pg(url):
        with pg_database(url, f"bench_history_copy_{uuid.uuid4().hex[:8]}", make_url(url).database) as copy:
            yield copy
        return
    dst = work / f"copy-{uuid.uuid4().hex[:8]}.db"
    shutil.copyfile(make_url(url).database or "", dst)
    try:
        yield f"sqlite:///{dst}"
    finally:
        for path in work.glob(f"{dst.name}*"):  # with its -wal and -shm
            path.unlink()


def _size(url: str) -> str:
    if is_pg(url):
        engine = create_engine(url)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        engine.dispose()
    else:
        size = Path(make_url(url).database or "").stat().st_size
    return f"{size / 2**20:,.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="default: SQLite files in a temporary folder")
    args = ap.parse_args()

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        base = stack.enter_context(scratch_database(args.database_url, Path(tmp), "bench_history_base"))
        work = Path(tmp)
        print(f"{args.projects:,} projects, checkpoint {CHECKPOINT}, {base.split(':')[0]}", flush=True)
        (work / "base").mkdir()
        config = write_config(work / "base", base)
        sample = stage("sample CSV written", base, _sample, config, args.projects)
        stage("import", base, _import, config, sample.out["paths"], helpers=1)
        settle(base)
        # the history database: a copy of the import, the May run once (untimed), copied back two years
        hist = stack.enter_context(copy_of(base, work))
        (work / "hist").mkdir()
        stage("May run to copy", hist, _evaluate_and_queue, write_config(work / "hist", hist), helpers=2)
        start = time.perf_counter()
        rows = make_history(hist)
        print(
            f"  history made by INSERT … SELECT of the May run's rows with the checkpoint replaced"
            f" ({', '.join(HISTORY)}) in {time.perf_counter() - start:.1f} s: "
            + ", ".join(f"{t} {n:,}" for t, n in rows.items()),
            flush=True,
        )
        settle(hist)
        print(f"  database size: empty history {_size(base)}, with history {_size(hist)}", flush=True)

        times: dict[str, dict[str, list[float]]] = {
            k: {"evaluation": [], "queueing": [], "total": []} for k in ("empty", "history")
        }
        for i in range(args.repeat):  # in turns: a noisy moment of the shared machine weighs on both
            for label, src in (("empty", base), ("history", hist)):
                with copy_of(src, work) as url:
                    tconfig = work / f"trial-{label}-{i}"
                    tconfig.mkdir()
                    s = stage(
                        f"May run, {label} #{i + 1}",
                        url,
                        _evaluate_and_queue,
                        write_config(tconfig, url),
                        helpers=2,
                    )
                    print(
                        f"      evaluation {s.out['evaluation']:.1f} s, queueing {s.out['queueing']:.1f} s,"
                        f" {sum(s.out['kinds'].values()):,} messages",
                        flush=True,
                    )
                    times[label]["evaluation"].append(s.out["evaluation"])
                    times[label]["queueing"].append(s.out["queueing"])
                    times[label]["total"].append(s.seconds)

    med = {k: {p: statistics.median(v) for p, v in parts.items()} for k, parts in times.items()}
    print(f"medians of {args.repeat} (each run: a fresh copy, a fresh process; total = the process's work):")
    for part in ("evaluation", "queueing", "total"):
        e, h = med["empty"][part], med["history"][part]
        print(
            f"  {part:<11} empty history {e:7.1f} s   with four earlier checkpoints {h:7.1f} s"
            f"   ratio {h / e:.2f}x"
        )
    ratio = med["history"]["total"] / med["empty"]["total"]
    verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
    print(f"history / empty, May evaluation + queueing: {ratio:.2f}x (goal: <= {GOAL_RATIO}x; {verdict})")


if __name__ == "__main__":
    main()
