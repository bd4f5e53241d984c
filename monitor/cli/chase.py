"""CLI for the follow-up of unanswered warnings: `monitor chase` runs a reminder (催办) or escalation
(督办) round by hand, as the service does on schedule, or lists each case's follow-up steps."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, make_app, print_delivery


@click.command("chase")
@checkpoint_option
@click.option(
    "--escalate", is_flag=True, help="The escalation round (督办) instead of the reminder round (催办)."
)
@click.option("--list", "show", is_flag=True, help="Only list the unanswered cases and their steps.")
@click.option("--no-send", is_flag=True, help="Queue the messages without delivering them.")
@common
def chase_command(
    checkpoint: Any, escalate: bool, show: bool, no_send: bool, config: str | None, rules_dir: str | None
) -> None:
    """Remind the units that have not answered a checkpoint's warnings by their deadline (催办), or
    with --escalate tell their supervising departments and the bureau (督办). Only cases whose day
    has come are followed up, and none twice: safe to repeat, and alongside `monitor serve`."""
    from monitor.notify import chase

    app = make_app(config, rules_dir)
    if show:
        _list(app, str(checkpoint))
        return
    templates = app.templates()  # broken templates: exit 1, every problem told
    step = "escalate" if escalate else "chase"
    done = chase.follow_up(app.engine, app.settings, templates, checkpoint, step, app.clock)
    word = "escalated (督办)" if escalate else "reminded (催办)"
    click.echo(f"{checkpoint}: {done.cases} case(s) {word}, {len(done.queued)} message(s) queued")
    if done.waiting:
        when = f", the first on {done.next_day.isoformat()}" if done.next_day else ""
        click.echo(f"{done.waiting} unanswered case(s) not yet due{when}")
    if done.queued and not no_send:
        print_delivery(app, app.send())
    elif done.queued:
        click.echo("not sent (--no-send): deliver them with `monitor send`")


def _list(app: Any, checkpoint: str) -> None:
    from zoneinfo import ZoneInfo

    from monitor.cases.deadlines import FollowUpRule
    from monitor.cases.rectification import STATE_WORD, State
    from monitor.notify import chase

    tz = ZoneInfo(app.settings.time_zone)
    today = chase.local_day(app.clock(), tz)
    rule = FollowUpRule.of(app.settings.notifications)
    with app.engine.connect() as conn:
        cases = chase.load_cases(conn, checkpoint, today, tz)
        steps = chase.history(conn, [c.id for c in cases])
    if not cases:
        click.echo(f"{checkpoint}: no unanswered case")
        return
    for c in cases:
        standing = "" if c.stands else "（预警已不成立，不再跟进）"
        click.echo(
            f"{c.unit_code} {c.project_code} {c.project_name} [{c.light or '-'}] {STATE_WORD[State(c.state)]}"
            f"{standing}: deadline {rule.response_deadline(c.opened_on)}, "
            f"reminder {rule.chase_day(c.opened_on)}, escalation {rule.escalate_day(c.opened_on)}"
        )
        for s in steps.get(c.id, []):
            at = chase.local_day(s["at"], tz)
            message = f" (message #{s['outbox_id']})" if s["outbox_id"] else ""
            click.echo(f"    {at} {s['kind']}{message}: {s['detail'] or ''}")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    group.add_command(chase_command)
