"""What the reports read: the database, the settings and the clock. An App has all three; the
pipeline, building the summary's attachments inside a run, passes its own as `Sources`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from monitor.config.settings import Settings


class Context(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Callable[[], dt.datetime]: ...


@dataclass(frozen=True)
class Sources:
    engine: Engine
    settings: Settings
    clock: Callable[[], dt.datetime]
