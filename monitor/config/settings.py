"""config.yaml in, a typed Settings object out: parsed once at the edge, unknown keys rejected,
every error reported with `file:line`. Relative paths resolve against the config file's folder;
environment variables (MONITOR_DATABASE_URL, ...) override per deployment. Nothing else reads YAML or env.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, IPvAnyNetwork

from monitor.config.yamlfile import Document, Invalid, Problem, load_yaml, places, validate_model
from monitor.core.cells import parse_emails

# Every environment variable the program reads, with what it overrides (documented in the README).
ENV_VARS = {
    "MONITOR_CONFIG": "path of config.yaml (default ./config.yaml)",
    "MONITOR_DATABASE_URL": "database.url: any SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db",
    "MONITOR_MAIL_MODE": "mail.mode: file or smtp",
    "MONITOR_SMTP_HOST": "mail.smtp.host",
    "MONITOR_SMTP_PORT": "mail.smtp.port",
    "MONITOR_SMTP_PASSWORD": "the SMTP password (the variable named by mail.smtp.password_env)",
    "MONITOR_WEB_SECRET": "the secret signing unit links and sessions (the variable named by web.secret_env)",
}


def _written_out(kind: str, example: str) -> object:
    """A before-validator refusing numbers where a time or date is expected: pydantic reads a number as
    seconds, and YAML reads an unquoted 10:30 as the number 630 (base 60)."""

    def check(v: object) -> object:
        if isinstance(v, int | float | Decimal):
            raise ValueError(f'a {kind} is written as "{example}" (in quotes), not as a number')
        return v

    return BeforeValidator(check)


TimeOfDay = Annotated[dt.time, _written_out("time of day", "09:30")]
Day = Annotated[dt.date, _written_out("date", "2025-10-01")]


class Strict(BaseModel):
    # every number finite (no .inf, .nan) and within the range its Field gives (README, Configuration)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DatabaseConfig(Strict):
    url: str | None = None  # any SQLAlchemy URL; wins over path
    path: str = "monitor.db"  # SQLite file, relative to the config file's folder


class MonitoringConfig(Strict):
    progress_bar_min_projects: int = Field(default=5000, ge=0)


class CheckpointSchedule(Strict):
    """One checkpoint of the year: the month it covers, the units' report deadline, when it runs,
    and the reminders before the deadline (all in the configured time zone)."""

    month: int = Field(ge=1, le=12)
    # reporting opens (监控任务下发: each unit gets its reporting notice) month end + N days, reminder_time
    report_opens_days: int = Field(default=1, ge=0, le=60)
    report_deadline_days: int = Field(default=10, ge=0, le=60)  # deadline = month end + N days
    run_days_after_deadline: int = Field(default=1, ge=0, le=60)  # run N days after the deadline
    run_time: TimeOfDay = dt.time(9, 0)
    reminder_days_before_deadline: tuple[Annotated[int, Field(ge=0, le=60)], ...] = (3, 1)
    reminder_time: TimeOfDay = dt.time(9, 0)


class ScheduleConfig(Strict):
    checkpoints: tuple[CheckpointSchedule, ...] = (CheckpointSchedule(month=5), CheckpointSchedule(month=8))
    # on a first start, duties due this recently still run
    catch_up_days: int = Field(default=30, ge=0, le=366)
    misfire_grace_days: float = Field(default=30, gt=0, le=366)  # APScheduler runs a late job up to this late
    delivery_interval_minutes: float = Field(default=10, gt=0, le=1440)  # retry pending deliveries this often
    # compare the calendar with the database this often (and complete runs a stopped process left)
    reconcile_seconds: float = Field(default=5, gt=0, le=3600)
    # a duty or checkpoint run whose owner sent no heartbeat (every quarter of this) for this long is
    # taken over; at once if the owner's process is gone from this host, never while it lives on it
    lease_seconds: float = Field(default=20, gt=0, le=3600)
    # a failed duty is tried again this long after
    retry_failed_seconds: float = Field(default=120, ge=0, le=86400)
    # poll rules/ and config.yaml for changes (0 = SIGHUP only)
    watch_seconds: float = Field(default=5, ge=0, le=3600)


class ServiceConfig(Strict):
    http_port: int | None = Field(default=None, ge=0, le=65535)  # /healthz and /metrics on 127.0.0.1
    # This instance's name: its APScheduler jobs live in their own table (APScheduler 3 must not share
    # a job store between schedulers). Default: the host name. Two instances on one host need two names.
    instance_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")


class SmtpConfig(Strict):
    """How to reach the mail server. The password is never in the file: only the name of the
    environment variable that holds it."""

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password_env: str = "MONITOR_SMTP_PASSWORD"
    verify_certificates: bool = True
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    connections: int = Field(default=4, ge=1, le=64)  # parallel connections, each reused for many messages
    rate_per_second: float = Field(default=0, ge=0, le=10000)  # 0 = unlimited; government servers throttle


class RetryConfig(Strict):
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_seconds: float = Field(default=60, ge=0, le=86400)  # first retry delay, doubled per attempt
    backoff_max_seconds: float = Field(default=3600, ge=0, le=604800)
    # `monitor send` waits this long for due retries
    inline_wait_seconds: float = Field(default=120, ge=0, le=86400)
    # a sender renews its claims every quarter of this; a claim not renewed this long is released (and
    # flagged by `monitor status`)
    lease_seconds: float = Field(default=30, gt=0, le=3600)
    stop_grace_seconds: float = Field(default=3, ge=0, le=600)  # on stop, messages on the wire get this long


def _one_address(value: str | None) -> str | None:
    """One e-mail address, checked as units' addresses are (monitor.core.cells)."""
    if value is None:
        return None

    found = parse_emails(value)
    if len(found) != 1:
        raise ValueError("one e-mail address, e.g. jxk@czj.example.gov.cn")
    return found[0]


