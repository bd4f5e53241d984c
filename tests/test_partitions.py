"""Results kept per checkpoint (issue 21): on PostgreSQL each checkpoint's project and indicator results
live in a partition of their own (migration 0015) and a run swaps in fresh ones instead of deleting and
writing the same keys again; the DEFAULT partition stays empty whichever way results are written (the SQL
form, the pure core); on SQLite the same runs give the same results in its single tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from test_web import cli, make

from monitor.core.model import Checkpoint
from monitor.db import partitions
from monitor.evaluate import prepare
from monitor.evaluate.prepare import prepare_all
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.pipeline.queueing import queue_in
from monitor.rules.policy import Policies

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"


def _results(work: Path) -> dict[str, Any]:
    app, _ = make(work)
    with app.engine.connect() as conn:
        projects = conn.execute(
            text("SELECT checkpoint, project_code, light, budget_light, target_light FROM project_result")
        ).all()
        indicators = conn.execute(
            text("SELECT checkpoint, project_code, indicator_code, light, ratio FROM indicator_result")
        ).all()
    return {"projects": sorted(map(tuple, projects)), "indicators": sorted(map(tuple, indicators))}


def _analyzed(conn: Connection) -> list[str]:
    """The May result partitions with column statistics, as `conn`'s transaction sees them."""
    q = "SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = 'result_parts'"
    q += " AND tablename LIKE '%2025_05'"
    return sorted(conn.execute(text(q)).scalars())


def _partitions(work: Path) -> list[tuple[str, str, int]]:
    """(table, partition, rows) of every result partition (PostgreSQL); [] on SQLite."""
    app, _ = make(work)
    if app.engine.dialect.name != "postgresql":
        return []
    with app.engine.connect() as conn:
        parts = conn.execute(
            text(
                "SELECT p.relname, c.relname FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent"
                " JOIN pg_class c ON c.oid = h.inhrelid"
                " WHERE p.relname IN ('project_result', 'indicator_result')"
            )
        ).all()
        return sorted(
            (t, c, int(conn.execute(text(f"SELECT count(*) FROM result_parts.{c}")).scalar_one()))
            for t, c in parts
        )


