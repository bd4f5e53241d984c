"""A checkpoint run, top to bottom: load the checkpoint's inputs from the store, evaluate them with
the pure core, store the results with the rules' hash and the run time, and return the summary.
Each stage is a call to a small module; no stage calls the next one itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, update

from monitor import store
from monitor.evaluate import evaluate_project
from monitor.model import Checkpoint, ProjectResult
from monitor.policy import Policies
from monitor.rules import RuleSet
from monitor.summary import Summary, summarize

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    checkpoint: str
    rules_hash: str
    summary: Summary


def run_checkpoint(
    engine: Engine,
    rules: RuleSet,
    checkpoint: Checkpoint,
    now: Callable[[], dt.datetime],
    progress: Progress | None = None,
) -> RunOutcome:
    """Evaluate `checkpoint` and replace its stored results; every run is recorded, failed ones too."""
    cp = str(checkpoint)
    with engine.begin() as conn:
        store.save_rule_version(conn, rules.hash, rules.content, now())
        run_id = store.start_run(conn, cp, rules.hash, now())
    try:
        with engine.connect() as conn:
            inputs = store.load_inputs(conn, cp)
        policies = Policies(rules)
        results: list[ProjectResult] = []
        total = len(inputs.projects)
        for i, project in enumerate(inputs.projects, 1):
            results.append(
                evaluate_project(
                    policies,
                    checkpoint,
                    project,
                    inputs.units.get(project.unit_code),
                    inputs.indicators.get(project.code, ()),
                    inputs.project_reports.get(project.code),
                    inputs.indicator_reports,
                )
            )
            if progress and (i % 1000 == 0 or i == total):
                progress(i, total)
        with engine.begin() as conn:
            store.save_results(conn, run_id, cp, results, now())
    except BaseException:
        with engine.begin() as conn:
            conn.execute(
                update(store.RUN).where(store.RUN.c.id == run_id).values(status="failed", finished_at=now())
            )
        raise
    names = {code: u.name for code, u in inputs.units.items()}
    rows = [
        store.project_result_row(r, run_id) | {"indicators": [{"light": i.light.value} for i in r.indicators]}
        for r in results
    ]
    return RunOutcome(run_id, cp, rules.hash, summarize(cp, rows, names))
