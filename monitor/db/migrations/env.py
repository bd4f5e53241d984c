"""The Alembic environment: monitor.db.migrate runs it on the connection it passes in
config.attributes["connection"] (no alembic.ini, no URL here). The target is SQLModel.metadata, so
autogenerate compares against every table in monitor.db.tables; batch mode keeps ALTERs working on SQLite.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write SQLModel's own column types (AutoString, UTCDateTime) as the plain SQLAlchemy types they
    wrap, so a generated revision does not depend on sqlmodel internals."""
    if type_ == "type" and isinstance(obj, TypeDecorator) and type(obj).__module__.startswith("sqlmodel"):
        return f"sa.{obj.impl!r}"
    return False


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("monitor's migrations run through monitor.db.migrate, which passes the connection")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,
    render_item=render_item,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
