"""The one error boundary: a person always hears what went wrong, and never sees a stack trace."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient

from bot.bootstrap import Gatekeeper
from bot.domain.errors import GatekeeperError
from handlers.context import Origin

logger = logging.getLogger("gatekeeper.handlers")


def tell(gatekeeper: Gatekeeper, origin: Origin, text: str) -> None:
    """Queue an ephemeral message to whoever sent the request, in the channel they used."""
    if not origin.channel or not origin.user:
        return
    with gatekeeper.unit_of_work() as uow:
        gatekeeper.notifier.privately(uow, origin.channel, origin.user, text, gatekeeper.now())
        uow.commit()
    gatekeeper.delivery.wake()


def message_for(error: Exception, body: dict[str, Any]) -> str:
    """What the person reads: the domain's own words, or a reference to the log."""
    if isinstance(error, GatekeeperError):
        return f":no_entry_sign: {error}"
    reference = uuid.uuid4().hex[:8]
    logger.error(
        "unexpected error (ref %s) handling %s from %s",
        reference,
        body.get("type") or body.get("command"),
        Origin.of(body).user,
        exc_info=error,
    )
    return (
        ":warning: Something went wrong on Gatekeeper's side and nothing was changed. "
        f"It has been logged (ref {reference})."
    )


def guarded(gatekeeper: Gatekeeper, lazy: Callable[..., None]) -> Callable[..., None]:
    """A lazy listener runs after the ack, past ``@app.error``: this gives it the same boundary."""
    wanted = set(inspect.signature(lazy).parameters)

    # Bolt passes what a listener's parameters name, so this one names all that lazies use.
    def run(body: dict[str, Any], client: WebClient, event: dict[str, Any] | None) -> None:
        given = {"body": body, "client": client, "event": event}
        try:
            lazy(**{name: value for name, value in given.items() if name in wanted})
        except Exception as error:
            tell(gatekeeper, Origin.of(body), message_for(error, body))

    # Bolt finds a lazy listener again by its name when it runs it.
    run.__name__, run.__qualname__ = lazy.__name__, lazy.__qualname__
    return run


def register(app: App, gatekeeper: Gatekeeper) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None) -> None:
        if isinstance(error, GatekeeperError) and error.told:
            gatekeeper.delivery.wake()  # queued with the refusal; deliver it now
        else:
            tell(gatekeeper, Origin.of(body), message_for(error, body))
        if response is not None:
            # The request was understood and the person is being told why it did nothing;
            # a 5xx would only make Slack show its own generic failure on top.
            response.status, response.body = 200, ""
