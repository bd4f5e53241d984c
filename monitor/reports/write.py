"""Writing a checkpoint's reports: the Excel warning list (预警清单) and the HTML report (监控报告), under
their default file names or to given paths, from one load of the checkpoint's data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from monitor.core.model import Checkpoint
from monitor.core.safe import safe_name
from monitor.core.workdays import local_time
from monitor.reports import data
from monitor.reports.context import Context
from monitor.reports.excel import write_workbook
from monitor.reports.html import write_html

Format = Literal["xlsx", "html"]
FORMATS: tuple[Format, ...] = ("xlsx", "html")
_NAMES = {"xlsx": "预警清单", "html": "监控报告"}


def default_name(fmt: Format, checkpoint: Checkpoint | str) -> str:
    """'预警清单-2025-08.xlsx' / '监控报告-2025-08.html' (a file name whatever `checkpoint` holds)."""
    return f"{safe_name(f'{_NAMES[fmt]}-{checkpoint}')}.{fmt}"


def write_report(app: Context, checkpoint: Checkpoint | str, fmt: Format, out: Path) -> Path:
    """Write one report of `checkpoint` to `out`; raises data.NoResults if the checkpoint never ran."""
    return write_all(app, checkpoint, {fmt: out})[0]


def write_reports(app: Context, checkpoint: Checkpoint | str, out_dir: Path) -> list[Path]:
    """Write the Excel warning list and the HTML report of `checkpoint` into `out_dir` under their default
    names; returns their paths (xlsx first). Raises data.NoResults if the checkpoint never ran."""
    return write_all(app, checkpoint, {fmt: out_dir / default_name(fmt, checkpoint) for fmt in FORMATS})


def write_all(app: Context, checkpoint: Checkpoint | str, outs: dict[Format, Path]) -> list[Path]:
    """Load the checkpoint's data once and write each requested format to its path."""
    cp = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.parse(checkpoint)
    loaded = data.load(app, cp)
    written = []
    for fmt, path in outs.items():
        if fmt == "xlsx":
            written.append(write_workbook(loaded, path))
        else:
            s = app.settings
            made = local_time(app.clock(), s.time_zone)  # 生成时间, with the offset
            written.append(write_html(loaded, path, s.templates_dir, s.template_override_dir, made))
    return written
