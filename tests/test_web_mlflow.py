"""`POST /webhooks/mlflow` in process: refusals that need a bot configured differently."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import anyio
import httpx
import pytest
import sqlalchemy as sa
from mlflow.webhooks.delivery import _generate_hmac_signature
from starlette.applications import Starlette

from bot.bootstrap import Gatekeeper, build
from bot.config import load_settings, parse_config
from bot.metrics import WEBHOOK_DELIVERIES
from bot.store.models import AuditRow, WebhookDeliveryRow
from bot.web_mlflow import MAX_BODY_BYTES, mlflow_webhook_routes

SECRET = "in-process-webhook-secret"
CONFIG = {
    "environments": {
        "dev": {"mlflow": "http://127.0.0.1:1"},
        "prod": {"mlflow": "http://127.0.0.1:2"},
    },
    "promotion_path": ["dev", "prod"],
    "models": {"churn": {"channel": "C0ML00001"}},
    "policies": {"prod": {"approvals": 0}},
}


def _gatekeeper(database_url: str, secret: str | None) -> Iterator[Gatekeeper]:
    settings = load_settings(database_url=database_url, mlflow_webhook_secret=secret)
    gatekeeper = build(settings, parse_config(CONFIG))
    yield gatekeeper
    gatekeeper.close()


@pytest.fixture
def unset(sqlite_url: str) -> Iterator[Gatekeeper]:
    yield from _gatekeeper(sqlite_url, None)


@pytest.fixture
def configured(sqlite_url: str) -> Iterator[Gatekeeper]:
    yield from _gatekeeper(sqlite_url, SECRET)


def _post(gatekeeper: Gatekeeper, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """The request through the ASGI app; its background work is done when this returns."""
    app = Starlette(routes=mlflow_webhook_routes(gatekeeper))

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gatekeeper") as client:
            return await client.post(url, content=body, headers=headers)

    return anyio.run(send)


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    delivery_id, stamp = str(uuid.uuid4()), str(int(datetime.now(UTC).timestamp()))
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, stamp, body.decode()),
    }


def _stored(gatekeeper: Gatekeeper) -> tuple[int, list[AuditRow]]:
    with gatekeeper.unit_of_work() as uow:
        kept = uow.session.scalar(sa.select(sa.func.count(WebhookDeliveryRow.delivery_id)))
        audit = list(uow.session.scalars(sa.select(AuditRow)))
    return int(kept or 0), audit


BODY = json.dumps(
    {"entity": "model_version", "action": "created", "data": {"name": "churn", "version": "1"}}
).encode()


def test_without_a_secret_every_delivery_is_refused(unset: Gatekeeper) -> None:
    before = WEBHOOK_DELIVERIES.labels(outcome="no_secret")._value.get()

    answer = _post(unset, "/webhooks/mlflow", BODY, _signed(BODY))

    assert answer.status_code == 401
    assert "MLFLOW_WEBHOOK_SECRET is not set" in answer.json()["error"]
    kept, [audited] = _stored(unset)
    assert kept == 0
    assert (audited.actor, audited.action) == ("mlflow:dev", "webhook.refused")
    assert WEBHOOK_DELIVERIES.labels(outcome="no_secret")._value.get() == before + 1


def test_a_body_over_a_megabyte_is_refused_unread(configured: Gatekeeper) -> None:
    body = b'{"entity": "' + b"x" * MAX_BODY_BYTES + b'"}'

    answer = _post(configured, "/webhooks/mlflow", body, _signed(body))

    assert answer.status_code == 413
    kept, [audited] = _stored(configured)
    assert kept == 0
    assert "over" in audited.details["reason"]


def test_an_accepted_delivery_is_kept_before_the_answer_and_acted_on_after(
    configured: Gatekeeper,
) -> None:
    answer = _post(configured, "/webhooks/mlflow?environment=dev", BODY, _signed(BODY))

    assert answer.status_code == 202
    assert answer.json()["status"] == "accepted"
    with configured.unit_of_work() as uow:
        row = uow.session.get(WebhookDeliveryRow, answer.json()["delivery_id"])
        assert row is not None
    # dev's MLflow is not running here: kept for the next poll, with the reason.
    assert (row.environment, row.event, row.payload) == (
        "dev",
        "model_version.created",
        json.loads(BODY),
    )
    assert row.outcome == "failed"
    assert row.processed_at is None
    assert "cannot be reached" in (row.detail or "")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        # Python reads these; a JSON column does not keep them (PostgreSQL refuses NaN).
        (b'{"entity": "model_version", "action": "created", "data": {"x": NaN}}', "not JSON"),
        (b'{"entity": "model_version", "action": "created", "data": {"x": 1e999}}', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),  # deeper than Python's stack
        # The kind is stored as text: a lone surrogate could not be encoded to store it.
        (b'{"entity": "model_version", "action": "\\ud800", "data": {}}', "not an MLflow name"),
        (b'{"entity": "' + b"e" * 80 + b'", "action": "created", "data": {}}', "not an MLflow"),
    ],
)
def test_a_body_python_reads_but_no_database_keeps_is_refused(
    configured: Gatekeeper, body: bytes, said: str
) -> None:
    answer = _post(configured, "/webhooks/mlflow?environment=dev", body, _signed(body))

    assert answer.status_code == 400
    assert said in answer.json()["error"]
    kept, [audited] = _stored(configured)
    assert kept == 0
    assert audited.action == "webhook.refused"


@pytest.fixture
def on_either_database(database_url: str) -> Iterator[Gatekeeper]:
    yield from _gatekeeper(database_url, SECRET)


def test_an_unknown_environment_of_any_spelling_is_refused_and_audited(
    on_either_database: Gatekeeper,
) -> None:
    query = "/webhooks/mlflow?environment=qa%00"  # PostgreSQL keeps no NUL in text

    answer = _post(on_either_database, query, BODY, _signed(BODY))

    assert answer.status_code == 400
    assert "'qa\\x00' is not on the promotion path" in answer.json()["error"]
    kept, [audited] = _stored(on_either_database)
    assert kept == 0
    assert audited.actor == "mlflow:qa\\x00"
