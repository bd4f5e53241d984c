"""Who does a piece of work: this process as `host:pid` (a sender within it as `host:pid:n`), and
whether the process a claim names is alive, dead, or on another host (then nobody here can tell)."""

from __future__ import annotations

import itertools
import os
import socket


def worker_id() -> str:
    """This process: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def new_worker_id() -> str:
    """One sender of this process, as recorded in claimed_by: host:pid:n (a process may run two
    senders at once, e.g. a service's run and its delivery job; each releases only its own claims)."""
    return f"{worker_id()}:{next(_senders)}"


_senders = itertools.count(1)


def _host_and_pid(worker: str) -> tuple[str, str]:
    host, _, rest = worker.partition(":")
    return host, rest.partition(":")[0]


def on_this_host(worker: str) -> bool:
    return _host_and_pid(worker)[0] == socket.gethostname()


def _process_exists(worker: str) -> bool | None:
    """Whether the process of `worker` (host:pid or host:pid:n) exists; None when it ran on another
    host, or names no pid."""
    host, pid = _host_and_pid(worker)
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_is_dead(worker: str) -> bool:
    """True only when `worker` ran on this host and its process no longer exists."""
    return _process_exists(worker) is False


def process_is_alive_here(worker: str) -> bool:
    """True only when `worker` is a process of this host that still exists."""
    return _process_exists(worker) is True
