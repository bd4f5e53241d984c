"""The thin command line: parse arguments, build the App from --config/--rules, call one function,
print the outcome. Heavy modules are imported inside commands so `monitor --help` stays fast.
Exit status: 0 ok, 1 bad input or failed check (every problem printed), 2 usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from monitor.app import App
    from monitor.core.summary import Summary

F = TypeVar("F", bound=Callable[..., Any])


def common(f: F) -> F:
    """--config and --rules, accepted by every command."""
    f = click.option(
        "--rules",
        "rules_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Rules folder (default: rules_dir in config.yaml).",
    )(f)
    f = click.option(
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="config.yaml (default: $MONITOR_CONFIG, else ./config.yaml).",
    )(f)
    return f


def fail(lines: list[str], code: int = 1) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def make_app(config: str | None, rules_dir: str | None) -> App:
    from monitor.app import App
    from monitor.config.settings import config_path, load_settings
    from monitor.config.yamlfile import Invalid

    try:
        return App(load_settings(config_path(config), rules_dir))
    except Invalid as exc:
        fail([str(p) for p in exc.problems])


def parse_checkpoint(_ctx: Any, _param: Any, value: str | None) -> Any:
    from monitor.core.model import Checkpoint

    if value is None:
        return None
    try:
        return Checkpoint.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


checkpoint_option = click.option(
    "--checkpoint", required=True, callback=parse_checkpoint, help="Checkpoint month YYYY-MM, e.g. 2025-05."
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="budget-monitor")
def main() -> None:
    """budget-monitor: 预算绩效运行监控（双监控）green/yellow/red warnings at each checkpoint."""


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--errors",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every problem to this file (default: a temporary file when there are more than 50).",
)
@common
def import_cmd(paths: tuple[str, ...], errors: str | None, config: str | None, rules_dir: str | None) -> None:
    """Import units, projects, indicators and reports from CSV/XLSX files or folders (one transaction)."""
    from monitor.ingest.importer import ImportFailed, import_paths, problem_report

    app = make_app(config, rules_dir)
    warnings: list[str] = []
    try:
        counts = import_paths(app.engine, [Path(p) for p in paths], app.clock(), warnings)
    except ImportFailed as exc:
        fail(problem_report(exc.problems, Path(errors) if errors else None))
    click.echo("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for line in warnings:
        click.echo(f"warning: {line}", err=True)


@main.command()
@common
def check(config: str | None, rules_dir: str | None) -> None:
    """Validate config.yaml and every rule file; print OK or every file:line error."""
    from monitor.tools.ruletests import default_files

    app = make_app(config, rules_dir)
    results = app.check()
    rule_tests = {str(p) for p in default_files(app.settings.rules_dir)}
    bad = 0
    for path, problems in results.items():
        if problems:
            bad += len(problems)
            for p in problems:
                click.echo(str(p))
        elif path in rule_tests:  # their cases are run by test-rules, not here
            click.echo(f"{path}: syntax OK (run `monitor test-rules` to run its cases)")
        else:
            click.echo(f"{path}: OK")
    if bad:
        fail([f"{bad} error(s)"])


@main.command()
@checkpoint_option
@click.option(
    "--no-send", is_flag=True, help="Queue the messages but do not deliver them (`monitor send` does)."
)
@click.option(
    "--rules-version",
    type=click.Choice(["current", "used"]),
    default="current",
    show_default=True,
    help="Evaluate with the rules folder now, or with the exact rules the checkpoint's last run used.",
)
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="If the checkpoint is being run (by the service or another command), wait this long for that"
    " run to end instead of stopping at once.",
)
@common
def run(
    checkpoint: Any,
    no_send: bool,
    rules_version: str,
    wait: float,
    config: str | None,
    rules_dir: str | None,
) -> None:
    """Evaluate a checkpoint, store its results, queue and send the warning e-mails.

    Re-running replaces the results and keeps a record of each run; units whose results did not
    change hear nothing again. One run of a checkpoint at a time: while another runs it, this one
    stops (exit 1, nothing written) or, with --wait, waits for it."""
    app = make_app(config, rules_dir)
    outcome = run_with_progress(app, checkpoint, send=not no_send, rules_version=rules_version, wait=wait)
    print_summary(outcome.summary, outcome.run_id, outcome.rules_hash)
    print_mail(app, outcome.queued, outcome.delivery, sent=not no_send)


def run_with_progress(
    app: App, checkpoint: Any, send: bool, rules_version: str = "current", wait: float = 0
) -> Any:
    from rich.progress import Progress

    from monitor.config.yamlfile import Invalid
    from monitor.db.claims import Busy, Holder
    from monitor.notify.digests import ResultsChanged
    from monitor.notify.render import TemplateErrors
    from monitor.pipeline import QueuedMeanwhile

    def waiting(holder: Holder) -> None:
        since = holder.since.astimezone().isoformat(timespec="seconds")
        click.echo(f"waiting for the run of {checkpoint} by {holder.owner} (since {since}) to end…", err=True)

    try:
        app.rules() if rules_version == "current" else app.rules_used(checkpoint)
        app.templates()
    except (Invalid, TemplateErrors) as exc:
        fail([str(p) for p in exc.problems])
    except LookupError as exc:
        fail([str(exc.args[0]) if exc.args else str(exc)])
    try:
        with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task(f"evaluating {checkpoint}", total=None)
            return app.run(
                checkpoint,
                lambda done, total: bar.update(task, completed=done, total=total),
                send=send,
                rules_version=rules_version,
                wait=wait,
                on_wait=waiting,
            )
    except Busy as exc:
        again = f"wait for it with `monitor run --checkpoint {checkpoint} --wait SECONDS`"
        fail([f"{exc}: nothing was written ({'waited ' + f'{wait:g} s; ' if wait else ''}{again})"])
    except (QueuedMeanwhile, ResultsChanged) as exc:
        fail([str(exc)])


def complete_runs(app: App) -> None:
    """Complete the runs a stopped process left between storing results and queueing messages."""
    from collections import Counter

    from monitor.notify.render import TemplateErrors

    try:
        done = app.complete_runs()
    except TemplateErrors as exc:
        click.echo("runs left unfinished cannot be completed until the templates are fixed:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        return
    for c in done:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(Counter(q["kind"] for q in c.queued).items()))
        queued = f"{len(c.queued)} message(s) queued ({kinds or 'none'})"
        click.echo(
            f"completed run #{c.run_id} of {c.checkpoint}, left unfinished by a stopped process: {queued}"
        )


def print_mail(app: App, queued: list[dict[str, Any]], delivery: Any, sent: bool) -> None:
    from collections import Counter

    kinds = Counter(q["kind"] for q in queued)
    if not queued:
        click.echo("messages: none new (results unchanged since the last run of this checkpoint)")
    else:
        words = {
            "warning": "warning digests",
            "reminder": "reminders",
            "overdue": "overdue notices",
            "summary": "bureau summary",
            "all_clear": "all-clear",
        }
        click.echo(
            "messages queued: " + ", ".join(f"{n} {words.get(k, k)}" for k, n in sorted(kinds.items()))
        )
    if sent:
        print_delivery(app, delivery)
    elif queued:
        click.echo("not sent (--no-send): deliver them with `monitor send`")


def print_delivery(app: App, delivery: Any) -> None:
    kinds = ("sent", "partial", "retry", "failed", "released")
    parts = [f"{k} {delivery[k]}" for k in kinds if delivery.get(k)]
    click.echo("delivery: " + (", ".join(parts) if parts else "nothing pending"))
    if app.settings.mail.mode == "file":
        click.echo(f"e-mails written as .eml files to: {app.settings.mail_dir}")
    if delivery.get("failed") or delivery.get("retry") or delivery.get("partial"):
        click.echo(
            "see `monitor outbox --status failed` / `--status partial` / `--status pending` for the errors",
            err=True,
        )


@main.command()
@common
def send(config: str | None, rules_dir: str | None) -> None:
    """Deliver every pending message (and messages a stopped process left half-sent)."""
    import signal
    import threading

    app = make_app(config, rules_dir)
    complete_runs(app)
    stop = threading.Event()  # SIGTERM/SIGINT: send nothing new, put the claimed messages back, exit
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        delivery = app.send(stop.is_set)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print_delivery(app, delivery)
    if stop.is_set():
        click.echo("stopped by a signal: messages not sent are back in the queue (`monitor send` again)")
        sys.exit(1)
    if delivery.get("failed") or delivery.get("partial"):
        sys.exit(1)


@main.group(invoke_without_command=True)
@click.option(
    "--status", type=click.Choice(["pending", "sending", "sent", "failed", "partial"]), default=None
)
@common
@click.pass_context
def outbox(ctx: click.Context, status: str | None, config: str | None, rules_dir: str | None) -> None:
    """List queued messages with their status and errors (`monitor outbox retry` re-queues)."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    app = make_app(config, rules_dir)
    rows = app.outbox(status)
    t = Table()
    for col in (
        "id",
        "checkpoint",
        "kind",
        "reason",
        "unit",
        "status",
        "attempts",
        "recipients",
        "last error",
    ):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["id"]),
            r["checkpoint"],
            r["kind"],
            r["reason"],
            r["unit_code"] or "-",
            r["status"],
            str(r["attempts"]),
            recipients_cell(r),
            r["last_error"] or "",
        )
    console().print(t)
    click.echo(f"{len(rows)} message(s)")


