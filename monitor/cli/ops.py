"""Operating the service and its database (what an admin does to keep it running): `monitor check`
validates config, rules and templates, `monitor serve` runs the service, `monitor status` shows it at a
glance, `monitor db upgrade` migrates the schema, `monitor db archive` moves earlier years into a file.
"""

from __future__ import annotations

import sys

import click

from monitor.cli.common import common, fail, make_app


@click.command()
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


@click.command()
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
    from monitor.core import logs
    from monitor.service.runner import Service, fixed_start_clock

    logs.setup(log_format)
    clock = utc_now
    if clock_start:
        clock = fixed_start_clock(dt.datetime.fromisoformat(clock_start).astimezone(dt.UTC))
    service = Service(config_path(config), rules_dir, clock, name=instance)  # bad config, rules: exit 1
    sys.exit(service.serve_forever())  # waits for the database, unhealthy on /healthz meanwhile


@click.command()
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


@click.group()
def db() -> None:
    """Database schema: migrations (Alembic) that never lose data."""


@db.command("upgrade")
@common
def db_upgrade(config: str | None, rules_dir: str | None) -> None:
    """Apply pending schema migrations (safe to run while other instances are up; they take turns)."""
    from monitor.db import migrate
    from monitor.db.engine import make_engine

    app = make_app(config, rules_dir)
    engine = make_engine(app.settings.database_url)
    applied = migrate.upgrade(engine)  # a MigrationError says why and what to do: exit 1
    click.echo(f"database: {app.settings.redacted_url()}")
    click.echo(("applied: " + ", ".join(applied)) if applied else "already up to date")
    click.echo(f"schema revision: {migrate.current(engine)}")


@db.command("archive")
@click.option("--before", type=int, required=True, help="Archive every checkpoint of a year before this one.")
@click.option(
    "--out", type=click.Path(), default=None, help="The archive file, or a folder for it (default: .)."
)
@click.option(
    "--dry-run", is_flag=True, help="Print what would be archived (per table and checkpoint); write nothing."
)
@common
def db_archive(
    before: int, out: str | None, dry_run: bool, config: str | None, rules_dir: str | None
) -> None:
    """Move the checkpoints of earlier years into one archive file (`monitor import` reads it back)."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from monitor.db import archive

    app = make_app(config, rules_dir)
    year = app.clock().astimezone(ZoneInfo(app.settings.time_zone)).year
    with app.engine.connect() as conn:
        refused = archive.refusals(conn, before, year)
        if refused:
            fail(["refused, nothing archived:", *(f"  - {r}" for r in refused)])
        planned = archive.plan(conn, before)
    for table, checkpoint, rows in planned:
        click.echo(f"{table:<26} {checkpoint:<8} {rows:>10}")
    if not planned:
        click.echo(f"nothing to archive before {before}")
        return
    if dry_run:
        click.echo("dry run: nothing written")
        return
    revisions = archive.revisions()
    now = app.clock().isoformat()
    path, members, existed = archive.write(
        app.engine, before, Path(out or "."), revisions[-1], revisions, now
    )
    click.echo(f"archive: {path} ({'already there, identical' if existed else 'written and verified'})")
    deleted = archive.drop(app.engine, before, members)
    click.echo("deleted: " + ", ".join(f"{t} {n}" for t, n in deleted.items() if n))
    click.echo(f"restore with: monitor import {path}")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (check, serve, status, db):
        group.add_command(command)
