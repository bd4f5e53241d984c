"""The compiled evaluation on two cores (SQLite): the indicator and project statements, most of a
checkpoint's time, computed in two halves at once.

SQLite runs one statement on one core and lets one connection write. So a helper thread, on a
connection of its own (the sqlite3 module releases the GIL while SQLite works), does in order:
1. the shapes of the distinct targets and actuals (_ev_val) into a scratch database `ev`, committed;
2. the policy tables, from the rows the main connection decided meanwhile, then the indicator and
   project results of the projects from the split code on into a scratch database `part`, and their
   count (the Summary).
Meanwhile the main connection, in the evaluation's one transaction, clears the earlier results,
decides and writes the policy tables, attaches `ev` once it is ready, writes the results of the
projects before the split code and counts them, then copies the helper's rows in (they come after
its own in key order).

Both see the same data: the helper starts after the main transaction's first write, which holds
SQLite's write lock until the commit, so nothing can change in between; in WAL mode the helper's
reads are not blocked by it. The scratch files live in a temporary folder removed at the end; the
main connection, which had them attached, is closed rather than returned to the pool. A failure in
the helper fails the evaluation (nothing is written).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from monitor.core.model import Checkpoint
from monitor.core.summary import Summary
from monitor.db.engine import cores, in_memory, make_engine
from monitor.db.results import clear_results, save_policies, tally
from monitor.db.upserts import SQLITE_IMPORT_CACHE_KIB, large_cache
from monitor.evaluate import prepare
from monitor.evaluate import sql as compiled
from monitor.evaluate.sqltext import Dialect, lit
from monitor.rules.load import RuleSet
from monitor.rules.policy import Policies

MIN_PROJECTS = 20_000  # below this the second connection and the copy cost more than they save
# the helper's share of the projects: it also computes the value shapes, the main connection also
# clears the earlier results and copies the helper's rows in; even shares balance (measured)
HELPER_SHARE = 0.5


def worth_it(engine: Engine, projects: int, wanted: bool | None = None) -> bool:
    """Whether to evaluate in halves: only on a SQLite file (another connection must see it); as
    `wanted`, else for a large checkpoint on a machine with more than one core."""
    if engine.dialect.name != "sqlite" or in_memory(engine):
        return False
    if wanted is not None:
        return wanted
    return cores() >= 2 and projects >= MIN_PROJECTS


class Scratch:
    """The scratch folder of one evaluation and the main connection that attaches its files: on
    exit, after the transaction has ended, the connection is closed (never back to the pool with
    files attached) and the folder removed."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.folder: Path | None = None

    def path(self, name: str) -> str:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="monitor-evaluate-"))
        return str(self.folder / f"{name}.db")

    def __enter__(self) -> Scratch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.folder is not None:
            self.conn.invalidate()
            shutil.rmtree(self.folder, ignore_errors=True)


