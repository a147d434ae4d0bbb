"""``POST /webhooks/mlflow``: MLflow's registry webhooks, verified and kept before answering.

A refused delivery is answered 4xx (MLflow retries only 429 and 5xx), audited and counted, and
changes nothing else. An accepted one is stored, answered 202, and acted on after the answer:
MLflow's request returns fast, and a crash in between leaves the delivery for the next poll.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.adapters.mlflow_webhooks import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    verify,
)
from bot.bootstrap import Gatekeeper
from bot.domain.intake import MalformedEvent, parse_event
from bot.metrics import WEBHOOK_DELIVERIES
from bot.store.repositories import AlreadyReceived

logger = logging.getLogger(__name__)

#: MLflow's payloads are a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 1024 * 1024
#: The delivery id column's width; MLflow's ids are UUIDs (36 characters).
MAX_DELIVERY_ID = 64


class _Refused(Exception):
    def __init__(self, status: int, outcome: str, message: str) -> None:
        super().__init__(message)
        self.status, self.outcome, self.message = status, outcome, message


def mlflow_webhook_routes(gatekeeper: Gatekeeper) -> list[Route]:
    """The route MLflow's webhooks are pointed at (``gatekeeper webhooks install``)."""
    intake = gatekeeper.intake
    configured = gatekeeper.settings.mlflow_webhook_secret
    secret = configured.get_secret_value() if configured is not None else None

    async def receive(request: Request) -> Response:
        now = gatekeeper.now()
        named = request.query_params.get("environment")
        delivery_id = request.headers.get(DELIVERY_ID_HEADER)
        # Escaped: a query string may hold characters the audit log's text cannot (NUL).
        source = f"mlflow:{ascii(named or '?')[1:-1][:40]}"
        try:
            environment = intake.environment_named(named)
            if environment is None:
                path = " → ".join(gatekeeper.config.promotion_path)
                raise _Refused(
                    400, "unknown_environment",
                    f"environment={named!r} is not on the promotion path ({path})",
                )  # fmt: skip
            source = f"mlflow:{environment}"
            body = await _body(request)
            try:
                verify(
                    secret,
                    delivery_id=delivery_id,
                    timestamp=request.headers.get(TIMESTAMP_HEADER),
                    signature=request.headers.get(SIGNATURE_HEADER),
                    body=body,
                    now=now,
                )
            except BadSignature as error:
                raise _Refused(401, error.reason, str(error)) from None
            assert delivery_id is not None  # verify() refuses a delivery without one
            if len(delivery_id) > MAX_DELIVERY_ID:
                raise _Refused(
                    400, "malformed", f"{DELIVERY_ID_HEADER} is longer than {MAX_DELIVERY_ID}"
                )
            payload = _json(body)
            try:
                event = parse_event(payload)
            except MalformedEvent as error:
                raise _Refused(400, "malformed", f"not an MLflow webhook event: {error}") from None
            await run_in_threadpool(intake.receive, environment, delivery_id, event, payload, now)
        except _Refused as refused:
            return await _refuse(gatekeeper, source, delivery_id, refused)
        except AlreadyReceived:
            replayed = _Refused(409, "replayed", f"delivery {delivery_id} was already received")
            return await _refuse(gatekeeper, source, delivery_id, replayed)
        except SQLAlchemyError:
            # Not the sender's fault: 503 makes MLflow try again.
            logger.exception("storing MLflow delivery %s failed", delivery_id)
            WEBHOOK_DELIVERIES.labels(outcome="unavailable").inc()
            return JSONResponse({"error": "the database is unavailable; try again"}, 503)
        WEBHOOK_DELIVERIES.labels(outcome="accepted").inc()
        return JSONResponse(
            {"status": "accepted", "delivery_id": delivery_id},
            status_code=202,
            background=BackgroundTask(intake.process, delivery_id),
        )

    return [Route("/webhooks/mlflow", receive, methods=["POST"])]


async def _body(request: Request) -> bytes:
    """The body, refused with 413 past ``MAX_BODY_BYTES`` without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _Refused(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _Refused(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
        # Python reads NaN and Infinity, and nesting until it runs out of stack; neither is JSON
        # a database keeps.
        json.dumps(payload, allow_nan=False)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused(400, "malformed", "the body is not JSON") from None
    if not isinstance(payload, dict):
        raise _Refused(400, "malformed", "not an MLflow webhook event: the body is not an object")
    return payload


async def _refuse(
    gatekeeper: Gatekeeper, source: str, delivery_id: str | None, refused: _Refused
) -> Response:
    WEBHOOK_DELIVERIES.labels(outcome=refused.outcome).inc()
    shown_id = delivery_id[:MAX_DELIVERY_ID] if delivery_id else None
    try:
        await run_in_threadpool(
            gatekeeper.intake.refuse, source, shown_id, refused.message, gatekeeper.now()
        )
    except SQLAlchemyError:
        logger.exception("auditing a refused MLflow delivery failed")
    return JSONResponse({"error": refused.message}, status_code=refused.status)
