"""Reasons credit the rule that decided: with thresholds changed in rules/local.yaml, or an override by
department or category, every reason names the file and line (or the override) each threshold it
states came from, the same words in the e-mail, `monitor results`, the Excel list, the HTML report and
`monitor explain`, which reads the same record (the policy's origins) for its rule values."""

from __future__ import annotations

import email
import email.policy
import html
import json
from pathlib import Path

from click.testing import CliRunner, Result
from openpyxl import load_workbook
from starlette.testclient import TestClient
from test_web import PASSWORD, SECRET, login

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.config.yamlfile import load_yaml
from monitor.core.model import Checkpoint
from monitor.evaluate.stored import load_results
from monitor.pipeline.evaluation import evaluate_checkpoint
from monitor.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
CP = "2025-05"
WINE, VACCINE, LAMPS = "2025-302-001", "2025-301001-001", "2025-304-001"

LOCAL = """# 本局调整 · this bureau's thresholds over the shipped defaults
budget:
  red_below: 0.65
indicators:
  level:
    tolerance: 0.04
"""
OVERRIDES = """overrides:
  - name: 商务局从严
    match: {department: "302"}
    budget: {red_below: 0.70, yellow_below: 0.90}
  - name: 运行维护项目从宽
    match: {category: 运行维护}
    budget: {red_below: 0.50, yellow_below: 0.55}
"""


def cli(workdir: Path, *args: str) -> Result:
    res = CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def run_with(workdir: Path, local: str) -> dict[str, list[str]]:
    """Import the worked examples, run May with rules/local.yaml = `local`; project code -> reasons
    (project reasons, then every indicator reason) as `monitor results --format json` gives them."""
    (workdir / "rules" / "local.yaml").write_text(local, encoding="utf-8")
    cli(workdir, "import", str(EXAMPLES))
    cli(workdir, "run", "--checkpoint", CP)
    rows = json.loads(cli(workdir, "results", "--checkpoint", CP, "--format", "json").stdout)
    return {r["project_code"]: [*r["reasons"], *(i["reason"] for i in r["indicators"])] for r in rows}


def mails(workdir: Path) -> str:
    out = []
    for path in sorted((workdir / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        body = msg.get_body(("plain",))
        assert body is not None
        out.append(body.get_content())
    return "\n".join(out)


def reports(workdir: Path, tmp_path: Path) -> tuple[dict[str, str], str]:
    """The Excel list's 预警原因 by project code, and the HTML report's text."""
    xlsx, html = tmp_path / "list.xlsx", tmp_path / "report.html"
    cli(workdir, "report", "--checkpoint", CP, "--format", "xlsx", "--out", str(xlsx))
    cli(workdir, "report", "--checkpoint", CP, "--format", "html", "--out", str(html))
    ws = load_workbook(xlsx)["预警清单"]
    head = [c.value for c in ws[1]]
    listed = {
        r[head.index("项目编码")].value: r[head.index("预警原因")].value for r in ws.iter_rows(min_row=2)
    }
    return listed, html.read_text(encoding="utf-8")


def test_reasons_name_the_file_and_line_of_a_changed_threshold(workdir: Path, tmp_path: Path) -> None:
    reasons = run_with(workdir, LOCAL)
    red = f"（依据规则文件 local.yaml 第{line_of(LOCAL, 'red_below')}行）"
    tolerance = f"（依据规则文件 local.yaml 第{line_of(LOCAL, 'tolerance')}行）"
    default = load_yaml(workdir / "rules" / "default.yaml")
    lines = [default.line_of(("indicators", "cumulative", k)) for k in ("red_below", "yellow_below")]
    cumulative = f"（依据规则文件 default.yaml 第{lines[0]}、{lines[1]}行）"
    wine = reasons[WINE][0]
    assert wine.endswith(f"（低于65%为红灯）→ 红灯{red}"), wine
    # 86 against ≥ 90 misses by 4.4 %: red under local.yaml's 4 %; 30,000 头 is 60 % of schedule: yellow
    # under the default 80 % that local.yaml left alone
    vaccine = reasons[VACCINE]
    assert any(r.endswith(f"（超过4%为红灯）{tolerance}") for r in vaccine), vaccine
    assert any(r.endswith(f"（不低于60%、低于80%为黄灯）{cumulative}") for r in vaccine), vaccine
    assert not any("默认规则" in r for rs in reasons.values() for r in rs)

    mail = mails(workdir)
    assert wine in mail and "默认规则" not in mail
    assert f"群体免疫密度：目标≥90%，实际86%，未达标，偏离目标值4.5%（超过4%为红灯）{tolerance}" in mail
    listed, html = reports(workdir, tmp_path)
    assert wine in listed[WINE].split("；") and tolerance in listed[VACCINE]
    assert wine in html and tolerance in html
    explained = cli(workdir, "explain", WINE, "--checkpoint", CP).output
    assert "red below     65% (local.yaml:3)" in explained and wine in explained
    assert wine in web_page(workdir, "/board?checkpoint=2025-05&unit=302")


def web_page(workdir: Path, path: str) -> str:
    """A bureau page of the web part, logged in (as tests/test_web.py does)."""
    res = CliRunner().invoke(
        main, ["user", "add", "kz", "--config", str(workdir / "config.yaml")], input=f"{PASSWORD}\n" * 2
    )
    assert res.exit_code == 0, res.output
    settings = load_settings(workdir / "config.yaml", env={"MONITOR_WEB_SECRET": SECRET})
    client = TestClient(create_app(App(settings)))
    assert login(client) == 200
    return html.unescape(client.get(path).text)


def test_reasons_name_the_override_by_department_or_category(workdir: Path, tmp_path: Path) -> None:
    reasons = run_with(workdir, OVERRIDES)
    strict = f"覆盖规则“商务局从严”（local.yaml 第{line_of(OVERRIDES, '商务局从严')}行）"
    lenient = f"覆盖规则“运行维护项目从宽”（local.yaml 第{line_of(OVERRIDES, '运行维护项目从宽')}行）"
    wine, lamps = reasons[WINE][0], reasons[LAMPS][0]
    assert wine.endswith(f"（低于70%为红灯）→ 红灯（依据{strict}）"), wine
    # r = 0.60 exactly: yellow by default, green under the category's override
    assert lamps.endswith(f"为序时进度的60.0%（达到55%为绿灯）→ 绿灯（依据{lenient}）"), lamps
    mail = mails(workdir)
    assert wine in mail
    listed, html = reports(workdir, tmp_path)
    assert wine in listed[WINE].split("；") and lamps in listed[LAMPS].split("；") and wine in html
    explained = cli(workdir, "explain", WINE, "--checkpoint", CP).output
    assert (
        f"red below     70% (覆盖规则“商务局从严”（local.yaml:{line_of(OVERRIDES, '商务局从严')}）)"
        in explained
    )
    assert wine in explained


def test_reasons_rendered_when_read_are_those_the_core_stores(workdir: Path) -> None:
    """The SQL evaluation stores no reasons: they are rendered when read, from the rule version the run
    stored (file names and text, so the same lines); the pure core stores its own. Same words."""
    rendered = run_with(workdir, LOCAL)
    app = App(load_settings(workdir / "config.yaml"))
    evaluate_checkpoint(app.engine, app.rules(), Checkpoint(2025, 5), app.clock, method="python")
    with app.engine.connect() as conn:
        stored = {
            r["project_code"]: [*r["reasons"], *(i["reason"] for i in r["indicators"])]
            for r in load_results(conn, CP)
        }
    assert stored == rendered and rendered[WINE][0].endswith("→ 红灯（依据规则文件 local.yaml 第3行）")
