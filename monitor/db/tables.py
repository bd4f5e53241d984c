"""The database schema: SQLModel tables for inputs (units, projects, indicators, reports) and
outputs (runs, rule versions, project and indicator results). Money columns are BIGINT fen.
Portable SQL only: the same schema serves SQLite (default) and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlmodel import Field, SQLModel

# On SQLite, the tables the evaluation walks in key order are clustered on their keys (one B-tree,
# read in order: migration 0005); elsewhere the option means nothing.
CLUSTERED = {"sqlite_with_rowid": False}


class UnitRow(SQLModel, table=True):
    __tablename__ = "unit"
    code: str = Field(primary_key=True, max_length=32)
    name: str
    email: str  # one or more addresses separated by ';'
    supervisor_code: str | None = Field(default=None, max_length=32)


class ProjectRow(SQLModel, table=True):
    __tablename__ = "project"
    __table_args__ = CLUSTERED
    code: str = Field(primary_key=True, max_length=21)
    name: str
    unit_code: str = Field(foreign_key="unit.code", index=True, max_length=32)
    budget: int = Field(sa_column=Column(BigInteger, nullable=False))
    carryover: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    fund_flag: str | None = None
    category: str | None = None
    profile: str | None = None


class IndicatorRow(SQLModel, table=True):
    __tablename__ = "indicator"
    __table_args__ = CLUSTERED
    project_code: str = Field(primary_key=True, foreign_key="project.code", max_length=21)
    code: str = Field(primary_key=True, max_length=32)
    level1: str
    level2: str
    name: str
    direction: str
    target: str
    measure_unit: str = ""
    kind: str | None = None
    profile: str | None = None


class ProjectReportRow(SQLModel, table=True):
    __tablename__ = "project_report"
    __table_args__ = CLUSTERED
    checkpoint: str = Field(primary_key=True, max_length=7)
    project_code: str = Field(primary_key=True, foreign_key="project.code", max_length=21)
    executed: int = Field(sa_column=Column(BigInteger, nullable=False))
    forecast_executed: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    batch: int | None = None  # the report_batch that wrote it (channel, source, time): its provenance


class IndicatorReportRow(SQLModel, table=True):
    __tablename__ = "indicator_report"
    __table_args__ = CLUSTERED
    checkpoint: str = Field(primary_key=True, max_length=7)
    project_code: str = Field(primary_key=True, max_length=21)
    indicator_code: str = Field(primary_key=True, max_length=32)
    actual: str | None = None
    forecast: str | None = None
    possibility: str | None = None
    causes: str | None = None
    cause_text: str | None = None
    measures: str | None = None
    batch: int | None = None  # the report_batch that wrote it (channel, source, time): its provenance


class RuleVersionRow(SQLModel, table=True):
    """The exact rule content a run used, keyed by its hash (rules are versioned)."""

    __tablename__ = "rule_version"
    hash: str = Field(primary_key=True, max_length=64)
    content: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime


class RunRow(SQLModel, table=True):
    """One evaluation of one checkpoint; every run is kept, the latest one's results are stored."""

    __tablename__ = "run"
    id: int | None = Field(default=None, primary_key=True)
    checkpoint: str = Field(index=True, max_length=7)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    rules_hash: str = Field(max_length=64)
    # running → evaluated (results stored) → finished (cases opened and messages queued, one transaction);
    # failed; abandoned (stopped half-way, a later run or the completion of a later one did its work)
    status: str = "running"
    projects: int = 0
    reported: int = 0
    green: int = 0
    yellow: int = 0
    red: int = 0
    not_reported: int = 0
    # the last report_batch the evaluation could see: the reports it used (db.history: which version)
    reports_upto: int | None = None


