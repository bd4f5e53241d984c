"""A warning's deadlines, pure: the working-day arithmetic of its follow-up from the day its case was
opened (the response deadline the e-mail announced, the 催办 day, the 督办 day), and the days each
checkpoint's cases were opened, from which the service dates its follow-up rounds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.config.settings import NotificationsConfig
from monitor.core.workdays import add_working_days


@dataclass(frozen=True)
class FollowUpRule:
    """The working-day arithmetic of a warning's follow-up, from the day its case was opened (the run
    day): the response deadline the warning e-mail announced (the same sum as monitor.notify.messages), the
    reminder day (催办) and the escalation day (督办)."""

    response_working_days: int
    chase_after_working_days: int
    escalate_after_working_days: int
    at: dt.time = dt.time(9, 0)
    holidays: frozenset[dt.date] = frozenset()
    extra_workdays: frozenset[dt.date] = frozenset()

    @classmethod
    def of(cls, n: NotificationsConfig) -> FollowUpRule:
        return cls(
            n.response_working_days,
            n.chase_after_working_days,
            n.escalate_after_working_days,
            n.follow_up_time,
            frozenset(n.holidays),
            frozenset(n.extra_workdays),
        )

    def _add(self, day: dt.date, n: int) -> dt.date:
        return add_working_days(day, n, self.holidays, self.extra_workdays)

    def response_deadline(self, opened: dt.date) -> dt.date:
        """The last day to answer a warning sent on `opened`."""
        return self._add(opened, self.response_working_days)

    def chase_day(self, opened: dt.date) -> dt.date:
        """The reminder's day: the (chase_after + 1)-th working day after the response deadline."""
        return self._add(self.response_deadline(opened), self.chase_after_working_days + 1)

    def escalate_day(self, opened: dt.date) -> dt.date:
        """The escalation's day: escalate_after working days after the reminder's day."""
        return self._add(self.chase_day(opened), self.escalate_after_working_days)


@dataclass(frozen=True)
class FollowUp:
    """The follow-up rule and the local days on which each checkpoint's cases were opened (from the
    database): the reminder and escalation rounds exist only for checkpoints that opened cases, dated
    from the day they were opened, so a run carried out late moves its follow-up with it."""

    rule: FollowUpRule
    opened: Mapping[str, Sequence[dt.date]] = field(default_factory=dict)
