"""CLI commands for reports: `monitor report --checkpoint YYYY-MM --format xlsx|html [--out PATH]` writes
the Excel warning list or the HTML checkpoint report of stored results and prints the file's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    from monitor.cli.main import checkpoint_option, common, fail, make_app

    @main.command()
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
        from monitor.reports import Format, default_name, write_report
        from monitor.reports.data import NoResults

        app = make_app(config, rules_dir)
        kind: Format = "xlsx" if fmt == "xlsx" else "html"
        path = Path(out) if out else Path("reports") / default_name(kind, checkpoint)
        from monitor.notify.render import TemplateErrors

        try:
            written = write_report(app, checkpoint, kind, path)
        except NoResults as exc:
            fail([str(exc)])
            return
        except TemplateErrors as exc:  # an admin's report template that fails or reaches outside the sandbox
            fail([str(p) for p in exc.problems])
            return
        click.echo(str(written))
