"""The national-scale goal of issue 6, in one run: N projects (default 1,000,000, about 6 indicators
each) on SQLite: sample CSV (the May reports alone: what the bureau holds at its May checkpoint) →
import → May checkpoint evaluated and stored → its messages composed and queued in the outbox (not
sent). Prints each stage's time, the total of import + evaluation + queueing
next to the 5-minute goal, and the process's peak memory (max RSS) next to the 1 GB goal.

    .venv/bin/python bench/bench_scale.py [--projects 1000000] [--database-url URL] [--no-queue]

One run, not a median: at 1M projects a run takes minutes. Each stage runs in a fresh process, as the
`monitor import` and `monitor run` commands do, so each prints its own peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

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


def _app(config: Path) -> App:
    return App(load_settings(config))


def _sample(config: Path, projects: int) -> dict[str, Any]:
    paths = write_sample(config.parent / "data", projects=projects, may_only=True)
    return {"paths": [str(p) for p in paths.values()]}


def _import(config: Path, paths: list[str]) -> dict[str, Any]:
    return {"counts": _app(config).import_paths([Path(p) for p in paths])}


def _evaluate(config: Path) -> dict[str, Any]:
    app = _app(config)
    evaluate_checkpoint(app.engine, app.rules(), CHECKPOINT, app.clock)
    return {}


def _queue(config: Path) -> dict[str, Any]:
    app = _app(config)
    queued = queue_notifications(app.engine, app.settings, app.templates(), CHECKPOINT, app.clock)
    with app.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == len(queued)
    return {"kinds": dict(Counter(str(q["kind"]) for q in queued))}


def _timed(
    helpers: int, fn: Callable[..., dict[str, Any]], *args: Any
) -> tuple[float, float, dict[str, Any]]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, peak_mb(helpers), out


def stage(
    name: str, fn: Callable[..., dict[str, Any]], *args: Any, helpers: int = 0
) -> tuple[float, float, dict[str, Any]]:
    """Run one stage in a fresh process (as the CLI commands run): its time and its peak memory (its
    own and its helper processes', see peak_mb)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        seconds, mb, out = pool.submit(_timed, helpers, fn, *args).result()
    print(f"  {name:<22} {seconds:8.1f} s   peak RSS {mb:7.0f} MB (with its helper processes)", flush=True)
    return seconds, mb, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    ap.add_argument("--no-queue", action="store_true", help="stop after the evaluation (no totals)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.database_url or f"sqlite:///{work / 'bench.db'}"
        config = work / "config.yaml"
        config.write_text(
            f"database: {{url: '{url}'}}\nrules_dir: {ROOT / 'rules'}\ntemplates_dir: {ROOT / 'templates'}\n"
        )
        print(f"{args.projects:,} projects, checkpoint {CHECKPOINT}, {url.split(':')[0]}", flush=True)
        _, _, sample = stage("sample CSV written", _sample, config, args.projects)
        t_import, m_import, imported = stage("import", _import, config, sample["paths"], helpers=1)
        t_eval, m_eval, _ = stage("May evaluation", _evaluate, config)
        if args.no_queue:
            return
        t_queue, m_queue, queued = stage(
            "notifications queued", _queue, config, helpers=len(os.sched_getaffinity(0))
        )

    counts = imported["counts"]
    total, peak = t_import + t_eval + t_queue, max(m_import, m_eval, m_queue)
    print(
        f"dataset: {counts['projects']:,} projects, {counts['indicators']:,} indicators, "
        f"{counts.get('units', 0):,} units"
    )
    print("messages queued: " + ", ".join(f"{k} {n:,}" for k, n in sorted(queued["kinds"].items())))
    verdict = "met" if total < GOAL_SECONDS else "NOT met"
    print(
        f"total import + evaluation + queueing: {total:.1f} s "
        f"(goal at 1M projects: < {GOAL_SECONDS} s; {verdict} at this size)"
    )
    verdict = "met" if peak < GOAL_MB else "NOT met"
    print(
        f"peak memory (max RSS of the largest stage): {peak:.0f} MB "
        f"(goal: < {GOAL_MB} MB; {verdict} at this size)"
    )


if __name__ == "__main__":
    main()