class MailConfig(Strict):
    mode: Literal["file", "smtp"] = "file"
    file_dir: str = "outbox"  # mode file: every message written here as an .eml file
    from_address: str = "jxk@czj.example.gov.cn"
    from_name: str = "州财政局预算绩效管理科"
    # where units' replies go (warnings, 催办, 督办): default the first bureau_recipients address
    reply_to: Annotated[str | None, AfterValidator(_one_address)] = None
    message_id_domain: str = "budget-monitor.local"
    bureau_recipients: tuple[str, ...] = ("jxk@czj.example.gov.cn",)
    # The bureau summary carries the checkpoint's reports as attachments: xlsx (预警清单), html (监控报告).
    summary_attachments: tuple[Literal["xlsx", "html"], ...] = ()
    admin_recipients: tuple[str, ...] = ()
    smtp: SmtpConfig = SmtpConfig()
    retry: RetryConfig = RetryConfig()

    @property
    def reply_address(self) -> str:
        """The mailbox units answer to: reply_to, else the bureau's first recipient, else the sender."""
        return self.reply_to or next(iter(self.bureau_recipients), self.from_address)


class NotificationsConfig(Strict):
    # units answer within N working days of the run
    response_working_days: int = Field(default=10, ge=1, le=366)
    # units still not reported after their report deadline are told to report within N working days
    # of that overdue notice (逾期未报送)
    late_report_working_days: int = Field(default=5, ge=1, le=60)
    holidays: tuple[Day, ...] = ()  # public holidays (no working day); weekends are never working days
    extra_workdays: tuple[Day, ...] = ()  # weekend days worked in lieu (调休上班)
    cc_supervisor_on_red: bool = True
    send_all_clear: bool = False  # units with only green projects get a short confirmation
    top_red: int = Field(default=10, ge=0, le=10000)  # red projects by amount in the bureau summary
    # the rows each long list of the bureau summary shows at most (departments, unreported projects):
    # the rest are counted and left to the board and the reports (a national summary would be tens of MB)
    summary_rows: int = Field(default=300, ge=1, le=100000)
    template_override_dir: str | None = None  # admins' templates of the same name win
    # Follow-up of warnings nobody answered (monitor.notify.followup): a reminder to the unit (催办) on the
    # (chase_after_working_days + 1)-th working day after its response deadline, then an escalation to the
    # supervising department and the bureau (督办) escalate_after_working_days working days later.
    follow_up: bool = True  # the service chases and escalates on schedule (`monitor chase` works regardless)
    chase_after_working_days: int = Field(default=0, ge=0, le=60)  # 0 = the working day after the deadline
    escalate_after_working_days: int = Field(default=5, ge=0, le=60)  # after the reminder, in working days
    follow_up_time: TimeOfDay = dt.time(9, 0)  # time of day of both, in time_zone


