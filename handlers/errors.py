"""The one error boundary: a person always hears what went wrong, and never sees a stack trace."""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.bootstrap import Gatekeeper
from bot.domain.errors import GatekeeperError
from handlers.context import Origin

logger = logging.getLogger("gatekeeper.handlers")

DATABASE_AWAY = (
    ":hourglass_flowing_sand: Gatekeeper's database did not answer, so nothing was done. "
    "Try again in a minute."
)
#: Slack waits 3 s for the answer this post holds up.
RESPONSE_URL_TIMEOUT_S = 2


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
    if _database_away(error):
        # Expected while the database restarts: one line, the class name only (a driver's
        # message may carry the URL and its password), no traceback per request.
        logger.warning(
            "the database did not answer (%s) handling %s from %s",
            type(error).__name__,
            body.get("type") or body.get("command"),
            Origin.of(body).user,
        )
        return DATABASE_AWAY
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


def _database_away(error: Exception) -> bool:
    """Whether the database was unreachable or dropped the connection, rather than a bug."""
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def tell_or_respond(gatekeeper: Gatekeeper, body: dict[str, Any], error: Exception) -> None:
    """Tell the person what went wrong: through the outbox, or, when the database failed (and
    the outbox is in it), straight back through the request's response_url."""
    text = message_for(error, body)
    if _database_away(error) and _respond(body, text):
        return
    try:
        tell(gatekeeper, Origin.of(body), text)
    except SQLAlchemyError:
        if not _respond(body, text):
            logger.warning("the database is away and %s was not told", Origin.of(body).user)


def _respond(body: dict[str, Any], text: str) -> bool:
    """Post ``text`` to the request's response_url, seen only by its sender; whether it went."""
    url = body.get("response_url")
    if not isinstance(url, str):
        return False
    try:
        sent = WebhookClient(url, timeout=RESPONSE_URL_TIMEOUT_S).send(
            text=text, response_type="ephemeral", replace_original=False
        )
    except (SlackClientError, OSError) as failure:
        logger.warning("answering through response_url failed: %s", type(failure).__name__)
        return False
    if sent.status_code != 200:
        logger.warning("answering through response_url failed: HTTP %s", sent.status_code)
    return sent.status_code == 200


def guarded(gatekeeper: Gatekeeper, lazy: Callable[..., None]) -> Callable[..., None]:
    """A lazy listener runs after the ack, past ``@app.error``: this gives it the same boundary."""
    wanted = set(inspect.signature(lazy).parameters)

    # Bolt passes what a listener's parameters name, so this one names all that lazies use.
    def run(body: dict[str, Any], client: WebClient, event: dict[str, Any] | None) -> None:
        given = {"body": body, "client": client, "event": event}
        try:
            lazy(**{name: value for name, value in given.items() if name in wanted})
        except Exception as error:
            tell_or_respond(gatekeeper, body, error)

    # Bolt finds a lazy listener again by its name when it runs it.
    run.__name__, run.__qualname__ = lazy.__name__, lazy.__qualname__
    return run


def register(app: App, gatekeeper: Gatekeeper) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None) -> None:
        if isinstance(error, GatekeeperError) and error.told:
            gatekeeper.delivery.wake()  # queued with the refusal; deliver it now
        else:
            tell_or_respond(gatekeeper, body, error)
        if response is not None:
            # The request was understood and the person is being told why it did nothing;
            # a 5xx would only make Slack show its own generic failure on top.
            response.status, response.body = 200, ""
