"""The web pages served by uvicorn on a free port of 127.0.0.1 in a thread, for browser tests:
`with serving(asgi_app) as base:` yields the base URL (`http://127.0.0.1:PORT`) until the block ends.
Import it as `from webserver import serving` (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from mailserver import free_port


@contextmanager
def serving(app: Any) -> Iterator[str]:
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
