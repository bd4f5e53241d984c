"""Signed links: one unit (or one supervising department) and one checkpoint signed with the web secret
(itsdangerous), read back with an age limit. The warning e-mails make them, the web pages read them.
A unit's token signs [unit, checkpoint] (as every link sent so far); a department's signs
["department", code, checkpoint], so neither opens the other's pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from monitor.core.errors import BadInput
from monitor.core.workdays import as_utc

LINK_SALT = "monitor.unit-link"  # never change it: every link sent so far would stop working


UNIT, DEPARTMENT = "unit", "department"


@dataclass(frozen=True)
class Scope:
    unit_code: str  # the unit, or the department's own unit code
    checkpoint: str
    kind: str = UNIT


class BadLink(BadInput):
    """A link that was altered, or expired; `expired` says which (the page words it accordingly)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "bad signature")
        self.expired = expired


def make_token(secret: str, scope: Scope) -> str:
    payload = [scope.unit_code, scope.checkpoint]
    if scope.kind != UNIT:
        payload.insert(0, scope.kind)
    return URLSafeTimedSerializer(secret, salt=LINK_SALT).dumps(payload)


def department_link(base_url: str, secret: str, department: str, checkpoint: str) -> str:
    """The department's review page (主管部门审核) for a checkpoint."""
    token = make_token(secret, Scope(department, checkpoint, DEPARTMENT))
    return f"{base_url.rstrip('/')}/d/{token}"


def read_token(secret: str, token: str, max_age: dt.timedelta, now: dt.datetime, kind: str = UNIT) -> Scope:
    """The scope a token was signed for; BadLink when it was altered, is older than `max_age` at `now`,
    or was signed for another kind of scope than `kind` (a unit's link never opens a department's page)."""
    try:
        payload, signed_at = URLSafeTimedSerializer(secret, salt=LINK_SALT).loads(
            token, return_timestamp=True
        )
    except SignatureExpired as exc:  # pragma: no cover - no max_age is passed; kept for safety
        raise BadLink(expired=True) from exc
    except BadSignature as exc:
        raise BadLink(expired=False) from exc
    if not (isinstance(payload, list) and all(isinstance(p, str) for p in payload)):
        raise BadLink(expired=False)
    if len(payload) == 2:
        payload = [UNIT, *payload]
    if len(payload) != 3 or payload[0] != kind:
        raise BadLink(expired=False)
    if as_utc(now) - as_utc(signed_at) > max_age:
        raise BadLink(expired=True)
    return Scope(payload[1], payload[2], kind)


def unit_link(base_url: str, secret: str, scope: Scope) -> str:
    return f"{base_url.rstrip('/')}/u/{make_token(secret, scope)}"


def report_link(base_url: str, secret: str, scope: Scope) -> str:
    """The unit's reporting page (填报) for one checkpoint: the same signature as unit_link."""
    return f"{base_url.rstrip('/')}/r/{make_token(secret, scope)}"
