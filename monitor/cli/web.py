"""CLI commands for rectification and the web pages: `monitor cases open`, `monitor link`,
`monitor user add|disable`, `monitor secret`, `monitor web`."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, fail, make_app


@click.group("cases")
def cases_group() -> None:
    """Warning cases: the units' answers and the bureau's reviews."""


@cases_group.command("open")
@checkpoint_option
@common
def cases_open(checkpoint: Any, config: str | None, rules_dir: str | None) -> None:
    """Open a case for each yellow/red project of a checkpoint's stored results and resolve earlier
    cases whose project is green now (safe to repeat)."""
    from monitor.cases.store import open_and_resolve

    app = make_app(config, rules_dir)
    with app.engine.begin() as conn:
        counts = open_and_resolve(conn, str(checkpoint), app.clock(), time_zone=app.settings.time_zone)
    click.echo(
        f"{checkpoint}: {counts.opened} case(s) opened, {counts.already_open} already open, "
        f"{counts.resolved} earlier case(s) resolved"
    )


@click.command("link")
@click.option("--unit", "unit_code", required=True, help="Unit code.")
@click.option("--department", is_flag=True, help="The unit is a supervising department: its review page.")
@checkpoint_option
@common
def link(
    unit_code: str, department: bool, checkpoint: Any, config: str | None, rules_dir: str | None
) -> None:
    """Print the signed link to a unit's page for a checkpoint (expires after web.link_days), or with
    --department to the review page of the department the unit is (/d/)."""
    from monitor.core.links import Scope, department_link, unit_link
    from monitor.db.inputs import load_units

    app = make_app(config, rules_dir)
    secret = app.settings.web_secret
    if not secret:
        fail([f"set the environment variable {app.settings.web.secret_env} to a long random secret"])
    with app.engine.connect() as conn:
        if unit_code not in load_units(conn):
            fail([f"unknown unit: {unit_code}"])
    if department:
        click.echo(department_link(app.settings.web.base_url, secret, unit_code, str(checkpoint)))
        return
    click.echo(unit_link(app.settings.web.base_url, secret, Scope(unit_code, str(checkpoint))))


@click.group("user")
def user_group() -> None:
    """Bureau users of the web board."""


@user_group.command("add")
@click.argument("name")
@common
def user_add(name: str, config: str | None, rules_dir: str | None) -> None:
    """Create a board user (or set a new password); the password is asked for twice."""
    from monitor.web.auth import add_user

    app = make_app(config, rules_dir)
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.engine.begin() as conn:
        add_user(conn, name, password, app.clock())  # BadUser for a bad name or password: exit 1
    click.echo(f"user {name} saved (any session it had is ended)")


@user_group.command("disable")
@click.argument("name")
@common
def user_disable(name: str, config: str | None, rules_dir: str | None) -> None:
    """Refuse a board user's logins and end every session it has (`monitor user add NAME` with a new
    password enables it again)."""
    from monitor.web.auth import disable_user

    app = make_app(config, rules_dir)
    with app.engine.begin() as conn:
        if not disable_user(conn, name):
            fail([f"unknown user: {name}"])
    click.echo(f"user {name} disabled, its sessions ended")


@click.command("secret")
def secret() -> None:
    """Print a new random secret for MONITOR_WEB_SECRET (48 random bytes, URL-safe)."""
    import secrets

    click.echo(secrets.token_urlsafe(48))


@click.command("web")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: web.port).")
@common
def web(port: int | None, config: str | None, rules_dir: str | None) -> None:
    """Serve the unit pages and the bureau board on web.host (127.0.0.1 by default)."""
    import uvicorn

    from monitor.core import logs
    from monitor.web.app import create_app

    app = make_app(config, rules_dir)
    asgi = create_app(app)  # MissingSecret: exit 1 saying what to set
    settings = app.settings.web
    logs.setup("text")  # every line masks unit link tokens, uvicorn's access log included
    uvicorn.run(
        asgi,
        host=settings.host,
        port=port or settings.port,
        log_config=None,
        log_level="info",
        proxy_headers=False,  # forwarded headers: only from web.trusted_proxies (create_app)
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (cases_group, link, user_group, secret, web):
        group.add_command(command)
