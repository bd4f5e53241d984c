"""Shared fixtures: a fresh database per test (a SQLite file, or PostgreSQL when
MONITOR_TEST_DATABASE_URL is set), a config.yaml pointing at it, and the shipped rules."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A database URL for one test: a new SQLite file, or a new schema-less PostgreSQL database."""
    base = os.environ.get("MONITOR_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        # FORCE ends this role's sessions; an autovacuum worker (a superuser's) can't be ended by us,
        # so wait for it to finish its work on the database instead
        for attempt in range(40):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except DBAPIError:
                if attempt == 39:
                    raise
                time.sleep(0.25)
        admin.dispose()


@pytest.fixture
def workdir(tmp_path: Path, db_url: str) -> Path:
    """A deployment folder: config.yaml (database = db_url), a copy of the shipped rules and templates."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "config.yaml").write_text(
        f"database:\n  url: {db_url}\nrules_dir: rules\ntemplates_dir: templates\n", encoding="utf-8"
    )
    return tmp_path