def recipients_cell(message: dict[str, Any]) -> str:
    """The recipients of a message; where the server answered for them one by one, each one's state."""
    states = message["recipient_states"]
    if not states:
        return str(message["recipients"]).replace(";", "; ")
    return "\n".join(
        f"{address}: {status}" + (f" ({answer})" if answer and status != "sent" else "")
        for address, status, answer in states
    )


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option(
    "--failed",
    "all_failed",
    is_flag=True,
    help="Re-queue every failed message and every recipient refused for good.",
)
@common
def outbox_retry(ids: tuple[int, ...], all_failed: bool, config: str | None, rules_dir: str | None) -> None:
    """Put failed messages back in the queue (then `monitor send`); a message delivered in part goes
    again to the recipients that refused it alone."""
    if not ids and not all_failed:
        raise click.UsageError("give message ids or --failed")
    app = make_app(config, rules_dir)
    n = app.retry(None if all_failed else list(ids))
    click.echo(f"re-queued {n} message(s); deliver them with `monitor send`")


@main.command()
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--clock-start", default=None, hidden=True, help="Rehearsal/testing: start the service clock here (ISO)."
)
@click.option(
    "--instance", default=None, help="This instance's name (default: service.instance_name, else the host)."
)
@common
def serve(
    log_format: str, clock_start: str | None, instance: str | None, config: str | None, rules_dir: str | None
) -> None:
    """Run as a background service: checkpoints and reminders on schedule, deliveries, safe reloads.

    SIGTERM/SIGINT stop it cleanly; SIGHUP (or a changed rule, template or config file) reloads."""
    import datetime as dt

    from monitor.app import utc_now
    from monitor.config.settings import config_path
    from monitor.config.yamlfile import Invalid
    from monitor.core import logs
    from monitor.notify.render import TemplateErrors
    from monitor.service.runner import Service, fixed_start_clock

    logs.setup(log_format)
    clock = utc_now
    if clock_start:
        clock = fixed_start_clock(dt.datetime.fromisoformat(clock_start).astimezone(dt.UTC))
    try:
        service = Service(config_path(config), rules_dir, clock, name=instance)
    except (Invalid, TemplateErrors) as exc:
        fail([str(p) for p in exc.problems])
    sys.exit(service.serve_forever())  # waits for the database, unhealthy on /healthz meanwhile