class ResultsApplicationConfig(Strict):
    """结果应用: which projects the reports list as candidates for budget reduction or recovery, and for
    the bureau's key monitoring (财政重点监控). Rates are shares of the budget, compared exactly."""

    # checkpoint months at which the lists are drawn up (default: the end of August)
    months: tuple[Annotated[int, Field(ge=1, le=12)], ...] = (8,)
    # red and executed below this
    reduction_rate_below: Annotated[Decimal, places(12)] = Field(default=Decimal("0.30"), ge=0, le=1)
    reduction_persistent_red: bool = True  # red at the previous checkpoint and still red
    reduction_possibilities: tuple[str, ...] = ("完全不可能",)  # 完成目标可能性 answers that make a candidate
    # 万元: budget at least this ...
    key_budget_min: Annotated[Decimal, places(6)] = Field(default=Decimal("200"), ge=0, le=100_000_000)
    # ... and executed below this
    key_rate_below: Annotated[Decimal, places(12)] = Field(default=Decimal("0.60"), ge=0, le=1)


class ReportingConfig(Strict):
    """Units reporting through the system: when a unit's report counts (reaches project_report and
    indicator_report, and so the checkpoint run): once the unit submits it (送审, the default), or once
    its supervising department approves it (审核)."""

    counts_when: Literal["submitted", "approved"] = "submitted"


class WebConfig(Strict):
    """The web pages (`monitor web`): the unit pages reached by signed links and the bureau board. The
    signing secret is never in the file: only the name of the environment variable that holds it."""

    secret_env: str = "MONITOR_WEB_SECRET"
    link_days: int = Field(default=30, ge=1, le=366)  # a unit's link expires this many days after it is made
    base_url: str = "http://127.0.0.1:8650"  # how units reach the pages (links in e-mails start with it)
    host: str = "127.0.0.1"
    port: int = Field(default=8650, ge=1, le=65535)
    # Login limiting: the n-th failed login within the window makes the next attempt wait 2^n seconds
    # (capped), counted per address and per account (there, each address counts once).
    login_window_minutes: int = Field(default=15, ge=1, le=10080)  # at most a week
    login_max_delay_seconds: int = Field(default=300, ge=1, le=86400)
    login_max_failures: int = Field(default=5, ge=1, le=1000)  # no longer used (kept so older files load)
    # Reverse proxies (IP addresses or networks) whose X-Forwarded-For names the client; from any other
    # peer the header is ignored and the socket's address is the client. Default: none.
    trusted_proxies: tuple[IPvAnyNetwork, ...] = ()


class ConfigFile(Strict):
    database: DatabaseConfig = DatabaseConfig()
    mail: MailConfig = MailConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    rules_dir: str = "rules"
    templates_dir: str = "templates"
    time_zone: str = "Asia/Shanghai"
    monitoring: MonitoringConfig = MonitoringConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    service: ServiceConfig = ServiceConfig()
    language: Literal["zh"] = "zh"
    results_application: ResultsApplicationConfig = ResultsApplicationConfig()
    web: WebConfig = WebConfig()
    reporting: ReportingConfig = ReportingConfig()


@dataclass(frozen=True)
class Settings:
    """The resolved configuration every command works from."""

    config_path: Path
    database_url: str
    rules_dir: Path
    templates_dir: Path
    time_zone: str
    checkpoint_months: tuple[int, ...]
    progress_bar_min_projects: int
    schedule: ScheduleConfig
    service: ServiceConfig
    mail: MailConfig
    mail_dir: Path  # where mode `file` writes .eml files
    notifications: NotificationsConfig
    template_override_dir: Path | None
    smtp_password: str | None = field(default=None, repr=False)  # from the environment only
    results_application: ResultsApplicationConfig = field(default_factory=ResultsApplicationConfig)
    web: WebConfig = field(default_factory=WebConfig)
    web_secret: str | None = field(default=None, repr=False)  # signs unit links and sessions; env only
    reporting: ReportingConfig = field(default_factory=ReportingConfig)

    def redacted_url(self) -> str:
        """The database URL with any password shown as ***."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)


PGBOUNCER = "pgbouncer"  # `?pgbouncer=true` ends a database URL behind PgBouncer (README, "Behind PgBouncer")


def behind_pgbouncer(url: str) -> bool:
    """Whether the database URL says it reaches PostgreSQL through PgBouncer in transaction mode
    (`?pgbouncer=true`); raises ValueError naming any value but true or false."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        value = make_url(url).query.get(PGBOUNCER, "false")
    except ArgumentError:  # not a URL: the engine says so
        return False
    if value not in ("true", "false"):
        raise ValueError(f"{PGBOUNCER}={value!r} in the database URL: write {PGBOUNCER}=true or leave it out")
    return value == "true"


SECRET_MIN_LENGTH = 43  # 32 random bytes in URL-safe base64
SECRET_MIN_DISTINCT = 12
MAKE_SECRET = (
    "make one with `monitor secret` (or python -c 'import secrets; print(secrets.token_urlsafe(48))')"
)


