"""CLI commands for the web pages (monitor web, monitor user add)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `monitor` group."""
