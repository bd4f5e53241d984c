"""Who may see what (signed unit links are monitor.core.links): bureau users with scrypt
password hashes and a per-user salt and revocable sessions (a per-user session version), login delays
that grow per address and per account, and CSRF tokens bound to the session. Secrets and the clock
come in as arguments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import distinct, func, insert, select, update
from sqlalchemy.engine import Connection

from monitor.core.errors import BadInput
from monitor.core.workdays import as_utc
from monitor.db.engine import LOGIN_ATTEMPT, WEB_USER

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class BadUser(BadInput, ValueError):
    """A user name or password `add_user` refuses."""


# --- bureau users ---------------------------------------------------------------------------------


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=64)


def add_user(conn: Connection, name: str, password: str, now: dt.datetime) -> None:
    """Create a user, or give one a new password (which enables a disabled user and ends every session
    it has); BadUser (a ValueError) for a bad name or a password shorter than 10 characters."""
    if not NAME.match(name):
        raise BadUser("user name: 1-64 letters, digits, '_', '.' or '-'")
    if len(password) < 10:
        raise BadUser("password: at least 10 characters")
    salt = secrets.token_bytes(16)
    values = {"salt": salt.hex(), "password_hash": _hash(password, salt).hex(), "disabled": False}
    changed = conn.execute(
        update(WEB_USER)
        .where(WEB_USER.c.name == name)
        .values(**values, session_version=WEB_USER.c.session_version + 1)
    ).rowcount
    if not changed:
        conn.execute(insert(WEB_USER).values(name=name, created_at=as_utc(now), session_version=0, **values))


def disable_user(conn: Connection, name: str) -> bool:
    """Refuse the user's logins and end every session it has; False for an unknown user."""
    return bool(
        conn.execute(
            update(WEB_USER)
            .where(WEB_USER.c.name == name)
            .values(disabled=True, session_version=WEB_USER.c.session_version + 1)
        ).rowcount
    )


def end_sessions(conn: Connection, name: str) -> None:
    """End every session of the user (logout ends them all, not only the one logging out)."""
    conn.execute(
        update(WEB_USER).where(WEB_USER.c.name == name).values(session_version=WEB_USER.c.session_version + 1)
    )


def check_password(conn: Connection, name: str, password: str) -> int | None:
    """The user's session version when the password is right and the user enabled, else None (at the
    same cost whether the user exists or not)."""
    row = conn.execute(
        select(
            WEB_USER.c.salt, WEB_USER.c.password_hash, WEB_USER.c.disabled, WEB_USER.c.session_version
        ).where(WEB_USER.c.name == name)
    ).first()
    if row is None:
        _hash(password, b"0" * 16)
        return None
    right = hmac.compare_digest(_hash(password, bytes.fromhex(row.salt)).hex(), row.password_hash)
    return int(row.session_version) if right and not row.disabled else None


def session_valid(conn: Connection, name: str, version: object) -> bool:
    """Whether a session made for `name` under `version` still stands: the user exists, is enabled and
    has not logged out, changed password or been disabled since."""
    row = conn.execute(
        select(WEB_USER.c.disabled, WEB_USER.c.session_version).where(WEB_USER.c.name == name)
    ).first()
    return (
        row is not None and not row.disabled and isinstance(version, int) and version == row.session_version
    )


# --- login limiting -------------------------------------------------------------------------------


def login_wait(
    conn: Connection, name: str, address: str, now: dt.datetime, window: dt.timedelta, cap: float
) -> float:
    """Seconds before a login of `name` from `address` may be tried (0: now). The n-th failure within
    `window` makes the next attempt wait 2^n seconds after it, at most `cap`: counted per address (every
    failure from there, whatever the name) and per account (each failing address once, failures before the
    account's last successful login forgotten), so that one address delays an account elsewhere by
    seconds only, and many addresses delay it by at most `cap`, never lock it."""
    a = LOGIN_ATTEMPT.c
    now = as_utc(now)
    since = now - window
    failed = a.ok.is_(False)
    by_address = conn.execute(
        select(func.count(), func.max(a.at)).where(a.address == address[:64], a.at > since, failed)
    ).one()
    last_ok = conn.execute(select(func.max(a.at)).where(a.name == name[:64], a.ok.is_(True))).scalar()
    if last_ok is not None:
        since = max(since, as_utc(last_ok))
    by_account = conn.execute(
        select(func.count(distinct(a.address)), func.max(a.at)).where(
            a.name == name[:64], a.at > since, failed
        )
    ).one()
    wait = 0.0
    for n, last in (by_address, by_account):
        if n and last is not None:
            until = as_utc(last) + dt.timedelta(seconds=min(2.0 ** min(int(n), 32), cap))
            wait = max(wait, (until - now).total_seconds())
    return wait


def record_attempt(conn: Connection, name: str, address: str, ok: bool, now: dt.datetime) -> None:
    conn.execute(insert(LOGIN_ATTEMPT).values(name=name[:64], address=address[:64], at=as_utc(now), ok=ok))


# --- CSRF ---------------------------------------------------------------------------------------------


def csrf_token(session: dict[str, object]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: dict[str, object], sent: str | None) -> bool:
    token = session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)
