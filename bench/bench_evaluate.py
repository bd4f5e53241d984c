"""Checkpoint evaluation throughput: stored data → stored results, for a sample of N projects, next
to a reference measured in the same run on the same database: plain SQL computing the budget light
of every project and the cumulative-indicator ratio and light of every indicator, written to two
bare tables (INSERT … SELECT, the same rows the evaluation stores). Prints medians of --repeat runs
and the ratios, for the compiled evaluation as `monitor run` does it (in two halves on two cores where
monitor.evaluate.halves finds it worth it), in one piece, and for the pure core alone (--python).

    .venv/bin/python bench/bench_evaluate.py [--projects 100000] [--repeat 3] [--database-url URL]
                                             [--python]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.evaluate import halves
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.tools.sample import write_sample

ROOT = Path(__file__).resolve().parent.parent

REFERENCE = (
    """
INSERT INTO bench_budget_light (project_code, light)
SELECT p.code,
       CASE WHEN r.executed * 12 * 100 < 60 * :month * p.budget THEN 'red'
            WHEN r.executed * 12 * 100 < 80 * :month * p.budget THEN 'yellow'
            ELSE 'green' END
FROM project p JOIN project_report r ON r.project_code = p.code AND r.checkpoint = :cp
""",
    """
INSERT INTO bench_indicator_light (project_code, indicator_code, ratio, light)
SELECT i.project_code, i.code,
       CASE WHEN {numeric_t} AND {numeric_a}
            THEN CAST(ir.actual AS {real}) * 12 / NULLIF(CAST(i.target AS {real}) * :month, 0) END,
       CASE WHEN NOT ({numeric_t} AND {numeric_a}) THEN 'na'
            WHEN CAST(ir.actual AS {real}) * 12 < 0.6 * CAST(i.target AS {real}) * :month THEN 'red'
            WHEN CAST(ir.actual AS {real}) * 12 < 0.8 * CAST(i.target AS {real}) * :month THEN 'yellow'
            ELSE 'green' END
FROM indicator i LEFT JOIN indicator_report ir
  ON ir.checkpoint = :cp AND ir.project_code = i.project_code AND ir.indicator_code = i.code
""",
)


def interleaved(
    fns: dict[str, Callable[[], None]], repeat: int, settle: Callable[[], None]
) -> dict[str, float]:
    """The median time of each of `fns`, run in turns (one of each, `repeat` times), so that a noisy
    moment of a shared machine weighs on every figure alike, the reference included. `settle` runs
    before each, untimed: the database as a run finds it, not with the last run's writes still pending."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            settle()
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--projects", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    ap.add_argument("--python", action="store_true", help="also time the pure core alone (method python)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.database_url or f"sqlite:///{work / 'bench.db'}"
        (work / "config.yaml").write_text(
            f"database: {{url: '{url}'}}\nrules_dir: {ROOT / 'rules'}\ntemplates_dir: {ROOT / 'templates'}\n"
        )
        app = App(load_settings(work / "config.yaml"))
        t0 = time.perf_counter()
        paths = write_sample(work / "data", projects=args.projects)
        t1 = time.perf_counter()
        counts = app.import_paths(list(paths.values()))
        t2 = time.perf_counter()
        cp = Checkpoint(2025, 5)
        pg = app.engine.dialect.name == "postgresql"
        real = "DOUBLE PRECISION" if pg else "REAL"

        def numeric(x: str) -> str:
            return (
                f"{x} ~ '^[0-9]+([.][0-9]+)?$'" if pg else f"({x} GLOB '[0-9]*' AND {x} NOT GLOB '*[^0-9.]*')"
            )

        statements = [
            text(sql.format(real=real, numeric_t=numeric("i.target"), numeric_a=numeric("ir.actual")))
            for sql in REFERENCE
        ]
        with app.engine.begin() as conn:
            for tbl, cols in (
                ("bench_budget_light", "project_code VARCHAR(21), light VARCHAR(8)"),
                (
                    "bench_indicator_light",
                    f"project_code VARCHAR(21), indicator_code VARCHAR(32), ratio {real}, light VARCHAR(8)",
                ),
            ):
                conn.execute(text(f"DROP TABLE IF EXISTS {tbl}"))
                conn.execute(text(f"CREATE TABLE {tbl} ({cols})"))
            n_ind = conn.execute(
                text(
                    "SELECT count(*) FROM indicator i JOIN project_report r"
                    " ON r.project_code = i.project_code AND r.checkpoint = :cp"
                ),
                {"cp": str(cp)},
            ).scalar_one()

        def reference() -> None:
            with app.engine.begin() as conn:
                conn.execute(text("DELETE FROM bench_budget_light"))
                conn.execute(text("DELETE FROM bench_indicator_light"))
                for statement in statements:
                    conn.execute(statement, {"month": cp.month, "cp": str(cp)})

        rules = app.rules()
        # the default (halves on two cores where monitor.evaluate.halves finds it worth it), then one piece
        methods = [("sql", None), ("sql", False)] + ([("python", None)] if args.python else [])
        used = halves.worth_it(app.engine, counts["projects"])

        def run(method: str, split: bool | None) -> Callable[[], None]:
            return lambda: evaluate_checkpoint(app.engine, rules, cp, app.clock, method=method, split=split)

        chosen = [(m, s) for m, s in methods if not (s is False and not used)]
        fns = {"reference": reference, **{f"{m}/{s}": run(m, s) for m, s in chosen}}

        def settle() -> None:
            """SQLite: the write-ahead log of the last run copied into the database (as it is long
            before the next checkpoint's run); on PostgreSQL nothing to do."""
            if not pg:
                with app.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

        medians = interleaved(fns, args.repeat, settle)
        ref = medians["reference"]
        times = {(m, s): medians[f"{m}/{s}"] for m, s in chosen}
        n = counts["projects"]
        print(f"dataset: {n:,} projects, {counts['indicators']:,} indicators ({url.split(':')[0]})")
        print(f"  sample written in {t1 - t0:.1f} s, imported in {t2 - t1:.1f} s")
        print(
            f"reference: plain SQL budget light of every project and cumulative ratio and light of every"
            f" indicator, into bare tables: {ref:.3f} s (median of {args.repeat}, in turns with the others)"
        )
        for (method, split), ours in times.items():
            if method == "python":
                label = "pure core only"
            elif split is None:
                how = "in two halves on two cores" if used else "in one piece"
                label = f"compiled (SQL + pure core where uncertain), the default: {how}"
            else:
                label = "compiled, in one piece (split=False)"
            print(f"evaluation {cp}, {label} (median of {args.repeat}): {ours:.2f} s")
            print(f"  {n / ours:,.0f} projects/s, {n_ind / ours:,.0f} indicator rows/s")
            print(f"  ratio evaluation / reference: {ours / ref:.2f}x")
        print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
