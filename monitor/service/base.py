"""What every part of the service shares: the config path and the clock in; the `State` (app, rules,
templates: loaded and validated as one), the service's attributes and its event log (`service_event`)
out. `monitor.service.runner.Service` builds on `ServiceBase` through `duties.Duties` and
`reload.Reloading`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, make_url

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.db.engine import SERVICE_EVENT
from monitor.notify.render import Templates
from monitor.rules.load import RuleSet
from monitor.service.http import HttpEndpoint

log = logging.getLogger("monitor.service.runner")  # one logger for the whole service, as before the split
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class State:
    """Everything a duty needs, swapped as one on reload."""

    app: App
    rules: RuleSet
    templates: Templates


def load_state(config_path: Path, rules_dir: str | None, clock: Clock, engine: Engine | None = None) -> State:
    """Parse and validate config, rules and templates; raises Invalid or TemplateErrors, touching nothing."""
    settings = load_settings(config_path, rules_dir)
    # the URL as configured, password included (str() of a URL masks it: never equal)
    same = engine is not None and engine.url == make_url(settings.database_url)
    app = App(settings, clock, engine if same else None)  # keep the connection pool across reloads
    rules, templates = app.rules(), app.templates()
    return State(app, rules, templates)


class ServiceBase:
    """The service's attributes (set by `Service.__init__`) and what every part reads of them."""

    config_path: Path
    rules_dir: str | None
    clock: Clock
    instance: str
    state: State
    name: str
    stopping: threading.Event
    scheduler: Any
    http: HttpEndpoint | None

    @property
    def engine(self) -> Engine:
        return self.state.app.engine

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.state.app.settings.time_zone)

    def offset(self) -> dt.timedelta:
        """How far the service clock is from the wall clock (zero except under a test clock)."""
        return self.clock() - dt.datetime.now(dt.UTC)

    def _record(self, kind: str, ok: bool, rules_hash: str | None, detail: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(SERVICE_EVENT).values(
                    at=self.clock(),
                    kind=kind,
                    ok=ok,
                    instance=self.instance,
                    rules_hash=rules_hash,
                    detail=detail,
                )
            )
