"""`monitor db archive --before YYYY` and `monitor import ARCHIVE.zip` (issue 21: history does not slow the
present): two years of checkpoints (the worked examples for 2025 and a copy of them for 2024, each run
and its mail sent), the earlier year archived into one file and dropped, the later year untouched, the
status and the board still working, the archive imported back into the same database giving every
table exactly as it was; a kill -9 between writing and deleting and in the middle of deleting loses
nothing; the refusals (the current year, an unfinished run, undelivered messages) and hostile archives
(a zip bomb, a path with `..`, hashes or counts that do not match, a newer schema, a formula cell)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlmodel import SQLModel
from starlette.testclient import TestClient
from test_web import csrf

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.db.engine import make_engine
from monitor.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "data" / "import" / "worked_examples"
SECRET = "test-archive-secret-4Kq9Zx2Lm7Rt8Vb3Nw6Hc1Jd5Fy0GsPe"
PASSWORD = "correct horse battery"
NAME = "monitor-archive-before-2025.zip"


def cli(workdir: Path, *args: str, input: str | None = None) -> tuple[int, str]:
    res = CliRunner(env={"MONITOR_WEB_SECRET": SECRET}).invoke(
        main, [*args, "--config", str(workdir / "config.yaml")], input=input, catch_exceptions=False
    )
    return res.exit_code, res.output


def ok(workdir: Path, *args: str, input: str | None = None) -> str:
    code, out = cli(workdir, *args, input=input)
    assert code == 0, out
    return out


def dump(db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            out = {}
            for name, t in SQLModel.metadata.tables.items():
                keys = list(t.primary_key.columns) or list(t.columns)
                out[name] = [tuple(r) for r in conn.execute(select(t).order_by(*keys))]
            return out
    finally:
        engine.dispose()


def earlier_year(folder: Path) -> Path:
    """The worked examples with 2025 changed to 2024 (project codes, checkpoints, dates)."""
    folder.mkdir()
    for path in EXAMPLES.glob("*.csv"):
        text = path.read_text(encoding="utf-8")
        (folder / path.name).write_text(text if path.name == "units.csv" else text.replace("2025-", "2024-"))
    return folder


@pytest.fixture
def two_years(workdir: Path, tmp_path: Path) -> Path:
    """2024 and 2025, each checkpoint run with its mail sent (file mode); 2024-05 corrected after its
    run and run again (versions of reports, two runs); a bureau user for the board."""
    y2024 = earlier_year(tmp_path / "y2024")
    ok(workdir, "import", str(EXAMPLES))
    ok(workdir, "import", str(y2024))
    for checkpoint in ("2024-05", "2024-08", "2025-05", "2025-08"):
        ok(workdir, "run", "--checkpoint", checkpoint)
    fix = tmp_path / "fix" / "project_reports.csv"
    fix.parent.mkdir()
    fix.write_text("checkpoint,project_code,executed\n2024-05,2024-302-001,150.00\n", encoding="utf-8")
    ok(workdir, "import", str(fix))
    ok(workdir, "run", "--checkpoint", "2024-05")
    ok(workdir, "send")
    ok(workdir, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")
    return workdir


def old_rows(before: dict[str, list[tuple[Any, ...]]], db_url: str) -> dict[str, int]:
    """Rows per table of checkpoints before 2025 (tables with a checkpoint column)."""
    out = {}
    for name, t in SQLModel.metadata.tables.items():
        if "checkpoint" in t.c:
            at = list(t.columns).index(t.c.checkpoint)
            out[name] = sum(1 for r in before[name] if r[at] < "2025")
    return out


def board_ok(workdir: Path) -> None:
    app = App(load_settings(workdir / "config.yaml", env={"MONITOR_WEB_SECRET": SECRET}))
    client = TestClient(create_app(app))
    page = client.get("/login")
    assert (
        client.post("/login", data={"name": "kz", "password": PASSWORD, "csrf": csrf(page.text)}).status_code
        == 200
    )
    for url in ("/board", "/board?checkpoint=2025-05", "/board/outbox?checkpoint=2025-08"):
        assert client.get(url).status_code == 200, url


def test_the_earlier_year_is_archived_dropped_and_imported_back_exactly(two_years: Path, db_url: str) -> None:
    before = dump(db_url)
    old = old_rows(before, db_url)
    for table in ("project_report", "indicator_report", "run", "project_result", "indicator_result", "outbox",
                  "warning_case", "project_report_version"):  # fmt: skip
        assert old[table] > 0, table  # the fixture made rows of every kind
    status_at = list(SQLModel.metadata.tables["outbox"].c.keys()).index("status")
    assert {r[status_at] for r in before["outbox"]} == {"sent"}
    status_before, _ = cli(two_years, "status")
    out_dir = two_years / "archives"
    out_dir.mkdir()

    dry = ok(two_years, "db", "archive", "--before", "2025", "--out", str(out_dir), "--dry-run")
    assert "dry run: nothing written" in dry and "project_result" in dry and "2024-05" in dry
    assert "2025-05" not in dry
    assert dump(db_url) == before and not list(out_dir.iterdir())

    out = ok(two_years, "db", "archive", "--before", "2025", "--out", str(out_dir))
    archive = out_dir / NAME
    assert archive.is_file() and [p.name for p in out_dir.iterdir()] == [NAME], out
    after = dump(db_url)
    for name, t in SQLModel.metadata.tables.items():
        assert set(after[name]) <= set(before[name]), name  # nothing changed, at most removed
        if "checkpoint" in t.c and name != "scheduled_event":
            at = list(t.columns).index(t.c.checkpoint)
            assert after[name] == [r for r in before[name] if r[at] >= "2025"], name
    for name in ("unit", "project", "indicator", "scheduled_event", "rule_version", "web_user", "exemption"):
        assert after[name] == before[name], name
    assert len(after["outbox_message"]) < len(before["outbox_message"])
    assert len(after["delivery_attempt"]) < len(before["delivery_attempt"])
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        header = zf.read("project_reports.csv").decode("utf-8").splitlines()[0]
    assert header == "checkpoint,project_code,executed,forecast_executed"
    rows = {m["table"]: m["rows"] for m in manifest["members"] if not m["name"].startswith("provenance/")}
    for table, n in old.items():
        if table != "scheduled_event":
            assert rows.get(table, 0) == n, table
    assert manifest["schema_revision"] and manifest["checkpoints"] == ["2024-05", "2024-08"]

    status_after, text = cli(two_years, "status")
    assert status_after == status_before and "Traceback" not in text, text
    board_ok(two_years)

    imported = ok(two_years, "import", str(archive))
    assert "project_reports" in imported, imported
    logins = dump(db_url)["login_attempt"]  # the board's login above: the one row written since
    assert dump(db_url) == {**before, "login_attempt": logins}  # every table, every column, as before
    ok(two_years, "import", str(archive))  # twice: harmless
    assert dump(db_url) == {**before, "login_attempt": logins}
    ok(two_years, "results", "--checkpoint", "2024-05")


def test_running_again_finds_the_same_archive_and_goes_on(two_years: Path, db_url: str) -> None:
    out_dir = two_years / "archives"
    out_dir.mkdir()
    before = dump(db_url)
    ok(two_years, "db", "archive", "--before", "2025", "--out", str(out_dir))
    again = ok(two_years, "db", "archive", "--before", "2025", "--out", str(out_dir))
    assert "nothing to archive before 2025" in again
    ok(two_years, "import", str(out_dir / NAME))
    assert dump(db_url) == before


def spawn(workdir: Path, failpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MONITOR_FAILPOINTS": failpoint}
    cmd = [sys.executable, "-m", "monitor", *args, "--config", str(workdir / "config.yaml")]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "failpoint", ["archive:before-rename", "archive:before-delete", "archive:mid-delete"]
)
def test_a_kill_at_any_moment_loses_nothing(two_years: Path, db_url: str, failpoint: str) -> None:
    out_dir = two_years / "archives"
    out_dir.mkdir()
    before = dump(db_url)
    killed = spawn(two_years, failpoint, "db", "archive", "--before", "2025", "--out", str(out_dir))
    assert killed.returncode == -9, (killed.stdout, killed.stderr)
    assert dump(db_url) == before  # every row still in the database
    archive = out_dir / NAME
    if failpoint == "archive:before-rename":
        assert not archive.exists()
    else:  # a complete archive beside them
        assert archive.is_file()
        ok(two_years, "import", str(archive))
        assert dump(db_url) == before
    out = ok(two_years, "db", "archive", "--before", "2025", "--out", str(out_dir))  # running again: safe
    assert ("already there, identical" in out) == (failpoint != "archive:before-rename"), out
    assert dump(db_url) != before
    ok(two_years, "import", str(archive))
    assert dump(db_url) == before


def test_the_current_year_an_unfinished_run_and_undelivered_messages_are_refused(
    workdir: Path, db_url: str, tmp_path: Path
) -> None:
    ok(workdir, "import", str(EXAMPLES))
    ok(workdir, "import", str(earlier_year(tmp_path / "y2024")))
    year = dt.datetime.now(dt.UTC).year
    code, out = cli(workdir, "db", "archive", "--before", str(year + 1), "--out", str(tmp_path))
    assert code == 1 and f"checkpoints of the current year {year} are never archived" in out, out

    ok(workdir, "run", "--checkpoint", "2024-05", "--no-send")
    killed = spawn(workdir, "run:after-results-stored", "run", "--checkpoint", "2024-08", "--no-send")
    assert killed.returncode == -9, killed.stderr
    before = dump(db_url)
    code, out = cli(workdir, "db", "archive", "--before", "2025", "--out", str(tmp_path))
    assert code == 1, out
    assert "refused, nothing archived" in out
    assert "checkpoint 2024-05: " in out and "undelivered message(s) (pending)" in out
    assert "checkpoint 2024-08: run " in out and "is unfinished (evaluated)" in out
    code, out = cli(workdir, "db", "archive", "--before", "2025", "--out", str(tmp_path), "--dry-run")
    assert code == 1 and "refused" in out
    assert dump(db_url) == before and not list(tmp_path.glob("*.zip"))


# --- hostile archives ---------------------------------------------------------------------------------


def rewrite(src: Path, dst: Path, change: dict[str, bytes | None], manifest: Any = None) -> None:
    """A copy of archive `src` with members replaced (None: left out) or added; the manifest's hashes
    and counts follow the new contents unless `manifest` (a function of it) says otherwise."""
    with zipfile.ZipFile(src) as zf:
        members: dict[str, bytes | None] = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    members.update(change)
    body = json.loads(members["manifest.json"] or b"{}")
    for m in body["members"]:
        data = members.get(m["name"])
        if data is not None and m["name"] in change:
            m["sha256"] = hashlib.sha256(data).hexdigest()
    if manifest is not None:
        manifest(body)
    members["manifest.json"] = json.dumps(body).encode()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if data is not None:
                zf.writestr(name, data)


@pytest.fixture
def archived(two_years: Path) -> Path:
    out = two_years / "archives"
    out.mkdir()
    ok(two_years, "db", "archive", "--before", "2025", "--out", str(out))
    return out / NAME


def hostile_cases(src: Path) -> dict[str, tuple[dict[str, bytes | None], Any, str]]:
    def with_cell(member: str, row: int, column: int, value: str) -> bytes:
        with zipfile.ZipFile(src) as zf:
            rows = list(csv.reader(io.StringIO(zf.read(member).decode("utf-8"), newline="")))
        rows[row - 1][column] = value
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue().encode("utf-8")

    formula = with_cell("tables/run.csv", 2, 0, "=HYPERLINK(1)")
    ir_formula = with_cell("indicator_reports.csv", 3, 3, "=1+1")

    def bump_revision(m: Any) -> None:
        m["schema_revision"] = "9999"

    def wrong_count(m: Any) -> None:
        next(x for x in m["members"] if x["name"] == "tables/run.csv")["rows"] += 1

    def wrong_hash(m: Any) -> None:
        next(x for x in m["members"] if x["name"] == "tables/outbox.csv")["sha256"] = "0" * 64

    return {
        "bomb": ({"tables/zeros.csv": b"0" * (64 << 20)}, None, "tables/zeros.csv: 67108864 bytes from"),
        "dotdot": ({"../evil.csv": b"x\n"}, None, "member '../evil.csv': not a name an archive holds"),
        "hash": ({}, wrong_hash, "member tables/outbox.csv: SHA-256"),
        "count": ({}, wrong_count, "member tables/run.csv: "),
        "newer": ({}, bump_revision, "schema revision '9999' is newer than this program's"),
        "formula": (
            {"tables/run.csv": formula},
            None,
            "tables/run.csv row 2, column id: cell '=HYPERLINK(1)' begins like a spreadsheet formula",
        ),
        "report formula": (
            {"indicator_reports.csv": ir_formula},
            None,
            "indicator_reports.csv row 3, column actual: cell '=1+1' begins like a spreadsheet formula",
        ),
    }


def test_hostile_archives_are_refused_naming_the_member_and_row_and_write_nothing(
    archived: Path, two_years: Path, db_url: str
) -> None:
    before = dump(db_url)
    for name, (change, manifest, expected) in hostile_cases(archived).items():
        bad = archived.with_name(f"bad-{name.replace(' ', '-')}.zip")
        rewrite(archived, bad, change, manifest)
        code, out = cli(two_years, "import", str(bad))
        assert code == 1, (name, out)
        assert expected in out, (name, out)
        assert "Traceback" not in out
        assert dump(db_url) == before, name


def test_rows_the_database_holds_otherwise_are_a_conflict_named(
    archived: Path, two_years: Path, db_url: str
) -> None:
    ok(two_years, "import", str(archived))
    engine = make_engine(db_url)
    with engine.begin() as conn:
        from monitor.db.engine import PROJECT_RESULT

        conn.execute(
            PROJECT_RESULT.update()
            .where(PROJECT_RESULT.c.checkpoint == "2024-05")
            .values(project_name="改过的名称")
        )
    engine.dispose()
    changed = dump(db_url)
    code, out = cli(two_years, "import", str(archived))
    assert code == 1 and "tables/project_result.csv: project_result (2024-05, " in out, out
    assert "the database holds other values" in out
    assert dump(db_url) == changed
