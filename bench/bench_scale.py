"""The national-scale goal of issues 6 and 21, in one run: N projects (default 1,000,000, about 6
indicators each) on SQLite or PostgreSQL: sample CSV (the May reports alone: what the bureau holds at
its May checkpoint) → import (COPY on PostgreSQL) → May checkpoint evaluated and stored → its messages
composed and queued in the outbox (not sent). Prints each stage's time, the total of import +
evaluation + queueing next to the 5-minute goal, the peak memory (max RSS) of each stage's processes
next to the 1 GB goal, and on PostgreSQL the server's own memory and the connections each stage
opened.

    .venv/bin/python bench/bench_scale.py [--projects 1000000] [--database-url URL] [--no-queue]

With --database-url postgresql+psycopg://…, the run creates a database of its own next to the one
named (`bench_scale_…`, dropped at the end), so the role needs CREATEDB.

One run, not a median: at 1M projects a run takes minutes. Each stage runs in a fresh process, as the
`monitor import` and `monitor run` commands do. What is measured (see bench/README.md):

- engine memory: the stage process's max RSS plus, for each helper process it runs at once (the
  import's reader, the queue's composing workers), the largest child's max RSS: an upper bound;
- server memory (PostgreSQL): sampled every 0.2 s from /proc during the stage: the sum of the
  proportional set size (Pss, /proc/PID/smaps_rollup: shared buffers counted once, not once per
  process) of every `postgres` process of the server (other databases' backends included: the server
  is shared), and of the backends connected to the benchmark's database alone; the peak of each;
- connections: in the stage process, SQLAlchemy pool events on every pool (`connect`, `close`,
  `close_detached`): DBAPI connections opened and the most open at once; on PostgreSQL also, for
  every process of the stage (the queue's workers included), the backends of the benchmark's
  database in pg_stat_activity sampled every 0.2 s (most at once) and pg_stat_database.sessions
  (sessions established during the stage, the sampler's own excluded: it connects elsewhere).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import Pool

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.db.engine import OUTBOX
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.pipeline.queueing import queue_notifications
from monitor.tools.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 300
GOAL_MB = 1024
CHECKPOINT = Checkpoint(2025, 5)


def peak_mb(helpers: int = 0) -> float:
    """Peak memory of this stage: its process's max RSS plus, for the `helpers` processes it runs at
    once (the import's reader, the queue's composing workers), the largest one's max RSS for each: an
    upper bound of what they held together (Linux reports RSS in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + helpers * children) / 1024


# ---------------------------------------------------------------- databases


def write_config(work: Path, url: str) -> Path:
    config = work / "config.yaml"
    config.write_text(
        f"database: {{url: '{url}'}}\nrules_dir: {ROOT / 'rules'}\ntemplates_dir: {ROOT / 'templates'}\n"
    )
    return config


def is_pg(url: str) -> bool:
    return url.startswith("postgresql")


def admin_engine(url: str) -> Any:
    """A connection to the server's `postgres` database, to create and drop the benchmark's own."""
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


@contextmanager
def pg_database(url: str, name: str, template: str | None = None) -> Iterator[str]:
    """The URL of a new database `name` on the server of `url` (a copy of `template` if given),
    dropped afterwards."""
    create = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else "")
    admin = admin_engine(url)
    for attempt in range(60):  # a template's last backend may still be exiting
        try:
            with admin.connect() as conn:
                conn.execute(text(create))
            break
        except OperationalError:
            if attempt == 59:
                raise
            time.sleep(0.5)
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_database(url: str | None, work: Path, prefix: str) -> Iterator[str]:
    """The URL of a new empty database of this run (SQLite: a file in `work`; PostgreSQL: `prefix_…`
    on the server of `url`), removed afterwards."""
    if url is None or url.startswith("sqlite"):
        yield f"sqlite:///{work / f'{prefix}.db'}"
        return
    with pg_database(url, f"{prefix}_{uuid.uuid4().hex[:8]}") as fresh:
        yield fresh


# ---------------------------------------------------------------- what a stage uses on the server


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _postgres_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


