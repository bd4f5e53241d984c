"""The `monitor` command: the click group, every command module's commands registered on it, and the
one place errors become exit statuses.

Exit status: 0 ok; 1 bad input or a failed check (a MonitorError: its message(s) on stderr, nothing
else); 2 a usage error (click's); 3 a bug (any other exception: its traceback on stderr).
The commands live in modules by what an operator does: data.py (data in and out), run.py (a
checkpoint's run and its mail), ops.py (the service and the database), rules.py (rule tooling),
reports.py, exempt.py (exemptions, answers by file), chase.py (follow-up), web.py (cases, links, web),
forms.py (the official monitoring forms by file).
"""

from __future__ import annotations

import traceback
from typing import Any

import click

from monitor.cli import chase, data, exempt, forms, ops, reporting, reports, rules, run, web
from monitor.core.errors import MonitorError

BUG = 3  # exit status of an exception that is no MonitorError
_CLICKS_OWN = (click.ClickException, click.exceptions.Exit, click.Abort, EOFError)  # click handles these


class MonitorGroup(click.Group):
    """A group that turns a MonitorError into its message(s) and exit 1, and a bug into its traceback
    and exit 3 (never "bad input")."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(1)
        except _CLICKS_OWN:
            raise
        except Exception:
            click.echo(traceback.format_exc(), err=True, nl=False)
            click.echo("monitor: this is a bug, not a problem with your input: please report it", err=True)
            ctx.exit(BUG)


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="budget-monitor")
def main() -> None:
    """budget-monitor: 预算绩效运行监控（双监控）green/yellow/red warnings at each checkpoint."""


for _module in (data, run, ops, rules, reports, web, exempt, chase, forms, reporting):
    _module.register(main)

if __name__ == "__main__":  # pragma: no cover
    main()
