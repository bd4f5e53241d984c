"""Where things are on the official form 《项目支出绩效目标执行监控表》(财预〔2019〕136号 附件), as
`monitor forms` writes it (ingest.form_write) and `monitor import` reads it back (ingest.form_read):
one sheet per project, every cell at a fixed place. Rows and columns are 1-based, as Excel counts.

    1  项目支出绩效目标执行监控表 (title)
    2  监控期 | 2025-05 | 项目编码 | <code>
    3  项目名称 | <name>
    4  主管部门及代码 | <department（code）> | 实施单位 | <unit（code）>
    5  项目资金（万元） | | 年初预算数 | 1-X月执行数 | 1-X月执行率 | 全年预计执行数
    6-8   年度资金总额 · 其中：财政拨款 · 其他资金
    9  年度总体目标 | <text> | 全年预计完成情况 | <text>
    10-11 绩效指标 header (偏差原因分析 over its five sub-columns)
    12…   one row per third-level indicator, 指标编码 in the last column
"""

from __future__ import annotations

from typing import Final

TITLE: Final = "项目支出绩效目标执行监控表"
CHECKPOINT_LABEL: Final = "监控期"
CHECKPOINT_CELL: Final = (2, 2)  # B2
CODE_LABEL: Final = "项目编码"
CODE_CELL: Final = (2, 4)  # D2
NAME_ROW: Final = 3
OWNER_ROW: Final = 4
FUNDS_HEADER_ROW: Final = 5
FUNDS_ROWS: Final = ("年度资金总额", "其中：财政拨款", "其他资金")  # rows 6, 7, 8
TOTAL_ROW: Final = 6  # the project's budget and executed amount: the only funds row imported
BUDGET_COLUMN, EXECUTED_COLUMN, RATE_COLUMN, FORECAST_COLUMN = 3, 4, 5, 6
GOAL_ROW: Final = 9
HEADER_ROW: Final = 10  # 绩效指标 header, two rows
FIRST_INDICATOR_ROW: Final = 12

# the indicator columns, A…N
LEVEL1, LEVEL2, NAME, TARGET, ACTUAL, FORECAST = 1, 2, 3, 4, 5, 6
CAUSE_COLUMNS: Final = (7, 8, 9, 10, 11)
CAUSES: Final = ("经费保障", "制度保障", "人员保障", "硬件条件保障", "其他")
POSSIBILITY, REMARK, INDICATOR_CODE = 12, 13, 14
LAST_COLUMN: Final = INDICATOR_CODE
POSSIBILITIES: Final = ("确定能", "有可能", "完全不可能")
MARKS: Final = frozenset({"√", "✓", "✔", "是"})  # a cause cell ticked without a text of its own


def executed_label(month: int) -> str:
    return f"1-{month}月执行数"


def indicator_headers(month: int) -> tuple[str, ...]:
    """The first header row of the 绩效指标 block, A…N (偏差原因分析 spans G…K)."""
    return (
        "一级指标",
        "二级指标",
        "三级指标",
        "年度指标值",
        f"1-{month}月执行情况",
        "全年预计完成情况",
        "偏差原因分析",
        "",
        "",
        "",
        "",
        "完成目标可能性",
        "备注（纠偏措施）",
        "指标编码",
    )
