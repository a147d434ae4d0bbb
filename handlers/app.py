"""The Bolt app: built once from a wired Gatekeeper, listeners registered one module per kind."""

from __future__ import annotations

from slack_bolt import App

from bot.bootstrap import Gatekeeper
from handlers import actions, commands, errors, events, middleware, views


def build_app(gatekeeper: Gatekeeper) -> App:
    settings = gatekeeper.settings
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        raise SystemExit(
            "error: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (the Slack app's settings)"
        )
    if settings.slack_client_id and settings.slack_client_secret:
        # Bolt reads these two itself and would silently ignore SLACK_BOT_TOKEN.
        raise SystemExit(
            "error: SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set, which switches Bolt to "
            "OAuth (multi-workspace install) mode and ignores SLACK_BOT_TOKEN; Gatekeeper runs "
            "in one workspace with its bot token: unset them"
        )
    app = App(
        token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        client=gatekeeper.slack,
        # Bolt would call auth.test here, at import time of every process; it does so lazily
        # on the first request instead.
        token_verification_enabled=False,
        # Listeners ack within the request; slow work goes to lazy listeners or the outbox.
        process_before_response=True,
    )
    middleware.register(app, gatekeeper)
    errors.register(app, gatekeeper)
    commands.register(app, gatekeeper)
    actions.register(app, gatekeeper)
    views.register(app, gatekeeper)
    events.register(app, gatekeeper)
    return app
