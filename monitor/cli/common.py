"""What every command module shares: the --config/--rules and --checkpoint options, building the App,
stopping with messages, the rich console, and the delivery line that `run`, `send` and `chase` print.
Command modules import this and the stages they call, never each other or `monitor.cli.main`. Heavy
modules are imported inside functions so `monitor --help` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from monitor.app import App

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
    """Print `lines` on stderr and exit with `code`."""
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def make_app(config: str | None, rules_dir: str | None) -> App:
    """The App of --config and --rules (a bad config.yaml is a BadInput: exit 1, every problem told)."""
    from monitor.app import App
    from monitor.config.settings import config_path, load_settings

    return App(load_settings(config_path(config), rules_dir))


def parse_checkpoint(_ctx: Any, _param: Any, value: str | None) -> Any:
    from monitor.core.model import Checkpoint

    if value is None:
        return None
    try:
        return Checkpoint.parse(value)
    except ValueError as exc:  # only the parse of this one value: a usage error, exit 2
        raise click.BadParameter(str(exc)) from exc


def rules_version_option(name: str, help: str) -> Callable[[F], F]:
    """`current` (the rules folder now) or `used` (the rules the checkpoint's last run used)."""
    choice = click.Choice(["current", "used"])
    return click.option(name, type=choice, default="current", show_default=True, help=help)


checkpoint_option = click.option(
    "--checkpoint", required=True, callback=parse_checkpoint, help="Checkpoint month YYYY-MM, e.g. 2025-05."
)


def console() -> Any:
    """A rich console; when output is not a terminal (a pipe, a file) lines are not wrapped at 80."""
    from rich.console import Console

    c = Console()
    return c if c.is_terminal else Console(width=240)


def app_has_run(app: App, checkpoint: Any) -> bool:
    from monitor.db.results import runs

    with app.engine.connect() as conn:
        return bool(runs(conn, str(checkpoint)))


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
