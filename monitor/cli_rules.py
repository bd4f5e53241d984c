"""CLI commands for admins' rule tooling (test-rules, preview, explain, rules history)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