def _attach(conn: Connection, path: str, name: str, writer: bool = False) -> None:
    """Attach a scratch database; the `writer` (outside a transaction) writes it without journal or
    sync: it is thrown away if anything fails. The value shapes (`ev`, looked up at random) get the
    large page cache; the halves' rows (`part`, written and read in key order) need none."""
    conn.exec_driver_sql(f"ATTACH DATABASE {lit(path)} AS {name}")
    if name == "ev":
        conn.exec_driver_sql(f"PRAGMA {name}.cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    if writer:
        conn.exec_driver_sql(f"PRAGMA {name}.synchronous = OFF")
        conn.exec_driver_sql(f"PRAGMA {name}.journal_mode = OFF")


def _clone(conn: Connection, table: str, schema: str) -> None:
    """An empty copy of the main database's `table` in `schema`, keyed the same (the project
    statement reads the indicator results by key)."""
    sql = conn.exec_driver_sql(
        f"SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = {lit(table)}"
    ).scalar_one()
    head = sql[: sql.index("(")]
    conn.exec_driver_sql(f"CREATE TABLE {schema}.{table} " + sql[len(head) :])


class _Helper(threading.Thread):
    def __init__(
        self, url: str, rules: RuleSet, checkpoint: Checkpoint, run_id: int, lo: str, ev: str, part: str
    ) -> None:
        super().__init__(name="monitor-evaluate-helper", daemon=True)
        self.url, self.rules, self.checkpoint, self.run_id, self.lo = url, rules, checkpoint, run_id, lo
        self.ev, self.part = ev, part
        self.values_ready = threading.Event()
        self.rows_ready = threading.Event()
        self.policies_ready = threading.Event()
        self.policy_rows: prepare.PolicyRows | None = None
        self.error: BaseException | None = None
        self.summary = Summary(str(checkpoint))  # of its half, as the statements left it

    def run(self) -> None:
        engine = make_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                _attach(conn, self.ev, "ev", writer=True)
                _attach(conn, self.part, "part", writer=True)
                conn.commit()
                with conn.begin(), large_cache(conn):
                    prepare.prepare_values(conn, self.checkpoint, schema="ev")
                self.values_ready.set()
                self.policies_ready.wait()
                if self.policy_rows is None:  # the main connection failed first
                    return
                with conn.begin(), large_cache(conn):
                    d = Dialect(conn.dialect.name)
                    policies = Policies(self.rules)
                    rows = prepare.prepare_policies(conn, policies, self.checkpoint, given=self.policy_rows)
                    for table in ("indicator_result", "project_result"):
                        _clone(conn, table, "part")
                    theirs = compiled.Part(self.lo, None, "part.indicator_result", "part.project_result")
                    prepare.run(conn, compiled.indicator_sql(d, self.checkpoint, rows.answers, theirs))
                    compiled.finish(conn, policies, self.checkpoint, self.run_id, theirs)
                    prepare.drop_temporary(conn)
                self.rows_ready.set()
                # counted while the main connection copies the rows (its count is mostly Python: the two
                # counts at once would take turns)
                self.summary = tally(conn, str(self.checkpoint), schema="part", settled_only=True)
        except BaseException as e:  # handed to the main thread, which raises it
            self.error = e
        finally:
            self.values_ready.set()
            self.rows_ready.set()
            engine.dispose()

    def hand_over(self, rows: prepare.PolicyRows | None) -> None:
        """The policy rows the main connection decided (None: it failed, the helper stops)."""
        self.policy_rows = rows
        self.policies_ready.set()

    def wait(self, event: threading.Event | None = None) -> None:
        """Wait for `event` (or the end), then raise the helper's error if it failed."""
        if event is not None:
            event.wait()
        else:
            self.join()
        if self.error is not None:
            raise self.error


@dataclass(frozen=True)
class Split:
    """Where the halves met, and the Summary of both as the statements left them."""

    lo: str
    summary: Summary

    def tally(self, conn: Connection, checkpoint: Checkpoint, unsure: list[str]) -> Summary:
        """The checkpoint's Summary once the `unsure` projects were evaluated again by the pure core
        (if there were any, counted again)."""
        return tally(conn, str(checkpoint)) if unsure else self.summary


def evaluate(
    conn: Connection, scratch: Scratch, policies: Policies, checkpoint: Checkpoint, run_id: int, projects: int
) -> tuple[list[str], Split | None]:
    """db.results.clear_results and compiled.evaluate, in two halves (see the module's docstring). Returns
    the projects left uncertain and, if it did split, where (None: evaluated in one piece)."""
    # the transaction's first write takes SQLite's write lock, held until the commit: from here on
    # nothing changes what the helper reads
    conn.exec_driver_sql("DELETE FROM indicator_result WHERE 0")
    skip = int(projects * (1 - HELPER_SHARE))
    lo = conn.exec_driver_sql(f"SELECT code FROM project ORDER BY code LIMIT 1 OFFSET {skip}").scalar()
    if lo is None:
        clear_results(conn, str(checkpoint))
        return compiled.evaluate(conn, policies, checkpoint, run_id), None
    url = conn.engine.url.render_as_string(hide_password=False)
    helper = _Helper(url, policies.rules, checkpoint, run_id, lo, scratch.path("ev"), scratch.path("part"))
    helper.start()
    try:
        clear_results(conn, str(checkpoint))
        prepare.drop_temporary(conn)
        rows = prepare.prepare_policies(conn, policies, checkpoint)
        save_policies(conn, run_id, rows.facts)
        helper.hand_over(rows)
        helper.wait(helper.values_ready)
        _attach(conn, scratch.path("ev"), "ev")
        mine = compiled.Part(hi=lo)
        prepare.run(conn, compiled.indicator_sql(Dialect("sqlite"), checkpoint, rows.answers, mine))
        compiled.finish(conn, policies, checkpoint, run_id, mine)
        helper.wait(helper.rows_ready)
        _attach(conn, scratch.path("part"), "part")
        for table, columns in (
            ("indicator_result", compiled.RESULT_COLUMNS),
            ("project_result", compiled.PROJECT_RESULT_COLUMNS),
        ):
            conn.exec_driver_sql(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM part.{table}")
        counted = tally(conn, str(checkpoint), hi=lo, settled_only=True)  # the helper counts its own
        helper.wait()
    finally:
        if not helper.policies_ready.is_set():
            helper.hand_over(None)
        helper.join()
    prepare.drop_temporary(conn)
    return compiled.uncertain(conn, checkpoint), Split(lo, counted.merge(helper.summary))
