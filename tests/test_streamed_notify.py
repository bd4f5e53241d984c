"""queue_notifications streams a checkpoint a chunk of whole units at a time and counts the bureau
summary in the database: it must queue exactly what notify.decide over db.reads.load_results queues."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.db.engine import OUTBOX, OUTBOX_MESSAGE, PROJECT_RESULT
from monitor.db.inputs import load_units
from monitor.db.reads import result_lights
from monitor.deliver import outbox
from monitor.evaluate.stored import bureau_figures, iter_unit_results, load_results
from monitor.notify import decide as notify
from monitor.notify import digests, messages, views
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.pipeline.queueing import queue_notifications

NOW = dt.datetime(2025, 9, 12, 1, 0, tzinfo=dt.UTC)
KEYS = ("kind", "reason", "unit_code", "subject", "recipients", "snapshot", "fingerprint")


def row_of(r: Mapping[str, Any]) -> dict[str, Any]:
    """What an outbox row states: its keys and the decoded text and HTML bodies (the Message-ID, the
    MIME boundaries and the date are left out)."""
    msg = message_from_bytes(r["raw"].encode("ascii"), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    bodies = [msg.get_body((kind,)) for kind in ("plain", "html")]
    return {k: r[k] for k in KEYS} | {"bodies": [b.get_content() if b else None for b in bodies]}


@pytest.fixture
def demo(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.chdir(workdir)  # the demo writes its reports into ./reports
    res = CliRunner().invoke(
        main,
        [
            "demo",
            "--out",
            str(workdir / "demo"),
            "--projects",
            "400",
            "--config",
            str(workdir / "config.yaml"),
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    app = App(load_settings(workdir / "config.yaml"))
    app.clock = lambda: NOW
    return app


def expected(app: App, checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """The old whole-checkpoint path: everything in memory, notify.decide, compose."""
    cp = str(checkpoint)
    previous_cp = checkpoint.previous_in(list(app.settings.checkpoint_months))
    with app.engine.connect() as conn:
        results = load_results(conn, cp)
        units = load_units(conn)
        previous = result_lights(conn, str(previous_cp)) if previous_cp else {}
        sent = outbox.sent_snapshots(conn, cp)
    label = str(previous_cp) if previous_cp and previous else None
    options = messages.options(app.settings, checkpoint, NOW)
    notices = notify.decide(cp, results, units, previous, label, sent, options)
    rows = messages.compose_all(notices, cp, app.templates(), app.settings, NOW)
    return [row_of(r) for r in rows]


def streamed(app: App, checkpoint: Checkpoint, chunk_units: int, workers: int = 0) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        before = conn.execute(select(OUTBOX.c.id).order_by(OUTBOX.c.id.desc())).scalar() or 0
    queued = queue_notifications(
        app.engine, app.settings, app.templates(), checkpoint, app.clock, chunk_units, workers
    )
    with app.engine.connect() as conn:
        rows = [
            row_of(r._asdict())
            for r in conn.execute(
                select(OUTBOX, OUTBOX_MESSAGE.c.raw)
                .join(OUTBOX_MESSAGE)
                .where(OUTBOX.c.id > before)
                .order_by(OUTBOX.c.id)
            )
        ]
    assert queued == [{"kind": r["kind"], "reason": r["reason"], "unit_code": r["unit_code"]} for r in rows]
    return rows


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    (row,) = [r for r in rows if r["kind"] == "summary"]
    snapshot: dict[str, Any] = json.loads(row["snapshot"])
    return snapshot


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "two-worker-processes"])
def test_streamed_queue_matches_decide_over_the_whole_checkpoint(demo: App, workers: int) -> None:
    app = demo
    may, august = Checkpoint(2025, 5), Checkpoint(2025, 8)
    with app.engine.begin() as conn:
        conn.execute(delete(OUTBOX))  # the demo queued (and sent) both: start from nothing
    for cp in (may, august):
        want = expected(app, cp)
        got = streamed(app, cp, chunk_units=7, workers=workers)
        assert got == want
        kinds = {r["kind"] for r in got}
        assert {"warning", "overdue", "summary"} <= kinds, kinds  # NOW is after both report deadlines
        assert {r["reason"] for r in got if r["kind"] == "warning"} == {"first"}
        assert summary_of(got)["red"]
    assert streamed(app, august, chunk_units=7, workers=workers) == []  # nothing changed: nothing queued

    # Results change: some yellow turn red, some red turn green, a project moves to another unit,
    # an unreported one is reported: escalations, improvements, changes, a new reminder list.
    with app.engine.connect() as conn:
        rows = load_results(conn, "2025-08")
    yellow = [r["project_code"] for r in rows if r["light"] == "yellow"][:5]
    red = [r["project_code"] for r in rows if r["light"] == "red"][:5]
    moved = next(r for r in rows if r["light"] == "red" and r["project_code"] not in red)
    other = next(r["unit_code"] for r in rows if r["unit_code"] != moved["unit_code"])
    missing = next(r["project_code"] for r in rows if r["status"] == "not_reported")
    pr = PROJECT_RESULT
    with app.engine.begin() as conn:
        where = pr.c.checkpoint == "2025-08"
        conn.execute(update(pr).where(where, pr.c.project_code.in_(yellow)).values(light="red"))
        conn.execute(update(pr).where(where, pr.c.project_code.in_(red)).values(light="green"))
        conn.execute(
            update(pr).where(where, pr.c.project_code == moved["project_code"]).values(unit_code=other)
        )
        conn.execute(
            update(pr).where(where, pr.c.project_code == missing).values(status="reported", light="green")
        )
    want = expected(app, august)
    for chunk_units in (1, 3, 2000):
        got = streamed(app, august, chunk_units, workers)
        assert got == want
        with app.engine.begin() as conn:  # forget this round, so the next chunk size faces the same outbox
            last = conn.execute(select(OUTBOX.c.id).order_by(OUTBOX.c.id.desc())).scalar()
            assert last is not None
            conn.execute(delete(OUTBOX).where(OUTBOX.c.id > last - len(got)))
    assert {"escalated", "improved"} <= {r["reason"] for r in want}, {r["reason"] for r in want}


def test_bureau_figures_from_the_database_make_the_same_summary(demo: App) -> None:
    app = demo
    with app.engine.connect() as conn:
        units = load_units(conn)
        for cp, prev, top in (("2025-05", None, 10), ("2025-08", "2025-05", 3), ("2025-08", "2025-05", 0)):
            options = messages.options(app.settings, Checkpoint.parse(cp), NOW)
            options = notify.Options(**{**options.__dict__, "top_red": top})
            results = load_results(conn, cp)
            previous = result_lights(conn, prev) if prev else {}
            want = views.summary(cp, results, units, previous, prev, options)
            got = views.bureau_summary(cp, bureau_figures(conn, cp, prev, top), units, prev, options)
            assert got == want
            assert len(got["top_red"]) == min(top, len(got["snapshot"]["red"]))


def test_iter_unit_results_is_load_results_in_whole_units_with_warned_detail_only(demo: App) -> None:
    with demo.engine.connect() as conn:
        whole = load_results(conn, "2025-08")
        chunks = list(iter_unit_results(conn, "2025-08", chunk_units=5))
    assert len(chunks) > 1
    seen: set[str] = set()
    for chunk in chunks:
        codes = {r["unit_code"] for r in chunk}
        assert len(codes) <= 5 and not codes & seen
        seen |= codes
    flat = [r for chunk in chunks for r in chunk]

    # the others without indicators, and without the reasons the compiled evaluation leaves to be
    # rendered when read (monitor.evaluate.reasons): digests only state the yellow and red projects'
    # reasons, and their yellow and red indicators'
    def warned_only(i: Mapping[str, Any]) -> Mapping[str, Any]:
        return i if i["light"] in ("yellow", "red") else {**i, "reason": ""}

    assert flat == [
        {**r, "indicators": [warned_only(i) for i in r["indicators"]]}
        if r["light"] in ("yellow", "red")
        else {**r, "indicators": [], "reasons": r["reasons"] if r["status"] == "not_reported" else []}
        for r in whole
    ]
    assert any(i["reason"] == "" for r in flat for i in r["indicators"])  # some left unformatted


def test_worker_processes_refuse_results_evaluated_again_meanwhile(demo: App) -> None:
    """Workers read in their own transactions: a run committed while they compose must not mix two
    runs' results into one queue."""
    app = demo
    cp = Checkpoint(2025, 8)
    now = NOW
    job = digests.Job(app.settings, str(cp), now, messages.options(app.settings, cp, now), "2025-05", {})
    with app.engine.connect() as conn:
        chunks = digests.rows_by_chunk(app.engine, conn, job, app.templates(), 20, 2)
        next(chunks)  # the pool has started and read the first chunks
        evaluate_checkpoint(app.engine, app.rules(), cp, app.clock)
        with pytest.raises(digests.ResultsChanged, match="2025-08 was evaluated again"):
            list(chunks)


def test_worker_processes_only_for_a_large_checkpoint_in_a_database_they_can_open(tmp_path: Path) -> None:
    import os

    from monitor.db.engine import make_engine

    cores = len(os.sched_getaffinity(0))
    on_file = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    in_memory = make_engine("sqlite://")
    big = digests.PARALLEL_MIN_PROJECTS
    assert digests.workers_for(on_file, big - 1) == 0
    assert digests.workers_for(in_memory, big) == 0
    assert digests.workers_for(on_file, big) == (cores if cores > 1 else 0)
