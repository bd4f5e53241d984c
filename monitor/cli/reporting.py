"""The bureau's decisions on a checkpoint's reporting from the command line: `monitor reporting extend`
gives a unit a later report deadline (延期) with a reason, `monitor reporting reopen` opens a submitted
or approved report again for its unit (monitor.ingest.extensions). Both recorded with who and why."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, make_app


def _who() -> str:
    return f"cli:{getpass.getuser()}"[:64]


@click.group("reporting")
def reporting() -> None:
    """Units' reporting (填报): extend a unit's deadline, open a submitted report again."""


@reporting.command("extend")
@checkpoint_option
@click.option("--unit", "unit_code", required=True, help="The unit whose deadline is extended.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), required=True, help="Its new deadline.")
@click.option("--reason", required=True, help="Why (recorded and shown).")
@common
def extend(
    checkpoint: Any,
    unit_code: str,
    until: dt.datetime,
    reason: str,
    config: str | None,
    rules_dir: str | None,
) -> None:
    """Give one unit a later report deadline at a checkpoint (延期): its 催报 and its reporting notice name
    it, and it is not 逾期 until it has passed."""
    from monitor.ingest.extensions import extend as grant
    from monitor.notify.messages import report_deadline

    app = make_app(config, rules_dir)
    deadline = report_deadline(app.settings, checkpoint)
    with app.engine.begin() as conn:
        done = grant(conn, str(checkpoint), unit_code, until.date(), deadline, reason, _who(), app.clock())
    moved = f"{deadline.isoformat()} → {done.until.isoformat()}"
    click.echo(f"unit {done.unit_code}: report deadline {moved} ({done.reason})")


@reporting.command("reopen")
@checkpoint_option
@click.option("--project", "project_code", required=True, help="The project whose report is opened again.")
@click.option("--reason", required=True, help="Why (shown to the unit on its page).")
@common
def reopen(
    checkpoint: Any, project_code: str, reason: str, config: str | None, rules_dir: str | None
) -> None:
    """Open a submitted or approved report again (重新打开): the unit can change it and submit it again."""
    from monitor.ingest.extensions import reopen as open_again

    app = make_app(config, rules_dir)
    with app.engine.begin() as conn:
        open_again(conn, str(checkpoint), project_code, reason, _who(), app.clock())
    click.echo(f"{project_code} at {checkpoint}: opened again for its unit ({reason.strip()})")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    group.add_command(reporting)
