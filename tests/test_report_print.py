"""The reports on paper, through the user's path: `monitor report` on a generated dataset (the sample of a
few hundred projects, plus a score of small departments so that the department chart has more than it
shows), the Excel warning list converted to PDF by LibreOffice, the HTML report printed to A4 by
headless Chromium (Debian's, driven by Playwright), and both PDFs read back page by page with poppler's
pdftotext (tests/system-packages.sh installs LibreOffice, Chromium and poppler-utils)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from test_reports import SHEETS, SVG, cli, key, stored, svgs
from test_web_browser import ARGS, CHROMIUM

from monitor.cli.main import main

EXTRA_DEPARTMENTS = 22  # beside the sample's own: more than the 20 the chart names


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The sample (300 projects) and a folder of small departments, each with one project reported at
    both checkpoints (no indicators: the project light is the budget light)."""
    sample = tmp_path_factory.mktemp("sample")
    res = CliRunner().invoke(
        main, ["sample", "--out", str(sample), "--projects", "300"], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    extra = tmp_path_factory.mktemp("departments")
    units = ["unit_code,unit_name,email,supervisor_code"]
    projects = ["project_code,project_name,unit_code,budget"]
    reports = ["checkpoint,project_code,executed"]
    for n in range(EXTRA_DEPARTMENTS):
        code, project = f"9{n:02d}", f"2025-9{n:02d}-001"
        units.append(f"{code},州第{n + 1}直属管理局,d{code}@example.gov.cn,")
        projects.append(f"{project},第{n + 1}直属管理局运行保障,{code},{100 + n}")
        reports.append(f"2025-05,{project},{10 + n}")
        reports.append(f"2025-08,{project},{20 + 3 * n}")
    for name, lines in (("units", units), ("projects", projects), ("project_reports", reports)):
        (extra / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [sample, extra]


@pytest.fixture
def monitored(workdir: Path, dataset: list[Path]) -> Path:
    """The dataset imported and both checkpoints run (nothing sent)."""
    runs = (["run", "--checkpoint", cp, "--no-send"] for cp in ("2025-05", "2025-08"))
    for args in (["import", *map(str, dataset)], *runs):
        res = cli(workdir, *args)
        assert res.exit_code == 0, res.output
    return workdir


def report(workdir: Path, fmt: str) -> Path:
    out = workdir / "out" / f"2025-08.{fmt}"
    res = cli(workdir, "report", "--checkpoint", "2025-08", "--format", fmt, "--out", str(out))
    assert res.exit_code == 0, res.output
    return out


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is required for this test: run tests/system-packages.sh")
    return found


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page of `pdf` in the order it was drawn (pdftotext -raw: the lines of a wrapped
    cell one after the other), whitespace removed (wrapped lines joined)."""
    cmd = [tool("pdftotext"), "-raw", "-enc", "UTF-8", str(pdf), "-"]
    done = subprocess.run(cmd, capture_output=True, timeout=300, check=True)
    pages = done.stdout.decode("utf-8").split("\f")
    return [re.sub(r"\s+", "", p) for p in pages[:-1]]  # pdftotext ends every page with a form feed


def libreoffice_pdf(xlsx: Path, tmp_path: Path) -> Path:
    profile = f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}"
    out = tmp_path / "pdf"
    cmd = [tool("soffice"), profile, "--headless", "--convert-to", "pdf", "--outdir", str(out), str(xlsx)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return out / f"{xlsx.stem}.pdf"


def assert_prints_on_a4_landscape(ws: Any, header_row: int) -> None:
    """The page setup every sheet the project writes has."""
    setup = ws.page_setup
    assert (setup.orientation, int(setup.paperSize)) == ("landscape", 9), ws.title  # 9: A4
    assert (setup.fitToWidth, setup.fitToHeight, ws.sheet_properties.pageSetUpPr.fitToPage) == (1, 0, True)
    assert ws.print_title_rows == f"${header_row}:${header_row}", ws.title
    assert ws.oddHeader.center.text and "&P" in ws.oddFooter.center.text and "&N" in ws.oddFooter.center.text
    assert any(c.alignment.wrap_text for c in ws[header_row + 1]), f"{ws.title}: no wrapped text"


# --- the Excel warning list ------------------------------------------------------------------------


def test_every_sheet_of_the_warning_list_prints_landscape_one_page_wide_with_header_and_page_numbers(
    monitored: Path,
) -> None:
    wb = openpyxl.load_workbook(report(monitored, "xlsx"))
    assert wb.sheetnames == SHEETS
    for ws in wb:
        assert_prints_on_a4_landscape(ws, 1)
        assert ws.oddHeader.center.text.endswith(f"预算绩效运行监控预警清单（{ws.title}）")


def test_the_answer_workbook_prints_like_the_warning_list(monitored: Path, tmp_path: Path) -> None:
    assert cli(monitored, "cases", "open", "--checkpoint", "2025-08").exit_code == 0
    out = tmp_path / "answers.xlsx"
    res = cli(monitored, "responses", "template", "--checkpoint", "2025-08", "--out", str(out))
    assert res.exit_code == 0, res.output
    (ws,) = openpyxl.load_workbook(out).worksheets
    assert ws.cell(3, 1).value == "监控期"
    assert_prints_on_a4_landscape(ws, 3)


def test_the_excel_warning_list_prints_its_header_and_whole_reasons_on_every_page(
    monitored: Path, tmp_path: Path
) -> None:
    xlsx = report(monitored, "xlsx")
    rows = list(openpyxl.load_workbook(xlsx)["预警清单"].iter_rows(values_only=True))
    header, rows = rows[0], rows[1:]
    pages = pdf_pages(libreoffice_pdf(xlsx, tmp_path))
    by_sheet: dict[str, list[str]] = defaultdict(list)
    for n, page in enumerate(pages, 1):
        title = re.search(r"预算绩效运行监控预警清单（(\w+)）", page)
        assert title, f"page {n} has no title in its header: {page[:80]}"
        by_sheet[title.group(1)].append(page)
        assert f"第{n}页，共{len(pages)}页" in page, f"page {n} has no page number"
    assert list(by_sheet) == SHEETS
    listing = by_sheet["预警清单"]
    # one page wide (it was two pages wide and 849 pages for the demo's 2,450 projects): a page holds
    # a dozen rows or more, however long their reasons
    assert len(listing) <= len(rows) // 12 + 1, f"{len(listing)} pages for {len(rows)} rows"
    for n, page in enumerate(listing, 1):
        assert all(h in page for h in ("单位名称", "项目编码", "项目名称", "预警原因")), f"page {n}"
    code, reasons = header.index("项目编码"), header.index("预警原因")
    for row in rows:
        on = [p for p in listing if row[code] in p]
        assert len(on) == 1, f"{row[code]} on {len(on)} pages"
        assert re.sub(r"\s+", "", row[reasons]) in on[0], f"{row[code]}: reason cut"


# --- the HTML checkpoint report --------------------------------------------------------------------


def print_to_pdf(html: Path, pdf: Path) -> None:
    """Print `html` to an A4 PDF in headless Chromium, as a reader's browser does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            page.pdf(path=str(pdf), format="A4", print_background=True)
        finally:
            browser.close()


def counts(svg: ET.Element, *attrs: str) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for rect in svg.iter(f"{SVG}rect"):
        if "data-count" in rect.attrib:
            out[tuple(rect.attrib[a] for a in attrs)] += int(rect.attrib["data-count"])
    return out


def test_the_html_report_prints_a_two_page_leadership_summary_then_the_lists_with_their_headers(
    monitored: Path, tmp_path: Path
) -> None:
    results = stored(monitored, "2025-08")
    pdf = tmp_path / "report.pdf"
    print_to_pdf(report(monitored, "html"), pdf)
    pages = pdf_pages(pdf)
    end = [n for n, page in enumerate(pages, 1) if "以上为领导摘要" in page]
    assert end and end[0] <= 2, f"the summary ends on page {end} of {len(pages)}"
    summary = "".join(pages[: end[0]])
    for part in (
        "总体情况",
        "各主管部门灯色分布",
        "执行进度分布",
        "灯色变化",
        "红灯项目前",
        "需关注的主管部门",
    ):
        assert part in summary, part
    reds = sorted(
        (r for r in results if r["light"] == "red"), key=lambda r: (-r["budget"], r["project_code"])
    )
    assert reds[0]["project_code"] in summary  # the largest red project is named in the summary
    # the full lists follow on a page of their own, each page of a table under its header row
    appendix = end[0] + 1
    assert "附件一" in pages[appendix - 1] and "附件一" not in "".join(pages[: appendix - 1])
    codes = {r["project_code"] for r in results}
    for n, page in enumerate(pages[appendix - 1 :], appendix):
        if any(code in page for code in codes):
            assert "预算（万元）" in page, f"page {n} lists projects without the table's header row"
    # the red list (附件一) takes pages: its header repeats; no row is cut across two pages
    second = next(n for n, p in enumerate(pages, 1) if n >= appendix and "附件二" in p)
    red_pages = pages[appendix - 1 : second]
    assert len(red_pages) > 1
    for r in reds:
        (on,) = [p for p in red_pages if r["project_code"] in p]
        assert re.sub(r"\s+", "", "；".join(r["reasons"])) in on, r["project_code"]


def test_the_html_report_charts_show_every_department_persistent_red_and_the_ratio_that_decides(
    monitored: Path,
) -> None:
    results, before = stored(monitored, "2025-08"), stored(monitored, "2025-05")
    found = svgs(report(monitored, "html").read_text(encoding="utf-8"))
    # more than 20 departments: the chart names the first 20 and sums the rest as 其他
    departments = found["chart-departments"]
    assert counts(departments, "data-light") == Counter((key(r["light"]),) for r in results)
    labels = [t.text or "" for t in departments.iter(f"{SVG}text")]
    assert any(label.startswith("其他") for label in labels), labels
    # one scale for the named departments: 其他, larger than any of them, does not shrink their bars
    widths: Counter[str] = Counter()
    for rect in departments.iter(f"{SVG}rect"):
        if "data-dept" in rect.attrib:
            widths[rect.attrib["data-dept"]] += round(float(rect.attrib["width"]))
    assert max(w for d, w in widths.items() if d) >= widths[""] - 4
    # persistent red (red → red) stands out from the other unchanged cells
    cells = {
        (c.attrib["data-from"], c.attrib["data-to"]): c.attrib
        for c in found["chart-transitions"].iter(f"{SVG}rect")
        if "data-from" in c.attrib
    }
    assert cells[("red", "red")]["data-kind"] == "persistent_red"
    assert {cells[(k, k)]["data-kind"] for k in ("yellow", "green")} == {"unchanged"}
    assert cells[("red", "red")]["fill"] not in {cells[(k, k)]["fill"] for k in ("yellow", "green")}
    was = {b["project_code"]: key(b["light"]) for b in before}
    still_red = sum(1 for r in results if was.get(r["project_code"]) == key(r["light"]) == "red")
    assert int(cells[("red", "red")]["data-count"]) == still_red > 0
    # the execution histogram plots r = execution rate / the project's own time progress (seasonal
    # profiles included), the ratio the budget light is decided on, with the rule's thresholds
    histogram = found["chart-histogram"]
    texts = " ".join(t.text or "" for t in histogram.iter(f"{SVG}text"))
    assert "预算执行率 ÷ 本项目序时进度" in texts
    expected: Counter[tuple[str, ...]] = Counter()
    for r in results:
        if r["execution_rate"] is None or not r["time_progress"]:
            continue
        low = min(int(r["execution_rate"] / r["time_progress"] * 10 + 1e-9), 15) * 10
        label = f"≥{low}%" if low == 150 else f"{low}–{low + 10}%"
        expected[(label, key(r["budget_light"]))] += 1
    assert counts(histogram, "data-bin", "data-light") == expected
    lines = {el.attrib.get("data-threshold") for el in histogram.iter(f"{SVG}line")}
    assert {"0.60", "0.80"} <= lines
