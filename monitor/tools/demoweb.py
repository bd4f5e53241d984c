"""The demo's web part (`monitor demo`): its e-mails carry unit links that `monitor web` on this machine
opens. The links start with the address `monitor web` serves (http://web.host:web.port) and are signed
with the secret of the environment (web.secret_env), or else with one kept in a file of the demo's folder:
made once (48 random bytes, mode 0600), reused by later demos so earlier links keep working, and never
printed: the command that starts the web part reads it from the file.
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from monitor.config.settings import Settings, weak_secret
from monitor.db.engine import OUTBOX

SECRET_FILE = "web-secret"


@dataclass(frozen=True)
class DemoWeb:
    settings: Settings  # the demo's settings: local base URL, a signing secret
    secret_file: Path | None  # where the secret is kept (None: it came from the environment)

    def start_command(self) -> str:
        """The shell command that starts the web part with the demo's config and secret."""
        command = f"{_program()} web --config {shlex.quote(str(self.settings.config_path))}"
        if self.secret_file is None:
            return command
        env = self.settings.web.secret_env
        return f'{env}="$(cat {shlex.quote(str(self.secret_file.resolve()))})" {command}'


def _program() -> str:
    """How the user runs this program: the path they ran (e.g. .venv/bin/monitor) when it was the `monitor`
    script, else `monitor`."""
    argv0 = sys.argv[0] if sys.argv else ""
    return shlex.quote(argv0) if Path(argv0).name == "monitor" else "monitor"


def local_web(settings: Settings, folder: Path) -> DemoWeb:
    """`settings` with links to the local web part: base URL http://web.host:web.port, and the signing
    secret of the environment or of `folder`/web-secret (made there if missing, weak or readable by
    others)."""
    web = settings.web
    local = web.model_copy(update={"base_url": f"http://{web.host}:{web.port}"})
    if settings.web_secret:
        return DemoWeb(replace(settings, web=local), None)
    path = folder / SECRET_FILE
    secret = _kept(path)
    if secret is None:
        secret = secrets.token_urlsafe(48)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_TRUNC
            f.write(secret + "\n")
    return DemoWeb(replace(settings, web=local, web_secret=secret), path)


def _kept(path: Path) -> str | None:
    """The secret a previous demo kept in `path`, if it is there, strong and readable by its owner only."""
    try:
        if path.stat().st_mode & 0o077:
            return None
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None if weak_secret(secret) else secret


def warned_unit(engine: Engine, checkpoint: str) -> str | None:
    """A unit warned at `checkpoint` (the first by code), whose link the demo shows."""
    from sqlalchemy import func, select

    q = select(func.min(OUTBOX.c.unit_code)).where(
        OUTBOX.c.checkpoint == checkpoint, OUTBOX.c.kind == "warning"
    )
    with engine.connect() as conn:
        code = conn.execute(q).scalar()
    return str(code) if code is not None else None
