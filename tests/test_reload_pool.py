"""A reload keeps the service's connection pool when the database did not change: load_state compared the
engine's URL as SQLAlchemy prints it (password masked as ***) with the configured one, so with a
password (every PostgreSQL deployment) they never matched and each reload made a new pool, the old one's
connections left open: connections grew with every reload."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from monitor.service.base import load_state


def test_a_reload_keeps_the_pool_of_the_same_database(workdir: Path) -> None:
    def clock() -> dt.datetime:
        return dt.datetime(2025, 6, 1, tzinfo=dt.UTC)

    cfg = workdir / "config.yaml"
    first = load_state(cfg, None, clock)
    again = load_state(cfg, None, clock, first.app.engine)
    assert again.app.engine is first.app.engine
