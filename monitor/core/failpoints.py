"""Failpoints: named places where a test can make this process die as kill -9 would, to prove that a
fault at that very moment loses nothing. `hit(name)` kills the process with SIGKILL when the
environment variable MONITOR_FAILPOINTS (comma-separated names) contains `name`; otherwise it does
nothing. Never set in production.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "MONITOR_FAILPOINTS"


def armed(name: str) -> bool:
    """True when MONITOR_FAILPOINTS names `name`."""
    names = os.environ.get(VARIABLE, "")
    return bool(names) and name in {n.strip() for n in names.split(",")}


def hit(name: str) -> None:
    """Die here, at once and without cleaning up (SIGKILL), if the failpoint `name` is armed."""
    if armed(name):
        os.kill(os.getpid(), signal.SIGKILL)
