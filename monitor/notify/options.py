"""What a checkpoint's messages say beyond the results: the deadlines, the bureau, who is copied and
how many top red projects a summary names. Read by `decide` (who is told what) and by `views` (what
the templates show), so that neither needs the other's module for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Options:
    response_deadline: dt.date  # units answer their warnings by this date
    report_deadline: dt.date  # units report this checkpoint's data by this date
    response_working_days: int
    bureau_name: str
    bureau_recipients: tuple[str, ...]
    cc_supervisor_on_red: bool = True
    send_all_clear: bool = False
    top_red: int = 10
    summary_rows: int = 300  # the rows the summary's long lists show at most
    today: dt.date | None = None  # the messages' date (local); None: not past the report deadline
    late_report_deadline: dt.date | None = None  # an overdue unit reports by this date (None: unknown)
    late_report_working_days: int = 5
    extended: Mapping[str, dt.date] = field(default_factory=dict)  # unit -> its later deadline (延期)

    def for_unit(self, unit_code: str | None) -> Options:
        """These options as a unit sees them: its own report deadline if the bureau extended it."""
        until = self.extended.get(unit_code or "")
        return replace(self, report_deadline=until) if until else self

    @property
    def overdue(self) -> bool:
        """The messages are dated after the report deadline: an unreported unit is late, not reminded."""
        return self.today is not None and self.today > self.report_deadline
