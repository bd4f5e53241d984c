"""The web handlers never block the event loop: a request waiting on the database (another process holds
the table it writes) leaves every other request free to be answered, over HTTP against the ASGI app."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import Engine, insert, text

from monitor.app import App
from monitor.config.settings import load_settings
from monitor.db.engine import LOGIN_ATTEMPT, create_schema, make_engine
from monitor.web.app import create_app

SECRET = "test-web-secret-4Kq9Zx2Lm7Rt8Vb3Nw6Hc1Jd5Fy0GsPe"
ENV = {"MONITOR_WEB_SECRET": SECRET}
HOLD_AT_MOST = 8.0  # seconds the table stays held if the test never lets it go


@contextmanager
def table_held(url: str) -> Iterator[threading.Event]:
    """Another connection (its own engine, its own thread) holds login_attempt against writers until
    the event it yields is set (or HOLD_AT_MOST passed)."""
    engine: Engine = make_engine(url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as conn, conn.begin() as tx:
            if engine.dialect.name == "postgresql":
                conn.execute(text("LOCK TABLE login_attempt IN EXCLUSIVE MODE"))
            else:  # SQLite: one writer at a time, so an uncommitted write holds every table
                now = dt.datetime.now(dt.UTC)
                conn.execute(insert(LOGIN_ATTEMPT).values(name="x", address="x", at=now, ok=False))
            held.set()
            release.wait(HOLD_AT_MOST)
            tx.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10), "the table could not be held"
        yield release
    finally:
        release.set()
        holder.join()
        engine.dispose()


def test_a_login_waiting_on_the_database_does_not_hold_up_other_pages(workdir: Path) -> None:
    app = App(load_settings(workdir / "config.yaml", env=ENV))
    web = create_app(app)
    create_schema(app.engine)  # as `monitor serve` finds it: the database made

    async def scenario() -> tuple[bool, int, int]:
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/login")
            m = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert m, page.text
            form = {"name": "kz", "password": "wrong password", "csrf": m.group(1)}
            with table_held(app.settings.database_url) as release:
                login = asyncio.create_task(client.post("/login", data=form))
                await asyncio.sleep(0.5)  # the login has reached the database and waits for the table
                other = await client.get("/login")  # someone else opens a page meanwhile
                login_finished_first = login.done()
                release.set()
            return login_finished_first, other.status_code, (await login).status_code

    login_finished_first, other, login = asyncio.run(scenario())
    assert not login_finished_first, "the login page waited until the blocked login was over"
    assert other == 200
    assert login == 401  # the login itself goes on once the table is free
