"""Signed unit links: one unit and one checkpoint signed with the web secret (itsdangerous), read back
with an age limit. The warning e-mails make them, the web pages read them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from monitor.core.errors import BadInput
from monitor.core.workdays import as_utc

LINK_SALT = "monitor.unit-link"  # never change it: every link sent so far would stop working


@dataclass(frozen=True)
class Scope:
    unit_code: str
    checkpoint: str


class BadLink(BadInput):
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


def report_link(base_url: str, secret: str, scope: Scope) -> str:
    """The unit's reporting page (填报) for one checkpoint: the same signature as unit_link."""
    return f"{base_url.rstrip('/')}/r/{make_token(secret, scope)}"
