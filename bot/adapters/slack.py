"""Slack's Web API behind the ports the core uses: a patient client, and user-group membership."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.domain.errors import GatekeeperError

logger = logging.getLogger(__name__)

#: How long a user group's members are trusted before Slack is asked again.
MEMBERSHIP_TTL_S = 60.0


#: The longest Retry-After waited out inside a call (once, plus up to 1 s of jitter). A longer
#: one is the caller's to keep: the outbox stores the message and its due time, and a request
#: has Slack's 3 seconds to answer.
SHORT_RATE_LIMIT_S = 1


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 only when Slack asks for a short wait; otherwise the 429 is the answer."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        waits = [values[0] for name, values in response.headers.items()
                 if name.lower() == "retry-after" and values]  # fmt: skip
        try:
            return int(waits[0]) <= SHORT_RATE_LIMIT_S
        except (IndexError, ValueError):
            return False


def make_web_client(token: str, base_url: str) -> WebClient:
    """A Web API client that waits out short rate limits and reconnects once on a dropped line."""
    return WebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            ShortRateLimitRetryHandler(max_retry_count=1),
            ConnectionErrorRetryHandler(),
        ],
    )


class MembershipUnavailable(GatekeeperError):
    """Slack could not say who is in a user group, so nobody is let in on its account."""

    def __init__(self, group_id: str, problem: str) -> None:
        super().__init__(
            f"could not check membership of <!subteam^{group_id}>: {problem}; try again in a minute"
        )
        self.group_id = group_id


@dataclass(frozen=True)
class _Known:
    members: frozenset[str]
    until: float


class SlackMembership:
    """``Membership`` from Slack user groups (``usergroups.users.list``), cached for a short TTL."""

    def __init__(
        self,
        client: WebClient,
        *,
        ttl: float = MEMBERSHIP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    def members(self, group_id: str) -> frozenset[str]:
        """The user IDs in a user group; empty when Slack knows no such (enabled) group."""
        now = self._clock()
        with self._lock:
            known = self._known.get(group_id)
        if known is not None and now < known.until:
            return known.members
        members = self._ask_slack(group_id)
        with self._lock:
            self._known[group_id] = _Known(members, now + self._ttl)
        return members

    def _ask_slack(self, group_id: str) -> frozenset[str]:
        # Errors are re-raised "from None": slack_sdk's errors carry the request, token included.
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as error:
            code = str(error.response.get("error") or f"HTTP {error.response.status_code}")
            if code == "no_such_subteam":
                return frozenset()
            logger.warning("usergroups.users.list for %s failed: %s", group_id, code)
            raise MembershipUnavailable(group_id, f"Slack answered {code}") from None
        except (SlackClientError, OSError) as error:
            logger.warning(
                "usergroups.users.list for %s failed: %s", group_id, type(error).__name__
            )
            raise MembershipUnavailable(group_id, "Slack could not be reached") from None
        users = response.get("users") or []
        return frozenset(str(user) for user in users)
