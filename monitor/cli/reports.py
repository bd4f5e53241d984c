"""CLI commands for reports: `monitor report --checkpoint YYYY-MM --format xlsx|html [--out PATH]` writes
the Excel warning list or the HTML checkpoint report of stored results and prints the file's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, make_app


@click.command()
@checkpoint_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["xlsx", "html"]),
    default="xlsx",
    show_default=True,
    help="xlsx: the warning list (预警清单); html: the checkpoint report with charts (监控报告).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="File to write (default: reports/预警清单-YYYY-MM.xlsx or reports/监控报告-YYYY-MM.html).",
)
@common
def report(checkpoint: Any, fmt: str, out: str | None, config: str | None, rules_dir: str | None) -> None:
    """Write the Excel warning list or the HTML checkpoint report of a checkpoint that has been run."""
    from monitor.reports.write import Format, default_name, write_report

    app = make_app(config, rules_dir)
    kind: Format = "xlsx" if fmt == "xlsx" else "html"
    path = Path(out) if out else Path("reports") / default_name(kind, checkpoint)
    written = write_report(app, checkpoint, kind, path)  # not run, a broken report template: exit 1
    click.echo(str(written))


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    group.add_command(report)
