"""What a reader with low vision or a screen reader meets, in every HTML the product shows: each mail
HTML a checkpoint run writes (and the HTML report it attaches to the bureau summary), and every web
page (login, board, project, outbox, exemptions, the unit's answer page, a bad link's message),
reached by crawling the board's links in a real headless Chromium.

- Contrast (WCAG 2.x, 1.4.3; axe-core's color-contrast rule): every visible text against its
  effective background, both from the browser's computed styles, at least 4.5:1, or 3:1 for large
  text (24px, or 18.66px bold). The ratio is WCAG's formula, computed here.
- Tables and forms (html-validate's wcag/h63 and no-implicit-input-type): every <th> has a valid
  `scope`, every <input> a `type`; checked on the HTML as served, with Python's HTML parser.

axe-core itself is an npm package and the tests get none (tests/system-packages.sh installs Debian
packages, pyproject.toml the Python ones): these are its two rules that found problems, written out.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from click.testing import CliRunner
from test_web_browser import ARGS, CHROMIUM
from webserver import serving

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.web.app import create_app

EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
SECRET = "accessibility-test-secret-8Hj3Kl5Zx7Cv9Bn2Mq4W"
PASSWORD = "correct horse battery"
SCOPES = {"row", "col", "rowgroup", "colgroup"}

# Every element with text of its own, visible: its colour, the background layers behind it (innermost
# first, down to the first opaque one), its font size and weight.
TEXTS_JS = """() => {
  const rgba = s => {
    const m = s.match(/rgba?\\(([^)]*)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, select, script, style, noscript, template, [aria-hidden="true"]')) continue;
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3);
    const text = own.map(n => n.textContent).join('').trim();
    if (!text || el.disabled) continue;
    const st = getComputedStyle(el), box = el.getBoundingClientRect();
    if (st.visibility !== 'visible' || box.width === 0 || box.height === 0) continue;
    const layers = [];
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0 && (layers.length === 0 || layers[layers.length - 1][3] < 1)) layers.push(c);
      opacity *= Number(getComputedStyle(e).opacity);
    }
    out.push({text: text.slice(0, 30), tag: el.tagName.toLowerCase(), cls: String(el.className || ''),
              fg: rgba(st.color), layers, opacity, size: parseFloat(st.fontSize),
              weight: Number(st.fontWeight) || 400});
  }
  return out;
}"""


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (0-255 channels)."""

    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: tuple[float, float, float], bg: tuple[float, float, float]) -> float:
    """WCAG 2.x contrast ratio, (L1 + 0.05) / (L2 + 0.05), L1 the lighter."""
    hi, lo = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def over(top: list[float], below: tuple[float, float, float]) -> tuple[float, float, float]:
    """`top` (r, g, b, alpha) composited over the opaque colour `below`."""
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a))


def contrast_problems(doc: str, texts: list[dict[str, Any]]) -> list[str]:
    problems = []
    for t in texts:
        bg: tuple[float, float, float] = (255, 255, 255)  # the canvas
        for layer in reversed(t["layers"]):
            bg = over(layer, bg)
        fg = over([*t["fg"][:3], t["fg"][3] * t["opacity"]], bg)
        large = t["size"] >= 24 or (t["size"] >= 18.66 and t["weight"] >= 700)
        need = 3.0 if large else 4.5
        ratio = contrast(fg, bg)
        if ratio < need:
            colour = "#{:02x}{:02x}{:02x} on #{:02x}{:02x}{:02x}".format(*map(round, fg), *map(round, bg))
            problems.append(
                f"{doc}: <{t['tag']} class={t['cls']!r}> {t['text']!r}: {colour} = {ratio:.2f}:1 < {need}:1"
            )
    return problems


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        line = self.getpos()[0]
        if tag == "th" and (a.get("scope") or "").lower() not in SCOPES:
            self.problems.append(f"line {line}: <th> without a valid scope ({a.get('scope')!r})")
        if tag == "input" and not a.get("type"):
            self.problems.append(f"line {line}: <input name={a.get('name')!r}> without a type")


