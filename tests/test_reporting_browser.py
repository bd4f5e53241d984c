"""The reporting page end to end in a real headless Chromium (Debian's, driven by Playwright) against
uvicorn on 127.0.0.1 (issue 20): unit 304 opens the link of its reporting notice, captured by a real SMTP
server (aiosmtpd); it sees a project's light change as it changes a number (the live light), makes a
mistake that is named beside its field, saves a draft, leaves and comes back to it, corrects it and
submits; its department 301 returns one project with a comment, the unit corrects and re-submits it, the
department approves both; the checkpoint run then gives exactly the lights the page showed and the pure
core gives for those numbers, and the warning e-mail follows.
Unit 301001 submits, its department 301 returns the report with a comment (the unit is e-mailed it), the
unit corrects and re-submits, the department approves; the run gives the light the department saw.
With MONITOR_SCREENSHOTS=1 the screenshots of the reporting page and of a department's review page (its units'
reports in every state) are written to docs/ (else to a temporary folder)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from mailserver import MailServer, body_text
from sqlalchemy import text
from test_web_browser import ARGS, CHROMIUM
from webserver import serving

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.core.model import Checkpoint
from monitor.db.inputs import load_inputs
from monitor.evaluate.core import evaluate
from monitor.pipeline.queueing import queue_tasks
from monitor.rules.policy import Policies
from monitor.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
DOCS = Path(__file__).resolve().parent.parent / "docs"
SECRET = "browser-test-secret-5Gh7Jk2Lz9Xc4Vb1Nm8Qw3Er6Ty0"
ENV = {"MONITOR_WEB_SECRET": SECRET}
P1, P2 = "2025-304-001", "2025-304-002"
OURS = "project_code LIKE '2025-304-%'"
THEIRS = "(project_code LIKE '2025-304-%' OR project_code = '2025-301001-001')"  # 301001 reports to 301
Q = "2025-301001-001"


@pytest.fixture
def reporting(workdir: Path) -> Iterator[tuple[App, MailServer, str]]:
    """The worked examples without unit 304's August reports; reporting opened on 2025-09-01 and the
    notices sent to aiosmtpd; the pages served. Yields the app, the mail server and 304's link."""
    with MailServer() as mail:
        cfg = workdir / "config.yaml"
        cfg.write_text(
            cfg.read_text(encoding="utf-8")
            + f"mail: {{mode: smtp, smtp: {{host: 127.0.0.1, port: {mail.port}}}}}\n",
            encoding="utf-8",
        )
        res = CliRunner(env=ENV).invoke(main, ["import", str(EXAMPLES), "--config", str(cfg)])
        assert res.exit_code == 0, res.output
        opened = dt.datetime(2025, 9, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
        app = App(load_settings(cfg, env=ENV), lambda: opened)
        with app.engine.begin() as conn:
            for table in ("project_report", "indicator_report"):
                conn.execute(text(f"DELETE FROM {table} WHERE checkpoint = '2025-08' AND {THEIRS}"))
        assert queue_tasks(app.engine, app.settings, app.templates(), Checkpoint(2025, 8), app.clock)
        app.send()
        web = App(load_settings(cfg, env=ENV))  # the pages at today's time: the link is fresh
        with serving(create_app(web)) as base:
            yield app, mail, base + notice_link(mail, "304")


def notice_link(mail: MailServer, unit: str) -> str:
    """The reporting link in `unit`'s reporting notice, as the mail carried it (path only)."""
    (notice,) = [m.message for m in mail.messages if m.message["X-Monitor-Unit"] == unit]
    assert notice["X-Monitor-Kind"] == "task"
    found = re.search(r"http://127\.0\.0\.1:8650(/r/\S+)", body_text(notice))
    assert found, body_text(notice)
    return found.group(1)


def test_a_unit_reports_through_its_page_with_the_light_shown_live(
    reporting: tuple[App, MailServer, str], workdir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, mail, link = reporting
    shots = DOCS if os.environ.get("MONITOR_SCREENSHOTS") == "1" else tmp_path
    units = tmp_path / "units.csv"  # 304 reports to department 301, which reviews it below
    units.write_text(
        "unit_code,unit_name,email,supervisor_code\n304,市城市管理局,cgj@example.gov.cn,301\n", "utf-8"
    )
    config = str(workdir / "config.yaml")
    assert CliRunner(env=ENV).invoke(main, ["import", str(units), "--config", config]).exit_code == 0
    res = CliRunner(env=ENV).invoke(
        main, ["link", "--unit", "301", "--department", "--checkpoint", "2025-08", "--config", config]
    )
    assert res.exit_code == 0, res.output
    dept_link = link.split("/r/")[0] + res.output.strip().removeprefix("http://127.0.0.1:8650")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(link)
            first, second = page.locator(f"#p-{P1}"), page.locator(f"#p-{P2}")
            expect(first.locator("input[aria-label='1-8月执行数']")).to_have_value("25")  # May's, pre-filled
            lit = first.locator(".prospect")
            executed = first.locator("input[aria-label='1-8月执行数']")
            executed.fill("10")  # 15% of the time progress: red, without saving
            expect(lit).to_have_attribute("data-light", "red")
            expect(lit).to_contain_text("为序时进度的15.0%")
            executed.fill("70")  # the budget is green now; May's 31 hours against ≤24 keeps it red
            expect(lit).to_contain_text("为序时进度的105.0%")
            expect(lit).to_contain_text("实际31小时")
            first.locator("input[name$='|01|actual']").fill("23")  # the repair time is met now
            expect(lit).to_have_attribute("data-light", "green")
            second.locator("input[aria-label='1-8月执行数']").fill("三十九")  # a mistake
            page.get_by_role("button", name="保存草稿").click()
            expect(page.locator("#saved")).to_be_visible()

            page.goto("about:blank")  # leaves, and comes back to its draft
            page.goto(link)
            expect(second.locator("input[aria-label='1-8月执行数']")).to_have_value("三十九")
            page.get_by_role("button", name="送审").click()
            expect(page.locator("#errors")).to_be_visible()
            expect(second.locator(".field-error")).to_contain_text("万元")
            second.locator("input[aria-label='1-8月执行数']").fill("39.99")
            expect(second.locator(".prospect")).not_to_have_attribute("data-light", "")
            shown = {p: page.locator(f"#p-{p} .prospect").get_attribute("data-light") for p in (P1, P2)}
            page.screenshot(path=str(shots / "reporting-page.png"), full_page=True)
            page.get_by_role("button", name="送审").click()
            expect(page.locator("#submitted")).to_be_visible()
            expect(executed).to_be_disabled()  # read-only once submitted

            # its department returns one project with a comment; the unit corrects it and sends it again
            dept = browser.new_context().new_page()
            dept.goto(dept_link)
            decide = dept.locator(f"#decide-{P2}")
            decide.locator("textarea[name=comment]").fill("1-8月执行数与国库支付记录不符，请核实")
            decide.get_by_role("button", name="退回修改").click()
            expect(dept.locator(f"#p-{P2}")).to_have_attribute("data-state", "returned")
            page.goto(link)
            expect(second.locator(".review")).to_contain_text("请核实")
            second.locator("input[aria-label='1-8月执行数']").fill("41.5")
            expect(second.locator(".prospect")).to_contain_text("41.50万元")
            shown[P2] = second.locator(".prospect").get_attribute("data-light")
            page.get_by_role("button", name="送审").click()
            expect(page.locator("#submitted")).to_be_visible()
            dept.goto(dept_link)
            for p in (P1, P2):  # the department approves both
                dept.locator(f"#decide-{p}").get_by_role("button", name="审核通过").click()
                expect(dept.locator(f"#p-{p}")).to_have_attribute("data-state", "approved")
        finally:
            browser.close()

    before = len(mail.messages)
    res = CliRunner(env=ENV).invoke(
        main, ["run", "--checkpoint", "2025-08", "--config", str(workdir / "config.yaml")]
    )
    assert res.exit_code == 0, res.output
    with app.engine.connect() as conn:
        stored: dict[str, str] = dict(
            conn.execute(
                text(
                    f"SELECT project_code, light FROM project_result WHERE checkpoint = '2025-08' AND {OURS}"
                )
            ).all()
        )
    assert stored == shown
    with app.engine.connect() as conn:  # exactly what the pure core gives for the numbers reported
        inputs = load_inputs(conn, "2025-08", [P1, P2])
    core = {r.project_code: r.light for r in evaluate(Policies(app.rules()), Checkpoint(2025, 8), inputs)}
    assert core == stored
    returned = [m.message for m in mail.messages if m.message["X-Monitor-Kind"] == "report_returned"]
    assert len(returned) == 1 and "请核实" in body_text(returned[0])  # the unit was told, once
    told = [m.message for m in mail.messages[before:] if m.message["X-Monitor-Unit"] == "304"]
    warned = sorted(p for p, light in stored.items() if light in ("yellow", "red"))
    if warned:  # the warning e-mail follows, naming the projects the page showed yellow or red
        (warning,) = [m for m in told if m["X-Monitor-Kind"] == "warning"]
        assert all(p in body_text(warning) for p in warned)


def test_a_department_returns_a_report_the_unit_corrects_it_and_the_department_approves(
    reporting: tuple[App, MailServer, str], workdir: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    app, mail, link = reporting
    base = link.split("/r/")[0]
    unit_link = base + notice_link(mail, "301001")
    res = CliRunner(env=ENV).invoke(
        main,
        [
            "link",
            "--unit",
            "301",
            "--department",
            "--checkpoint",
            "2025-08",
            "--config",
            str(workdir / "config.yaml"),
        ],
    )
    assert res.exit_code == 0, res.output
    dept_link = base + res.output.strip().removeprefix("http://127.0.0.1:8650")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            unit = browser.new_page(viewport={"width": 1000, "height": 900})
            unit.goto(unit_link)
            box = unit.locator(f"#p-{Q}")
            box.locator("input[aria-label='1-8月执行数']").fill("940")
            box.locator("input[name$='|01|actual']").fill("80000")
            box.locator("input[name$='|02|actual']").fill("84")
            unit.get_by_role("button", name="送审").click()
            expect(unit.locator("#submitted")).to_be_visible()

            dept = browser.new_context().new_page()
            dept.set_viewport_size({"width": 1100, "height": 900})
            dept.goto(dept_link)
            row = dept.locator(f"#p-{Q}")
            expect(row).to_have_attribute("data-state", "submitted")
            form = dept.locator(f"#decide-{Q}")
            form.locator("textarea[name=comment]").fill(
                "1-8月执行数与国库支付记录不符（应为944万元），请核实"
            )
            form.get_by_role("button", name="退回修改").click()
            expect(dept.locator(f"#p-{Q}")).to_have_attribute("data-state", "returned")
            dept.screenshot(path=str(workdir / "department-page.png"), full_page=True)

            unit.goto(unit_link)
            expect(unit.locator(f"#p-{Q} .review")).to_contain_text("请核实")
            executed = unit.locator(f"#p-{Q} input[aria-label='1-8月执行数']")
            executed.fill("944")
            unit.get_by_role("button", name="送审").click()
            expect(unit.locator("#submitted")).to_be_visible()

            dept.goto(dept_link)
            expect(dept.locator(f"#p-{Q}")).to_have_attribute("data-state", "submitted")
            shown = dept.locator(f"#p-{Q} .prospect").get_attribute("data-light")
            dept.locator(f"#decide-{Q}").get_by_role("button", name="审核通过").click()
            expect(dept.locator(f"#p-{Q}")).to_have_attribute("data-state", "approved")
        finally:
            browser.close()
    res = CliRunner(env=ENV).invoke(main, ["send", "--config", str(workdir / "config.yaml")])
    assert res.exit_code == 0, res.output
    returned = [m.message for m in mail.messages if m.message["X-Monitor-Kind"] == "report_returned"]
    assert len(returned) == 1 and "请核实" in body_text(returned[0])  # the unit was told, once
    res = CliRunner(env=ENV).invoke(
        main, ["run", "--checkpoint", "2025-08", "--config", str(workdir / "config.yaml")]
    )
    assert res.exit_code == 0, res.output
    with app.engine.connect() as conn:
        stored = conn.execute(
            text(f"SELECT light FROM project_result WHERE checkpoint = '2025-08' AND project_code = '{Q}'")
        ).scalar()
    assert stored == shown and stored in ("green", "yellow", "red")


def test_a_department_sees_its_units_reports_in_every_state(
    reporting: tuple[App, MailServer, str], workdir: Path, tmp_path: Path
) -> None:
    """Department 301 with three units: one report submitted (已送审), one returned with a comment (已退回),
    one approved (已审核), one a draft and one not started; its page shows each state. With
    MONITOR_SCREENSHOTS=1 it is docs/department-page.png."""
    from playwright.sync_api import expect, sync_playwright

    _, _, link = reporting
    base = link.split("/r/")[0]
    more = tmp_path / "more"
    more.mkdir()
    (more / "units.csv").write_text(
        "unit_code,unit_name,email,supervisor_code\n"
        "301002,市农业技术推广中心,nyjt@example.gov.cn,301\n"
        "301003,市农产品质量安全检测站,ncp@example.gov.cn,301\n",
        encoding="utf-8",
    )
    (more / "projects.csv").write_text(
        "project_code,project_name,unit_code,budget,carryover,fund_flag,category,profile\n"
        "2025-301002-001,高标准农田建设技术服务,301002,200.00,0,01,专项业务,\n"
        "2025-301002-002,耕地质量监测,301002,80.00,0,01,专项业务,\n"
        "2025-301003-001,农产品质量安全例行监测,301003,120.00,0,01,专项业务,\n",
        encoding="utf-8",
    )
    config = ["--config", str(workdir / "config.yaml")]
    res = CliRunner(env=ENV).invoke(main, ["import", str(more), *config])
    assert res.exit_code == 0, res.output

    def page_of(*args: str) -> str:
        res = CliRunner(env=ENV).invoke(main, ["link", *args, "--checkpoint", "2025-08", *config])
        assert res.exit_code == 0, res.output
        return base + res.output.strip().removeprefix("http://127.0.0.1:8650")

    shots = DOCS if os.environ.get("MONITOR_SCREENSHOTS") == "1" else tmp_path
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            unit = browser.new_page(viewport={"width": 1000, "height": 900})
            for code, amounts, button in (
                ("301001", {Q: "944"}, "送审"),
                ("301002", {"2025-301002-001": "150", "2025-301002-002": "20"}, "送审"),
                ("301003", {"2025-301003-001": "40"}, "保存草稿"),
            ):
                unit.goto(page_of("--unit", code).replace("/u/", "/r/"))
                for project, amount in amounts.items():
                    unit.locator(f"#p-{project} input[aria-label='1-8月执行数']").fill(amount)
                unit.get_by_role("button", name=button).click()
                expect(unit.locator("#submitted" if button == "送审" else "#saved")).to_be_visible()

            dept = browser.new_page(viewport={"width": 1100, "height": 900})
            dept.goto(page_of("--unit", "301", "--department"))
            form = dept.locator("#decide-2025-301002-002")
            form.locator("textarea[name=comment]").fill("耕地质量监测点位采样费用未计入执行数，请核实后重报")
            form.get_by_role("button", name="退回修改").click()
            expect(dept.locator("#p-2025-301002-002")).to_have_attribute("data-state", "returned")
            dept.locator("#decide-2025-301002-001").get_by_role("button", name="审核通过").click()
            states = {
                "2025-301002-001": "approved",
                "2025-301002-002": "returned",
                Q: "submitted",
                "2025-301003-001": "draft",
            }
            for project, state in states.items():
                expect(dept.locator(f"#p-{project}")).to_have_attribute("data-state", state)
            expect(dept.locator("#p-2025-301002-002 .state")).to_contain_text("请核实后重报")
            dept.evaluate("window.scrollTo(0, 0)")
            dept.screenshot(path=str(shots / "department-page.png"), full_page=True)
        finally:
            browser.close()
