"""The web part against a hostile client (issue 17): login limiting that a forged X-Forwarded-For
cannot escape and that one address cannot turn into a lockout of the account; sessions that end on
logout, on a new password and when the user is disabled; weak signing secrets refused; unit link
tokens never written whole to a log. Through HTTP: `monitor web` as a real process where the server
matters (forwarded headers, the access log), Starlette's TestClient elsewhere."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import test_web
from click.testing import CliRunner
from sqlalchemy import select
from starlette.testclient import TestClient
from test_web import ENV, PASSWORD, SECRET, Clock, cli, csrf, link, login

from monitor.app import App
from monitor.cli.main import main
from monitor.config.settings import load_settings
from monitor.db.engine import LOGIN_ATTEMPT
from monitor.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
may = test_web.may  # the worked examples run for 2025-05, a bureau user `kz`
PROXY = "10.0.0.1"  # the reverse proxy of the behind-a-proxy tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebProcess:
    """`monitor web` as a real process on 127.0.0.1, its output (stdout and stderr) in a file."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = workdir / f"web-{self.port}.log"
        cmd = ["web", "--port", str(self.port), "--config", str(workdir / "config.yaml")]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", *cmd],
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                httpx.get(self.base + "/login", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("monitor web did not answer: " + self.output())

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)
        return self.output()

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def web(may: Path) -> Iterator[WebProcess]:
    proc = WebProcess(may, ENV)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def behind_proxy(workdir: Path, trusted: str | None = PROXY, cap: int | None = None) -> None:
    lines = ["web:"]
    if trusted is not None:
        lines.append(f"  trusted_proxies: [{trusted}]")
    if cap is not None:
        lines.append(f"  login_max_delay_seconds: {cap}")
    if len(lines) > 1:
        cfg = workdir / "config.yaml"
        cfg.write_text(cfg.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


def client(workdir: Path, clock: Clock, peer: str = PROXY) -> TestClient:
    """A browser reaching the app from `peer` (the socket's address: a proxy, or the user itself)."""
    app = App(load_settings(workdir / "config.yaml", env=ENV))
    return TestClient(create_app(app, clock=clock), follow_redirects=True, client=(peer, 40000))


def try_login(c: TestClient, password: str, forwarded: str | None = None, name: str = "kz") -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    page = c.get("/login", headers=headers)
    data = {"name": name, "password": password, "csrf": csrf(page.text)}
    # starlette types TestClient on httpx2 (not installed here): its responses are Any to mypy
    status: int = c.post("/login", data=data, headers=headers).status_code
    return status


def attempts(workdir: Path) -> list[tuple[str, str, bool]]:
    app = App(load_settings(workdir / "config.yaml", env=ENV))
    a = LOGIN_ATTEMPT
    with app.engine.connect() as conn:
        rows = conn.execute(select(a.c.name, a.c.address, a.c.ok).order_by(a.c.id)).all()
    app.engine.dispose()
    return [tuple(r) for r in rows]


# --- login limiting -------------------------------------------------------------------------------


def test_thirty_guesses_each_with_a_new_forwarded_address_are_limited(web: WebProcess) -> None:
    statuses = []
    with httpx.Client(base_url=web.base) as browser:
        for i in range(30):
            headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            page = browser.get("/login", headers=headers)
            form = {"name": "kz", "password": f"guess number {i}", "csrf": csrf(page.text)}
            statuses.append(browser.post("/login", data=form, headers=headers).status_code)
    # the first guess is checked; every later one comes before the delay it earned has passed
    assert statuses.count(401) <= 3 and statuses.count(429) >= 27, statuses
    # the header was not believed: every attempt is the socket's own address
    assert {address for _, address, _ in attempts(Path(web.log).parent)} == {"127.0.0.1"}


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(may: Path) -> None:
    behind_proxy(may)
    clock = Clock()
    proxied = client(may, clock)
    assert try_login(proxied, "wrong password", forwarded="203.0.113.7") == 401
    # the same address again within its delay (2 s after one failure): refused unchecked
    assert try_login(proxied, "wrong password", forwarded="203.0.113.7") == 429
    # the account waits as long, whoever asks (one failing address: 2 s)
    assert try_login(client(may, clock, peer="10.9.9.9"), "wrong", forwarded="203.0.113.99") == 429
    clock.now += dt.timedelta(seconds=5)
    # a peer not named in the config: its header is ignored, the socket's address is the client
    assert try_login(client(may, clock, peer="10.9.9.9"), "wrong", forwarded="203.0.113.99") == 401
    assert attempts(may) == [("kz", "203.0.113.7", False), ("kz", "10.9.9.9", False)]


def test_one_address_attacking_an_account_only_delays_it_elsewhere(may: Path) -> None:
    behind_proxy(may, cap=300)
    clock = Clock()
    proxied = client(may, clock)
    attacker = "203.0.113.7"
    for n in range(1, 10):  # 2 + 4 + … + 256 + 300 s: all within the 15 minutes' window
        assert try_login(proxied, f"guess {n}", forwarded=attacker) == 401  # the n-th failure ...
        wait = min(2**n, 300)  # ... makes the next attempt from there wait 2^n seconds, capped
        clock.now += dt.timedelta(seconds=wait - 1)
        assert try_login(proxied, "too early", forwarded=attacker) == 429
        clock.now += dt.timedelta(seconds=1)
    assert try_login(proxied, "guess 10", forwarded=attacker) == 401
    # the administrator from elsewhere, right after: a delay of seconds (not the attacker's 300), then in
    admin = client(may, clock)
    assert try_login(admin, PASSWORD, forwarded="192.0.2.10") == 429
    clock.now += dt.timedelta(seconds=2)
    assert try_login(admin, PASSWORD, forwarded="192.0.2.10") == 200
    assert "待审核的反馈" in admin.get("/board").text


def test_many_addresses_attacking_an_account_delay_it_with_a_cap_never_a_lock(may: Path) -> None:
    behind_proxy(may, cap=300)
    clock = Clock()
    proxied = client(may, clock)
    checked = 0
    for i in range(40):  # a botnet: a new address every second, as fast as the account allows
        checked += try_login(proxied, f"guess {i}", forwarded=f"198.51.100.{i + 1}") == 401
        clock.now += dt.timedelta(seconds=1)
    assert 3 <= checked <= 6  # 40 s allow the waits 2 + 4 + 8 + 16 s: five guesses
    admin = client(may, clock)
    assert try_login(admin, PASSWORD, forwarded="192.0.2.10") == 429
    clock.now += dt.timedelta(seconds=300)  # the cap: delayed, not locked
    assert try_login(admin, PASSWORD, forwarded="192.0.2.10") == 200


def test_the_delay_is_said_in_seconds(may: Path) -> None:
    clock = Clock()
    c = client(may, clock, peer="192.0.2.1")
    assert try_login(c, "wrong password") == 401
    page = c.get("/login")
    res = c.post("/login", data={"name": "kz", "password": PASSWORD, "csrf": csrf(page.text)})
    assert res.status_code == 429 and re.search(r"请\d+秒后再试", res.text), res.text


# --- sessions -------------------------------------------------------------------------------------


def copied_cookie(c: TestClient) -> str:
    cookie: str | None = c.cookies.get("monitor_session")
    assert cookie
    return cookie


def opens_board(workdir: Path, cookie: str) -> bool:
    thief = client(workdir, Clock(), peer="192.0.2.66")
    thief.cookies.set("monitor_session", cookie)
    page = thief.get("/board")
    return page.url.path == "/board" and "待审核的反馈" in page.text


def test_a_copied_session_cookie_is_refused_after_logout(may: Path) -> None:
    c = client(may, Clock(), peer="192.0.2.1")
    assert login(c) == 200
    cookie = copied_cookie(c)
    assert opens_board(may, cookie)
    board = c.get("/board")
    assert c.post("/logout", data={"csrf": csrf(board.text)}).url.path == "/login"
    assert not opens_board(may, cookie)
    assert login(c) == 200  # logging in again works, with a new session
    assert opens_board(may, copied_cookie(c))


def test_a_new_password_ends_every_session_of_the_user(may: Path) -> None:
    c = client(may, Clock(), peer="192.0.2.1")
    assert login(c) == 200
    cookie = copied_cookie(c)
    new = "a different password 2"
    res = cli(may, "user", "add", "kz", input=f"{new}\n{new}\n")
    assert res.exit_code == 0, res.output
    assert not opens_board(may, cookie)
    assert c.get("/board").url.path == "/login"
    assert login(c, password=new) == 200


def test_disabling_a_user_ends_their_sessions_and_their_logins(may: Path) -> None:
    clock = Clock()
    c = client(may, clock, peer="192.0.2.1")
    assert login(c) == 200
    cookie = copied_cookie(c)
    res = cli(may, "user", "disable", "kz")
    assert res.exit_code == 0 and "kz" in res.output, res.output
    assert not opens_board(may, cookie)
    assert login(c) == 401
    res = cli(may, "user", "disable", "nobody")
    assert res.exit_code == 1 and "nobody" in res.output
    res = cli(may, "user", "add", "kz", input=f"{PASSWORD}\n{PASSWORD}\n")  # a new password enables
    assert res.exit_code == 0, res.output
    clock.now += dt.timedelta(seconds=2)  # the refused login's delay
    assert login(c) == 200


# --- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["a", "x" * 64, "ab" * 32, "0123456789abcdef0123456789abcdef"])
def test_a_weak_secret_is_refused_with_how_to_make_one(workdir: Path, weak: str) -> None:
    proc = WebProcess(workdir, {"MONITOR_WEB_SECRET": weak})
    try:
        code = proc.proc.wait(timeout=20)  # before the fix it served, and never ended
    except subprocess.TimeoutExpired:
        code = None
    out = proc.stop()
    assert code == 1, out
    assert "MONITOR_WEB_SECRET" in out and "monitor secret" in out and "token_urlsafe" in out
    assert "Traceback" not in out
    if len(weak) > 3:
        assert weak not in out  # never printed, not even a weak one
    res = CliRunner(env={"MONITOR_WEB_SECRET": weak}).invoke(
        main, ["link", "--unit", "302", "--checkpoint", "2025-05", "--config", str(workdir / "config.yaml")]
    )
    assert res.exit_code == 1 and "monitor secret" in res.output


def test_monitor_secret_prints_a_secret_that_is_accepted(workdir: Path) -> None:
    res = CliRunner().invoke(main, ["secret"])
    assert res.exit_code == 0
    made = res.output.strip()
    assert len(made) >= 64 and made != CliRunner().invoke(main, ["secret"]).output.strip()
    settings = load_settings(workdir / "config.yaml", env={"MONITOR_WEB_SECRET": made})
    assert settings.web_secret == made
    assert load_settings(workdir / "config.yaml", env={"MONITOR_WEB_SECRET": SECRET}).web_secret


# --- logs -----------------------------------------------------------------------------------------


def test_the_access_log_never_holds_a_whole_unit_link_token(may: Path, web: WebProcess) -> None:
    path = link(may, "302")
    token = path.removeprefix("/u/")
    assert len(token) > 20
    page = httpx.get(web.base + path)
    assert page.status_code == 200 and "葡萄酒产业宣传推介" in page.text
    assert httpx.get(web.base + path + "x").status_code == 403  # a tampered one is masked too
    time.sleep(0.3)
    out = web.stop()
    assert f"/u/{token[:6]}…" in out, out  # the request is logged ...
    assert token not in out and token[:12] not in out  # ... its token is not


def test_the_access_log_never_holds_a_whole_reporting_or_department_token(may: Path, web: WebProcess) -> None:
    res = cli(may, "link", "--unit", "301", "--department", "--checkpoint", "2025-05")
    assert res.exit_code == 0, res.output
    paths = [link(may, "302").replace("/u/", "/r/"), res.output.strip().removeprefix("http://127.0.0.1:8650")]
    for path in paths:
        assert httpx.get(web.base + path).status_code == 200
        assert httpx.get(web.base + path + "x").status_code == 403
    time.sleep(0.3)
    out = web.stop()
    for path in paths:
        kind, token = path[1], path[3:]
        assert len(token) > 20 and f"/{kind}/{token[:6]}…" in out, out  # logged, masked
        assert token not in out and token[:12] not in out