class ProjectResultRow(SQLModel, table=True):
    __tablename__ = "project_result"
    __table_args__ = CLUSTERED
    checkpoint: str = Field(primary_key=True, max_length=7)
    project_code: str = Field(primary_key=True, max_length=21)
    run_id: int = Field(index=True)
    unit_code: str = Field(max_length=32)
    project_name: str
    status: str
    budget: int = Field(sa_column=Column(BigInteger, nullable=False))
    executed: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    execution_rate: float | None = None
    time_progress: float
    budget_light: str | None = None
    target_light: str | None = None
    light: str | None = None
    reasons: str = ""  # newline-separated; "" when written by the SQL form: formatted from the facts
    # the facts a reason is formatted from (SQL form): the run's policy (run_policy.id) and the carry-over
    policy: int | None = None
    carryover: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class IndicatorResultRow(SQLModel, table=True):
    __tablename__ = "indicator_result"
    __table_args__ = CLUSTERED
    checkpoint: str = Field(primary_key=True, max_length=7)
    project_code: str = Field(primary_key=True, max_length=21)
    indicator_code: str = Field(primary_key=True, max_length=32)
    name: str
    kind: str
    light: str
    ratio: float | None = None
    reason: str
    target: str = ""
    actual: str | None = None
    measure_unit: str = ""
    direction: str = ""
    # the facts a reason is formatted from (SQL form): the run's policy (run_policy.id), whether the
    # indicator was reported, and the 完成目标可能性 that forced red
    policy: int | None = None
    reported: int | None = None
    possibility: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class RunPolicyRow(SQLModel, table=True):
    """The policies a run's SQL form used, as facts for formatting its reasons (JSON: thresholds,
    answers, where each value was set, time progress and its note)."""

    __tablename__ = "run_policy"
    run_id: int = Field(primary_key=True)
    id: int = Field(primary_key=True)
    facts: str = Field(sa_column=Column(Text, nullable=False))


Index("ix_project_result_unit", ProjectResultRow.checkpoint, ProjectResultRow.unit_code)


class OutboxRow(SQLModel, table=True):
    """A message, persisted before anything is sent; a sender claims it with a conditional update."""

    __tablename__ = "outbox"
    # What was last queued per unit and kind (outbox.sent_snapshots, one chunk of units at a time):
    # without it every chunk of a national run reads the whole checkpoint's outbox.
    __table_args__ = (Index("ix_outbox_checkpoint_unit", "checkpoint", "unit_code", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(sa_column=Column(String(255), unique=True, nullable=False))
    checkpoint: str = Field(index=True, max_length=7)
    kind: str = Field(max_length=16)  # warning / reminder / overdue / summary / all_clear / admin
    # first / escalated / changed / improved / reminder / overdue / summary
    reason: str = Field(max_length=16)
    unit_code: str | None = Field(default=None, max_length=32)
    recipients: str  # every RCPT TO, ';'-separated
    subject: str
    fingerprint: str = Field(max_length=64)
    snapshot: str = Field(sa_column=Column(Text, nullable=False))  # JSON: what the message stated
    # pending / sending / sent / failed / partial (done: some recipients accepted it, some refused it
    # for good; monitor.deliver.outbox: outbox_recipient)
    status: str = Field(default="pending", index=True, max_length=8)
    attempts: int = 0
    next_attempt_at: dt.datetime
    claimed_by: str | None = None
    claimed_at: dt.datetime | None = None
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The id of the message last queued for the same (checkpoint, kind, unit) when this one was decided
    # (0: none): with uq_outbox_once, one decision is queued once, whoever else queues meanwhile.
    supersedes: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))


# One message per (checkpoint, kind, unit) and what it was decided against (migration 0008).
Index(
    "uq_outbox_once",
    OutboxRow.checkpoint,
    OutboxRow.kind,
    func.coalesce(OutboxRow.unit_code, ""),
    "supersedes",
    unique=True,
)


class OutboxMessageRow(SQLModel, table=True):
    """The serialised message of an outbox row (the whole message, ASCII), kept apart from it: claiming
    and recording an attempt update the outbox row, and SQLite rewrites a whole row on update (a
    digest is ~20 KB), which cost the sender a fifth of its speed (migration 0006)."""

    __tablename__ = "outbox_message"
    outbox_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    raw: str = Field(sa_column=Column(Text, nullable=False))


class OutboxRecipientRow(SQLModel, table=True):
    """Where one recipient of an outbox message stands, written once the server has answered for the
    recipients of a message differently (some accepted, some refused with 4xx or 5xx): the next
    attempt goes to the `pending` ones alone. A message without such rows was (or will be) sent to every
    recipient at once; with them, it is done when none is pending (sent / partial / failed)."""

    __tablename__ = "outbox_recipient"
    outbox_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
        )
    )
    address: str = Field(primary_key=True, max_length=255)
    status: str = Field(max_length=8)  # pending / sent / failed
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # the server's last
    at: dt.datetime  # when the server last answered for this recipient


