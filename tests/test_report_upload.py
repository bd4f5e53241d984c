"""Upload instead of typing (issue 20): on its reporting page /r/<token> a unit uploads its filled form
workbook (what `monitor forms` writes) or its monitoring data in the canonical layout, through HTTP
(Starlette's TestClient). The upload is imported by the canonical import and marks the forms it covers
submitted exactly as typing them does (the same report rows, form states, events and lights). A file
that holds another unit's project, another checkpoint, anything but monitoring data, a formula, a file
that is no workbook (random bytes, a zip bomb), one too large, a hostile file name, a read-only report,
a bad link or a missing CSRF token: refused with a clear Chinese message, and nothing written."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient
from test_reporting import CP, EXAMPLES, P1, P2, august, light_of  # noqa: F401 (fixture)
from test_web import Clock, cli, csrf, link, make


@pytest.fixture
def unit304(request: pytest.FixtureRequest) -> Path:
    """The worked examples, unit 304 yet to report for August (test_reporting's `august`)."""
    return Path(request.getfixturevalue("august"))


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TABLES = ("project_report", "indicator_report", "report_form", "report_event", "report_batch")
FEN_PER_WAN = 1_000_000


def snapshot(workdir: Path) -> dict[str, list[str]]:
    """Every row of the report tables, to compare before and after a refused upload."""
    app, _ = make(workdir)
    with app.engine.connect() as conn:
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")).all())) for t in TABLES}


def ours(workdir: Path) -> dict[str, Any]:
    """Unit 304's reports at the checkpoint, its forms and the steps recorded, without times or batch."""
    app, _ = make(workdir)
    where = "checkpoint = :cp AND project_code LIKE '2025-304-%'"
    with app.engine.connect() as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return sorted(tuple(r) for r in conn.execute(text(sql), {"cp": CP}))

        return {
            "projects": rows(
                f"SELECT project_code, executed, forecast_executed FROM project_report WHERE {where}"
            ),
            "indicators": rows(
                "SELECT project_code, indicator_code, actual, forecast, possibility, causes, cause_text, "
                f"measures FROM indicator_report WHERE {where}"
            ),
            "forms": [
                (code, state, json.loads(data))
                for code, state, data in rows(
                    f"SELECT project_code, state, data FROM report_form WHERE {where}"
                )
            ],
            "events": rows(f"SELECT project_code, kind, by, channel FROM report_event WHERE {where}"),
        }


def forget(workdir: Path) -> None:
    """Unit 304's August reports, forms and steps removed: it has yet to report again."""
    app, _ = make(workdir)
    with app.engine.begin() as conn:
        for table in ("project_report", "indicator_report", "report_form", "report_event"):
            conn.execute(
                text(f"DELETE FROM {table} WHERE checkpoint = :cp AND project_code LIKE '2025-304-%'"),
                {"cp": CP},
            )


def page_link(workdir: Path, unit: str = "304") -> str:
    return link(workdir, unit, CP).replace("/u/", "/r/")


def upload(client: TestClient, url: str, token: str | None, content: bytes, name: str = "监控表.xlsx") -> Any:
    data = {"csrf": token} if token is not None else {}
    kind = XLSX if name.endswith(".xlsx") else "text/csv"
    return client.post(
        f"{url}/upload", data=data, files={"file": (name, content, kind)}, follow_redirects=True
    )


def form_workbook(workdir: Path, unit: str = "304") -> Path:
    """The official form workbook of `unit` for the checkpoint, as `monitor forms` writes it."""
    out = workdir / f"forms-{unit}"
    res = cli(workdir, "forms", "--checkpoint", CP, "--unit", unit, "--out", str(out))
    assert res.exit_code == 0, res.output
    (path,) = out.glob("*.xlsx")
    return path


def fill(path: Path, reports: dict[str, Any]) -> bytes:
    """The form filled in with openpyxl, as a unit types it: the stored values of `reports` (ours())."""
    wb = openpyxl.load_workbook(path)
    projects = {r[0]: r for r in reports["projects"]}
    indicators = {(r[0], r[1]): r for r in reports["indicators"]}
    for ws in wb.worksheets:
        code = ws["D2"].value
        _, executed, forecast = projects[code]
        ws["D6"] = executed / FEN_PER_WAN
        ws["F6"] = forecast / FEN_PER_WAN if forecast is not None else None
        for row in range(12, ws.max_row + 1):
            answer = indicators.get((code, ws.cell(row, 14).value))
            if answer is None:
                continue
            _, _, actual, forecast_text, possibility, causes, cause_text, measures = answer
            ws.cell(row, 5).value, ws.cell(row, 6).value = actual, forecast_text
            ws.cell(row, 12).value, ws.cell(row, 13).value = possibility, measures
            named = (causes or "").split(";")
            for column, cause in enumerate(("经费保障", "制度保障", "人员保障", "硬件条件保障", "其他"), 7):
                if cause in named:
                    ws.cell(row, column).value, cause_text = cause_text or "√", None
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def edited(content: bytes, cell: str, value: object, sheet: int = 0) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(content))
    wb.worksheets[sheet][cell] = value
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def test_an_uploaded_form_workbook_reports_as_typing_does(unit304: Path) -> None:
    blank = form_workbook(unit304)  # written before anything is reported for August
    _, client = make(unit304)
    url = page_link(unit304)
    token = csrf(client.get(url).text)
    typed = {"csrf": token, "action": "submit", f"p|{P1}|executed": "60", f"i|{P1}|01|actual": "23"}
    typed[f"p|{P2}|executed"] = "39.99"
    res = client.post(url, data=typed)
    assert res.status_code == 200 and "已送审" in res.text
    by_typing = ours(unit304)
    lights = {p: light_of(res.text, p) for p in (P1, P2)}
    assert [s for _, s, _ in by_typing["forms"]] == ["submitted", "submitted"]

    forget(unit304)
    content = fill(blank, by_typing)
    res = upload(client, url, csrf(client.get(url).text), content)
    assert res.status_code == 200, res.text
    assert 'id="uploaded"' in res.text and "已送审" in res.text
    assert ours(unit304) == by_typing  # the same report rows, form states and data, steps
    assert {p: light_of(res.text, p) for p in (P1, P2)} == lights
    app, _ = make(unit304)
    with app.engine.connect() as conn:
        channel, source = conn.execute(
            text("SELECT channel, source FROM report_batch ORDER BY id DESC LIMIT 1")
        ).one()
    assert channel == "web" and "unit:304" in source and "监控表.xlsx" in source  # provenance: the file

    # now read-only: the same file again is refused, nothing written
    before = snapshot(unit304)
    res = upload(client, url, csrf(res.text), content)
    assert res.status_code == 400 and "已送审" in res.text and "只读" in res.text
    assert snapshot(unit304) == before

    # returned (reopened) by the bureau: the unit may upload again
    assert (
        cli(unit304, "reporting", "reopen", "--checkpoint", CP, "--project", P1, "--reason", "核对").exit_code
        == 0
    )
    sheet = [ws.title for ws in openpyxl.load_workbook(io.BytesIO(content)).worksheets].index(P1)
    before = snapshot(unit304)
    res = upload(client, url, csrf(client.get(url).text), edited(content, "D6", 61, sheet))
    assert res.status_code == 400  # the workbook still holds P2, which is read-only
    assert f"{P2}!D2" in res.text and snapshot(unit304) == before
    only = openpyxl.load_workbook(io.BytesIO(edited(content, "D6", 61, sheet)))
    only.remove(only[P2])
    buffer = io.BytesIO()
    only.save(buffer)
    res = upload(client, url, csrf(client.get(url).text), buffer.getvalue())
    assert res.status_code == 200, res.text
    assert ours(unit304)["projects"][0] == (P1, 61_000_000, by_typing["projects"][0][2])


