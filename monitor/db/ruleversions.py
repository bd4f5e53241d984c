"""The rules a stored run used: its rule version read back from the database and rebuilt."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from monitor.core.errors import NotFound
from monitor.db.engine import RULE_VERSION
from monitor.db.results import runs as stored_runs
from monitor.rules.sources import RuleSource, from_content, in_force


class NoRun(NotFound):
    """The checkpoint was never run, or its run's rules were not stored (still a LookupError)."""


def used_by_run(conn: Connection, checkpoint: str) -> RuleSource:
    """The rules the latest run of `checkpoint` used; NoRun if it was never run (or its rules were not
    stored)."""
    runs = stored_runs(conn, checkpoint)
    if not runs:
        raise NoRun(f"no run of {checkpoint}: run `monitor run --checkpoint {checkpoint}` first")
    run = runs[-1]
    q = select(RULE_VERSION.c.content).where(RULE_VERSION.c.hash == run["rules_hash"])
    content = conn.execute(q).scalar()
    if content is None:
        raise NoRun(f"run {run['id']}: its rules (hash {run['rules_hash'][:12]}) were not stored")
    return from_content(f"rules used by run {run['id']} of {checkpoint}", content)


def base_source(engine: Engine, rules_dir: Path, checkpoint: str, which: str) -> RuleSource:
    """`current`: the rules folder now; `used`: the rules the checkpoint's last run used."""
    if which == "used":
        with engine.connect() as conn:
            return used_by_run(conn, checkpoint)
    return in_force(rules_dir)
