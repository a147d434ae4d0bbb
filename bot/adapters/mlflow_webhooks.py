"""MLflow 3 registry webhooks on the wire: checking a delivery's signature, and subscribing.

MLflow signs ``<delivery id>.<unix timestamp>.<body>`` with HMAC-SHA256 under the webhook's
secret and sends ``v1,<base64 digest>`` (``mlflow.webhooks.delivery``); the timestamp is signed,
so a delivery replayed later than ``MAX_SKEW`` is refused here, and one replayed sooner is
refused by its delivery id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from mlflow.entities.webhook import Webhook, WebhookEvent, WebhookEventStr
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.webhooks.constants import (
    WEBHOOK_DELIVERY_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_VERSION,
    WEBHOOK_TIMESTAMP_HEADER,
)

from bot.adapters.mlflow_registry import (
    _shorten_http_retries,
    _without_credentials,
    translate_error,
)
from bot.domain.errors import GatekeeperError
from bot.domain.intake import SUBSCRIBED

__all__ = [
    "DELIVERY_ID_HEADER",
    "MAX_SKEW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "Subscription",
    "sign",
    "subscribe",
    "subscriptions",
    "verify",
]

SIGNATURE_HEADER = WEBHOOK_SIGNATURE_HEADER
TIMESTAMP_HEADER = WEBHOOK_TIMESTAMP_HEADER
DELIVERY_ID_HEADER = WEBHOOK_DELIVERY_ID_HEADER
#: The same window Slack's requests get: older or newer deliveries are refused.
MAX_SKEW = timedelta(minutes=5)

T = TypeVar("T")


class BadSignature(GatekeeperError):
    """A delivery MLflow did not sign with our secret, or signed too long ago; ``reason`` is a
    short label for counting it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def verify(
    secret: str | None,
    *,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
) -> None:
    """Pass a delivery MLflow signed with ``secret`` within ``MAX_SKEW`` of ``now``; else raise
    ``BadSignature`` saying why."""
    if not secret:
        raise BadSignature(
            "no_secret", "MLFLOW_WEBHOOK_SECRET is not set: every MLflow delivery is refused"
        )
    for header, value in (
        (SIGNATURE_HEADER, signature),
        (TIMESTAMP_HEADER, timestamp),
        (DELIVERY_ID_HEADER, delivery_id),
    ):
        if not value:
            raise BadSignature("unsigned", f"the {header} header is missing")
    assert signature is not None
    assert timestamp is not None
    assert delivery_id is not None
    expected = _digest(secret, delivery_id, timestamp, body)
    # Several signatures may be sent while a secret is rotated: "v1,<a> v1,<b>".
    offered = [_decoded(part) for part in signature.split()]
    if not any(hmac.compare_digest(expected, digest) for digest in offered if digest is not None):
        raise BadSignature("bad_signature", f"the {SIGNATURE_HEADER} header does not match")
    not_unix_time = BadSignature(
        "bad_timestamp", f"the {TIMESTAMP_HEADER} header is not a Unix time"
    )
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise not_unix_time
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (OverflowError, OSError, ValueError):  # past the year 9999: twelve digits reach 33658
        raise not_unix_time from None
    if abs(now - sent) > MAX_SKEW:
        raise BadSignature(
            "stale",
            f"the delivery was signed at {sent.isoformat()}, more than "
            f"{int(MAX_SKEW.total_seconds() // 60)} minutes from now",
        )


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The signature header MLflow would send; for the demo and for tests that play MLflow."""
    digest = base64.b64encode(_digest(secret, delivery_id, timestamp, body)).decode("ascii")
    return f"{WEBHOOK_SIGNATURE_VERSION},{digest}"


def _digest(secret: str, delivery_id: str, timestamp: str, body: bytes) -> bytes:
    signed = b".".join((delivery_id.encode("utf-8"), timestamp.encode("utf-8"), body))
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()


def _decoded(part: str) -> bytes | None:
    version, _, encoded = part.partition(",")
    if version != WEBHOOK_SIGNATURE_VERSION:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class Subscription:
    """A webhook on an MLflow server, as ``gatekeeper webhooks list`` shows it."""

    name: str
    url: str
    events: tuple[str, ...]
    status: str


def subscribe(environment: str, tracking_uri: str, name: str, url: str, secret: str) -> str:
    """Create the webhook ``name`` on the server, or bring it up to date; "created" or "updated".

    Raises the registry errors of ``bot.services.registry``, naming the environment and server.
    """
    client = _client(tracking_uri)
    events: list[WebhookEvent | WebhookEventStr] = [
        WebhookEvent(*kind.split(".")) for kind in SUBSCRIBED
    ]

    def call() -> str:
        for found in _all(client):
            if found.name == name:
                client.update_webhook(
                    found.webhook_id, url=url, events=events, secret=secret, status="ACTIVE"
                )
                return "updated"
        client.create_webhook(
            name, url, events, description="Gatekeeper: model versions asking for promotion",
            secret=secret,
        )  # fmt: skip
        return "created"

    return _asking(environment, tracking_uri, call)


def subscriptions(environment: str, tracking_uri: str) -> list[Subscription]:
    """Every webhook on the server (Gatekeeper's and others'), by name."""
    client = _client(tracking_uri)

    def call() -> list[Subscription]:
        return sorted(
            (
                Subscription(
                    str(hook.name),
                    str(hook.url),
                    tuple(f"{e.entity.value}.{e.action.value}" for e in hook.events),
                    str(hook.status),
                )
                for hook in _all(client)
            ),
            key=lambda hook: hook.name,
        )

    return _asking(environment, tracking_uri, call)


def _client(tracking_uri: str) -> MlflowClient:
    _shorten_http_retries()
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _all(client: MlflowClient) -> list[Webhook]:
    hooks: list[Webhook] = []
    token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        hooks.extend(page)
        token = page.token
        if not token:
            return hooks


def _asking(environment: str, tracking_uri: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except MlflowException as error:
        raise translate_error(environment, _without_credentials(tracking_uri), error) from error
