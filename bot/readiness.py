"""What ``GET /readyz`` checks: the database answers, and Slack is reachable (or the socket open).

A probe runs every few seconds on every replica, so Slack's answer is remembered for a while:
probes must not spend the app's rate limit, nor wait long on a Slack that does not answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

#: How long a good answer from Slack stands before it is asked again.
SLACK_OK_TTL_S = 30.0
#: A failure is believed for less long: once Slack is back, the replica is ready again soon.
SLACK_FAILED_TTL_S = 5.0
#: The probe's own patience with auth.test; orchestrators time probes out after a few seconds.
SLACK_TIMEOUT_S = 3


@dataclass(frozen=True)
class Check:
    """One readiness check's outcome, and why it failed."""

    ok: bool
    reason: str | None = None

    def as_json(self) -> dict[str, object]:
        return {"ok": True} if self.ok else {"ok": False, "reason": self.reason}


def database_check(engine: Engine) -> Callable[[], Check]:
    """Whether the database answers ``SELECT 1``."""

    def check() -> Check:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            # The class name only: a driver's message may carry the URL and its password.
            return Check(False, f"the database did not answer ({type(error).__name__})")
        return Check(True)

    return check


class SlackReachable:
    """Slack's ``auth.test`` with the bot's token and API URL, asked at most every 30 s."""

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Its own client: the bot's retries connection errors and waits 30 s for an answer.
        self._client = WebClient(token=token, base_url=base_url, timeout=SLACK_TIMEOUT_S)
        self._clock = clock
        self._lock = threading.Lock()
        self._known: Check | None = None
        self._until = 0.0

    def __call__(self) -> Check:
        # One probe asks at a time; those arriving meanwhile get its answer.
        with self._lock:
            now = self._clock()
            if self._known is None or now >= self._until:
                self._known = self._ask()
                ttl = SLACK_OK_TTL_S if self._known.ok else SLACK_FAILED_TTL_S
                self._until = now + ttl
            return self._known

    def _ask(self) -> Check:
        # slack_sdk's errors carry the request, token included: only their gist is kept.
        try:
            self._client.auth_test()
        except SlackApiError as error:
            code = error.response.get("error") or f"HTTP {error.response.status_code}"
            logger.warning("readyz: Slack's auth.test answered %s", code)
            return Check(False, f"Slack answered auth.test with {code}")
        except (SlackClientError, OSError) as error:
            logger.warning("readyz: Slack could not be reached: %s", type(error).__name__)
            return Check(False, f"Slack could not be reached ({type(error).__name__})")
        return Check(True)


def socket_check(is_connected: Callable[[], bool]) -> Callable[[], Check]:
    """Whether the Socket Mode connection to Slack is open (it reconnects by itself)."""

    def check() -> Check:
        if is_connected():
            return Check(True)
        return Check(False, "the Socket Mode connection to Slack is not open")

    return check
