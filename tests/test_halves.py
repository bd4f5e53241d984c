"""The compiled evaluation in two halves on two connections (monitor.evaluate.halves, SQLite files): what it
computes is checked against the pure core in test_compiled (parametrized "halves"); here, that a
failure on either side leaves the earlier results and no scratch files, that the connection which
had the scratch files attached is not reused, and when the halves are used at all."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Row, text

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.db.engine import make_engine
from monitor.evaluate import halves, prepare
from monitor.evaluate import sql as compiled
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.tools.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent
MAY = Checkpoint(2025, 5)


@pytest.fixture
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The folder temporary files go to, watched for the evaluation's scratch folder."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield root


@pytest.fixture
def app(tmp_path: Path) -> App:
    """A SQLite file with a 300-project sample, evaluated once in one piece."""
    (tmp_path / "config.yaml").write_text(
        f"database: {{url: 'sqlite:///{tmp_path / 'monitor.db'}'}}\n"
        f"rules_dir: {ROOT / 'rules'}\ntemplates_dir: {ROOT / 'templates'}\n",
        encoding="utf-8",
    )
    app = App(load_settings(tmp_path / "config.yaml"))
    app.import_paths(list(write_sample(tmp_path / "data", projects=300).values()))
    evaluate_checkpoint(app.engine, app.rules(), MAY, app.clock, split=False)
    return app


def _results(app: App) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
    with app.engine.connect() as conn:
        projects = conn.exec_driver_sql(
            "SELECT * FROM project_result WHERE checkpoint = '2025-05' ORDER BY project_code"
        ).all()
        indicators = conn.exec_driver_sql(
            "SELECT * FROM indicator_result WHERE checkpoint = '2025-05'"
            " ORDER BY project_code, indicator_code"
        ).all()
    return projects, indicators


def _last_run_status(app: App) -> str:
    with app.engine.connect() as conn:
        return str(conn.execute(text("SELECT status FROM run ORDER BY id DESC LIMIT 1")).scalar_one())


def _helpers_running() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "monitor-evaluate-helper"]


def test_a_failure_in_the_helper_fails_the_evaluation_and_keeps_the_earlier_results(
    app: App, scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _results(app)
    prepare_values = prepare.prepare_values

    def disk_full(conn: Any, checkpoint: Checkpoint, schema: str | None = None) -> None:
        if schema == "ev":  # the helper's scratch database
            raise OSError(28, "No space left on device")
        prepare_values(conn, checkpoint, schema)

    monkeypatch.setattr(prepare, "prepare_values", disk_full)
    with pytest.raises(OSError, match="No space left"):
        evaluate_checkpoint(app.engine, app.rules(), MAY, app.clock, split=True)
    assert _results(app) == before
    assert _last_run_status(app) == "failed"
    assert list(scratch_root.iterdir()) == [] and _helpers_running() == []


def test_a_failure_in_the_main_half_waits_for_the_helper_and_keeps_the_earlier_results(
    app: App, scratch_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _results(app)
    finish = compiled.finish

    def broken(conn: Any, *args: Any, **kwargs: Any) -> None:
        if args[-1].hi is not None:  # the main connection's half
            raise RuntimeError("the main half broke")
        finish(conn, *args, **kwargs)

    monkeypatch.setattr(compiled, "finish", broken)
    with pytest.raises(RuntimeError, match="main half broke"):
        evaluate_checkpoint(app.engine, app.rules(), MAY, app.clock, split=True)
    assert _results(app) == before
    assert _last_run_status(app) == "failed"
    assert list(scratch_root.iterdir()) == [] and _helpers_running() == []


def test_the_halves_write_what_one_piece_writes_and_leave_no_scratch_behind(
    app: App, scratch_root: Path
) -> None:
    one_piece = _results(app)
    for _ in range(2):  # again: nothing attached is left on a pooled connection
        _, summary = evaluate_checkpoint(app.engine, app.rules(), MAY, app.clock, split=True)
        assert list(scratch_root.iterdir()) == []
        projects, indicators = _results(app)
        # the same rows but for the run they belong to
        assert [r[:2] + r[3:] for r in projects] == [r[:2] + r[3:] for r in one_piece[0]]
        assert indicators == one_piece[1]
        assert summary.projects == 300
    assert _last_run_status(app) == "evaluated"  # finished once its messages are queued
    with app.engine.connect() as a, app.engine.connect() as b:
        for conn in (a, b):
            attached = {r[1] for r in conn.exec_driver_sql("PRAGMA database_list")}
            assert attached <= {"main", "temp"}


def test_the_halves_are_used_for_a_large_checkpoint_on_a_sqlite_file_with_two_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_file = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    in_memory = make_engine("sqlite://")
    server = make_engine("postgresql+psycopg://monitor@127.0.0.1:5432/nowhere")  # never connects
    large, small = halves.MIN_PROJECTS, halves.MIN_PROJECTS - 1
    monkeypatch.setattr("monitor.evaluate.halves.cores", lambda: 2)
    assert halves.worth_it(on_file, large) and not halves.worth_it(on_file, small)
    assert halves.worth_it(on_file, small, wanted=True) and not halves.worth_it(on_file, large, wanted=False)
    assert not halves.worth_it(in_memory, large) and not halves.worth_it(in_memory, large, wanted=True)
    assert not halves.worth_it(server, large, wanted=True)
    monkeypatch.setattr("monitor.evaluate.halves.cores", lambda: 1)
    assert not halves.worth_it(on_file, large)
