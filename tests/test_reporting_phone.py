"""The reporting page on a phone screen (issue 20: "usable on a phone screen"), in a real headless
Chromium at 375×740 CSS pixels: nothing wider than the screen (no sideways scrolling), every input and
button inside the screen's width and tall enough to touch, and a unit can fill in, watch the light and
submit there. With MONITOR_SCREENSHOTS=1 its screenshot is written to docs/reporting-phone.png."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mailserver import MailServer
from test_reporting_browser import DOCS, P1, P2, reporting  # noqa: F401 (fixture)
from test_web_browser import ARGS, CHROMIUM

from monitor.app import App

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

PHONE: ViewportSize = {"width": 375, "height": 740}


def test_a_unit_reports_from_a_phone(reporting: tuple[App, MailServer, str], tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    _, _, link = reporting
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
            page.goto(link)
            overflow = page.evaluate("document.documentElement.scrollWidth") - PHONE["width"]
            assert overflow <= 0, f"the page is {overflow}px wider than a phone's screen"
            # every control inside the screen's width; tall enough to touch (a check box: its label)
            controls = (
                "input:not([type=hidden]):not([type=checkbox]), button, select, textarea, label:has(input)"
            )
            found = page.locator(controls)
            boxes = [b for b in (found.nth(i).bounding_box() for i in range(found.count())) if b]
            assert len(boxes) > 10
            outside = [b for b in boxes if b["x"] < 0 or b["x"] + b["width"] > PHONE["width"] + 0.5]
            assert outside == [], f"{len(outside)} controls reach outside the screen: {outside[:3]}"
            small = [b for b in boxes if b["height"] < 32]
            assert small == [], f"{len(small)} controls too small to touch: {small[:3]}"

            first, second = page.locator(f"#p-{P1}"), page.locator(f"#p-{P2}")
            first.locator("input[aria-label='1-8月执行数']").fill("10")
            expect(first.locator(".prospect")).to_have_attribute("data-light", "red")
            second.locator("input[aria-label='1-8月执行数']").fill("39.99")
            shots = DOCS if os.environ.get("MONITOR_SCREENSHOTS") == "1" else tmp_path
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shots / "reporting-phone.png"))
            page.get_by_role("button", name="送审").click()
            expect(page.locator("#submitted")).to_be_visible()
        finally:
            browser.close()
