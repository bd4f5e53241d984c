"""A checkpoint's run and its mail (the main job, in the order an operator does it): `monitor run`
evaluates a checkpoint and queues and sends the warnings, `monitor send` delivers what is pending,
`monitor outbox` lists (and `outbox retry` re-queues) messages, `monitor preview-mail` writes them
without queueing, and `monitor demo` does all of it on sample data.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.common import (
    app_has_run,
    checkpoint_option,
    common,
    console,
    fail,
    make_app,
    print_delivery,
    rules_version_option,
)

if TYPE_CHECKING:
    from monitor.app import App
    from monitor.core.rows import OutboxEntry
    from monitor.core.summary import Summary


@click.command()
@checkpoint_option
@click.option(
    "--no-send", is_flag=True, help="Queue the messages but do not deliver them (`monitor send` does)."
)
@rules_version_option(
    "--rules-version",
    "Evaluate with the rules folder now, or with the exact rules the checkpoint's last run used.",
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

    from monitor.core.workdays import local_time
    from monitor.db.claims import Busy, Holder

    zone = app.settings.time_zone

    def waiting(holder: Holder) -> None:
        since = local_time(holder.since, zone)
        click.echo(f"waiting for the run of {checkpoint} by {holder.owner} (since {since}) to end…", err=True)

    app.rules() if rules_version == "current" else app.rules_used(checkpoint)  # bad rules, no run: exit 1
    app.templates()  # broken templates: exit 1, every problem told
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
        told = Busy.told(zone, exc.what, exc.holder)
        fail([f"{told}: nothing was written ({'waited ' + f'{wait:g} s; ' if wait else ''}{again})"])


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


def print_mail(app: App, queued: Sequence[Mapping[str, str | None]], delivery: Any, sent: bool) -> None:
    from collections import Counter

    kinds = Counter(q["kind"] for q in queued)
    if not queued:
        click.echo("messages: none new (results unchanged since the last run of this checkpoint)")
    else:
        words: dict[str | None, str] = {
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


@click.command()
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


@click.group(invoke_without_command=True)
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


def recipients_cell(message: OutboxEntry) -> str:
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


@click.command("preview-mail")
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
    written = app.preview_mail(checkpoint, Path(out), unit)  # a broken template: exit 1
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


@click.command()
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
    counts = app.import_paths(list(paths.values()))  # ImportFailed: every problem told, exit 1
    click.echo("imported: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for month in app.settings.checkpoint_months:
        # on the sample year's calendar: each checkpoint run at its scheduled time, so its mail is dated then
        at = scheduled_run(app.settings.schedule, Checkpoint(year, month), ZoneInfo(app.settings.time_zone))
        app.clock = fixed_start_clock(at.astimezone(dt.UTC))
        click.echo(f"checkpoint {year}-{month:02d} run as scheduled, at {at.isoformat(' ', 'minutes')}")
        outcome = run_with_progress(app, Checkpoint(year, month), send=True)
        print_summary(outcome.summary, outcome.run_id, outcome.rules_hash)
        print_mail(app, outcome.queued, outcome.delivery, sent=True)
    from monitor.reports.write import write_reports

    last = Checkpoint(year, app.settings.checkpoint_months[-1])
    for path in write_reports(app, last, Path("reports")):
        click.echo(f"report: {path.resolve()}")
    click.echo(f"web pages (units answer their warnings there): {web.start_command()}")
    unit = warned_unit(app.engine, str(last))
    if unit:
        link = response_link(app.settings, unit, str(last))
        click.echo(f"  then open unit {unit}'s link from its e-mail: {link}")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (run, send, outbox, preview_mail, demo):
        group.add_command(command)
