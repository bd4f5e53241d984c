"""Follow-up of unanswered warnings: the reminder (催办) the working day after the response deadline and
the escalation (督办) to the supervising department and the bureau five working days later, decided
purely, dated on the duty calendar from the day the cases were opened, carried out by the real service
on a fixed clock, delivered to a real SMTP server, recorded in case_event, and never twice."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from mailserver import MailServer, body_text
from sqlalchemy import select

from monitor.cases.deadlines import FollowUp, FollowUpRule
from monitor.cases.rectification import Answer
from monitor.cli.main import main
from monitor.config.settings import ScheduleConfig, load_settings
from monitor.core.model import Checkpoint, Unit
from monitor.core.workdays import as_utc
from monitor.db.engine import SCHEDULED_EVENT, WARNING_CASE, make_engine
from monitor.notify import chase, followup, messages
from monitor.notify.render import Templates
from monitor.service import schedule
from monitor.service.runner import Service, fixed_start_clock

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "data" / "import" / "worked_examples"
RULE = FollowUpRule(10, 0, 5)
BUREAU = followup.Bureau("州财政局", ("jxk@czj.example.gov.cn",))
SECRET = "follow-up-link-secret-8Hn2Qw5Er7Ty1Ui4Op6As9Df3"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=TZ)


# --- dates -------------------------------------------------------------------------------------------


def test_reminder_is_the_working_day_after_the_deadline_and_escalation_five_working_days_later() -> None:
    run_day = dt.date(2025, 6, 11)  # a Wednesday
    assert RULE.response_deadline(run_day) == dt.date(2025, 6, 25)  # 10 working days
    assert RULE.chase_day(run_day) == dt.date(2025, 6, 26)
    assert RULE.escalate_day(run_day) == dt.date(2025, 7, 3)
    later = FollowUpRule(10, 2, 3, holidays=frozenset({dt.date(2025, 7, 1)}))
    assert later.chase_day(run_day) == dt.date(2025, 6, 30)  # the 3rd working day after June 25
    assert later.escalate_day(run_day) == dt.date(2025, 7, 4)  # July 1 is a holiday


def test_the_deadline_chased_is_the_one_the_warning_announced(workdir: Path) -> None:
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + "notifications:\n  response_working_days: 7\n  holidays: [2025-06-16, 2025-06-17]\n"
        + "  extra_workdays: [2025-06-14]\n",
        encoding="utf-8",
    )
    settings = load_settings(cfg)
    announced = messages.options(settings, Checkpoint(2025, 5), at(2025, 6, 11, 9)).response_deadline
    assert FollowUpRule.of(settings.notifications).response_deadline(dt.date(2025, 6, 11)) == announced
    assert announced == dt.date(2025, 6, 23)  # June 14 worked, June 16 and 17 off


def test_the_calendar_has_follow_up_duties_only_for_checkpoints_that_opened_cases() -> None:
    assert [d.key for d in schedule.upcoming(ScheduleConfig(), at(2025, 6, 12), TZ, n=4)] == [
        "task:2025-08",
        "reminder:2025-08:3d",
        "reminder:2025-08:1d",
        "run:2025-08",
    ]
    follow = FollowUp(RULE, {"2025-05": (dt.date(2025, 6, 11),)})
    duties = schedule.upcoming(ScheduleConfig(), at(2025, 6, 12), TZ, n=3, follow_up=follow)
    assert [(d.key, d.kind, d.due_at.isoformat()) for d in duties] == [
        ("chase:2025-05", "chase", "2025-06-26T09:00:00+08:00"),
        ("escalate:2025-05", "escalate", "2025-07-03T09:00:00+08:00"),
        ("task:2025-08", "task", "2025-09-01T09:00:00+08:00"),
    ]


def test_a_late_run_moves_its_follow_up_and_a_later_batch_of_cases_gets_its_own() -> None:
    # The May run was carried out on Friday June 13 (the service was down); a re-run on June 20 opened
    # a case for a project reported late.
    follow = FollowUp(RULE, {"2025-05": (dt.date(2025, 6, 20), dt.date(2025, 6, 13))})
    duties = schedule.upcoming(ScheduleConfig(), at(2025, 6, 21), TZ, n=4, follow_up=follow)
    assert [(d.key, d.due_at.date().isoformat()) for d in duties] == [
        ("chase:2025-05", "2025-06-30"),  # deadline June 27, announced on June 13
        ("chase:2025-05+2025-06-20", "2025-07-07"),
        ("escalate:2025-05", "2025-07-07"),
        ("escalate:2025-05+2025-06-20", "2025-07-14"),
    ]


def test_a_missed_chase_and_escalation_are_still_owed_the_chase_first() -> None:
    follow = FollowUp(FollowUpRule(10, 0, 0), {"2025-05": (dt.date(2025, 6, 11),)})
    owed = schedule.owed(ScheduleConfig(), ["run:2025-05"], at(2025, 6, 1), at(2025, 8, 1), TZ, follow)
    assert [d.key for d in owed] == ["chase:2025-05", "escalate:2025-05"]  # same day, chase first
    done = schedule.owed(
        ScheduleConfig(), ["run:2025-05", "chase:2025-05"], at(2025, 6, 1), at(2025, 8, 1), TZ, follow
    )
    assert [d.key for d in done] == ["escalate:2025-05"]


# --- decisions ---------------------------------------------------------------------------------------

OPENED = dt.date(2025, 6, 11)
UNITS = {
    u.code: u
    for u in (
        Unit("301", "市农业农村局", ("nyj@example.gov.cn",)),
        Unit("301001", "市动物疫病预防控制中心", ("dwyf@example.gov.cn",), "301"),
        Unit("301002", "市农技推广中心", ("njtg@example.gov.cn",), "301"),
        Unit("302", "市商务局", ("swj@example.gov.cn",), "302"),  # its own supervisor
        Unit("305", "市档案馆", ()),  # no address
    )
}


def case(
    id: int,
    unit: str,
    state: str = "open",
    light: str | None = "red",
    *,
    opened_on: dt.date = OPENED,
    exempt: bool = False,
    reminded_on: dt.date | None = None,
    escalated: bool = False,
) -> followup.Case:
    return followup.Case(
        id=id,
        checkpoint="2025-05",
        project_code=f"2025-{unit}-{id:03d}",
        project_name=f"项目{id}",
        unit_code=unit,
        state=state,
        opened_on=opened_on,
        light=light,
        exempt=exempt,
        reminded_on=reminded_on,
        escalated=escalated,
    )


def test_only_unanswered_standing_warnings_past_their_day_are_chased_one_message_per_unit() -> None:
    cases = [
        case(1, "301001"),
        case(2, "301001", "returned", "yellow"),  # the bureau sent the answer back: unanswered again
        case(3, "302", "answered"),
        case(4, "302", "accepted"),
        case(5, "302", light="green"),  # a re-run turned it green: the warning no longer stands
        case(6, "302", exempt=True),
        case(7, "302", opened_on=dt.date(2025, 6, 20)),  # opened by a later re-run: its own deadline
    ]
    before = followup.reminders("2025-05", cases, UNITS, dt.date(2025, 6, 25), RULE, BUREAU)
    assert not before and before.notices == () and [c.id for c in before.waiting] == [1, 2, 7]
    due = followup.reminders(
        "2025-05", cases, UNITS, dt.date(2025, 6, 26), RULE, BUREAU, lambda unit: f"https://x/u/{unit}"
    )
    (notice,) = due.notices
    assert (notice.kind, notice.reason, notice.unit_code) == ("case_reminder", "chase", "301001")
    assert [r.email for r in notice.to] == ["dwyf@example.gov.cn"] and notice.cc == ()
    assert [c["code"] for c in notice.view["cases"]] == ["2025-301001-001", "2025-301001-002"]  # red first
    assert notice.view["missed_deadline"] == "2025年6月25日"
    assert notice.view["answer_by"] == "2025年7月2日" and notice.view["escalate_on"] == "2025年7月3日"
    assert notice.view["response_link"] == "https://x/u/301001"
    assert notice.view["supervisor_name"] == "市农业农村局"
    assert [(s.case_id, s.kind, s.carrier) for s in due.steps] == [(1, "reminded", 0), (2, "reminded", 0)]
    assert [c.id for c in due.waiting] == [7]
    recorded = [replace(c, reminded_on=dt.date(2025, 6, 26)) if c.id in (1, 2) else c for c in cases]
    again = followup.reminders("2025-05", recorded, UNITS, dt.date(2025, 6, 27), RULE, BUREAU)
    assert again.notices == () and again.steps == ()


def test_escalation_tells_each_supervisor_of_its_own_units_and_the_bureau_of_all() -> None:
    reminded_on = dt.date(2025, 6, 26)
    cases = [
        case(1, "301001", reminded_on=reminded_on),
        case(2, "301002", "returned", "yellow", reminded_on=reminded_on),
        case(3, "302", reminded_on=reminded_on),
        case(4, "305"),  # no address: could not be reminded, escalated all the same
        case(5, "301001", reminded_on=reminded_on, escalated=True),  # escalated before
    ]
    assert not followup.escalations("2025-05", cases, UNITS, dt.date(2025, 7, 2), RULE, BUREAU)
    rnd = followup.escalations("2025-05", cases, UNITS, dt.date(2025, 7, 3), RULE, BUREAU)
    sup, bureau = rnd.notices
    assert (sup.kind, sup.unit_code, [r.email for r in sup.to]) == (
        "case_escalation",
        "301",
        ["nyj@example.gov.cn"],
    )
    assert [u["code"] for u in sup.view["units"]] == ["301001", "301002"]  # never another department's
    assert sup.view["audience"] == "supervisor" and sup.view["case_count"] == 2
    assert (bureau.unit_code, [r.email for r in bureau.to]) == (None, ["jxk@czj.example.gov.cn"])
    assert [u["code"] for u in bureau.view["units"]] == ["301001", "301002", "302", "305"]
    assert bureau.view["units"][0]["supervisor_name"] == "市农业农村局"
    assert bureau.view["units"][3]["cases"][0]["reminded_on"] == ""
    steps = {s.case_id: s for s in rnd.steps}
    assert sorted(steps) == [1, 2, 3, 4] and {s.carrier for s in steps.values()} == {1}
    assert steps[1].detail == "逾期仍未反馈，已报主管部门市农业农村局和州财政局督办"
    assert steps[3].detail == "逾期仍未反馈，已报州财政局督办"


def test_a_unit_without_an_address_has_its_step_recorded_without_a_message() -> None:
    rnd = followup.reminders("2025-05", [case(1, "305")], UNITS, dt.date(2025, 6, 26), RULE, BUREAU)
    assert rnd.notices == ()
    (step,) = rnd.steps
    assert step.carrier is None and "没有电子邮箱" in step.detail
    nobody = followup.Bureau("州财政局", ())
    esc = followup.escalations("2025-05", [case(1, "305")], UNITS, dt.date(2025, 7, 3), RULE, nobody)
    assert esc.notices == () and esc.steps[0].carrier is None


def test_the_shipped_templates_render_both_audiences_in_chinese() -> None:
    templates = Templates(ROOT / "templates")
    views = followup.examples()
    reminder = templates.render("case_reminder", views["case_reminder"])
    assert reminder.subject.startswith("【催办】2025年1-5月 州动物疫病预防控制中心：2个预警项目逾期未反馈")
    assert "https://jxk.example.gov.cn/u/TOKEN" in reminder.text and "TOKEN" in reminder.html
    assert "2025年7月3日 报主管部门州农业农村局和我局督办" in reminder.text
    sup = templates.render("case_escalation", views["case_escalation"])
    assert (
        sup.subject == "【督办】2025年1-5月 州农业农村局所属1个单位2个预警项目经催办仍未反馈，请督促整改反馈"
    )
    bureau = templates.render(
        "case_escalation", {**views["case_escalation"], "audience": "bureau", "recipient_name": "州财政局"}
    )
    assert bureau.subject == "【督办】2025年1-5月 1个单位2个预警项目经催办仍未反馈"
    assert "主管部门 州农业农村局" in bureau.text and "已退回待重新反馈" in bureau.html


def test_check_reports_a_broken_follow_up_template_with_its_line(workdir: Path) -> None:
    path = workdir / "templates" / "case_escalation.body.txt"
    path.write_text("{{ recipient_name }}：\n{% for u in units %}\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["check", "--config", str(workdir / "config.yaml")])
    assert res.exit_code == 1 and str(path) in res.output


# --- the service, on a fixed clock, with a real SMTP server ----------------------------------------------


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer() as s:
        yield s


@pytest.fixture
def deployed(workdir: Path, server: MailServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MONITOR_WEB_SECRET", SECRET)
    cfg = workdir / "config.yaml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"mail: {{mode: smtp, smtp: {{host: 127.0.0.1, port: {server.port}}}}}\n",
        encoding="utf-8",
    )
    res = cli(workdir, "import", str(EXAMPLES))
    assert res.exit_code == 0, res.output
    return workdir


def cli(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False)


def start(workdir: Path, moment: dt.datetime) -> Service:
    svc = Service(
        workdir / "config.yaml", None, fixed_start_clock(moment.astimezone(dt.UTC)), instance="test"
    )
    svc.start()
    return svc


def run_at(workdir: Path, moment: dt.datetime) -> list[str]:
    """Start the service at `moment` (it catches up on what is due), stop it; the duties it carried out."""
    before = duty_keys(workdir)
    svc = start(workdir, moment)
    try:
        return [k for k in duty_keys(workdir) if k not in before]
    finally:
        svc.shutdown()


def duty_keys(workdir: Path) -> list[str]:
    """The keys of the duties carried out so far, in the order they were started."""
    engine = make_engine(load_settings(workdir / "config.yaml").database_url)
    ev = SCHEDULED_EVENT
    with engine.connect() as conn:
        rows = conn.execute(select(ev.c.key, ev.c.started_at)).all()
    engine.dispose()
    return [k for k, _ in sorted(rows, key=lambda r: as_utc(r[1]))]


def new_mail(server: MailServer, seen: int) -> list[EmailMessage]:
    return [m.message for m in server.messages[seen:]]


def case_ids(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = {r.unit_code: r.id for r in conn.execute(select(WARNING_CASE))}
    engine.dispose()
    return out


def answer_all_but(db_url: str, silent: str, when: dt.datetime) -> None:
    from monitor.cases.store import submit_answer

    engine = make_engine(db_url)
    with engine.begin() as conn:
        for r in conn.execute(select(WARNING_CASE).where(WARNING_CASE.c.unit_code != silent)):
            answer = Answer(
                "经费保障",
                "资金拨付滞后，已协调加快支付。",
                "continue",
                "七月底前完成采购支付。",
                dt.date(2025, 7, 31),
            )
            submit_answer(conn, r.id, r.unit_code, answer, when)
    engine.dispose()


def events(db_url: str) -> list[tuple[int, str, int, int | None]]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                chase.CASE_EVENT.c.case_id,
                chase.CASE_EVENT.c.kind,
                chase.CASE_EVENT.c.round,
                chase.CASE_EVENT.c.outbox_id,
            )
            .where(chase.CASE_EVENT.c.kind.in_(["reminded", "escalated"]))
            .order_by(chase.CASE_EVENT.c.id)
        )
        out = [tuple(r) for r in rows]
    engine.dispose()
    return out


def test_a_silent_unit_is_reminded_then_escalated_on_schedule_and_only_once(
    deployed: Path, server: MailServer, db_url: str
) -> None:
    assert run_at(deployed, at(2025, 6, 11, 9, 0, 1)) == ["run:2025-05"]
    seen = len(server.messages)
    assert seen == 5  # four warning digests and the bureau summary
    warned = next(m for m in server.messages if m.message["X-Monitor-Unit"] == "301001").message
    assert "请于2025年6月25日前反馈" in warned["Subject"]
    # Every unit answers but 301001 (市动物疫病预防控制中心, supervised by 301 市农业农村局).
    answer_all_but(db_url, "301001", at(2025, 6, 20, 15))

    svc = start(deployed, at(2025, 6, 25, 18))  # the deadline day: nothing is due yet
    try:
        assert duty_keys(deployed) == ["run:2025-05"]
        nxt = {
            d.key: d.due_at
            for d in schedule.upcoming(
                svc.state.app.settings.schedule,
                svc.clock(),
                TZ,
                follow_up=chase.follow_up_plan(svc.engine, svc.state.app.settings),
            )
        }
        assert nxt["chase:2025-05"] == at(2025, 6, 26, 9) and nxt["escalate:2025-05"] == at(2025, 7, 3, 9)
        assert {j.id for j in svc.scheduler.get_jobs()} >= {"chase:2025-05", "escalate:2025-05"}
    finally:
        svc.shutdown()
    assert len(server.messages) == seen and events(db_url) == []

    assert run_at(deployed, at(2025, 6, 26, 9, 0, 1)) == ["chase:2025-05"]
    (reminder,) = new_mail(server, seen)
    seen = len(server.messages)
    assert reminder["X-Monitor-Kind"] == "case_reminder" and reminder["X-Monitor-Unit"] == "301001"
    assert (
        reminder["To"].addresses[0].addr_spec == "dwyf@example.gov.cn" and len(reminder["To"].addresses) == 2
    )
    assert reminder["Subject"].startswith("【催办】2025年1-5月 市动物疫病预防控制中心：1个预警项目逾期未反馈")
    text = body_text(reminder)
    assert "动物疫病强制免疫疫苗采购" in text and "反馈期限 2025年6月25日" in text
    assert "请于 2025年7月2日 前" in text and "2025年7月3日 报主管部门市农业农村局和我局督办" in text
    assert "葡萄酒产业宣传推介" not in text  # 302 answered
    link = re.search(r"（(http://127\.0\.0\.1:8650/u/[^）]+)）", text)
    assert link is not None
    from monitor.core.links import Scope, read_token

    token = link.group(1).rsplit("/", 1)[1]
    assert read_token(SECRET, token, dt.timedelta(days=30), dt.datetime.now(dt.UTC)) == Scope(
        "301001", "2025-05"
    )
    silent = case_ids(db_url)["301001"]
    assert [e[:3] for e in events(db_url)] == [(silent, "reminded", 1)]

    assert run_at(deployed, at(2025, 7, 2, 18)) == []  # the day before the escalation
    assert len(server.messages) == seen

    assert run_at(deployed, at(2025, 7, 3, 9, 0, 1)) == ["escalate:2025-05"]
    escalation = {tuple(a.addr_spec for a in m["To"].addresses): m for m in new_mail(server, seen)}
    assert sorted(escalation) == [("jxk@czj.example.gov.cn",), ("nyj@example.gov.cn",)]
    sup = escalation[("nyj@example.gov.cn",)]
    assert (
        sup["Subject"]
        == "【督办】2025年1-5月 市农业农村局所属1个单位1个预警项目经催办仍未反馈，请督促整改反馈"
    )
    bureau_text = body_text(escalation[("jxk@czj.example.gov.cn",)])
    assert "市动物疫病预防控制中心（单位编码 301001，主管部门 市农业农村局）" in bureau_text
    assert "2025年6月26日已催办" in bureau_text and "葡萄酒产业宣传推介" not in bureau_text
    assert [e[:3] for e in events(db_url)] == [(silent, "reminded", 1), (silent, "escalated", 1)]
    assert all(e[3] is not None for e in events(db_url))

    # Again: the duties are done, and a round by hand finds every step taken.
    assert run_at(deployed, at(2025, 7, 4, 9)) == []
    settings = load_settings(deployed / "config.yaml")
    engine = make_engine(db_url)
    for step in ("chase", "escalate"):
        again = chase.follow_up(
            engine,
            settings,
            Templates(deployed / "templates"),
            Checkpoint(2025, 5),
            step,
            lambda: at(2025, 7, 4, 10),
        )
        assert again.cases == 0 and again.queued == []
    engine.dispose()
    assert len(server.messages) == seen + 2 and len(events(db_url)) == 2


def test_after_downtime_the_missed_reminder_and_escalation_both_run_the_reminder_first(
    deployed: Path, server: MailServer, db_url: str
) -> None:
    run_at(deployed, at(2025, 6, 11, 9, 0, 1))
    answer_all_but(db_url, "304", at(2025, 6, 12, 10))
    # The service is down from June 12 to July 10: both follow-up dates pass.
    assert run_at(deployed, at(2025, 7, 10, 8)) == ["chase:2025-05", "escalate:2025-05"]
    kinds = [(m.message["X-Monitor-Kind"], m.message["X-Monitor-Unit"]) for m in server.messages[5:]]
    assert kinds == [("case_reminder", "304"), ("case_escalation", "")]  # 304 has no supervisor: the bureau
    reminder = body_text(server.messages[5].message)
    assert "城市路灯维护（边界例一）" in reminder and "城市照明节能改造（边界例二）" in reminder
    assert "请立即逐个项目反馈" in reminder  # the escalation day has passed
    engine = make_engine(db_url)
    with engine.connect() as conn:
        late = conn.execute(
            select(SCHEDULED_EVENT.c.key, SCHEDULED_EVENT.c.late, SCHEDULED_EVENT.c.detail)
            .where(SCHEDULED_EVENT.c.kind.in_(["chase", "escalate"]))
            .order_by(SCHEDULED_EVENT.c.key)
        ).all()
    engine.dispose()
    assert [(k, bool(lt)) for k, lt, _ in late] == [("chase:2025-05", True), ("escalate:2025-05", True)]
    assert late[0][2].startswith("2 case(s) reminded, 1 message(s) queued, 1 sent")


def test_a_returned_answer_not_answered_again_is_chased(
    deployed: Path, server: MailServer, db_url: str
) -> None:
    from monitor.cases.store import review

    run_at(deployed, at(2025, 6, 11, 9, 0, 1))
    answer_all_but(db_url, "none", at(2025, 6, 12, 10))
    engine = make_engine(db_url)
    with engine.begin() as conn:
        review(
            conn, case_ids(db_url)["303"], "return", "原因分析不具体，请补充。", "jxk", at(2025, 6, 24, 10)
        )
    engine.dispose()
    assert run_at(deployed, at(2025, 6, 26, 9, 0, 1)) == ["chase:2025-05"]
    (reminder,) = [m.message for m in server.messages[5:]]
    assert reminder["X-Monitor-Unit"] == "303"
    assert "森林草原防灭火专项经费：已退回待重新反馈" in body_text(reminder)


def test_monitor_chase_runs_a_round_by_hand_and_lists_the_steps(
    deployed: Path, server: MailServer, db_url: str
) -> None:
    run_at(deployed, at(2025, 6, 11, 9, 0, 1))  # May opened on June 11, 2025; the CLI's clock is today's
    first = cli(deployed, "chase", "--checkpoint", "2025-05")
    assert first.exit_code == 0, first.output
    assert "2025-05: 5 case(s) reminded (催办), 4 message(s) queued" in first.output
    assert "delivery: sent 4" in first.output
    again = cli(deployed, "chase", "--checkpoint", "2025-05")
    assert "0 case(s) reminded (催办), 0 message(s) queued" in again.output
    escalated = cli(deployed, "chase", "--checkpoint", "2025-05", "--escalate")
    assert "5 case(s) escalated (督办), 2 message(s) queued" in escalated.output
    assert len(server.messages) == 5 + 4 + 2
    listed = cli(deployed, "chase", "--checkpoint", "2025-05", "--list")
    assert "304 2025-304-002 城市照明节能改造（边界例二） [red] 待反馈: deadline 2025-06-25" in listed.output
    assert (
        "reminded (message #9): 逾期未反馈，已向市城市管理局发送催办通知（cgj@example.gov.cn）"
        in listed.output
    )
    assert (
        "escalated (message #11): 逾期仍未反馈，已报主管部门市农业农村局和州财政局预算绩效管理科督办"
        in listed.output
    )


def test_monitor_chase_before_the_day_sends_nothing_and_says_when(workdir: Path) -> None:
    assert cli(workdir, "import", str(EXAMPLES)).exit_code == 0
    assert cli(workdir, "run", "--checkpoint", "2025-05").exit_code == 0  # cases opened today
    res = cli(workdir, "chase", "--checkpoint", "2025-05")
    assert res.exit_code == 0
    assert "0 case(s) reminded (催办), 0 message(s) queued" in res.output
    assert "5 unanswered case(s) not yet due, the first on " in res.output
