"""Who may see what: signed unit links (one unit, one checkpoint, an expiry), bureau users with scrypt
password hashes and a per-user salt, login attempt limiting per user and address, and CSRF tokens
bound to the session. Secrets and the clock come in as arguments.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from monitor.store import LOGIN_ATTEMPT, WEB_USER, as_utc

LINK_SALT = "monitor.unit-link"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# --- unit links ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    unit_code: str
    checkpoint: str


class BadLink(Exception):
    """A link that was altered, or expired; `expired` says which (the page words it accordingly)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "bad signature")
        self.expired = expired


def make_token(secret: str, scope: Scope) -> str:
    return URLSafeTimedSerializer(secret, salt=LINK_SALT).dumps([scope.unit_code, scope.checkpoint])


def read_token(secret: str, token: str, max_age: dt.timedelta, now: dt.datetime) -> Scope:
    """The scope a token was signed for; BadLink when it was altered or is older than `max_age` at `now`."""
    try:
        payload, signed_at = URLSafeTimedSerializer(secret, salt=LINK_SALT).loads(
            token, return_timestamp=True
        )
    except SignatureExpired as exc:  # pragma: no cover - no max_age is passed; kept for safety
        raise BadLink(expired=True) from exc
    except BadSignature as exc:
        raise BadLink(expired=False) from exc
    if not (isinstance(payload, list) and len(payload) == 2 and all(isinstance(p, str) for p in payload)):
        raise BadLink(expired=False)
    if as_utc(now) - as_utc(signed_at) > max_age:
        raise BadLink(expired=True)
    return Scope(payload[0], payload[1])


def unit_link(base_url: str, secret: str, scope: Scope) -> str:
    return f"{base_url.rstrip('/')}/u/{make_token(secret, scope)}"


# --- bureau users ---------------------------------------------------------------------------------


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=64)


def add_user(conn: Connection, name: str, password: str, now: dt.datetime) -> None:
    """Create or replace a user; ValueError for a bad name or a password shorter than 10 characters."""
    if not NAME.match(name):
        raise ValueError("user name: 1-64 letters, digits, '_', '.' or '-'")
    if len(password) < 10:
        raise ValueError("password: at least 10 characters")
    salt = secrets.token_bytes(16)
    row = {
        "name": name,
        "salt": salt.hex(),
        "password_hash": _hash(password, salt).hex(),
        "created_at": as_utc(now),
    }
    from monitor.store import upsert

    upsert(conn, WEB_USER, [row])


def check_password(conn: Connection, name: str, password: str) -> bool:
    row = conn.execute(
        select(WEB_USER.c.salt, WEB_USER.c.password_hash).where(WEB_USER.c.name == name)
    ).first()
    if row is None:
        _hash(password, b"0" * 16)  # same cost whether the user exists or not
        return False
    return hmac.compare_digest(_hash(password, bytes.fromhex(row.salt)).hex(), row.password_hash)


def locked(
    conn: Connection, name: str, address: str, now: dt.datetime, limit: int, window: dt.timedelta
) -> bool:
    """Whether `limit` logins of this user from this address failed within `window` before `now`."""
    since = as_utc(now) - window
    q = select(func.count()).where(
        LOGIN_ATTEMPT.c.name == name[:64],
        LOGIN_ATTEMPT.c.address == address[:64],
        LOGIN_ATTEMPT.c.at > since,
        LOGIN_ATTEMPT.c.ok.is_(False),
    )
    return int(conn.execute(q).scalar_one()) >= limit


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
