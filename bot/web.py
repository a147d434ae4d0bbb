"""The HTTP face: Slack's requests, health, readiness and metrics, on one ASGI app.

In Socket Mode Slack reaches the bot over the socket it opened, and ``/slack/events`` says so
(404) rather than accepting requests from a second path nobody watches; everything else is
served the same way in both modes.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltRequest
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

    async def slack_events(request: Request) -> Response:
        bolt_request = BoltRequest(
            body=(await request.body()).decode("utf-8", errors="replace"),
            query=request.url.query,
            headers={k: [v] for k, v in request.headers.items()},
        )
        # Bolt and the store are synchronous: keep them off the event loop.
        bolt_response = await run_in_threadpool(slack_app.dispatch, bolt_request)
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


def _slack_check(
    gatekeeper: Gatekeeper, socket_connected: Callable[[], bool] | None
) -> Callable[[], Check]:
    if socket_connected is not None:
        return socket_check(socket_connected)
    token = gatekeeper.settings.slack_bot_token
    return SlackReachable(
        token.get_secret_value() if token else "", gatekeeper.settings.slack_api_url
    )
