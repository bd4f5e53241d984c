"""The reader process: a large import read and checked in a forked child while this process writes.
In: a `Reading` and its `Checker` (the database's codes loaded), and the function that writes a chunk
of records. Out: the chunks the child emits, written here; the child's problems, counts and warnings
taken back at the end. The child dies with its parent (PR_SET_PDEATHSIG) and never touches the
database.

Writing a row costs SQLite about as much as parsing and checking it costs Python, so on a machine
with two cores a large import reads and checks in a forked child while this process writes what
the child sends (pickled chunks through a pipe; the pipe's small buffer keeps the child at most a
chunk ahead). The child never touches the database: the codes already there are loaded before the
fork, and the connection and its transaction stay here. It ends with os._exit (multiprocessing's
way), so the connection it inherited is never closed or used there.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from monitor.db.engine import cores
from monitor.ingest.reading import Reading, read_and_check
from monitor.ingest.references import Checker
from monitor.ingest.rows import Record

READER_PROCESS_BYTES = 2 << 20  # inputs this large are read in a second process (2,500 projects: 3 MB)


def worth_a_reader_process(reading: Reading) -> bool:
    """Large input, Linux (fork), more than one CPU, no other thread here (fork copies only the
    calling thread: locks held by another one would stay held in the child), and not a daemonic
    process (multiprocessing forbids those children)."""
    size = sum(p.stat().st_size for p in {t.path for t in reading.tables})
    return (
        size >= READER_PROCESS_BYTES
        and sys.platform == "linux"
        and cores() > 1
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


def read_in_child(reading: Reading, checker: Checker, write: Callable[[str, list[Record]], None]) -> None:
    """`read_and_check` in a forked child, writing here what it emits; its problems and counts are
    taken back into `reading` and `checker` at the end."""
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(
        target=_reader_child, args=(reading, checker, sender, receiver), name="monitor-import-reader"
    )
    child.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                child.join()
                raise RuntimeError(
                    f"the import's reader process ended early (exit code {child.exitcode})"
                ) from None
            if message[0] == "records":
                write(message[1], message[2])
            elif message[0] == "done":
                reading.out[:], checker.counts, checker.warnings = message[1], message[2], message[3]
                break
            else:
                raise RuntimeError(f"reading the import files failed in the reader process:\n{message[1]}")
    except BaseException:
        child.terminate()
        raise
    finally:
        receiver.close()
        child.join()


def _reader_child(reading: Reading, checker: Checker, sender: Any, receiver: Any) -> None:
    """Read and check, sending the records; ends when the parent does: the pipe's reading end is the
    parent's alone (so a write fails once it is gone), and on Linux the kernel kills this process
    when the parent dies (PR_SET_PDEATHSIG), also while it reads a large file."""
    receiver.close()
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    try:
        read_and_check(reading, checker, lambda kind, records: sender.send(("records", kind, records)))
        sender.send(("done", reading.out, checker.counts, checker.warnings))
    except (BrokenPipeError, ConnectionResetError):
        os._exit(1)  # the parent is gone: nobody to tell
    except BaseException:
        with suppress(OSError):
            sender.send(("error", traceback.format_exc()))
    finally:
        with suppress(OSError):
            sender.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (nothing elsewhere, or without libc)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
