"""The web pages end to end in a real headless Chromium (Debian's, driven by Playwright) against uvicorn
on 127.0.0.1: a unit opens the link from its warning e-mail (captured by aiosmtpd) and answers, the
bureau logs in and returns the answer with a comment, the unit answers again, the bureau accepts, then
drills down from the board to the project's explanation and case history; the August run, on corrected
data, marks the case resolved. With MONITOR_SCREENSHOTS=1 it also refreshes the screenshots in docs/
(otherwise they go to a temporary folder: a test run never dirties the tree)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailserver import MailServer, body_text
from webserver import serving

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
DOCS = Path(__file__).resolve().parent.parent / "docs"
REFRESH_DOCS = os.environ.get("MONITOR_SCREENSHOTS") == "1"
SECRET = "browser-test-secret-5Gh7Jk2Lz9Xc4Vb1Nm8Qw3Er6Ty0"
PASSWORD = "correct horse battery"

# No skip: tests/system-packages.sh (part of the README's test command) installs Debian's chromium.


@pytest.fixture
def server(workdir: Path) -> Iterator[tuple[str, str]]:
    """The worked examples run for 2025-05, the e-mails sent to a real SMTP server (aiosmtpd), cases
    opened, a bureau user, and the web pages on a free port; yields the base URL and the link in unit
    302's warning e-mail."""
    env = {"MONITOR_WEB_SECRET": SECRET}
    cfg = str(workdir / "config.yaml")
    runner = CliRunner(env=env)
    with MailServer() as mail:
        (workdir / "config.yaml").write_text(
            (workdir / "config.yaml").read_text(encoding="utf-8")
            + f"mail: {{mode: smtp, smtp: {{host: 127.0.0.1, port: {mail.port}}}}}\n",
            encoding="utf-8",
        )
        for args in (["import", str(EXAMPLES)], ["run", "--checkpoint", "2025-05"]):
            res = runner.invoke(main, [*args, "--config", cfg])
            assert res.exit_code == 0, res.output
        (digest,) = [m.message for m in mail.messages if m.message["X-Monitor-Unit"] == "302"]
    found = re.search(r"（(http://127\.0\.0\.1:8650/u/[^）]+)）", body_text(digest))
    assert found, "no link in unit 302's warning e-mail"
    assert runner.invoke(main, ["cases", "open", "--checkpoint", "2025-05", "--config", cfg]).exit_code == 0
    res = runner.invoke(main, ["user", "add", "kz", "--config", cfg], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    with serving(create_app(App(load_settings(workdir / "config.yaml", env=env)))) as base:
        yield base, found.group(1).replace("http://127.0.0.1:8650", base)


def test_a_unit_answers_the_bureau_returns_the_unit_answers_again_the_bureau_accepts(
    server: tuple[str, str], workdir: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = DOCS if REFRESH_DOCS else tmp_path
    base, link = server  # the link as the warning e-mail carried it
    expected = (dt.date.today() + dt.timedelta(days=60)).isoformat()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            unit = browser.new_page(viewport={"width": 1100, "height": 900})
            unit.goto(link)
            expect(unit.locator("#projects")).to_contain_text("葡萄酒产业宣传推介")
            expect(unit.locator("#projects")).not_to_contain_text("动物疫病")  # only its own projects
            form = unit.locator("form.answer-form")
            form.locator("select[name=cause]").select_option("经费保障")
            form.locator("textarea[name=explanation]").fill("上级资金下达较晚，宣传活动推迟到6月举办")
            form.locator("select[name=measure]").select_option("continue")
            form.locator("textarea[name=measure_text]").fill("6月在省会举办推介会，8月底前完成支付")
            form.locator("input[name=expected_date]").fill(expected)
            form.get_by_role("button", name="提交反馈").click()
            expect(unit.locator("#thanks")).to_be_visible()
            expect(unit.locator(".state").first).to_have_text("已反馈待审核")
            unit.screenshot(path=str(shots / "unit-page.png"), full_page=True)

            bureau = browser.new_context().new_page()
            bureau.set_viewport_size({"width": 1100, "height": 900})
            bureau.goto(f"{base}/board")
            bureau.fill("#name", "kz")
            bureau.fill("#password", PASSWORD)
            bureau.get_by_role("button", name="登录").click()
            review = bureau.locator("#review")
            expect(review).to_contain_text("上级资金下达较晚")
            bureau.screenshot(path=str(shots / "board.png"), full_page=True)
            review.locator("textarea[name=comment]").fill("请补充资金到位的具体时间")
            review.get_by_role("button", name="退回").click()
            expect(bureau.locator("#review")).to_contain_text("没有待审核的反馈")

            unit.goto(link)
            expect(unit.locator(".review")).to_contain_text("请补充资金到位的具体时间")
            form = unit.locator("form.answer-form")
            form.locator("select[name=cause]").select_option("经费保障")
            form.locator("textarea[name=explanation]").fill("省级资金7月10日到位，推介会已定于7月下旬")
            form.locator("select[name=measure]").select_option("continue")
            form.locator("textarea[name=measure_text]").fill("7月下旬举办推介会，8月底前完成支付")
            form.locator("input[name=expected_date]").fill(expected)
            form.get_by_role("button", name="提交反馈").click()
            expect(unit.locator("#thanks")).to_be_visible()

            bureau.goto(f"{base}/board")
            expect(bureau.locator("#review")).to_contain_text("省级资金7月10日到位")
            bureau.locator("#review").get_by_role("button", name="认可").click()
            expect(bureau.locator("#review")).to_contain_text("没有待审核的反馈")

            unit.goto(link)
            expect(unit.locator(".state").first).to_have_text("已认可")
            expect(unit.locator("form.answer-form")).to_have_count(0)

            # drill-down: from the board's lights to the project's explanation and its case history
            bureau.goto(f"{base}/board")
            bureau.locator("#units").get_by_role("link", name="葡萄酒产业宣传推介").click()
            expect(bureau.locator("#chain")).to_contain_text("project 2025-302-001 葡萄酒产业宣传推介")
            expect(bureau.locator("#reasons")).to_be_visible()
            history = bureau.locator("#history")
            expect(history.locator(".state")).to_have_text("已认可")
            expect(history).to_contain_text("请补充资金到位的具体时间")  # the return, with its comment
            expect(history).to_contain_text("省级资金7月10日到位")  # the second answer
            bureau.screenshot(path=str(tmp_path / "project.png"), full_page=True)

            # August: the unit reports corrected execution (200 of 300 万元 by August: on schedule),
            # the project turns green and the August run marks its May case resolved
            corrected = tmp_path / "august"
            corrected.mkdir()
            (corrected / "project_reports.csv").write_text(
                "checkpoint,project_code,executed,forecast_executed\n2025-08,2025-302-001,200.00,300.00\n",
                encoding="utf-8",
            )
            cfg = str(workdir / "config.yaml")
            runner = CliRunner(env={"MONITOR_WEB_SECRET": SECRET})
            for args in (["import", str(corrected)], ["run", "--checkpoint", "2025-08", "--no-send"]):
                res = runner.invoke(main, [*args, "--config", cfg])
                assert res.exit_code == 0, res.output
            unit.goto(link)
            expect(unit.locator(".state").first).to_have_text("已整改到位")
        finally:
            browser.close()
