"""Screenshots of the web part for docs/: unit 108001 (州水务局) opens the link of its August warning
e-mail and answers its red project; then the bureau logs in and sees the answer on the board.
Usage: python web_shots.py BASE_URL LINK PASSWORD OUT_DIR (needs `monitor web` serving BASE_URL)."""

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

base, link, password, out = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
    unit = browser.new_page(viewport={"width": 1100, "height": 900})
    unit.goto(link)
    case = unit.locator("section.case").filter(has_text="2025年1-8月").filter(has_text="河湖长制工作经费（三期）")
    form = case.locator("form.answer-form")
    form.locator("select[name=cause]").select_option("经费保障")
    form.locator("textarea[name=explanation]").fill("河湖巡查和水质监测服务合同8月才签订，款项按季度结算")
    form.locator("select[name=measure]").select_option("continue")
    form.locator("textarea[name=measure_text]").fill("9月底前支付第三季度巡查服务费，11月底前完成全年结算")
    form.locator("input[name=expected_date]").fill("2025-11-30")
    form.get_by_role("button", name="提交反馈").click()
    expect(unit.locator("#thanks")).to_be_visible()
    unit.evaluate("window.scrollTo(0, 0)")  # the top: the thanks, the unit's lights and reasons
    unit.screenshot(path=str(out / "unit-page.png"))

    bureau = browser.new_context(viewport={"width": 1100, "height": 1200}).new_page()
    bureau.goto(f"{base}/board")
    bureau.fill("#name", "kz")
    bureau.fill("#password", password)
    bureau.get_by_role("button", name="登录").click()
    expect(bureau.locator("#review")).to_contain_text("河湖巡查和水质监测服务合同")
    bureau.screenshot(path=str(out / "board.png"))  # the top of the board
    browser.close()
