"""One list of corrective measures (纠偏措施), defined once (rectification.MEASURES, the domain brief's
words): the warning e-mail, the unit's web form, the answer workbook's dropdown and the bureau board show
the same words, and the workbook filled in with each of them (or an older word still in circulation)
imports."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import re
from pathlib import Path

import openpyxl
from mailserver import body_text
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from starlette.testclient import TestClient
from test_web import ENV, EXAMPLES, PASSWORD, cli, link, login

from monitor.app import App
from monitor.cases import rectification as rc
from monitor.cases.exemptions import local_day
from monitor.config.settings import load_settings
from monitor.web.app import create_app

BRIEF = ["继续实施", "调剂资金", "调减预算并同步调整目标", "取消项目"]  # the domain brief, §5
DUE = local_day(dt.datetime.now(dt.UTC)) + dt.timedelta(days=60)


def mail_words(workdir: Path) -> tuple[list[str], list[str]]:
    """The measures a warning .eml offers, in its text and in its HTML part."""
    eml = sorted((workdir / "outbox").glob("*-warning-302.eml"))[0]
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.strict)
    text = body_text(msg)
    page = body_text(msg, "html")

    def words(body: str) -> list[str]:
        m = re.search(r"纠偏措施：([^，<]+)，并说明具体措施", body)
        assert m, body
        return html.unescape(m.group(1)).split("／")

    return words(text), words(page)


def form_words(client: TestClient, path: str) -> list[str]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    select = re.search(r'<select[^>]*name="measure"[^>]*>(.*?)</select>', page.text, re.S)
    assert select, page.text
    return [html.unescape(w) for w in re.findall(r'<option value="[a-z]+"[^>]*>([^<]+)</option>', select[1])]


def template(workdir: Path, out: Path) -> list[str]:
    """`monitor responses template` for every unit: the words of its measure dropdown."""
    res = cli(workdir, "responses", "template", "--checkpoint", "2025-05", "--out", str(out))
    assert res.exit_code == 0, res.output
    ws = openpyxl.load_workbook(out)["整改反馈"]
    header = [c.value for c in ws[3]]
    letter = get_column_letter(header.index("纠偏措施") + 1)
    (formula,) = [
        d.formula1
        for d in ws.data_validations.dataValidation
        if d.type == "list" and str(d.sqref).startswith(f"{letter}4:")
    ]
    return list(formula.strip('"').split(","))


def answer(ws: Worksheet, row: int, measure: str) -> None:
    """Fill in the answer columns of one row of the template, with `measure` as its 纠偏措施."""
    header = [c.value for c in ws[3]]
    for name, value in (
        ("偏差原因类别", "经费保障"),
        ("原因说明", "上级资金下达较晚，项目启动推迟"),
        ("纠偏措施", measure),
        ("措施说明", "加快招标采购，按期完成支付"),
        ("预计完成时间", DUE.isoformat()),
    ):
        ws.cell(row, header.index(name) + 1, value)


def test_every_channel_shows_the_one_list_of_measures_and_each_word_imports(
    workdir: Path, tmp_path: Path
) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05").exit_code == 0
    text, page = mail_words(workdir)
    client = TestClient(create_app(App(load_settings(workdir / "config.yaml", env=ENV))))
    form = form_words(client, link(workdir, "302"))
    out = tmp_path / "反馈表.xlsx"
    dropdown = template(workdir, out)
    assert text == page == form == dropdown == list(rc.MEASURES.values()) == BRIEF
    # and one name for them (纠偏措施) in the mail, the form and the workbook
    unit_page = client.get(link(workdir, "302")).text
    header = [c.value for c in openpyxl.load_workbook(out)["整改反馈"][3]]
    eml = sorted((workdir / "outbox").glob("*-warning-302.eml"))[0]
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    mail = body_text(parsed)
    assert "纠偏措施" in unit_page and "纠偏措施" in header and "纠偏措施" in mail
    assert "整改措施" not in unit_page + "".join(map(str, header))

    # the template filled in with each word, and one older word a unit may still have in its workbook
    wb = openpyxl.load_workbook(out)
    ws = wb["整改反馈"]
    rows = list(range(4, ws.max_row + 1))
    assert len(rows) == 5  # the five projects of the worked examples are yellow or red in May
    chosen = [*BRIEF, "终止项目"]
    for row, word in zip(rows, chosen, strict=True):
        answer(ws, row, word)
    wb.save(out)
    res = cli(workdir, "import", str(out))
    assert res.exit_code == 0, res.output
    assert "responses 5" in res.output

    # the bureau board lists the answers waiting for review with the measure each chose
    res = cli(workdir, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert res.exit_code == 0, res.output
    assert login(client) == 200
    board = client.get("/board?checkpoint=2025-05").text
    shown = re.findall(r"纠偏措施：([^；<]+)；", board)
    assert sorted(shown, key=BRIEF.index) == [*BRIEF, "取消项目"]


def test_an_unknown_measure_is_refused_naming_the_list(workdir: Path, tmp_path: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05", "--no-send").exit_code == 0
    out = tmp_path / "answers.xlsx"
    template(workdir, out)
    wb = openpyxl.load_workbook(out)
    answer(wb["整改反馈"], 4, "暂缓实施")
    wb.save(out)
    res = cli(workdir, "import", str(out))
    assert res.exit_code == 1
    assert (
        f"{out}[整改反馈]:row 4: measure (纠偏措施): must be one of "
        "继续实施/调剂资金/调减预算并同步调整目标/取消项目"
        "（纠偏措施须为继续实施、调剂资金、调减预算并同步调整目标、取消项目之一） (got '暂缓实施')"
    ) in res.output
