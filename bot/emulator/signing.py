"""Slack's request signing (v0 HMAC-SHA256), and the forgeries a bot must refuse."""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

FORGERY_SKEW_SECONDS = 6 * 60
"""How far a forged timestamp lies: past the five minutes Slack allows either way."""


class Forgery(StrEnum):
    """Ways a request can fail Slack's signature check, for security tests."""

    WRONG_SECRET = "wrong_secret"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    TAMPERED_BODY = "tampered_body"
    """Signed correctly, then changed in transit."""
    MISSING_SIGNATURE = "missing_signature"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v0=<hex>`: HMAC-SHA256 of `v0:{timestamp}:{body}` keyed with the signing secret."""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def sign(
    secret: str, body: bytes, *, now: float, forgery: Forgery | None = None
) -> tuple[dict[str, str], bytes]:
    """The signature headers for `body`, and the body to send (changed if `TAMPERED_BODY`)."""
    when = int(now)
    if forgery is Forgery.STALE_TIMESTAMP:
        when -= FORGERY_SKEW_SECONDS
    elif forgery is Forgery.FUTURE_TIMESTAMP:
        when += FORGERY_SKEW_SECONDS
    timestamp = str(when)
    key = secret + "-but-wrong" if forgery is Forgery.WRONG_SECRET else secret
    headers = {"X-Slack-Request-Timestamp": timestamp}
    if forgery is not Forgery.MISSING_SIGNATURE:
        headers["X-Slack-Signature"] = signature(key, timestamp, body)
    if forgery is Forgery.TAMPERED_BODY:
        body = body + b"&tampered=1" if not body.startswith(b"{") else body[:-1] + b',"x":1}'
    return headers, body
