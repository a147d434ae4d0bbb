"""On-demand 429s with Retry-After, as slack_sdk's retry handler expects them."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.emulator import SlackEmulator

from .conftest import BOT_TOKEN, CHANNEL


def test_a_rate_limited_call_is_429_with_retry_after(slack: SlackEmulator) -> None:
    slack.rate_limit("chat.postMessage", retry_after=7)
    headers = {"Authorization": f"Bearer {BOT_TOKEN}"}
    response = httpx.post(
        f"{slack.api_url}chat.postMessage", headers=headers, data={"channel": CHANNEL, "text": "x"}
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.json() == {"ok": False, "error": "ratelimited"}
    again = httpx.post(
        f"{slack.api_url}chat.postMessage", headers=headers, data={"channel": CHANNEL, "text": "x"}
    )
    assert again.status_code == 200


def test_without_a_retry_handler_the_client_sees_ratelimited(
    slack: SlackEmulator, web: WebClient
) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1)
    with pytest.raises(SlackApiError) as raised:
        web.chat_postMessage(channel=CHANNEL, text="lost?")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    assert slack.workspace.messages(CHANNEL) == []


def test_slack_sdks_retry_handler_waits_and_the_message_arrives_once(slack: SlackEmulator) -> None:
    web = WebClient(
        token=BOT_TOKEN,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.rate_limit("chat.postMessage", retry_after=1, times=1)
    response = web.chat_postMessage(channel=CHANNEL, text="delayed, not dropped")
    assert response["ok"]
    assert [m.text for m in slack.workspace.messages(CHANNEL)] == ["delayed, not dropped"]
    assert [c.status for c in slack.workspace.calls_to("chat.postMessage")] == [429, 200]


def test_a_rate_limit_applies_to_its_method_only(slack: SlackEmulator, web: WebClient) -> None:
    slack.rate_limit("chat.update", times=2)
    assert web.chat_postMessage(channel=CHANNEL, text="fine")["ok"]
