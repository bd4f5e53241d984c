"""Provenance of reports (issue 20): every report row names the import that last wrote it — its channel
(`monitor import` of files, forms and exchange tables included, or the unit's reporting page), its
source (the files, or the unit) and its time — and `monitor explain` says through which channel, from
where and when the numbers it explains were reported. A correction is a new provenance; other rows
keep theirs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from test_reporting import CP, P1, P2, august  # noqa: F401 (fixture)
from test_web import cli, csrf, link, make


@pytest.fixture
def data(request: pytest.FixtureRequest) -> Path:
    path = request.getfixturevalue("august")
    assert isinstance(path, Path)
    return path


def _origin(work: Path, project: str) -> tuple[str, str] | None:
    app, _ = make(work)
    with app.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT b.channel, b.source FROM project_report r JOIN report_batch b ON b.id = r.batch"
                " WHERE r.checkpoint = :cp AND r.project_code = :p"
            ),
            {"cp": CP, "p": project},
        ).first()
    return (row[0], row[1]) if row else None


def test_every_report_names_its_channel_source_and_time_and_explain_says_it(
    data: Path, tmp_path: Path
) -> None:
    # imported from files: the files are the source
    channel, source = _origin(data, "2025-302-001") or ("", "")
    assert channel == "import" and "project_reports.csv" in source

    # a correction by file: a new provenance for that row only
    fix = tmp_path / "fix"
    fix.mkdir()
    (fix / "修正-商务局.csv").write_text(
        "checkpoint,project_code,executed\n2025-08,2025-302-001,160\n", encoding="utf-8"
    )
    assert cli(data, "import", str(fix)).exit_code == 0
    assert _origin(data, "2025-302-001") == ("import", "修正-商务局.csv")
    assert _origin(data, "2025-303-001") == (channel, source)

    # through the unit's page
    url = link(data, "304", CP).replace("/u/", "/r/")
    _, client = make(data)
    fields = {"action": "submit", f"p|{P1}|executed": "60", f"p|{P2}|executed": "39.99"}
    client.post(url, data={**fields, "csrf": csrf(client.get(url).text)})
    web = _origin(data, P1)
    assert web is not None and web[0] == "web" and "unit:304" in web[1]

    res = cli(data, "explain", P1, "--checkpoint", CP)
    assert res.exit_code == 0, res.output
    assert "reported      through the unit's reporting page (web): unit:304：送审, at 20" in res.output
    res = cli(data, "explain", "2025-302-001", "--checkpoint", CP)
    assert "through monitor import: 修正-商务局.csv" in res.output
