"""Not reported (未报送): a project without its budget execution report gets no light and this
reason; an indicator without its report is not measurable (a milestone is judged all the same: not
done is a fact)."""

from __future__ import annotations

from monitor.core.model import Checkpoint
from monitor.evaluate.sqltext import lit

INDICATOR_WORDS = "未填报该指标执行情况，本期不可测"


def project_words(checkpoint: Checkpoint) -> str:
    return f"未报送1-{checkpoint.month}月预算执行数据（未报送），请尽快报送"


def project_sql(checkpoint: Checkpoint) -> str:
    return lit(project_words(checkpoint))
