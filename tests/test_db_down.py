"""The database down (issue 17): `monitor status` says so in one line naming the URL (its password
masked) and exits 1; `monitor serve` keeps trying with a growing delay, one log line per try, answers
503 on /healthz meanwhile, ends on SIGTERM, and starts its work once the database appears."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from monitor.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "db-Pa55word-never-shown"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once it is closed


def deployment(tmp_path: Path, url: str, extra: str = "") -> Path:
    (tmp_path / "rules").symlink_to(ROOT / "rules")
    (tmp_path / "templates").symlink_to(ROOT / "templates")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database:\n  url: {url}\n{extra}", encoding="utf-8")
    return cfg


def status(cfg: Path) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["status", "--config", str(cfg)])
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def test_status_with_the_sqlite_folder_missing_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'monitor.db'}"
    code, out = status(deployment(tmp_path, url))
    assert code == 1
    assert out.count("\n") == 1 and "Traceback" not in out, out
    assert out.startswith("database unreachable: " + url), out


def test_status_with_postgresql_on_a_closed_port_masks_the_password(tmp_path: Path) -> None:
    port = closed_port()
    cfg = deployment(tmp_path, f"postgresql+psycopg://monitor:{PASSWORD}@127.0.0.1:{port}/monitor")
    code, out = status(cfg)
    assert code == 1
    assert out.count("\n") == 1 and "Traceback" not in out, out
    assert f"postgresql+psycopg://monitor:***@127.0.0.1:{port}/monitor" in out and PASSWORD not in out


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(log: Path, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the log:\n" + log.read_text(encoding="utf-8", errors="replace"))


def test_serve_waits_for_the_database_unhealthy_meanwhile_and_starts_once_it_appears(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    url = f"sqlite:///{folder / 'monitor.db'}"
    cfg = deployment(tmp_path, url, "service:\n  http_port: 0\nschedule:\n  watch_seconds: 0\n")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--config", str(cfg)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        port = int(wait_for(log, r"http endpoint on 127\.0\.0\.1:(\d+)").group(1))
        code, body = get(port, "/healthz")
        assert code == 503 and json.loads(body)["reason"].startswith("database"), body
        wait_for(log, r"(?s)database unreachable.*database unreachable")  # tried again
        text = log.read_text(encoding="utf-8")
        tries = [line for line in text.splitlines() if "database unreachable" in line]
        assert all(url in line and "retrying in" in line for line in tries), text
        assert "Traceback" not in text, text
        folder.mkdir()  # the database appears: the service starts its work
        wait_for(log, r"service \S+ starting")
        deadline = time.monotonic() + 30
        while get(port, "/healthz")[0] != 200:
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert code == 0 and "Traceback" not in text, text


def test_serve_ends_on_sigterm_while_the_database_is_down(tmp_path: Path) -> None:
    port = closed_port()
    url = f"postgresql+psycopg://monitor:{PASSWORD}@127.0.0.1:{port}/monitor"
    cfg = deployment(tmp_path, url, "service:\n  http_port: 0\n")
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--config", str(cfg)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        http = int(wait_for(log, r"http endpoint on 127\.0\.0\.1:(\d+)").group(1))
        wait_for(log, r"database unreachable")
        code, body = get(http, "/healthz")
        assert code == 503 and "database" in body and PASSWORD not in body, body
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert time.monotonic() - started < 10
    text = log.read_text(encoding="utf-8")
    assert code == 0 and "Traceback" not in text and PASSWORD not in text, text
    assert f"monitor:***@127.0.0.1:{port}" in text
