"""Reports from sample data through the CLI: the Excel warning list (read back with openpyxl and round-
tripped through LibreOffice), the HTML checkpoint report (its SVG charts parsed and counted), trends and
results application (pure functions, with their boundaries)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import ResultsApplicationConfig, load_settings
from monitor.config.yamlfile import Invalid
from monitor.core.model import FEN_PER_WAN, Checkpoint
from monitor.core.rows import ProjectLight, StoredResult
from monitor.core.wording import COLOUR, WORD
from monitor.notify.views import trend_counts
from monitor.reports import application as ra
from monitor.reports import trend
from monitor.reports.data import Row
from monitor.reports.write import write_reports

SVG = "{http://www.w3.org/2000/svg}"
SHEETS = ["预警清单", "红灯", "黄灯", "未报送", "部门汇总", "指标明细", "结果应用"]


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    res = CliRunner().invoke(main, ["sample", "--out", str(out), "--projects", "300"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def monitored(workdir: Path, sample_dir: Path) -> Path:
    """The sample imported and both checkpoints run (nothing sent)."""
    assert cli(workdir, "import", str(sample_dir)).exit_code == 0
    for cp in ("2025-05", "2025-08"):
        res = cli(workdir, "run", "--checkpoint", cp, "--no-send")
        assert res.exit_code == 0, res.output
    return workdir


def stored(workdir: Path, cp: str) -> list[StoredResult]:
    return App(load_settings(workdir / "config.yaml")).results(Checkpoint.parse(cp))


def report(workdir: Path, cp: str, fmt: str) -> Path:
    out = workdir / "out" / f"{cp}.{fmt}"
    res = cli(workdir, "report", "--checkpoint", cp, "--format", fmt, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(out)
    return out


def fen(value: Any) -> int:
    """A 万元 cell back to fen (the cell holds the exact decimal; floats come back within a fen)."""
    return round(Decimal(str(value)) * FEN_PER_WAN)


def table(ws: Any) -> list[dict[str, Any]]:
    rows = list(ws.iter_rows(values_only=True))
    header = rows[0]
    return [dict(zip(header, r, strict=True)) for r in rows[1:] if any(v is not None for v in r)]


def key(light: str | None) -> str:
    return "not_reported" if light is None else ("green" if light == "blue" else light)


# --- the Excel warning list -------------------------------------------------------------------------


def test_excel_warning_list_matches_the_stored_results_and_its_sums_add_up(monitored: Path) -> None:
    results = {r["project_code"]: r for r in stored(monitored, "2025-08")}
    wb = openpyxl.load_workbook(report(monitored, "2025-08", "xlsx"))
    assert wb.sheetnames == SHEETS
    ws = wb["预警清单"]
    rows = table(ws)
    assert len(rows) == len(results) == 300
    for row in rows:
        r = results[row["项目编码"]]
        assert fen(row["预算（万元）"]) == r["budget"]
        if r["executed"] is None:
            assert row["执行数（万元）"] is None and row["预算执行率"] is None
        else:
            assert fen(row["执行数（万元）"]) == r["executed"]
            # shown truncated to 0.1 % so a rate just under a threshold never reads as the threshold
            assert Decimal(str(row["预算执行率"])) == Decimal(r["executed"] * 1000 // r["budget"]) / 1000
        assert row["项目灯"] == WORD[r["light"]]
        assert row["预算执行灯"] == WORD[r["budget_light"]]
        assert row["上期项目灯"] is not None  # every sample project was there in May
    # light cells carry the word and the light's colour; header frozen and filtered; numbers formatted
    header = [c.value for c in ws[1]]
    for cell in ws[2]:
        if header[cell.column - 1] in ("预算执行灯", "项目灯"):
            light = next(k for k, w in WORD.items() if w == cell.value)
            assert cell.fill.fgColor.rgb == "FF" + COLOUR[light][1].lstrip("#").upper()
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == "A1:P301"
    assert ws["F2"].number_format == "#,##0.00" and ws["H2"].number_format == "0.0%"
    widths = {c.value: ws.column_dimensions[c.column_letter].width for c in ws[1]}
    longest_unit = max(len(r["单位名称"]) for r in rows)
    # CJK characters count as two; a longer name wraps in its column (and the row grows to show it)
    assert widths["单位名称"] >= min(2 * longest_unit, 18) and ws["B2"].alignment.wrap_text
    # the light sheets hold exactly the projects of that light
    count = Counter(key(r["light"]) for r in results.values())
    for sheet, light in (("红灯", "red"), ("黄灯", "yellow"), ("未报送", "not_reported")):
        codes = {r["项目编码"] for r in table(wb[sheet])}
        assert codes == {c for c, r in results.items() if key(r["light"]) == light}
        assert len(codes) == count[light]
    # the department summary: its rows add up to the total row, which matches the stored results
    depts = table(wb["部门汇总"])
    total = next(d for d in depts if d["主管部门"] == "合计")
    depts.remove(total)
    assert total["项目数"] == sum(d["项目数"] for d in depts) == 300
    assert fen(total["预算（万元）"]) == sum(r["budget"] for r in results.values())
    for k, word in (("red", "红灯"), ("yellow", "黄灯"), ("green", "绿灯"), ("not_reported", "未报送")):
        assert total[f"{word}数"] == sum(d[f"{word}数"] for d in depts) == count[k]
        amount = sum(r["budget"] for r in results.values() if key(r["light"]) == k)
        assert fen(total[f"{word}金额（万元）"]) == amount
        assert abs(sum(fen(d[f"{word}金额（万元）"]) for d in depts) - amount) <= len(depts)


def test_indicator_detail_lists_every_yellow_and_red_indicator_with_the_units_answer(monitored: Path) -> None:
    results = stored(monitored, "2025-08")
    wb = openpyxl.load_workbook(report(monitored, "2025-08", "xlsx"))
    detail = table(wb["指标明细"])
    expected = Counter(
        (r["project_code"], i["indicator_code"], WORD[i["light"]])
        for r in results
        for i in r["indicators"]
        if i["light"] in ("yellow", "red")
    )
    assert Counter((d["项目编码"], d["指标编码"], d["指标灯"]) for d in detail) == expected
    assert any(d["完成目标可能性"] == "完全不可能" for d in detail)
    assert all(d["判定说明"] for d in detail)


def test_results_application_lists_reduction_candidates_and_key_monitoring_with_the_amount_at_stake(
    monitored: Path,
) -> None:
    results = stored(monitored, "2025-08")
    wb = openpyxl.load_workbook(report(monitored, "2025-08", "xlsx"))
    rows = table(wb["结果应用"])
    listed = [r for r in rows if r["项目编码"]]
    key_codes = {r["项目编码"] for r in listed if r["清单"] == "财政重点监控"}
    # 财政重点监控: budget ≥ 200 万元 and under 60 % executed at the end of August (exact)
    big = [(r, x) for r in results if (x := r["executed"]) is not None and r["budget"] >= 200 * FEN_PER_WAN]
    assert key_codes == {r["project_code"] for r, executed in big if executed * 10 < 6 * r["budget"]}
    assert key_codes
    by_code = {r["project_code"]: r for r in results}
    reduction = [r for r in listed if r["清单"] == "压减或收回候选"]
    assert reduction
    for r in reduction:
        s = by_code[r["项目编码"]]
        assert fen(r["涉及金额（预算−执行数，万元）"]) == s["budget"] - (s["executed"] or 0)
        assert r["依据"]
        low = s["light"] == "red" and s["executed"] is not None and s["executed"] * 10 < 3 * s["budget"]
        assert low or "均为红灯" in r["依据"] or "完全不可能" in r["依据"]
    # the candidates are exactly the red projects under 30 % (plus persistent red, plus 完全不可能)
    assert {
        r["project_code"]
        for r in results
        if r["light"] == "red" and r["executed"] is not None and r["executed"] * 10 < 3 * r["budget"]
    } <= {r["项目编码"] for r in reduction}
    notes = [r["清单"] for r in rows if r["清单"] and "涉及金额" in r["清单"]]
    total = sum(fen(r["涉及金额（预算−执行数，万元）"]) for r in reduction)
    amount = f"{Decimal(total) / FEN_PER_WAN:,.2f}万元"
    assert notes[0] == f"压减或收回候选：{len(reduction)} 个项目，涉及金额 {amount}"


def test_excel_warning_list_round_trips_through_libreoffice(monitored: Path, tmp_path: Path) -> None:
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.fail("LibreOffice is required for this test: apt-get install libreoffice-calc")
    original = report(monitored, "2025-08", "xlsx")
    profile = f"-env:UserInstallation={(tmp_path / 'lo-profile').as_uri()}"

    def convert(target: str, out: Path) -> None:
        cmd = [soffice, profile, "--headless", "--convert-to", target, "--outdir", str(out), str(original)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr

    convert("xlsx", tmp_path / "xlsx")
    again = openpyxl.load_workbook(tmp_path / "xlsx" / original.name)
    first = openpyxl.load_workbook(original)
    assert again.sheetnames == SHEETS
    for name in SHEETS:
        a = [list(r) for r in first[name].iter_rows(values_only=True)]
        b = [list(r) for r in again[name].iter_rows(values_only=True)]
        b = [r + [None] * (len(a[0]) - len(r)) for r in b]
        assert len([r for r in b if any(v is not None for v in r)]) == len([r for r in a if any(r)]), name
        for ra_, rb in zip(a, b, strict=False):
            for x, y in zip(ra_, rb, strict=False):
                if isinstance(x, int | float | Decimal) and not isinstance(x, bool):
                    assert y == pytest.approx(float(x), abs=1e-9), name
                else:
                    assert (x or None) == (y or None), name
    cell = again["红灯"]["L2"]
    assert cell.value == "红" and cell.fill.fgColor.rgb.endswith(COLOUR["red"][1].lstrip("#").upper())
    # every sheet as CSV, "as shown": the number formats (万元 #,##0.00, % 0.0%) survive
    convert("csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1", tmp_path / "csv")
    with (tmp_path / "csv" / f"{original.stem}-预警清单.csv").open(encoding="utf-8") as f:
        shown = list(csv.DictReader(f))
    results = {r["project_code"]: r for r in stored(monitored, "2025-08")}
    assert len(shown) == 300
    for row in shown:
        r = results[row["项目编码"]]
        assert row["预算（万元）"] == f"{Decimal(r['budget']) / FEN_PER_WAN:,.2f}"
        assert re.fullmatch(r"\d+\.\d%", row["序时进度"])
        assert row["项目灯"] == WORD[r["light"]]
    with (tmp_path / "csv" / f"{original.stem}-部门汇总.csv").open(encoding="utf-8") as f:
        total = next(r for r in csv.DictReader(f) if r["主管部门"] == "合计")
    assert total["项目数"] == "300"


# --- the HTML checkpoint report ---------------------------------------------------------------------


def svgs(html: str) -> dict[str, ET.Element]:
    """Each chart by its container id, parsed as XML (so it is well-formed)."""
    found = re.findall(r'<div class="chart" id="([^"]+)">(<svg.*?</svg>)</div>', html, re.S)
    return {name: ET.fromstring(svg) for name, svg in found}


def rect_counts(svg: ET.Element, attr: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for rect in svg.iter(f"{SVG}rect"):
        if "data-count" in rect.attrib:
            out[rect.attrib[attr]] += int(rect.attrib["data-count"])
    return out


def test_html_report_shows_the_headline_figures_and_svg_charts_with_chinese_labels(monitored: Path) -> None:
    may, aug = stored(monitored, "2025-05"), stored(monitored, "2025-08")
    html = report(monitored, "2025-08", "html").read_text(encoding="utf-8")
    count = Counter(key(r["light"]) for r in aug)
    budget = sum(r["budget"] for r in aug)
    assert f"纳入监控项目 {len(aug)} 个，涉及资金 " in html
    assert f"{Decimal(budget) / FEN_PER_WAN:,.2f}万元" in html
    assert f"红灯项目 {count['red']} 个" in html and f"未报送项目 {count['not_reported']} 个" in html
    before = Counter(key(r["light"]) for r in may)
    assert f"（{before['red']} → {count['red']}）" in html or f"红灯持平（{count['red']} 个）" in html
    charts = svgs(html)
    assert set(charts) == {"chart-departments", "chart-histogram", "chart-transitions"}
    # lights by department: the stacked segments add up to the stored counts, labels in Chinese
    assert rect_counts(charts["chart-departments"], "data-light") == +count
    texts = {t.text for svg in charts.values() for t in svg.iter(f"{SVG}text")}
    assert {"州教育局", "红灯", "黄灯", "绿灯", "未报送", "合计"} <= texts
    assert "与序时进度持平" in texts and "序时进度 66.7%" in html
    assert all("Noto Sans CJK SC" in svg.attrib["font-family"] for svg in charts.values())
    # the histogram counts every reported project with a time progress once, by its budget light
    measured = [r for r in aug if r["execution_rate"] is not None and r["time_progress"]]
    reported = Counter(key(r["budget_light"]) for r in measured)
    assert rect_counts(charts["chart-histogram"], "data-light") == +reported
    # the transition matrix is May light × August light
    cells = {
        (r.attrib["data-from"], r.attrib["data-to"]): int(r.attrib["data-count"])
        for r in charts["chart-transitions"].iter(f"{SVG}rect")
        if "data-from" in r.attrib
    }
    may_light = {r["project_code"]: key(r["light"]) for r in may}
    assert Counter({k: v for k, v in cells.items() if v}) == Counter(
        (may_light[r["project_code"]], key(r["light"])) for r in aug
    )
    # the red list and the department ranking; self-contained (no script, nothing fetched)
    assert html.count('<tr data-code="') >= count["red"] + count["not_reported"]
    assert f"红灯项目（{count['red']} 个" in html
    assert "<script" not in html and not re.search(r"(src|href)=\"?(https?:)?//", html)


def test_may_report_has_no_comparison_and_no_results_application(monitored: Path) -> None:
    html = report(monitored, "2025-05", "html").read_text(encoding="utf-8")
    assert "chart-transitions" not in html and "暂无上期结果可比" in html
    assert "结果应用清单不在本监控期生成" in html
    wb = openpyxl.load_workbook(report(monitored, "2025-05", "xlsx"))
    assert all(r["上期项目灯"] is None for r in table(wb["预警清单"]))
    assert "本期不适用" in str(wb["结果应用"]["A3"].value)


def test_report_writes_to_the_reports_folder_by_default_and_write_reports_writes_both(
    monitored: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = cli(monitored, "report", "--checkpoint", "2025-08", "--format", "html")
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(Path("reports") / "监控报告-2025-08.html")
    assert (tmp_path / "reports" / "监控报告-2025-08.html").is_file()
    app = App(load_settings(monitored / "config.yaml"))
    paths = write_reports(app, "2025-08", tmp_path / "both")
    assert [p.name for p in paths] == ["预警清单-2025-08.xlsx", "监控报告-2025-08.html"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    res = cli(monitored, "report", "--checkpoint", "2025-10", "--format", "xlsx")
    assert res.exit_code == 1 and "monitor run --checkpoint 2025-10" in res.output


# --- trends and results application, pure ------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        ("red", "green", "improved"),
        ("red", "yellow", "improved"),
        ("yellow", "red", "worsened"),
        ("green", "yellow", "worsened"),
        ("red", "red", "persistent_red"),
        ("yellow", "yellow", "persistent_yellow"),
        ("blue", "green", "persistent_green"),
        (None, "red", None),
        ("red", None, None),
    ],
)
def test_project_change_between_checkpoints(
    before: str | None, after: str | None, change: str | None
) -> None:
    assert trend.project_change(before, after) == change


def test_unit_trends_add_up_to_the_bureau_trend() -> None:
    lights = ["red", "yellow", "green", None]
    results: list[ProjectLight] = [
        {"project_code": f"P{i}", "unit_code": f"U{i % 3}", "light": lights[i % 4]} for i in range(24)
    ]
    previous = {f"P{i}": lights[(i // 4) % 4] for i in range(24)}
    units = trend.unit_trends(results, previous)
    bureau = trend.bureau_trend(results, previous)
    assert bureau == trend_counts(results, previous)
    assert {k: sum(u[k] for u in units.values()) for k in bureau} == bureau
    changes = Counter(trend.project_change(previous[f"P{i}"], r["light"]) for i, r in enumerate(results))
    assert changes["improved"] == bureau["improved"] and changes["persistent_red"] == bureau["still_red"]
    matrix = trend.transitions(results, previous)
    assert sum(matrix.values()) == 24 and len(matrix) == 16


def test_monthly_execution_needed_spreads_what_is_left_over_the_remaining_months() -> None:
    wan = FEN_PER_WAN
    assert trend.monthly_needed(300 * wan, 150 * wan, 8) == 37 * wan + wan // 2  # 150 万 over 4 months
    assert trend.monthly_needed(380 * wan, 0, 5) == -(-380 * wan // 7)  # rounded up to the fen
    assert trend.monthly_needed(100 * wan, 120 * wan, 8) == 0
    assert trend.monthly_needed(100 * wan, None, 8) is None
    assert trend.monthly_needed(100 * wan, 10 * wan, 12) is None


def row(code: str, budget_wan: str, executed_wan: str | None, light: str, previous: str | None = None) -> Row:
    budget = int(Decimal(budget_wan) * FEN_PER_WAN)
    executed = None if executed_wan is None else int(Decimal(executed_wan) * FEN_PER_WAN)
    return Row(
        code, code, "U1", "单位", "D1", "部门", "reported", budget, executed, None, 2 / 3,
        light, None, light, (), (), previous is not None, previous,
    )  # fmt: skip


def test_key_monitoring_boundary_is_exact() -> None:
    criteria = ResultsApplicationConfig()
    rows = [
        row("at-60", "200", "120", "yellow"),  # exactly 60 %: not under it
        row("under-60", "200", "119.999999", "yellow"),
        row("small", "199.999999", "10", "red"),  # under 200 万元
        row("not-reported", "500", None, "red"),
    ]
    listed = ra.key_monitoring(rows, criteria)
    assert [c.row.project_code for c in listed] == ["under-60"]
    assert listed[0].at_stake == 80 * FEN_PER_WAN + 1
    assert listed[0].grounds == ("预算200.00万元，不低于200万元；预算执行率59.9%，低于60%",)


def test_reduction_candidates_are_red_and_slow_persistently_red_or_declared_impossible() -> None:
    criteria = ResultsApplicationConfig()
    rows = [
        row("slow", "100", "29.99", "red"),
        row("at-30", "100", "30", "red"),  # exactly 30 %: not under it
        row("persistent", "100", "35", "red", previous="red"),
        row("impossible", "100", "90", "green"),
        row("yellow-slow", "100", "10", "yellow"),
    ]
    declared = {"impossible": [("群体免疫密度", "完全不可能")], "slow": [("x", "有可能")]}
    found = {c.row.project_code: c for c in ra.reduction_candidates(rows, criteria, declared, "2025年1-5月")}
    assert set(found) == {"slow", "persistent", "impossible"}
    assert found["slow"].grounds == ("红灯且预算执行率29.9%，低于30%",)
    assert found["persistent"].grounds == ("2025年1-5月及本期均为红灯",)
    assert found["impossible"].at_stake == 10 * FEN_PER_WAN
    off = criteria.model_copy(update={"reduction_persistent_red": False, "reduction_possibilities": ()})
    only = ra.reduction_candidates(rows, off, declared, "2025年1-5月")
    assert [c.row.project_code for c in only] == ["slow"]


def test_results_application_criteria_come_from_config_with_defaults(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("database:\n  path: m.db\n", encoding="utf-8")
    assert load_settings(config).results_application == ResultsApplicationConfig()
    config.write_text(
        "results_application:\n  key_budget_min: 500\n  key_rate_below: 0.5\n  months: [5, 8]\n",
        encoding="utf-8",
    )
    cfg = load_settings(config).results_application
    assert (cfg.key_budget_min, cfg.key_rate_below, cfg.months) == (Decimal(500), Decimal("0.5"), (5, 8))
    config.write_text("results_application:\n  key_rate: 0.5\n", encoding="utf-8")
    with pytest.raises(Invalid) as exc:
        load_settings(config)
    assert "config.yaml:2" in str(exc.value.problems[0])


def test_readme_documents_every_results_application_key_with_its_default() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Reports\n", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `results_application\.(\w+)` \| `([^`]*)` \|", section, re.M))
    defaults = ResultsApplicationConfig()
    assert set(documented) == set(ResultsApplicationConfig.model_fields)
    for name, text in documented.items():
        value = getattr(defaults, name)
        if isinstance(value, tuple):
            assert text == "[" + ", ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            assert text == str(value).lower()
        else:
            assert Decimal(text) == value