@main.command()
@common
def status(config: str | None, rules_dir: str | None) -> None:
    """The service at a glance: next duties, last runs, outbox, last reload.

    Exit status 1 when something needs attention (a failed delivery, a missed run, a rejected reload)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from monitor.core import logs
    from monitor.service.status import as_text, build

    app = make_app(config, rules_dir)
    try:
        report = build(app.engine, app.settings, app.clock())
    except (OperationalError, InterfaceError) as exc:
        fail([f"database unreachable: {app.settings.redacted_url()}: {logs.one_line(exc)}"])
    for line in as_text(report, app.settings.redacted_url()):
        click.echo(line)
    if report.attention:
        fail(["needs attention:", *(f"  - {a}" for a in report.attention)])
    click.echo("all well")


@main.group()
def db() -> None:
    """Database schema: migrations (Alembic) that never lose data."""


@db.command("upgrade")
@common
def db_upgrade(config: str | None, rules_dir: str | None) -> None:
    """Apply pending schema migrations (safe to run while other instances are up; they take turns)."""
    from monitor.db import migrate, store

    app = make_app(config, rules_dir)
    engine = store.make_engine(app.settings.database_url)
    try:
        applied = migrate.upgrade(engine)
    except migrate.MigrationError as exc:
        fail([str(exc)])
    click.echo(f"database: {app.settings.redacted_url()}")
    click.echo(("applied: " + ", ".join(applied)) if applied else "already up to date")
    click.echo(f"schema revision: {migrate.current(engine)}")


@main.command("preview-mail")
@checkpoint_option
@click.option("--unit", default=None, help="Only this unit's messages.")
@click.option("--out", type=click.Path(file_okay=False), default="mail-preview", show_default=True)
@common
def preview_mail(
    checkpoint: Any, unit: str | None, out: str, config: str | None, rules_dir: str | None
) -> None:
    """Write the messages of a checkpoint as .eml and .html files, without queueing anything."""
    app = make_app(config, rules_dir)
    if not app_has_run(app, checkpoint):
        fail([f"no results for {checkpoint}: run `monitor run --checkpoint {checkpoint} --no-send` first"])
    from monitor.notify.render import TemplateErrors, TemplateProblem

    try:
        written = app.preview_mail(checkpoint, Path(out), unit)
    except TemplateErrors as exc:
        fail([str(p) for p in exc.problems])
    except TemplateProblem as exc:
        fail([str(exc)])
    click.echo(f"wrote {len(written)} message(s) to {Path(out).resolve()}")


def print_summary(s: Summary, run_id: int | None = None, rules_hash: str | None = None) -> None:
    from rich.table import Table

    from monitor.core.wording import percent_nd, wan

    out = console()
    title = f"检查点 {s.checkpoint}：{s.projects} 个项目，预算 {wan(s.budget)}"
    if run_id is not None:
        title += f"（run {run_id}，rules {rules_hash and rules_hash[:12]}）"
    t = Table(title=title)
    for col in ("灯色 light", "项目数 projects", "预算 budget", "占比 share"):
        t.add_column(col, justify="right")
    for key, label in (
        ("green", "绿 green"),
        ("yellow", "黄 yellow"),
        ("red", "红 red"),
        ("not_reported", "未报送 not reported"),
    ):
        share = percent_nd(s.count[key], s.projects) if s.projects else "-"
        t.add_row(label, str(s.count[key]), wan(s.amount[key]), share)
    out.print(t)
    worst = s.worst_units(10)
    if worst:
        w = Table(title="红黄灯最多的单位 · units with the most red/yellow projects")
        for col in ("单位编码", "单位名称", "红", "黄", "绿", "未报送"):
            w.add_column(col)
        for u in worst:
            w.add_row(u.unit_code, u.unit_name, str(u.red), str(u.yellow), str(u.green), str(u.not_reported))
        out.print(w)


@main.command()
@checkpoint_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option("--unit", default=None, help="Only this unit's projects.")
@click.option(
    "--light",
    type=click.Choice(["green", "yellow", "red", "not_reported"]),
    default=None,
    help="Only projects with this light (not_reported: 未报送).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write to a file (CSV gets a BOM for Excel)."
)
@common
def results(
    checkpoint: Any,
    fmt: str,
    unit: str | None,
    light: str | None,
    out: str | None,
    config: str | None,
    rules_dir: str | None,
) -> None:
    """Show the stored results of a checkpoint as a table, JSON or CSV."""
    from monitor.app import results_csv, results_json

    app = make_app(config, rules_dir)
    rows = app.results(checkpoint, unit, light)
    if not rows and not app_has_run(app, checkpoint):
        fail([f"no results for checkpoint {checkpoint}: run `monitor run --checkpoint {checkpoint}` first"])
    if fmt == "json":
        text = results_json(rows) + "\n"
    elif fmt == "csv":
        text = results_csv(rows)
    else:
        from monitor.cases.exemptions import active, local_day

        with app.engine.connect() as conn:
            exempt = active(conn, local_day(app.clock(), app.settings.time_zone))
        print_results_table(rows, exempt)
        return
    if out:
        Path(out).write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="")
        click.echo(f"wrote {len(rows)} project(s) to {out}", err=True)
    else:
        click.echo(text, nl=False)


def app_has_run(app: App, checkpoint: Any) -> bool:
    from monitor.db import store

    with app.engine.connect() as conn:
        return bool(store.runs(conn, str(checkpoint)))


def console() -> Any:
    """A rich console; when output is not a terminal (a pipe, a file) lines are not wrapped at 80."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=240)