def weak_secret(secret: str) -> bool:
    """Whether a signing secret is too weak to stand for 32 random bytes: shorter than 43 characters,
    fewer than 12 different characters, or one piece repeated (like 'abcabc…'). A heuristic: it refuses
    what a person types, and never what `monitor secret` makes."""
    return (
        len(secret) < SECRET_MIN_LENGTH
        or len(set(secret)) < SECRET_MIN_DISTINCT
        or secret in (secret + secret)[1:-1]  # a whole repetition of a shorter piece
    )


def config_path(explicit: str | None, env: Mapping[str, str] = os.environ) -> Path:
    return Path(explicit or env.get("MONITOR_CONFIG") or "config.yaml")


def load_settings(path: Path, rules_dir: str | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Load and validate config.yaml; raises Invalid with every problem. A missing file is an error."""
    if not path.is_file():
        raise Invalid(
            [Problem(str(path), None, "", "config file not found (use --config or MONITOR_CONFIG)")]
        )
    doc = load_yaml(path)
    cfg = validate_model(ConfigFile, doc)
    base = path.resolve().parent

    def resolve(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else base / q

    url = env.get("MONITOR_DATABASE_URL") or cfg.database.url or f"sqlite:///{resolve(cfg.database.path)}"
    try:
        behind_pgbouncer(url)
    except ValueError as exc:  # the URL itself (its password) is not shown
        in_env = bool(env.get("MONITOR_DATABASE_URL"))
        wrong = Problem("MONITOR_DATABASE_URL", None, "", str(exc)) if in_env else None
        raise Invalid([wrong or doc.problem(("database", "url"), str(exc))]) from exc
    months = [c.month for c in cfg.schedule.checkpoints]
    if len(set(months)) != len(months):
        where = ("schedule", "checkpoints")
        raise Invalid([doc.problem(where, "each month may be scheduled once", value=months, has_value=True)])
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.time_zone)
    except Exception as exc:
        raise Invalid(
            [doc.problem(("time_zone",), "unknown time zone", value=cfg.time_zone, has_value=True)]
        ) from exc
    secret = env.get(cfg.web.secret_env) or None
    if secret is not None and weak_secret(secret):  # the value itself is never shown
        why = f"too weak to sign unit links and sessions (at least {SECRET_MIN_LENGTH} random characters)"
        raise Invalid([Problem(cfg.web.secret_env, None, "", f"{why}: {MAKE_SECRET}")])
    mail = _mail_from_env(cfg.mail, env, doc)
    override = cfg.notifications.template_override_dir
    return Settings(
        mail=mail,
        mail_dir=resolve(mail.file_dir),
        notifications=cfg.notifications,
        template_override_dir=resolve(override) if override else None,
        smtp_password=env.get(mail.smtp.password_env) or None,
        config_path=path,
        database_url=url,
        rules_dir=Path(rules_dir) if rules_dir else resolve(cfg.rules_dir),
        templates_dir=resolve(cfg.templates_dir),
        time_zone=cfg.time_zone,
        checkpoint_months=tuple(sorted(months)),
        schedule=cfg.schedule,
        service=cfg.service,
        progress_bar_min_projects=cfg.monitoring.progress_bar_min_projects,
        results_application=cfg.results_application,
        web=cfg.web,
        web_secret=secret,
        reporting=cfg.reporting,
    )


def _mail_from_env(mail: MailConfig, env: Mapping[str, str], doc: Document) -> MailConfig:
    """Apply MONITOR_MAIL_MODE, MONITOR_SMTP_HOST and MONITOR_SMTP_PORT over config.yaml."""
    smtp: dict[str, object] = {}
    problems = []
    if env.get("MONITOR_SMTP_HOST"):
        smtp["host"] = env["MONITOR_SMTP_HOST"]
    if env.get("MONITOR_SMTP_PORT"):
        port = env["MONITOR_SMTP_PORT"]
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            problems.append(
                Problem("MONITOR_SMTP_PORT", None, "", "must be a port number 1..65535", port, True)
            )
        else:
            smtp["port"] = int(port)
    update: dict[str, object] = {}
    mode = env.get("MONITOR_MAIL_MODE")
    if mode:
        if mode not in ("file", "smtp"):
            problems.append(Problem("MONITOR_MAIL_MODE", None, "", "must be file or smtp", mode, True))
        else:
            update["mode"] = mode
    if problems:
        raise Invalid(problems)
    if smtp:
        update["smtp"] = mail.smtp.model_copy(update=smtp)
    return mail.model_copy(update=update) if update else mail
