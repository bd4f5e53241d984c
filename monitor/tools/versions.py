"""A project's report history in words (explain, the board): each version's time, channel, source and
the values it changed, and which version the checkpoint's last run used (db.history)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from monitor.core.model import wan
from monitor.core.workdays import local_time
from monitor.db.history import Version, used

MONEY = ("executed", "forecast_executed")
VIA = {"web": "the reporting page (web)", "import": "monitor import"}


def _value(name: str, value: str | None) -> str:
    if value is None:
        return "-"
    return wan(int(value)) if name in MONEY else value


def _when(at: dt.datetime, time_zone: str) -> str:
    return "before provenance was kept" if at == dt.datetime.min else local_time(at, time_zone)


def version_lines(
    history: Sequence[Version], run: tuple[int, int] | None, time_zone: str, indent: str = "  "
) -> list[str]:
    """`history` (db.history.versions) as lines; `run`: (id, reports_upto) of the last finished run."""
    if not history:
        return []
    out = [f"{indent}report versions:"]
    for n, v in enumerate(history, 1):
        source = f"{v.source}" if v.batch else "(no provenance)"
        what = (
            "withdrawn (returned to its unit)" if v.withdrawn else f"through {VIA.get(v.channel, v.channel)}"
        )
        changed = "; ".join(f"{k} {_value(k, old)} → {_value(k, new)}" for k, old, new in v.changes)
        out.append(
            f"{indent}  v{n} {_when(v.at, time_zone)} {what}: {source}" + (f": {changed}" if changed else "")
        )
    if run is not None:
        run_id, upto = run
        i = used(history, upto)
        seen = "no report" if i is None else f"v{i + 1}"
        if i is not None and history[i].withdrawn:
            seen = f"no report (v{i + 1} withdrew it)"
        later = len(history) - (0 if i is None else i + 1)
        if later == 0:
            out.append(f"{indent}the last run #{run_id} used {seen} (the current version)")
        else:
            after = f"v{len(history)}" if later == 1 else f"v{len(history) - later + 1}–v{len(history)}"
            out.append(
                f"{indent}the last run #{run_id} used {seen}; {after} came after it: run the checkpoint again"
            )
    return out