def refused(html: str) -> str:
    """What the page says about a refused upload."""
    found = re.search(r'id="upload-errors".*?</div>', html, re.S) or re.search(
        r'id="message">.*?</p>', html, re.S
    )
    return found.group(0) if found else ""


def csv_bytes(*rows: str) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


PR_HEADER = "checkpoint,project_code,executed,forecast_executed"
IR_HEADER = "checkpoint,project_code,indicator_code,actual,forecast,possibility,causes,cause_text,measures"


def test_a_canonical_csv_is_accepted_and_its_mistakes_are_named_by_row(unit304: Path) -> None:
    _, client = make(unit304)
    url = page_link(unit304)
    before = snapshot(unit304)
    bad = csv_bytes(PR_HEADER, f"{CP},{P1},六十,100")
    res = upload(client, url, csrf(client.get(url).text), bad, "project_reports.csv")
    assert res.status_code == 400
    assert "第2行" in res.text and "六十" in res.text and "万元" in res.text
    assert snapshot(unit304) == before
    good = csv_bytes(PR_HEADER, f"{CP},{P1},60,100")
    res = upload(client, url, csrf(res.text), good, "project_reports.csv")
    assert res.status_code == 200 and 'id="uploaded"' in res.text
    assert ours(unit304)["projects"] == [(P1, 60_000_000, 100_000_000)]
    assert [(c, s) for c, s, _ in ours(unit304)["forms"]] == [(P1, "submitted")]  # P2 not covered


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/worksheets/sheet1.xml", b"\0" * (200 << 20))
    return buffer.getvalue()


