"""The official monitoring forms by file: `monitor forms` writes one workbook per unit, one sheet per
project, in the layout of 《项目支出绩效目标执行监控表》(monitor.ingest.form_write), pre-filled with what
is known; the units fill them in and `monitor import` reads them back (monitor.ingest.form_read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, fail, make_app


@click.command("forms")
@checkpoint_option
@click.option("--unit", "unit_code", default=None, help="Only this unit's forms (default: every unit).")
@click.option(
    "--out", type=click.Path(file_okay=False), required=True, help="The folder to write the workbooks into."
)
@common
def forms(
    checkpoint: Any, unit_code: str | None, out: str, config: str | None, rules_dir: str | None
) -> None:
    """Write the monitoring forms (项目支出绩效目标执行监控表) of a checkpoint: one workbook per unit, one
    sheet per project, pre-filled; bring them back with `monitor import FOLDER`."""
    from monitor.db.inputs import load_units
    from monitor.ingest.form_write import write_forms

    app = make_app(config, rules_dir)
    if unit_code is not None:
        with app.engine.connect() as conn:
            if unit_code not in load_units(conn, [unit_code]):
                fail([f"单位编码 {unit_code} 不存在（unknown unit）"])
    written = write_forms(app.engine, str(checkpoint), Path(out), unit_code)
    if not written:
        which = f" (unit {unit_code})" if unit_code else ""
        fail([f"no project to write a form for{which}: import projects first"])
    for path in written:
        click.echo(str(path))
    click.echo(f"wrote {len(written)} workbook(s) to {out}; 填写后用 `monitor import {out}` 导入", err=True)


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    group.add_command(forms)