def structure_problems(doc: str, html: str) -> list[str]:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return [f"{doc}: {p}" for p in parser.problems]


@pytest.fixture
def site(workdir: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The worked examples run for 2025-05 in mail mode file (the summary carrying the HTML report),
    cases opened, a bureau user, the web pages on a free port: the base URL and every HTML the run
    wrote into its .eml files (name, html)."""
    env = {"MONITOR_WEB_SECRET": SECRET}
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"mail: {{mode: file, file_dir: {workdir / 'outbox'}, summary_attachments: [xlsx, html]}}\n",
        encoding="utf-8",
    )
    runner = CliRunner(env=env)
    for args in (
        ["import", str(EXAMPLES)],
        ["run", "--checkpoint", "2025-05"],
        ["cases", "open", "--checkpoint", "2025-05"],
    ):
        res = runner.invoke(main, [*args, "--config", str(cfg)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["user", "add", "kz", "--config", str(cfg)], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    mails = []
    for f in sorted((workdir / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        for part in msg.walk():
            if part.get_content_type() == "text/html" or (part.get_filename() or "").endswith(".html"):
                html = part.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
                mails.append((f"{f.name} ({part.get_filename() or 'body'})", html))
    assert len(mails) == 6  # five bodies and the attached report
    with serving(create_app(App(load_settings(cfg, env=env)))) as base:
        yield base, mails


def unit_links(mails: list[tuple[str, str]], base: str) -> list[str]:
    links = {m for _, html in mails for m in re.findall(r'href="(http://[^"]+/u/[^"]+)"', html)}
    return sorted(urljoin(base, urlsplit(link).path) for link in links)


def test_every_mail_web_page_and_report_has_enough_contrast_labelled_headers_and_typed_inputs(
    site: tuple[str, list[tuple[str, str]]],
) -> None:
    from playwright.sync_api import Page, sync_playwright

    base, mails = site
    problems: list[str] = []
    seen: list[str] = []

    def check_page(page: Page, name: str, source: str) -> None:
        seen.append(name)
        problems.extend(structure_problems(name, source))
        problems.extend(contrast_problems(name, page.evaluate(TEXTS_JS)))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            for name, html in mails:
                page.set_content(html, wait_until="load")
                check_page(page, name, html)
            # pages anyone can reach: the login page, a unit's page from its e-mail, a bad link
            response = page.goto(f"{base}/login")
            assert response is not None
            check_page(page, "/login", response.text())
            links = unit_links(mails, base)
            assert len(links) == 4, links  # one per warned unit
            reporting = [
                link.replace("/u/", "/r/") for link in links
            ]  # the same token opens its reporting page
            for link in [*links, *reporting, f"{base}/u/not-a-valid-token"]:
                response = page.goto(link)
                assert response is not None
                check_page(page, urlsplit(link).path[:24], response.text())
            # the bureau's pages: log in, then every page the board links to, and theirs
            page.goto(f"{base}/board")  # to the login page, and back after it
            page.fill("#name", "kz")
            page.fill("#password", PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_url(re.compile(r".*/board"))
            queue, visited = [f"{base}/board"], set[str]()
            while queue and len(visited) < 60:
                url = queue.pop(0)
                if url in visited:
                    continue
                visited.add(url)
                fetched = page.request.get(url)  # downloads (the Excel list) are not pages
                assert fetched.ok, url
                if not fetched.headers.get("content-type", "").startswith("text/html"):
                    continue
                response = page.goto(url)
                assert response is not None and response.ok, url
                check_page(page, url.removeprefix(base), response.text())
                for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
                    target = urljoin(url, href).split("#")[0]
                    if target.startswith(f"{base}/board") and target not in visited:
                        queue.append(target)
        finally:
            browser.close()
    crawled = " ".join(seen)
    for path in (
        "/board/project",
        "/board/outbox",
        "/board/exemptions",
        "/board/reports/2025-05/html",
        "/u/",
    ):
        assert path in crawled, f"{path} not reached: {seen}"
    assert problems == [], "\n".join(problems)
