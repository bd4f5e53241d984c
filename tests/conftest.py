"""Shared fixtures: a fresh database per test (a SQLite file, or PostgreSQL when
MONITOR_TEST_DATABASE_URL is set), a config.yaml pointing at it, and the shipped rules."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
# what tools (not tests) keep in the checkout: left out of the working-tree check below
TOOL_FOLDERS = (".git", ".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "__pycache__")


def tree_state() -> dict[str, tuple[int, int]] | None:
    """Every untracked or ignored file of the checkout (tool caches aside) with its (mtime, size);
    None when ROOT is not a git checkout. Tests write only into temporary folders, so this is the
    same at the end of the suite as at its start (a demo's reports/ overwritten shows here)."""
    try:
        res = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "-z"], cwd=ROOT, capture_output=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    state: dict[str, tuple[int, int]] = {}
    for entry in res.stdout.decode("utf-8", "replace").split("\0"):
        if entry[:3] not in ("?? ", "!! "):
            continue
        top = ROOT / entry[3:]
        if any(part in TOOL_FOLDERS or part.endswith(".egg-info") for part in Path(entry[3:]).parts):
            continue
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for f in files:
            if not any(part in TOOL_FOLDERS for part in f.relative_to(ROOT).parts):
                st = f.stat()
                state[str(f.relative_to(ROOT))] = (st.st_mtime_ns, st.st_size)
    return state


@pytest.fixture(scope="session", autouse=True)
def working_tree_unchanged() -> Iterator[None]:
    """The suite leaves the checkout as it found it: no file created or overwritten outside tmp folders."""
    before = tree_state()
    yield
    if before is None:
        return
    after = tree_state() or {}
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"tests wrote into the working tree {ROOT}: {changed[:20]}"


# The database reaches a test only through the fixture db_url (the one reader of
# MONITOR_TEST_DATABASE_URL): a test whose fixtures never lead to it runs the same on any database.
# A test, or a fixture of tests/, that takes `request` may look db_url up by name at run time
# (request.getfixturevalue): counted as reaching it. pytest's own fixtures (tmp_path…) never do.
DATABASE_ONLY = "--database-tests-only"
DESELECTED = pytest.StashKey[tuple[int, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        DATABASE_ONLY,
        action="store_true",
        help="run only the tests that can depend on the database (those reaching the fixture db_url), "
        "e.g. a second run of the suite on PostgreSQL after the whole suite ran on SQLite",
    )


def uses_database(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", None)
    info = getattr(item, "_fixtureinfo", None)
    if names is None or info is None:
        return True  # not a plain test function: kept
    if "db_url" in names or "request" in info.argnames:
        return True
    for name in names:
        for fixture in info.name2fixturedefs.get(name, ()):
            if "request" in fixture.argnames and Path(inspect.getfile(fixture.func)).is_relative_to(TESTS):
                return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption(DATABASE_ONLY):
        return
    kept = [item for item in items if uses_database(item)]
    dropped = [item for item in items if not uses_database(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[DESELECTED] = (len(dropped), len(kept))
    workeroutput = getattr(config, "workeroutput", None)  # a pytest-xdist worker: told to the controller
    if workeroutput is not None:
        workeroutput[DATABASE_ONLY] = [len(dropped), len(kept)]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller (which collects nothing itself) learns the counts from a worker."""
    counts = getattr(node, "workeroutput", {}).get(DATABASE_ONLY)
    if counts:
        node.config.stash[DESELECTED] = (counts[0], counts[1])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    counts = config.stash.get(DESELECTED, None)
    if counts is not None:
        terminalreporter.write_line(
            f"{DATABASE_ONLY}: {counts[0]} tests deselected (the run on SQLite runs them): neither they "
            "nor a fixture of theirs takes db_url, or `request` in tests/, so no database reaches them; "
            f"{counts[1]} kept"
        )


@pytest.fixture
def db_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL for one test: a new SQLite file, or a new schema-less PostgreSQL database."""
    # what keeps --database-tests-only honest: a test it would deselect never gets here
    assert uses_database(request.node), f"{request.node.nodeid} reaches db_url past its fixture closure"
    base = os.environ.get("MONITOR_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    name = f"t_{uuid.uuid4().hex[:12]}"
    # made and dropped straight on the server when MONITOR_TEST_ADMIN_URL names it (the tests behind
    # PgBouncer: its pooled connections to a dropped database are not its business); the test's URL
    # keeps the base's query (?pgbouncer=true: the engine's option, no libpq one)
    admin_url = make_url(os.environ.get("MONITOR_TEST_ADMIN_URL") or base)
    admin = create_engine(admin_url.difference_update_query(["pgbouncer"]), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
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
