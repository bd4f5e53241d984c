"""CLI commands for exemptions and answers by file: `monitor exempt add|list|revoke`
(monitor.cases.exemptions)
and `monitor responses template` (the workbook units fill in and `monitor import` reads back,
monitor.ingest.responses). Arguments in, the work done by those modules, text out.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from monitor.cli.common import checkpoint_option, common, console, fail, make_app


def who() -> str:
    """The operator's login name, recorded with what they do."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # getpass.getuser alone: a uid without a passwd entry (Python 3.11)
        return "cli"


@click.group("exempt")
def exempt_group() -> None:
    """Exemptions (豁免): an exempted project is evaluated and listed but not warned and gets no case."""


@exempt_group.command("add")
@click.argument("project")
@click.option("--reason", required=True, help="Why, e.g. 预算调整已批准.")
@click.option("--approver", required=True, help="Who approved the exemption.")
@click.option("--until", "until", required=True, help="Last day it applies, YYYY-MM-DD (inclusive).")
@click.option("--by", "by", default=None, help="Who records it (default: your login name).")
@common
def exempt_add(
    project: str,
    reason: str,
    approver: str,
    until: str,
    by: str | None,
    config: str | None,
    rules_dir: str | None,
) -> None:
    """Exempt PROJECT (its code) from warnings through --until."""
    from monitor.cases import exemptions

    app = make_app(config, rules_dir)
    now = app.clock()
    try:
        with app.engine.begin() as conn:
            e = exemptions.add(
                conn,
                project,
                reason,
                approver,
                until,
                today=exemptions.local_day(now, app.settings.time_zone),
                now=now,
                created_by=by or who(),
            )
    except exemptions.ExemptionInvalid as exc:
        fail([*exc.problems, f"{len(exc.problems)} 个问题，未登记豁免。"])
    click.echo(
        f"已登记豁免 {e.id}：项目 {e.project_code} 至 {e.expires_on.isoformat()}（含当日）不预警、"
        "不立案；下次运行监控起生效。"
    )


@exempt_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired and revoked exemptions.")
@common
def exempt_list(show_all: bool, config: str | None, rules_dir: str | None) -> None:
    """List the exemptions in force (with --all: every exemption)."""
    from rich.table import Table

    from monitor.cases import exemptions

    app = make_app(config, rules_dir)
    today = exemptions.local_day(app.clock(), app.settings.time_zone)
    with app.engine.connect() as conn:
        rows = exemptions.listing(conn, today, include_ended=show_all)
    t = Table()
    for col in (
        "编号",
        "项目编码",
        "项目名称",
        "单位",
        "豁免理由",
        "批准人",
        "有效期至",
        "状态",
        "登记人",
    ):
        t.add_column(col)
    for r in rows:
        e, status = r.exemption, r.status_word
        if r.status == "revoked":
            status += f"（{e.revoked_by}）"
        t.add_row(
            str(e.id),
            e.project_code,
            r.project_name,
            r.unit_code,
            e.reason,
            e.approver,
            e.expires_on.isoformat(),
            status,
            e.created_by,
        )
    console().print(t)
    click.echo(f"{len(rows)} 项豁免" + ("" if show_all else "（有效；--all 显示全部）"))


@exempt_group.command("revoke")
@click.argument("exemption_id", metavar="ID", type=int)
@click.option("--by", "by", default=None, help="Who revokes it (default: your login name).")
@common
def exempt_revoke(exemption_id: int, by: str | None, config: str | None, rules_dir: str | None) -> None:
    """End exemption ID now: its project is warned again from the next run."""
    from monitor.cases import exemptions

    app = make_app(config, rules_dir)
    with app.engine.begin() as conn:  # an unknown or revoked exemption is bad input: exit 1
        e = exemptions.revoke(conn, exemption_id, now=app.clock(), by=by or who())
    click.echo(f"已撤销豁免 {e.id}（项目 {e.project_code}）；下次运行监控起恢复预警。")


@click.group("responses")
def responses_group() -> None:
    """Units' answers by file: `template` writes the workbook, `monitor import` reads it back."""


@responses_group.command("template")
@checkpoint_option
@click.option("--unit", "unit_code", default=None, help="Only this unit's cases (default: every unit).")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .xlsx file to write.")
@common
def responses_template(
    checkpoint: Any, unit_code: str | None, out: str, config: str | None, rules_dir: str | None
) -> None:
    """Write an Excel workbook of the cases waiting for an answer, ready for the units to fill in
    (dropdowns for the cause and the measure); bring it back with `monitor import FILE`."""
    from monitor.cases.exemptions import local_day
    from monitor.db.inputs import load_units
    from monitor.ingest.responses import waiting_cases, write_template

    if not out.lower().endswith(".xlsx"):
        fail([f"--out {out}: 请使用 .xlsx 文件名（the template is an Excel workbook）"])
    app = make_app(config, rules_dir)
    with app.engine.connect() as conn:
        units = load_units(conn)
        if unit_code is not None and unit_code not in units:
            fail([f"单位编码 {unit_code} 不存在（unknown unit）"])
        found = waiting_cases(conn, str(checkpoint), unit_code)
    if not found:
        who_ = f"单位 {unit_code} " if unit_code else ""
        fail([f"{who_}{checkpoint} 没有待反馈的预警案件（no case waits for an answer）"])
    today = local_day(app.clock(), app.settings.time_zone)
    write_template(Path(out), str(checkpoint), found, {c: u.name for c, u in units.items()}, today)
    click.echo(f"wrote {len(found)} case(s) to {out}; 填写后用 `monitor import {out}` 导入")


def register(group: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
    for command in (exempt_group, responses_group):
        group.add_command(command)
