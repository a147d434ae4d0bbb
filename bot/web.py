"""The HTTP face: Slack's requests, health and readiness, on one ASGI app."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import App, BoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bootstrap import Gatekeeper


def create_web_app(gatekeeper: Gatekeeper, slack_app: App) -> Starlette:
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

    async def readyz(_: Request) -> Response:
        checks = {"database": await run_in_threadpool(_database_ok(gatekeeper))}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


def _database_ok(gatekeeper: Gatekeeper) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with gatekeeper.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the probe reports, never raises
            return False
        return True

    return check
