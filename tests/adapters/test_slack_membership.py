"""User-group membership asked of Slack (the emulator, over HTTP), cached for a short while."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.adapters.slack import (
    MembershipUnavailable,
    ShortRateLimitRetryHandler,
    SlackMembership,
    make_web_client,
)
from bot.domain.approvals import is_member
from bot.domain.errors import GatekeeperError
from bot.emulator import SlackEmulator

LEAD = "U0LEAD001"
SRE = "U0SRE0001"
SCIENTIST = "U0DS00001"
LEADS = "S0MLLEADS"
BOT_TOKEN = "xoxb-membership-test"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=BOT_TOKEN) as emulator:
        workspace = emulator.workspace
        for user, handle in ((LEAD, "lea"), (SRE, "sam"), (SCIENTIST, "dana")):
            workspace.add_user(user, handle)
        workspace.add_usergroup(LEADS, "ml-leads", [LEAD, SRE])
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def asked(slack: SlackEmulator) -> int:
    return len(slack.workspace.calls_to("usergroups.users.list"))


def test_members_are_asked_of_slack_once_within_the_ttl(
    slack: SlackEmulator, web: WebClient, clock: Clock
) -> None:
    membership = SlackMembership(web, ttl=60, clock=clock)

    assert membership.members(LEADS) == {LEAD, SRE}
    clock.now += 59
    assert membership.members(LEADS) == {LEAD, SRE}
    assert is_member(SRE, [LEADS], membership)
    assert not is_member(SCIENTIST, [LEADS], membership)

    assert asked(slack) == 1


def test_members_are_asked_again_after_the_ttl(
    slack: SlackEmulator, web: WebClient, clock: Clock
) -> None:
    membership = SlackMembership(web, ttl=60, clock=clock)
    assert membership.members(LEADS) == {LEAD, SRE}

    slack.workspace.add_usergroup(LEADS, "ml-leads", [LEAD, SCIENTIST])
    clock.now += 59
    assert membership.members(LEADS) == {LEAD, SRE}
    clock.now += 1
    assert membership.members(LEADS) == {LEAD, SCIENTIST}

    assert asked(slack) == 2


def test_each_group_is_cached_on_its_own(
    slack: SlackEmulator, web: WebClient, clock: Clock
) -> None:
    slack.workspace.add_usergroup("S0MLOPS01", "ml-ops", [SCIENTIST])
    membership = SlackMembership(web, clock=clock)

    assert membership.members(LEADS) == {LEAD, SRE}
    assert membership.members("S0MLOPS01") == {SCIENTIST}
    assert membership.members(LEADS) == {LEAD, SRE}

    assert [c.args["usergroup"] for c in slack.workspace.calls_to("usergroups.users.list")] == [
        LEADS,
        "S0MLOPS01",
    ]


@pytest.mark.parametrize("disabled", [False, True], ids=["unknown", "disabled"])
def test_a_group_slack_does_not_know_has_no_members(
    slack: SlackEmulator, web: WebClient, disabled: bool
) -> None:
    if disabled:
        slack.workspace.add_usergroup("S0GONE001", "gone", [LEAD], disabled=True)

    assert SlackMembership(web).members("S0GONE001") == frozenset()
    assert slack.workspace.calls_to("usergroups.users.list")[0].error == "no_such_subteam"


def test_slack_refusing_says_so_to_the_person_without_the_token(
    slack: SlackEmulator, web: WebClient
) -> None:
    slack.rate_limit("usergroups.users.list", retry_after=30)

    with pytest.raises(MembershipUnavailable) as raised:
        SlackMembership(web).members(LEADS)

    assert isinstance(raised.value, GatekeeperError)
    assert str(raised.value) == (
        f"could not check membership of <!subteam^{LEADS}>: Slack answered ratelimited; "
        "try again in a minute"
    )
    assert BOT_TOKEN not in str(raised.value)
    # slack_sdk's error holds the request, Authorization header included: it is not shown.
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_a_refusal_is_not_cached(slack: SlackEmulator, web: WebClient) -> None:
    membership = SlackMembership(web)
    slack.rate_limit("usergroups.users.list", retry_after=30)
    with pytest.raises(MembershipUnavailable):
        membership.members(LEADS)

    assert membership.members(LEADS) == {LEAD, SRE}


def test_slack_unreachable_is_a_message_for_the_person(slack: SlackEmulator) -> None:
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    membership = SlackMembership(client)
    slack.stop()

    with pytest.raises(MembershipUnavailable, match="Slack could not be reached"):
        membership.members(LEADS)


def test_the_bots_client_waits_out_a_short_rate_limit(slack: SlackEmulator) -> None:
    client = make_web_client(BOT_TOKEN, slack.api_url)
    slack.rate_limit("usergroups.users.list", retry_after=0, times=1)

    assert SlackMembership(client).members(LEADS) == {LEAD, SRE}
    assert [c.status for c in slack.workspace.calls_to("usergroups.users.list")] == [429, 200]


def test_the_bots_client_does_not_sleep_through_a_long_rate_limit(slack: SlackEmulator) -> None:
    # A press waits on this call, and Slack gives a press 3 seconds: a 30 s wait is not waited.
    client = make_web_client(BOT_TOKEN, slack.api_url)
    slack.rate_limit("usergroups.users.list", retry_after=30, times=1)

    started = time.monotonic()
    with pytest.raises(MembershipUnavailable):
        SlackMembership(client).members(LEADS)

    assert time.monotonic() - started < 1.0
    assert [c.status for c in slack.workspace.calls_to("usergroups.users.list")] == [429]


def test_the_bots_client_is_pointed_and_armed(slack: SlackEmulator) -> None:
    client = make_web_client(BOT_TOKEN, slack.api_url)

    assert client.base_url == slack.api_url
    assert client.auth_test()["ok"]
    rate, connection = client.retry_handlers
    assert isinstance(rate, ShortRateLimitRetryHandler)
    assert isinstance(rate, RateLimitErrorRetryHandler)
    assert rate.max_retry_count == 1
    assert isinstance(connection, ConnectionErrorRetryHandler)