@dataclass
class ServerWatch:
    """Samples the PostgreSQL server while a stage runs (nothing on SQLite): its memory (Pss of every
    postgres process, and of the benchmark database's backends) and the benchmark database's backends
    (pg_stat_activity), from a connection to the `postgres` database (not counted)."""

    url: str
    interval: float = 0.2
    peak_server_mb: float = 0.0
    peak_db_mb: float = 0.0
    peak_backends: int = 0
    sessions: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sessions(self, conn: Any, db: str) -> int:
        return int(
            conn.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = :d"), {"d": db}
            ).scalar_one_or_none()
            or 0
        )

    def _run(self) -> None:
        db = make_url(self.url).database or ""
        engine = create_engine(make_url(self.url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SET stats_fetch_consistency = none"))
            start = self._sessions(conn, db)
            while True:
                pids = [
                    int(p)
                    for p in conn.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity"
                            " WHERE datname = :d AND backend_type = 'client backend'"
                        ),
                        {"d": db},
                    ).scalars()
                ]
                self.peak_backends = max(self.peak_backends, len(pids))
                self.peak_db_mb = max(self.peak_db_mb, sum(map(_pss_kib, pids)) / 1024)
                server = sum(map(_pss_kib, _postgres_pids())) / 1024
                self.peak_server_mb = max(self.peak_server_mb, server)
                if self._stop.wait(self.interval):
                    break
            time.sleep(1.0)  # sessions are counted when their statistics are flushed
            self.sessions = self._sessions(conn, db) - start
        engine.dispose()

    def __enter__(self) -> ServerWatch:
        if is_pg(self.url):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def line(self) -> str:
        if not is_pg(self.url):
            return ""
        return (
            f"      server: {self.peak_backends} backends of this database at most at once,"
            f" {self.sessions} sessions established; memory (Pss) of this database's backends"
            f" {self.peak_db_mb:.0f} MB, of every postgres process {self.peak_server_mb:.0f} MB (peaks)"
        )


_pool_counts = {"opened": 0, "open": 0, "max_open": 0}


def _count_connections() -> None:
    """Count the DBAPI connections every pool of this process opens (and the most open at once)."""

    def opened(*_: Any) -> None:
        _pool_counts["opened"] += 1
        _pool_counts["open"] += 1
        _pool_counts["max_open"] = max(_pool_counts["max_open"], _pool_counts["open"])

    def closed(*_: Any) -> None:
        _pool_counts["open"] -= 1

    event.listen(Pool, "connect", opened)
    event.listen(Pool, "close", closed)
    event.listen(Pool, "close_detached", closed)


# ---------------------------------------------------------------- stages


def _app(config: Path) -> App:
    return App(load_settings(config))


def _sample(config: Path, projects: int) -> dict[str, Any]:
    paths = write_sample(config.parent / "data", projects=projects, may_only=True)
    return {"paths": [str(p) for p in paths.values()]}


def _import(config: Path, paths: list[str]) -> dict[str, Any]:
    return {"counts": _app(config).import_paths([Path(p) for p in paths])}


def _evaluate(config: Path, app: App | None = None) -> dict[str, Any]:
    app = app or _app(config)
    evaluate_checkpoint(app.engine, app.rules(), CHECKPOINT, app.clock)
    return {}


def _queue(config: Path, app: App | None = None) -> dict[str, Any]:
    app = app or _app(config)
    queued = queue_notifications(app.engine, app.settings, app.templates(), CHECKPOINT, app.clock)
    with app.engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.checkpoint == str(CHECKPOINT))
        ).scalar_one()
        assert n == len(queued), (n, len(queued))
    return {"kinds": dict(Counter(str(q["kind"]) for q in queued))}


def _evaluate_and_queue(config: Path) -> dict[str, Any]:
    """The May run as `monitor run` does it, without delivery: evaluation, then queueing (timed apart)."""
    app = _app(config)
    start = time.perf_counter()
    _evaluate(config, app)
    mid = time.perf_counter()
    out = _queue(config, app)
    return {**out, "evaluation": mid - start, "queueing": time.perf_counter() - mid}


