"""The HTTP face: Slack's requests, health, readiness and metrics, on one ASGI app.

In Socket Mode Slack reaches the bot over the socket it opened, and ``/slack/events`` says so
(404) rather than accepting requests from a second path nobody watches; everything else is
served the same way in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.request import payload_utils
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.bootstrap import Gatekeeper
from bot.readiness import Check, SlackReachable, database_check, socket_check
from bot.web_mlflow import mlflow_webhook_routes

#: Prometheus's text exposition format, version 0.0.4.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def create_web_app(
    gatekeeper: Gatekeeper,
    slack_app: App,
    *,
    socket_connected: Callable[[], bool] | None = None,
) -> Starlette:
    """The app; ``socket_connected`` is given in Socket Mode, where Slack is not reached by HTTP."""
    checks: dict[str, Callable[[], Check]] = {
        "database": database_check(gatekeeper.engine),
        "slack": _slack_check(gatekeeper, socket_connected),
    }

    def dispatch(body: bytes, query: str, headers: dict[str, str | Sequence[str]]) -> BoltResponse:
        # Parsing the body (a block_actions payload carries the whole message) is work too:
        # off the event loop with the rest.
        text = body.decode("utf-8", errors="replace")
        try:
            bolt_request = BoltRequest(body=text, query=query, headers=headers)
            _read_as_bolt_does(bolt_request.body)
        except Exception:  # Bolt's reading of the body trips over any shape Slack never sends
            return _unreadable(gatekeeper, text, headers)
        return slack_app.dispatch(bolt_request)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        headers: dict[str, str | Sequence[str]] = {k: [v] for k, v in request.headers.items()}
        # Bolt and the store are synchronous: keep them off the event loop.
        bolt_response = await run_in_threadpool(dispatch, body, request.url.query, headers)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def in_socket_mode(_: Request) -> Response:
        return JSONResponse(
            {"error": "this Gatekeeper receives Slack over Socket Mode, not at /slack/events"},
            status_code=404,
        )

    async def readyz(_: Request) -> Response:
        # Blocking checks (a query, a call to Slack): off the event loop.
        outcomes = {name: await run_in_threadpool(check) for name, check in checks.items()}
        ready = all(outcome.ok for outcome in outcomes.values())
        return JSONResponse(
            {
                "status": "ready" if ready else "not ready",
                "checks": {name: outcome.as_json() for name, outcome in outcomes.items()},
            },
            status_code=200 if ready else 503,
        )

    async def metrics_text(_: Request) -> Response:
        body = await run_in_threadpool(metrics.render, gatekeeper.engine, gatekeeper.now)
        return Response(body, media_type=METRICS_CONTENT_TYPE)

    return Starlette(
        routes=[
            Route(
                "/slack/events",
                slack_events if socket_connected is None else in_socket_mode,
                methods=["POST"],
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
            *mlflow_webhook_routes(gatekeeper),
        ]
    )


def _read_as_bolt_does(body: dict[str, Any]) -> None:
    """Raise where Bolt would: its middleware, matchers and logging index Slack's shapes
    unchecked (an empty ``actions``, a ``view`` that is a list), before any listener or error
    handler runs."""
    if any(key in body and not isinstance(body[key], dict) for key in ("event", "view")):
        raise TypeError("'event' and 'view' are objects")
    actions = body.get("actions", [])
    if not (isinstance(actions, list) and all(isinstance(a, dict) for a in actions)):
        raise TypeError("'actions' is a list of objects")
    if payload_utils.is_block_actions(body) and not (actions and "action_id" in actions[0]):
        raise ValueError("a block action without an action_id")
    for read in _BOLT_READERS:
        read(body)


#: What Bolt reads out of every payload to offer listeners as arguments.
_BOLT_READERS = (
    payload_utils.to_action,
    payload_utils.to_command,
    payload_utils.to_event,
    payload_utils.to_message,
    payload_utils.to_options,
    payload_utils.to_shortcut,
    payload_utils.to_step,
    payload_utils.to_view,
)


def _unreadable(
    gatekeeper: Gatekeeper, body: str, headers: dict[str, str | Sequence[str]]
) -> BoltResponse:
    """A body Bolt could not read, which it reads before checking the signature: 401 as Bolt
    answers when Slack did not sign it, else 400 (Slack never sends such a body)."""
    secret = gatekeeper.settings.slack_signing_secret
    timestamp = _header(headers, "x-slack-request-timestamp")
    signature = _header(headers, "x-slack-signature")
    if secret is None or not SignatureVerifier(secret.get_secret_value()).is_valid(
        body, timestamp, signature
    ):
        return BoltResponse(status=401, body={"error": "invalid request"})
    return BoltResponse(status=400, body={"error": "not a Slack request Gatekeeper can read"})


def _header(headers: dict[str, str | Sequence[str]], name: str) -> str:
    value = headers.get(name, "")
    return value if isinstance(value, str) else next(iter(value), "")


def _slack_check(
    gatekeeper: Gatekeeper, socket_connected: Callable[[], bool] | None
) -> Callable[[], Check]:
    if socket_connected is not None:
        return socket_check(socket_connected)
    token = gatekeeper.settings.slack_bot_token
    return SlackReachable(
        token.get_secret_value() if token else "", gatekeeper.settings.slack_api_url
    )
