"""One way to show a ratio: a project executed at 23.571 % reads 23.5 % in the warning e-mail, the
Excel warning list (a cell worth 0.235 in the format 0.0 %), the HTML report (red list and results
application), `monitor results` and `monitor explain`; a ratio just under a threshold never reads as
the threshold it is coloured for being under."""

from __future__ import annotations

import email
import email.policy
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from openpyxl import load_workbook

from monitor.cli.main import main
from monitor.core import wording

CP = "2025-08"
# (code, name, budget 万元, executed 万元): E = 23.571 %, 59.999 % and 39.99 % (r = 59.985 % of P = 8/12)
PROJECTS = [
    ("2025-901-001", "乡村道路养护", "300.00", "70.713"),
    ("2025-901-002", "农村饮水安全巩固", "300.00", "179.997"),
    ("2025-901-003", "边界例二", "100.00", "39.99"),
]


def cli(workdir: Path, *args: str) -> Result:
    res = CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture
def ran(workdir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "units.csv").write_text(
        "unit_code,unit_name,email,supervisor_code\n901,市交通运输局,jtj@example.gov.cn,\n", encoding="utf-8"
    )
    rows = "".join(f"{c},{n},901,{b}\n" for c, n, b, _ in PROJECTS)
    (data / "projects.csv").write_text(
        "project_code,project_name,unit_code,budget\n" + rows, encoding="utf-8"
    )
    reports = "".join(f"{CP},{c},{e}\n" for c, _, _, e in PROJECTS)
    (data / "project_reports.csv").write_text(
        "checkpoint,project_code,executed\n" + reports, encoding="utf-8"
    )
    cli(workdir, "import", str(data))
    cli(workdir, "run", "--checkpoint", CP)
    return workdir


def test_the_rule_in_numbers() -> None:
    percent, percent_nd, progress, shown = (
        wording.percent,
        wording.percent_nd,
        wording.progress,
        wording.shown,
    )
    assert percent(0.23571) == percent(Fraction(23571, 100000)) == "23.5%"
    assert shown(0.23571) == Decimal("0.235")
    assert percent(0.59999) == "59.9%" and percent(0.6) == "60.0%"  # the double 0.6 is 0.6
    assert percent_nd(3, 5) == "60.0%" and percent_nd(5999, 10000) == "59.9%"
    assert percent_nd(501, 10000, up=True) == "5.1%" and percent_nd(5, 100, up=True) == "5.0%"
    assert progress(Fraction(5, 12)) == "41.7%" and progress(Fraction(8, 12)) == "66.7%"
    # a threshold with more decimals than one: as many as it needs, so 60.54 % is not '60.5%' beside 60.55 %
    assert wording.digits_for(Fraction("0.6055")) == 2 and percent(Fraction("0.60549"), digits=2) == "60.54%"
    assert wording.PERCENT == "0.0%"


def _warning_text(workdir: Path) -> str:
    texts = []
    for path in sorted((workdir / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        if msg.get("X-Monitor-Kind") == "warning" or "预警" in str(msg["Subject"]):
            body = msg.get_body(("plain",))
            assert body is not None
            texts.append(body.get_content())
    assert texts, "no warning e-mail written"
    return "\n".join(texts)


def _html_row(html: str, table: str, code: str) -> str:
    section = html[html.index(f'<table id="{table}"') :]
    section = section[: section.index("</table>")]
    m = re.search(rf'<tr data-code="{re.escape(code)}">(.*?)</tr>', section, re.S)
    assert m, f"{code} not in table {table}"
    return m.group(1)


def test_a_ratio_reads_the_same_in_every_channel(ran: Path, tmp_path: Path) -> None:
    code = PROJECTS[0][0]
    mail = _warning_text(ran)
    assert "执行率 23.5%" in mail and "预算执行率23.5%" in mail and "23.57" not in mail

    table = cli(ran, "results", "--checkpoint", CP).output
    line = next(x for x in table.splitlines() if code in x)
    assert "23.5%" in line and "66.7%" in line and "23.6%" not in line

    assert "E = executed / base = 23.5%" in cli(ran, "explain", code, "--checkpoint", CP).output

    xlsx = tmp_path / "list.xlsx"
    cli(ran, "report", "--checkpoint", CP, "--format", "xlsx", "--out", str(xlsx))
    wb = load_workbook(xlsx)
    ws = wb["预警清单"]
    head = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2) if r[head.index("项目编码")].value == code)
    cell = row[head.index("预算执行率")]
    assert cell.number_format == "0.0%" and Decimal(str(cell.value)) == Decimal("0.235")
    assert "预算执行率23.5%" in row[head.index("预警原因")].value
    app = wb["结果应用"]
    head = [c.value for c in app[1]]
    rates = [
        r[head.index("预算执行率")]
        for r in app.iter_rows(min_row=2)
        if r[head.index("项目编码")].value == code
    ]
    assert rates and all(
        c.number_format == "0.0%" and Decimal(str(c.value)) == Decimal("0.235") for c in rates
    )

    page = tmp_path / "report.html"
    cli(ran, "report", "--checkpoint", CP, "--format", "html", "--out", str(page))
    html = page.read_text(encoding="utf-8")
    red = _html_row(html, "red-list", code)
    assert '<td class="num">23.5%</td>' in red and "预算执行率23.5%" in red and "23.57" not in red
    key = _html_row(html, "key-monitoring", code)
    assert '<td class="num">23.5%</td>' in key


def test_a_ratio_just_under_a_threshold_never_reads_as_the_threshold(ran: Path, tmp_path: Path) -> None:
    # 179.997 / 300 = 59.999 %: under the key-monitoring line of 60 %, listed, and shown as 59.9 %
    code = PROJECTS[1][0]
    page = tmp_path / "report.html"
    cli(ran, "report", "--checkpoint", CP, "--format", "html", "--out", str(page))
    key = _html_row(page.read_text(encoding="utf-8"), "key-monitoring", code)
    assert '<td class="num">59.9%</td>' in key and "60.0%" not in key
    xlsx = tmp_path / "list.xlsx"
    cli(ran, "report", "--checkpoint", CP, "--format", "xlsx", "--out", str(xlsx))
    app = load_workbook(xlsx)["结果应用"]
    head = [c.value for c in app[1]]
    rows = [r for r in app.iter_rows(min_row=2) if r[head.index("项目编码")].value == code]
    assert rows and all(Decimal(str(r[head.index("预算执行率")].value)) == Decimal("0.599") for r in rows)
    assert all("预算执行率59.9%，低于60%" in r[head.index("依据")].value for r in rows)
    # 39.99 / 100 over P = 8/12 is r = 59.985 %: red, and its reason says 59.9 %, never 60.0 %
    mail = _warning_text(ran)
    reason = next(x for x in mail.splitlines() if "预算执行率39.9%" in x)
    assert "为序时进度的59.9%（低于60%为红灯）→ 红灯" in reason
