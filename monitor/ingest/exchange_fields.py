"""The fields of the exchange table (domain.md §7): the one-row-per-indicator table of the provinces'
一体化 systems, with the project's and unit's columns repeated on each row. Data only: each field's
English name, the Chinese label an export shows, and the canonical columns (ingest.columns) it gives,
by kind. No import: ingest.columns counts these headers as known. Read by ingest.exchange (import),
written by reports.exchange (`--format exchange`).
"""

from __future__ import annotations

_REPORTS = ("project_reports", "indicator_reports")
_BY_PROJECT = ("projects", "indicators", *_REPORTS)

# field, label, {kind: canonical column}. The systems' own fields first, then those the exchange table
# carries where an export has them (全年预算数, 指标方向, 计量单位, 监控期), then this engine's own
# columns a project or indicator needs to be judged as the canonical files would judge it.
FIELDS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("fiscal_year", "年度", {}),
    ("mof_div_code", "财政区划编码", {}),
    ("dept_code", "主管部门编码", {"units": "supervisor_code"}),
    ("dept_name", "主管部门名称", {}),
    ("agency_code", "单位编码", {"units": "unit_code", "projects": "unit_code"}),
    ("agency_name", "单位名称", {"units": "unit_name"}),
    ("pro_code", "项目编码", dict.fromkeys(_BY_PROJECT, "project_code")),
    ("pro_name", "项目名称", {"projects": "project_name"}),
    ("lv1_perf_ind_name", "一级指标", {"indicators": "level1"}),
    ("lv2_perf_ind_name", "二级指标", {"indicators": "level2"}),
    (
        "lv3_perf_ind_code",
        "三级指标编码",
        dict.fromkeys(("indicators", "indicator_reports"), "indicator_code"),
    ),
    ("lv3_perf_ind_name", "三级指标", {"indicators": "name"}),
    ("kpi_val", "年度指标值", {"indicators": "target"}),
    ("perf_comp", "1-X月执行情况", {"indicator_reports": "actual"}),
    ("est_perf_annual", "全年预计完成情况", {"indicator_reports": "forecast"}),
    ("ana_dev_reasons", "偏差原因分析", {"indicator_reports": "cause_text"}),
    ("complete_rate", "完成目标可能性", {"indicator_reports": "possibility"}),
    ("pro_bgt_comp", "1-X月执行数", {"project_reports": "executed"}),
    ("est_pro_bgt_annual", "全年预计执行数", {"project_reports": "forecast_executed"}),
    ("perf_send_date", "报送日期", {}),
    ("is_perf_rectify", "是否需要整改", {}),
    ("rectify_advise", "整改要求和建议", {}),
    ("rectify_epilog", "整改结果和结论", {}),
    ("checkpoint", "监控期", dict.fromkeys(_REPORTS, "checkpoint")),
    ("budget", "全年预算数", {"projects": "budget"}),
    ("direction", "指标方向", {"indicators": "direction"}),
    ("measure_unit", "计量单位", {"indicators": "measure_unit"}),
    ("carryover", "上年结转", {"projects": "carryover"}),
    ("fund_flag", "直达资金标识", {"projects": "fund_flag"}),
    ("category", "项目类别", {"projects": "category"}),
    ("pro_profile", "项目执行曲线", {"projects": "profile"}),
    ("ind_kind", "指标类型", {"indicators": "kind"}),
    ("ind_profile", "指标执行曲线", {"indicators": "profile"}),
    ("dev_causes", "偏差原因类型", {"indicator_reports": "causes"}),
    ("measures", "纠偏措施", {"indicator_reports": "measures"}),
    ("email", "联系邮箱", {"units": "email"}),
)

# The warning columns `monitor results --format exchange` adds (read back, they are ignored).
WARNINGS: tuple[tuple[str, str], ...] = (
    ("bgtwarn", "预算执行预警"),
    ("goalwarn", "目标完成预警"),
    ("pro_warn", "项目预警"),
    ("ind_warn", "指标预警"),
    ("warn_reason", "预警原因"),
)

# A header names an exchange table when it gives the unit, the project and the third-level indicator's code.
SIGNATURE = ("agency_code", "pro_code", "lv3_perf_ind_code")
LABELS: dict[str, str] = {field: label for field, label, _ in FIELDS}
HEADERS = tuple(text for field, label, _ in FIELDS for text in (field, label))  # as accepted


def fields_table_markdown() -> str:
    """The fields as Markdown (field, label, what it gives), for the README."""
    lines = ["| field | label | read as |", "|---|---|---|"]
    for field, label, gives in FIELDS:
        read = ", ".join(sorted({f"`{c}`" for c in gives.values()})) or "(not read)"
        lines.append(f"| `{field}` | {label} | {read} |")
    lines += [f"| `{field}` | {label} | (written by `--format exchange`) |" for field, label in WARNINGS]
    return "\n".join(lines) + "\n"