class DeliveryAttemptRow(SQLModel, table=True):
    """Every delivery attempt, successful or not."""

    __tablename__ = "delivery_attempt"
    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(index=True)
    at: dt.datetime
    worker: str
    outcome: str = Field(max_length=16)  # sent / transient / permanent / released
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ScheduledEventRow(SQLModel, table=True):
    """One scheduled duty (a checkpoint run, a reminder round) and who carried it out: the unique key
    makes two triggers (or two service instances) do it once; a stale heartbeat lets another take over."""

    __tablename__ = "scheduled_event"
    key: str = Field(primary_key=True, max_length=64)  # e.g. "run:2025-05", "reminder:2025-05:3d"
    kind: str = Field(max_length=16)  # run / reminder
    checkpoint: str = Field(max_length=7)
    due_at: dt.datetime
    status: str = Field(max_length=16)  # running / finished / failed / skipped
    owner: str | None = Field(default=None, max_length=128)
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    finished_at: dt.datetime | None = None
    late: bool = False  # carried out after its due time (service was down, or a takeover)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class RunLockRow(SQLModel, table=True):
    """The run of a checkpoint in progress (monitor.db.claims: one at a time, from the CLI or the service);
    the row is deleted when the run ends, and a stale one (dead owner, or no heartbeat for the lease)
    is taken over."""

    __tablename__ = "run_lock"
    key: str = Field(primary_key=True, max_length=64)  # the checkpoint, e.g. "2025-05"
    owner: str = Field(max_length=128)  # host:pid
    started_at: dt.datetime
    heartbeat_at: dt.datetime


class ServiceEventRow(SQLModel, table=True):
    """What the service did that an operator asks about: starts, stops, reloads (ok or not)."""

    __tablename__ = "service_event"
    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime
    kind: str = Field(max_length=16)  # start / stop / reload
    ok: bool = True
    instance: str = Field(max_length=128)
    rules_hash: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


# --- rectification (issue 8): warning cases, the units' answers, the bureau's reviews, web users ---------


class WarningCaseRow(SQLModel, table=True):
    """One yellow/red warning of one project at one checkpoint and where its rectification stands
    (monitor.cases.rectification: open / answered / returned / accepted / resolved)."""

    __tablename__ = "warning_case"
    __table_args__ = (UniqueConstraint("checkpoint", "project_code", name="uq_warning_case"),)
    id: int | None = Field(default=None, primary_key=True)
    checkpoint: str = Field(max_length=7)
    project_code: str = Field(max_length=21)
    unit_code: str = Field(index=True, max_length=32)
    project_name: str
    light: str = Field(max_length=8)  # yellow / red when opened
    state: str = Field(default="open", max_length=16)
    opened_at: dt.datetime
    updated_at: dt.datetime
    resolved_checkpoint: str | None = Field(default=None, max_length=7)  # green again at this checkpoint


class CaseResponseRow(SQLModel, table=True):
    """A unit's answer to a warning case (every answer kept: a returned case is answered again)."""

    __tablename__ = "case_response"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="warning_case.id", index=True)
    cause: str = Field(max_length=16)  # 经费保障 / 制度保障 / 人员保障 / 硬件条件保障 / 其他
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    measure: str = Field(max_length=16)  # continue / reallocate / reduce / cancel
    measure_text: str = Field(sa_column=Column(Text, nullable=False))
    expected_date: dt.date
    submitted_at: dt.datetime
    channel: str = Field(default="web", max_length=8)  # web / import


class CaseReviewRow(SQLModel, table=True):
    """The bureau's decision on one answer: accept or return, with a comment."""

    __tablename__ = "case_review"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="warning_case.id", index=True)
    response_id: int = Field(foreign_key="case_response.id")
    decision: str = Field(max_length=8)  # accept / return
    comment: str = Field(sa_column=Column(Text, nullable=False))
    reviewer: str = Field(max_length=64)
    at: dt.datetime


class WebUserRow(SQLModel, table=True):
    """A bureau user of the web board; the password is stored as an scrypt hash with its own salt."""

    __tablename__ = "web_user"
    name: str = Field(primary_key=True, max_length=64)
    salt: str = Field(max_length=64)  # hex
    password_hash: str = Field(max_length=128)  # hex scrypt
    created_at: dt.datetime
    session_version: int = 0  # sessions carry it; raised by logout, a new password, disabling
    disabled: bool = False


class LoginAttemptRow(SQLModel, table=True):
    """Every login attempt, for limiting failures per user and address."""

    __tablename__ = "login_attempt"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    address: str = Field(max_length=64)
    at: dt.datetime = Field(index=True)
    ok: bool = False


