"""Checks every request passes before a listener sees it: retries and foreign workspaces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

from bot.bootstrap import Gatekeeper
from handlers.context import Origin, slack_id


def register(app: App, gatekeeper: Gatekeeper) -> None:
    origin = gatekeeper.config.slack

    @app.middleware
    def ignore_retries(request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse:
        # The first delivery was processed before it was acknowledged (process_before_response),
        # so a retry can only repeat it.
        # Bolt's Socket Mode adapter sends 0 on every first delivery; only 1 and up are retries.
        retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
        if retry.isdigit() and int(retry) > 0:
            return BoltResponse(status=200, body="")
        return next()

    @app.middleware
    def only_our_workspace(
        request: BoltRequest, body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse:
        team = Origin.of(body).team or slack_id(request.context.team_id)
        app_id = body.get("api_app_id")
        foreign = (origin.team_ids and team not in origin.team_ids) or (
            origin.app_id is not None and app_id is not None and app_id != origin.app_id
        )
        if not foreign:
            return next()
        with gatekeeper.unit_of_work() as uow:
            uow.audit.append(
                Origin.of(body).user or "unknown",
                "request.refused",
                f"team:{team}",
                {"why": "workspace or app not configured", "app": slack_id(app_id)},
                at=gatekeeper.now(),
            )
            uow.commit()
        return BoltResponse(
            status=200, body="This Gatekeeper does not serve your workspace or app."
        )