def test_files_that_are_not_this_units_monitoring_data_are_refused_with_nothing_written(
    unit304: Path,
) -> None:
    _, client = make(unit304)
    url = page_link(unit304)
    form = fill(
        form_workbook(unit304),
        {"projects": [(P1, 60_000_000, None), (P2, 1_000_000, None)], "indicators": []},
    )
    before = snapshot(unit304)
    cases: list[tuple[str, bytes, tuple[str, ...]]] = [
        # another unit's project, another checkpoint: named by row or cell and value
        (
            "r.csv",
            csv_bytes(PR_HEADER, f"{CP},{P1},60,100", f"{CP},2025-302-001,1,1"),
            ("第3行", "2025-302-001", "不属于本单位"),
        ),
        ("r.csv", csv_bytes(PR_HEADER, f"2025-05,{P1},60,100"), ("第2行", "2025-05", "监控期")),
        ("监控表.xlsx", edited(form, "B2", "2025-05"), (f"{P1}!B2", "2025-05", "监控期")),
        ("监控表.xlsx", edited(form, "D2", "2025-302-001"), ("!D2", "2025-302-001", "不属于本单位")),
        # not monitoring data at all
        ("units.csv", (EXAMPLES / "units.csv").read_bytes(), ("单位", "只接收")),
        ("projects.csv", (EXAMPLES / "projects.csv").read_bytes(), ("项目", "只接收")),
        # formulas, no workbook, a zip bomb, another type
        (
            "r.csv",
            csv_bytes(IR_HEADER, f'{CP},{P1},01,23,24,确定能,,,"=HYPERLINK(""http://x"",""y"")"'),
            ("公式", "第2行"),
        ),
        ("r.csv", csv_bytes(PR_HEADER, f"{CP},{P1},=1+59,100"), ("第2行", "=1+59")),
        ("监控表.xlsx", bytes(range(256)) * 64, ("不是有效的 .xlsx",)),
        ("监控表.xlsx", zip_bomb(), ("解压",)),
        ("监控表.xls", form, (".xlsx", ".csv")),
        ("empty.csv", b"", ("为空",)),
        ("nothing.csv", csv_bytes(PR_HEADER), ("没有",)),
    ]
    for name, content, words in cases:
        res = upload(client, url, csrf(client.get(url).text), content, name)
        assert res.status_code == 400, (name, words, res.text[:300])
        for word in words:
            assert word in refused(res.text), (name, word, refused(res.text))
        assert snapshot(unit304) == before, (name, words)

    # no file chosen
    res = client.post(f"{url}/upload", data={"csrf": csrf(client.get(url).text)}, files={"file": ("", b"")})
    assert res.status_code == 400 and "请选择" in res.text


def test_hostile_names_and_sizes_links_and_forms_are_refused(unit304: Path) -> None:
    clock = Clock()
    _, client = make(unit304, clock)
    url = page_link(unit304)
    before = snapshot(unit304)
    token = csrf(client.get(url).text)
    # a hostile name is never a path and never shown as markup
    for name in ("../../x.csv", "<script>alert(1)</script>\n.csv", "a\r\nb/../../../x.csv"):
        res = upload(client, url, token, csv_bytes(PR_HEADER, f"{CP},2025-302-001,1,1"), name)
        assert res.status_code == 400 and "不属于本单位" in res.text
        assert "<script>alert" not in res.text
    assert not (unit304.parent / "x.csv").exists() and not (unit304 / "x.csv").exists()

    # too large: refused by its declared length before it is read, and when it has none (chunked)
    big = b"x" * (10 * 1024 * 1024 + 1)
    res = upload(client, url, token, big, "big.csv")
    assert res.status_code == 413 and "10 MB" in res.text

    def chunked() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        for _ in range(12):
            yield b"x" * (1024 * 1024)
        yield b"\r\n--b--\r\n"

    res = client.post(
        f"{url}/upload", content=chunked(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert res.status_code == 413 and "10 MB" in res.text
    assert snapshot(unit304) == before

    good = csv_bytes(PR_HEADER, f"{CP},{P1},60,100")
    # no CSRF token, or another session's
    assert upload(client, url, None, good, "r.csv").status_code == 403
    assert upload(make(unit304)[1], url, token, good, "r.csv").status_code == 403
    # a tampered link; another unit's link cannot reach 304's projects
    tampered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert upload(client, tampered, token, good, "r.csv").status_code == 403
    other = page_link(unit304, "302")
    res = upload(client, other, csrf(client.get(other).text), good, "r.csv")
    assert res.status_code == 400 and "不属于本单位" in res.text
    # expired
    clock.now += dt.timedelta(days=400)
    assert upload(client, url, token, good, "r.csv").status_code == 403
    assert snapshot(unit304) == before