def test_each_checkpoint_has_its_own_partition_and_a_rerun_swaps_it(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    for cp in ("2025-05", "2025-08"):
        assert cli(workdir, "run", "--checkpoint", cp, "--no-send").exit_code == 0
    first = _results(workdir)
    assert {r[0] for r in first["projects"]} == {"2025-05", "2025-08"}
    before = _partitions(workdir)

    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0  # again: swapped
    assert _results(workdir) == first
    after = _partitions(workdir)
    assert after == before
    app, _ = make(workdir)
    if app.engine.dialect.name == "postgresql":
        names = {c for _, c, _ in after}
        assert {"indicator_result_2025_05", "project_result_2025_05", "indicator_result_2025_08"} <= names
        assert all(n == 0 for _, c, n in after if c.endswith("_default"))  # nothing in the DEFAULT
        counts = {c: n for _, c, n in after}
        assert counts["project_result_2025_05"] == sum(1 for r in first["projects"] if r[0] == "2025-05")
        assert not any("_run" in c for c in names)  # the fresh tables became the partitions


def test_the_pure_core_writes_into_the_checkpoints_partition_too(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    compiled = _results(workdir)
    app, _ = make(workdir)  # the pure core over every project (evaluate_checkpoint's method "python")
    evaluate_checkpoint(app.engine, app.rules(), Checkpoint(2025, 5), app.clock, method="python")
    assert _results(workdir) == compiled
    assert all(n == 0 for _, c, n in _partitions(workdir) if c.endswith("_default"))


def test_a_reader_holding_the_results_does_not_block_a_run(workdir: Path) -> None:
    """A transaction that read the results and stays open (the board, a report being written, here the
    caller's own) would keep a partition swap waiting for ever: past a few seconds the run writes the rows
    in place instead, and gives the same results."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    first = _results(workdir)
    app, _ = make(workdir)
    with app.engine.connect() as reader, reader.begin():
        held = reader.execute(text("SELECT count(*) FROM project_result")).scalar_one()
        evaluate_checkpoint(app.engine, app.rules(), Checkpoint(2025, 5), app.clock)
        assert reader.execute(text("SELECT count(*) FROM project_result")).scalar_one() == held
    assert _results(workdir) == first
    assert all(n == 0 for _, c, n in _partitions(workdir) if c.endswith("_default"))


def test_a_runs_results_have_statistics_before_its_messages_are_composed(workdir: Path) -> None:
    """PostgreSQL: a run's fresh partitions had no column statistics until autovacuum came (a minute or
    so later), so the queueing right after the evaluation read them with plans made for empty tables:
    the reasons' change check hash-joined whole input tables to every 500 projects' results (0.23-0.42 s
    a batch, 19-36 s of the 61-81 s of queueing 100k projects). The first reader analyzes them, once."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        if app.engine.dialect.name != "postgresql":
            assert partitions.analyze_unread(conn, "2025-05") == []  # SQLite: its single tables
            return
        assert _analyzed(conn) == ["indicator_result_2025_05", "project_result_2025_05"]
        assert partitions.analyze_unread(conn, "2025-05") == []  # once: not again by the next reader


def test_the_statistics_are_committed_before_the_composing_workers_read(workdir: Path) -> None:
    """PostgreSQL: the composing worker processes read the results in transactions of their own, while
    the writer's transaction (cases, outbox, the run marked finished) stays open to the end. Analyzed
    inside it, the statistics were invisible to them until it committed: at 300k projects the workers'
    change checks read whole partitions per 500 projects (queueing 190 s, 58 s with them). They are
    committed first, so another connection sees them while the queueing's transaction is still open."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    app, _ = make(workdir)
    evaluate_checkpoint(app.engine, app.rules(), Checkpoint(2025, 5), app.clock)
    with app.engine.begin() as writer:
        queue_in(app.engine, writer, app.settings, app.templates(), Checkpoint(2025, 5), app.clock, workers=0)
        if app.engine.dialect.name != "postgresql":
            return
        with app.engine.connect() as worker:  # what a composing process sees meanwhile
            assert _analyzed(worker) == ["indicator_result_2025_05", "project_result_2025_05"]


def _work_schemas(app: Any) -> list[str]:
    with app.engine.connect() as conn:
        q = "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ev_work_%'"
        return list(conn.execute(text(q)).scalars())


def test_the_evaluations_tables_are_readable_by_parallel_workers(workdir: Path) -> None:
    """PostgreSQL: parallel workers cannot read temporary tables, and INSERT … SELECT is never planned
    in parallel: the indicator results (600k rows at 100k projects) were read by one process. The
    evaluation's tables are UNLOGGED tables of a schema of the session's own, made and dropped in its
    transaction, and the indicator results made by CREATE TABLE … AS; the results are the same."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        unfinished = conn.begin()
        prepare_all(conn, Policies(app.rules()), Checkpoint(2025, 5))
        if app.engine.dialect.name != "postgresql":
            return
        kinds = conn.execute(
            text(
                "SELECT relname, relpersistence FROM pg_class WHERE oid IN ('_ev_ipol'::regclass,"
                " '_ev_pkey'::regclass, '_ev_ppol'::regclass, '_ev_val'::regclass)"
            )
        ).all()
        assert sorted(kinds) == [("_ev_ipol", "u"), ("_ev_pkey", "u"), ("_ev_ppol", "u"), ("_ev_val", "u")]
        unfinished.rollback()  # as a run's, killed midway
    assert _work_schemas(app) == []  # gone with the transaction
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    assert _work_schemas(app) == []  # dropped by the run
    made = _results(workdir)
    assert made["projects"] and made["indicators"]
    assert all(n == 0 for _, c, n in _partitions(workdir) if c.endswith("_default"))


def test_a_role_that_may_not_create_a_schema_evaluates_with_temporary_tables(
    workdir: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """Where the database refuses the work schema (a role without CREATE on it), the tables are
    temporary, as before, and the results the same."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    expected = _results(workdir)
    monkeypatch.setattr(prepare, "_work_name", lambda conn: "pg_refused")  # pg_*: reserved, refused
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    assert _results(workdir) == expected


def test_statistics_waiting_on_the_callers_own_lock_are_taken_in_its_transaction(workdir: Path) -> None:
    """PostgreSQL: when the queueing's own transaction holds the partitions against ANALYZE (the caller
    locked or wrote them itself), the committed analysis would wait for it for ever: past the lock wait
    they are analyzed in the caller's transaction, and the queueing goes on."""
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    app, _ = make(workdir)
    evaluate_checkpoint(app.engine, app.rules(), Checkpoint(2025, 5), app.clock)
    with app.engine.begin() as writer:
        if app.engine.dialect.name == "postgresql":  # SHARE: what ANALYZE's lock conflicts with
            writer.execute(text("LOCK TABLE result_parts.project_result_2025_05 IN SHARE MODE"))
        queued = queue_in(
            app.engine, writer, app.settings, app.templates(), Checkpoint(2025, 5), app.clock, workers=0
        )
        assert queued
        if app.engine.dialect.name == "postgresql":
            assert _analyzed(writer) == ["indicator_result_2025_05", "project_result_2025_05"]
    if app.engine.dialect.name == "postgresql":
        with app.engine.connect() as conn:
            assert _analyzed(conn) == ["indicator_result_2025_05", "project_result_2025_05"]