def _timed(
    helpers: int, fn: Callable[..., dict[str, Any]], *args: Any
) -> tuple[float, float, dict[str, Any]]:
    _count_connections()
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, peak_mb(helpers), {**out, "connections": dict(_pool_counts)}


@dataclass
class Stage:
    seconds: float
    mb: float
    out: dict[str, Any]
    watch: ServerWatch


def stage(name: str, url: str, fn: Callable[..., dict[str, Any]], *args: Any, helpers: int = 0) -> Stage:
    """Run one stage in a fresh process (as the CLI commands run): its time, its peak memory (its own
    and its helper processes', see peak_mb), its connections and, on PostgreSQL, the server's share."""
    with (
        ServerWatch(url) as watch,
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool,
    ):
        seconds, mb, out = pool.submit(_timed, helpers, fn, *args).result()
    c = out["connections"]
    print(
        f"  {name:<22} {seconds:8.1f} s   peak RSS {mb:6.0f} MB (with its helper processes);"
        f" engine connections in the stage process: {c['opened']} opened, {c['max_open']} at most at once",
        flush=True,
    )
    if watch.line():
        print(watch.line(), flush=True)
    return Stage(seconds, mb, out, watch)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    ap.add_argument("--no-queue", action="store_true", help="stop after the evaluation (no totals)")
    args = ap.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.database_url, Path(tmp), "bench_scale") as url,
    ):
        work = Path(tmp)
        config = write_config(work, url)
        print(f"{args.projects:,} projects, checkpoint {CHECKPOINT}, {url.split(':')[0]}", flush=True)
        if is_pg(url):
            with admin_engine(url).connect() as conn:
                settings = ", ".join(
                    f"{k} {conn.execute(text(f'SHOW {k}')).scalar_one()}"
                    for k in ("server_version", "shared_buffers", "work_mem", "max_connections")
                )
            print(f"  PostgreSQL: {settings}", flush=True)
        sample = stage("sample CSV written", url, _sample, config, args.projects)
        imp = stage("import", url, _import, config, sample.out["paths"], helpers=1)
        ev = stage("May evaluation", url, _evaluate, config)
        if args.no_queue:
            return
        qu = stage("notifications queued", url, _queue, config, helpers=len(os.sched_getaffinity(0)))

    stages = (imp, ev, qu)
    counts = imp.out["counts"]
    total, peak = sum(s.seconds for s in stages), max(s.mb for s in stages)
    print(
        f"dataset: {counts['projects']:,} projects, {counts['indicators']:,} indicators, "
        f"{counts.get('units', 0):,} units"
    )
    print("messages queued: " + ", ".join(f"{k} {n:,}" for k, n in sorted(qu.out["kinds"].items())))
    verdict = "met" if total < GOAL_SECONDS else "NOT met"
    print(
        f"total import + evaluation + queueing: {total:.1f} s "
        f"(goal at 1M projects: < {GOAL_SECONDS} s; {verdict} at this size)"
    )
    verdict = "met" if peak < GOAL_MB else "NOT met"
    print(
        f"peak memory (max RSS of the largest stage): {peak:.0f} MB"
        f" (goal: < {GOAL_MB} MB; {verdict} at this size)"
    )
    if is_pg(url):
        print(
            f"PostgreSQL server memory (Pss, peak over the stages): this database's backends"
            f" {max(s.watch.peak_db_mb for s in stages):.0f} MB, every postgres process of the (shared)"
            f" server {max(s.watch.peak_server_mb for s in stages):.0f} MB (not counted in the goal)"
        )
        print(
            "connections (goal: bounded): at most "
            f"{max(s.watch.peak_backends for s in stages)} backends of this database at once; sessions"
            " established per stage: "
            + ", ".join(
                f"{n} {s.watch.sessions}"
                for n, s in zip(("import", "evaluation", "queueing"), stages, strict=True)
            )
        )
    print(
        "engine connections opened in the stage processes (pool events): "
        + ", ".join(
            f"{n} {s.out['connections']['opened']} (at most {s.out['connections']['max_open']} at once)"
            for n, s in zip(("import", "evaluation", "queueing"), stages, strict=True)
        )
    )


if __name__ == "__main__":
    main()