class CaseEventRow(SQLModel, table=True):
    """A follow-up step on a warning case that is not an answer or a review: the reminder sent when
    the unit had not answered by the response deadline (催办), the escalation to the supervising
    department and the bureau after a further delay (督办), an exemption. Every step is kept and shown."""

    __tablename__ = "case_event"
    __table_args__ = (UniqueConstraint("case_id", "kind", "round", name="uq_case_event"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="warning_case.id", index=True)
    kind: str = Field(max_length=16)  # reminded / escalated
    round: int = 1  # which reminder/escalation of this case (1 = the first)
    at: dt.datetime
    outbox_id: int | None = None  # the message that carried it, when one was queued
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ExemptionRow(SQLModel, table=True):
    """A project exempted from warnings (e.g. a budget adjustment already approved): listed in results
    and reports but not warned, no case opened, until it expires (inclusive) or is revoked."""

    __tablename__ = "exemption"
    id: int | None = Field(default=None, primary_key=True)
    project_code: str = Field(index=True, max_length=21)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    approver: str = Field(max_length=64)
    expires_on: dt.date  # last day it applies
    created_at: dt.datetime
    created_by: str = Field(max_length=64)
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=64)


class ReportFormRow(SQLModel, table=True):
    """A unit's monitoring report of one project at one checkpoint as it fills it in on its reporting
    page (填报): the fields as typed (JSON, kept as drafts server-side), and where it stands: draft
    (草稿), submitted (已送审), returned (已退回, with the department's comment) or approved (已审核)."""

    __tablename__ = "report_form"
    checkpoint: str = Field(primary_key=True, max_length=7)
    project_code: str = Field(primary_key=True, max_length=21)
    unit_code: str = Field(index=True, max_length=32)
    state: str = Field(max_length=12)
    data: str = Field(sa_column=Column(Text, nullable=False))  # field -> text as typed
    saved_at: dt.datetime
    submitted_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    decided_by: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ReportEventRow(SQLModel, table=True):
    """Every step of a report: saved, submitted, returned, approved, reopened; by whom, through which
    channel (web, form workbook, import, exchange table), when. Kept, never rewritten."""

    __tablename__ = "report_event"
    id: int | None = Field(default=None, primary_key=True)
    checkpoint: str = Field(max_length=7)
    project_code: str = Field(max_length=21)
    kind: str = Field(max_length=12)
    at: dt.datetime
    by: str = Field(max_length=64)
    channel: str = Field(max_length=12)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


Index("ix_report_event_project", ReportEventRow.checkpoint, ReportEventRow.project_code)


class ReportExtensionRow(SQLModel, table=True):
    """A unit's later report deadline at one checkpoint (延期), granted by the bureau with a reason; the
    latest grant counts, every grant is kept in report_event."""

    __tablename__ = "report_extension"
    checkpoint: str = Field(primary_key=True, max_length=7)
    unit_code: str = Field(primary_key=True, max_length=32)
    until: dt.date
    reason: str = Field(sa_column=Column(Text, nullable=False))
    by: str = Field(max_length=64)
    at: dt.datetime


class ReportBatchRow(SQLModel, table=True):
    """One import transaction that wrote reports, whatever its channel: `monitor import` of files (form
    workbooks and exchange tables included: their names are the source), a unit's 送审 on its page, a
    department's approval. Every report row names the batch that last wrote it (provenance)."""

    __tablename__ = "report_batch"
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=12)  # import / web
    source: str = Field(sa_column=Column(Text, nullable=False))  # file names, or unit:CODE / department:CODE
    at: dt.datetime


class ProjectReportVersionRow(SQLModel, table=True):
    """An earlier version of a project_report row, kept when a later batch changed its values or a
    department's return withdrew it (history: corrections never erase what was reported). Written by the
    database itself (a trigger on project_report, migration 0014) and by `db.history.withdraw`."""

    __tablename__ = "project_report_version"
    __table_args__ = (Index("ix_project_report_version_key", "checkpoint", "project_code"),)
    id: int | None = Field(default=None, primary_key=True)
    checkpoint: str = Field(max_length=7)
    project_code: str = Field(max_length=21)
    executed: int = Field(sa_column=Column(BigInteger, nullable=False))
    forecast_executed: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    batch: int | None = None  # the batch that had written it
    replaced_by: int | None = None  # the batch that changed or withdrew it (None: not known)


class IndicatorReportVersionRow(SQLModel, table=True):
    """An earlier version of an indicator_report row (see ProjectReportVersionRow)."""

    __tablename__ = "indicator_report_version"
    __table_args__ = (Index("ix_indicator_report_version_key", "checkpoint", "project_code"),)
    id: int | None = Field(default=None, primary_key=True)
    checkpoint: str = Field(max_length=7)
    project_code: str = Field(max_length=21)
    indicator_code: str = Field(max_length=32)
    actual: str | None = None
    forecast: str | None = None
    possibility: str | None = None
    causes: str | None = None
    cause_text: str | None = None
    measures: str | None = None
    batch: int | None = None
    replaced_by: int | None = None