def print_results_table(rows: list[dict[str, Any]], exempt: Collection[str] = ()) -> None:
    """The results as a table; a project in `exempt` (exempted from warnings today) is marked 已豁免."""
    from rich.table import Table

    from monitor.core.wording import percent, progress

    colours = {"green": "green", "yellow": "yellow", "red": "red"}
    words = {"green": "绿", "yellow": "黄", "red": "红", "blue": "蓝"}
    t = Table()
    for col in ("项目编码", "项目名称", "单位", "执行率", "序时", "预算灯", "目标灯", "项目灯"):
        t.add_column(col)
    for r in rows:
        rate = percent(r["execution_rate"]) or "-"
        t.add_row(
            r["project_code"],
            r["project_name"],
            r["unit_code"],
            rate,
            progress(r["time_progress"]),
            words.get(r["budget_light"], "-"),
            words.get(r["target_light"], "-"),
            f"[{colours.get(r['light'], 'dim')}]{words.get(r['light'], '未报送')}[/]"
            + ("（已豁免）" if r["project_code"] in exempt else ""),
        )
    console().print(t)


@main.command()
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="Folder to write the CSV files into."
)
@click.option("--projects", type=click.IntRange(min=1), default=2450, show_default=True)
@click.option("--seed", type=int, default=2025, show_default=True)
@click.option("--year", type=int, default=2025, show_default=True)
@click.option(
    "--may-only", is_flag=True, help="Only the May reports (what the bureau holds at its May checkpoint)."
)
def sample(out: str, projects: int, seed: int, year: int, may_only: bool) -> None:
    """Write a realistic prefecture dataset (units, projects, indicators, May and August reports)."""
    from monitor.tools.sample import write_sample

    paths = write_sample(Path(out), projects=projects, seed=seed, year=year, may_only=may_only)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="demo",
    show_default=True,
    help="Folder for the sample data.",
)
@click.option("--projects", type=click.IntRange(min=1), default=2450, show_default=True)
@click.option("--year", type=int, default=2025, show_default=True)
@common
def demo(out: str, projects: int, year: int, config: str | None, rules_dir: str | None) -> None:
    """The main job on the embedded defaults: sample data → import → May and August checkpoints →
    summary, warning e-mails (.eml files in mail mode `file`) and the reports of the last checkpoint."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from monitor.app import App
    from monitor.core.model import Checkpoint
    from monitor.ingest.importer import ImportFailed
    from monitor.notify.messages import response_link
    from monitor.service.runner import fixed_start_clock
    from monitor.service.schedule import scheduled_run
    from monitor.tools.demoweb import local_web, warned_unit
    from monitor.tools.sample import write_sample

    web = local_web(make_app(config, rules_dir).settings, Path(out))
    app = App(web.settings)  # its e-mails carry links the local `monitor web` opens (monitor.tools.demoweb)
    click.echo(f"database: {app.settings.redacted_url()}")
    paths = write_sample(Path(out), projects=projects, year=year)
    click.echo(f"sample data: {Path(out).resolve()}")
    try:
        counts = app.import_paths(list(paths.values()))
    except ImportFailed as exc:
        fail([str(p) for p in exc.problems])
    click.echo("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for month in app.settings.checkpoint_months:
        # on the sample year's calendar: each checkpoint run at its scheduled time, so its mail is dated then
        at = scheduled_run(app.settings.schedule, Checkpoint(year, month), ZoneInfo(app.settings.time_zone))
        app.clock = fixed_start_clock(at.astimezone(dt.UTC))
        click.echo(f"checkpoint {year}-{month:02d} run as scheduled, at {at.isoformat(' ', 'minutes')}")
        outcome = run_with_progress(app, Checkpoint(year, month), send=True)
        print_summary(outcome.summary, outcome.run_id, outcome.rules_hash)
        print_mail(app, outcome.queued, outcome.delivery, sent=True)
    from monitor.reports import write_reports

    last = Checkpoint(year, app.settings.checkpoint_months[-1])
    for path in write_reports(app, last, Path("reports")):
        click.echo(f"report: {path.resolve()}")
    click.echo(f"web pages (units answer their warnings there): {web.start_command()}")
    unit = warned_unit(app.engine, str(last))
    if unit:
        link = response_link(app.settings, unit, str(last))
        click.echo(f"  then open unit {unit}'s link from its e-mail: {link}")


def _register_extensions() -> None:
    """Commands kept in their own modules (each imports its heavy parts lazily)."""
    from monitor.cli import exempt as cli_exempt
    from monitor.cli import reports as cli_reports
    from monitor.cli import rules as cli_rules
    from monitor.cli import web as cli_web

    cli_rules.register(main)
    cli_reports.register(main)
    cli_web.register(main)
    cli_exempt.register(main)
    from monitor.cli import chase as cli_chase

    cli_chase.register(main)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    main()
