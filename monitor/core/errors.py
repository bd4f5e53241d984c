"""The one base of monitor's own errors, and the line between the operator's problem and ours.

`BadInput` is everything that is the user's or admin's input or state: a bad file, bad rules or
config, a checkpoint never run, a run already running. The CLI prints its message(s) and exits 1. Any
other `MonitorError` is also told as a message (exit 1); an exception that is no `MonitorError` is a
bug: the CLI shows its traceback and exits 3.
"""

from __future__ import annotations


class MonitorError(Exception):
    """An error monitor raises on purpose, with a message meant for the person who reads it."""

    def lines(self) -> list[str]:
        """What to tell the operator, a line each: every problem of an error that lists them
        (a `problems` attribute), else the message."""
        problems = getattr(self, "problems", None)
        if problems is not None:
            return [str(p) for p in problems]
        return [str(self.args[0]) if self.args else type(self).__name__]


class BadInput(MonitorError):
    """The input or the state the user or admin brought: exit 1 with the message, no traceback."""


class NotFound(BadInput, LookupError):
    """What the user named does not exist (a run of a checkpoint, a project, an exemption); still a
    LookupError for the callers that catch that."""
