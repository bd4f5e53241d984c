"""History of reports (issue 20, provenance): a correction keeps the earlier version (by any channel:
a file, the unit's page, a department's return); re-importing the same numbers is no new version and
leaves the provenance; `monitor explain` lists the versions and says which one the checkpoint's last
run used; a report that arrives or changes after the run, through ANY channel, makes the checkpoint's
results stale in `monitor status` and on the board's progress page until it runs again; a report the
department returns no longer counts (未报送, domain §7) and its numbers are kept as a version."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from test_reporting import CP, P1, august  # noqa: F401 (fixture)
from test_review import COMMENT, _decide, _submit, department_link, reporting  # noqa: F401 (fixture)
from test_web import PASSWORD, cli, link, login, make

FIXED = "2025-302-001"


@pytest.fixture
def data(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("august")
    assert isinstance(path, Path)
    return path


def _rows(work: Path, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    app, _ = make(work)
    with app.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"cp": CP, **params})]


def _correction(tmp: Path, executed: str, name: str = "修正-商务局.csv") -> Path:
    fix = tmp / f"fix-{executed}-{len(list(tmp.iterdir()))}"
    fix.mkdir()
    (fix / name).write_text(f"checkpoint,project_code,executed\n{CP},{FIXED},{executed}\n", encoding="utf-8")
    return fix


def _stale_on_board(work: Path) -> str:
    _, client = make(work)
    assert login(client) == 200
    page = client.get(f"/board/reporting?checkpoint={CP}").text
    m = re.search(r'id="stale"[^>]*>(.*?)</p>', page, re.S)
    return m.group(1) if m else ""


def test_a_correction_keeps_the_earlier_version_and_the_results_go_stale_until_run_again(
    data: Path, tmp_path: Path
) -> None:
    work = data
    assert cli(work, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    assert "after the last run" not in cli(work, "status").output
    assert _stale_on_board(work) == ""
    first = _rows(
        work, "SELECT batch FROM project_report WHERE checkpoint = :cp AND project_code = :p", p=FIXED
    )

    # a late correction by file, after the run: the earlier numbers are kept as a version
    assert cli(work, "import", str(_correction(tmp_path, "160"))).exit_code == 0
    versions = _rows(
        work,
        "SELECT executed, batch, replaced_by FROM project_report_version WHERE checkpoint = :cp"
        " AND project_code = :p",
        p=FIXED,
    )
    now = _rows(
        work,
        "SELECT executed, batch FROM project_report WHERE checkpoint = :cp AND project_code = :p",
        p=FIXED,
    )
    assert [v[0] for v in versions] == [150_000_000] and now[0][0] == 160_000_000
    assert versions[0][1] == first[0][0] and versions[0][2] == now[0][1] != first[0][0]

    # the results no longer reflect the reports: said by status, on the board, and by explain
    status = cli(work, "status").output
    assert f"{CP}: 1 project(s) reported or corrected after the last run" in status, status
    assert FIXED in _stale_on_board(work)
    res = cli(work, "explain", FIXED, "--checkpoint", CP)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "report versions:" in out
    assert re.search(r"  v1 .*through monitor import: .*project_reports\.csv", out), out
    assert re.search(r"  v2 .*through monitor import: 修正-商务局\.csv: executed 150\.00 → 160\.00", out), out
    assert re.search(r"the last run #\d+ used v1; v2 came after it: run the checkpoint again", out), out
    _, board = make(work)
    assert login(board) == 200
    page = board.get(f"/board/project?code={FIXED}&checkpoint={CP}").text  # the board's project page too
    assert "executed 150.00 → 160.00" in page and "used v1; v2 came after it" in page

    # the same numbers again: no new version, the provenance stays with the batch that wrote them
    assert cli(work, "import", str(_correction(tmp_path, "160", "再次.csv"))).exit_code == 0
    again = _rows(
        work,
        "SELECT executed, batch FROM project_report WHERE checkpoint = :cp AND project_code = :p",
        p=FIXED,
    )
    assert again == now
    assert len(_rows(work, "SELECT id FROM project_report_version")) == 1

    # run again: nothing stale, explain says the run used the current version
    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    assert "after the last run" not in cli(work, "status").output
    assert _stale_on_board(work) == ""
    out = cli(work, "explain", FIXED, "--checkpoint", CP).output
    assert re.search(r"the last run #\d+ used v2 \(the current version\)", out), out


@pytest.fixture
def returning(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("reporting")
    assert isinstance(path, Path)
    return path


def test_a_returned_report_no_longer_counts_and_its_numbers_are_kept(returning: Path) -> None:
    work = returning
    _, client = make(work)
    unit = link(work, "304", CP).replace("/u/", "/r/")
    dept = department_link(work, "301")
    _submit(client, unit)
    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    light = _rows(
        work, "SELECT status FROM project_result WHERE checkpoint = :cp AND project_code = :p", p=P1
    )
    assert light == [("reported",)]

    count = "SELECT count(*) FROM indicator_report WHERE checkpoint = :cp AND project_code = :p"
    sent = _rows(work, count, p=P1)[0][0]
    assert _decide(client, dept, P1, "return", COMMENT).status_code == 200
    # 未报送 while returned: the report no longer counts; its numbers are a version, withdrawn by the return
    assert (
        _rows(work, "SELECT executed FROM project_report WHERE checkpoint = :cp AND project_code = :p", p=P1)
        == []
    )
    kept = _rows(
        work,
        "SELECT v.executed, b.channel, b.source FROM project_report_version v JOIN report_batch b"
        " ON b.id = v.replaced_by WHERE v.checkpoint = :cp AND v.project_code = :p",
        p=P1,
    )
    assert len(kept) == 1 and kept[0][0] == 60_000_000 and "department:301" in kept[0][2]
    kept_ind = _rows(work, "SELECT count(*) FROM indicator_report_version WHERE project_code = :p", p=P1)
    assert _rows(work, count, p=P1) == [(0,)] and kept_ind == [(sent,)]
    assert "1 project(s) reported or corrected after the last run" in cli(work, "status").output
    out = cli(work, "explain", P1, "--checkpoint", CP).output
    assert re.search(r"  v2 .*withdrawn \(returned to its unit\): department:301", out), out

    assert cli(work, "run", "--checkpoint", CP, "--no-send").exit_code == 0
    after = _rows(
        work, "SELECT status FROM project_result WHERE checkpoint = :cp AND project_code = :p", p=P1
    )
    assert after == [("not_reported",)]
    # re-sent: it counts again
    _submit(client, unit, p1="61")
    assert _rows(
        work, "SELECT executed FROM project_report WHERE checkpoint = :cp AND project_code = :p", p=P1
    ) == [(61_000_000,)]
