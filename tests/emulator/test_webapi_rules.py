"""Slack's request rules: methods, tokens, bodies and required arguments, answered in Slack's words."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import SlackEmulator

from .conftest import BOT_TOKEN, CHANNEL, LEAD

BEARER = {"Authorization": f"Bearer {BOT_TOKEN}"}
JSON_UTF8 = {**BEARER, "Content-Type": "application/json; charset=utf-8"}


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["error"])


def test_unknown_method_is_answered_with_200_and_unknown_method(slack: SlackEmulator) -> None:
    response = httpx.post(
        f"{slack.api_url}chat.postMesage", headers=BEARER, data={"channel": CHANNEL}
    )
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": "unknown_method"}
    assert slack.calls[-1].method == "chat.postMesage"


def test_a_method_without_reference_is_unknown_even_if_slack_has_it(web: WebClient) -> None:
    assert error_of(lambda: web.conversations_history(channel=CHANNEL)) == "unknown_method"


def test_missing_token_is_not_authed(slack: SlackEmulator) -> None:
    assert error_of(WebClient(base_url=slack.api_url).auth_test) == "not_authed"


def test_wrong_token_is_invalid_auth(slack: SlackEmulator) -> None:
    assert (
        error_of(WebClient(token="xoxb-nope", base_url=slack.api_url).auth_test) == "invalid_auth"
    )


def test_token_in_form_body_is_accepted(slack: SlackEmulator) -> None:
    response = httpx.post(f"{slack.api_url}auth.test", data={"token": BOT_TOKEN})
    assert response.json()["ok"] is True


def test_token_in_query_string_is_ignored(slack: SlackEmulator) -> None:
    response = httpx.post(f"{slack.api_url}auth.test", params={"token": BOT_TOKEN})
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_json_body_needs_the_token_in_the_header(slack: SlackEmulator) -> None:
    body = {"token": BOT_TOKEN, "channel": CHANNEL, "text": "hi"}
    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = httpx.post(
        f"{slack.api_url}chat.postMessage", headers=headers, content=json.dumps(body)
    )
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_json_body_with_bearer_token_posts(slack: SlackEmulator) -> None:
    body = json.dumps({"channel": CHANNEL, "text": "hi"})
    response = httpx.post(f"{slack.api_url}chat.postMessage", headers=JSON_UTF8, content=body)
    assert response.json()["ok"] is True
    assert [m.text for m in slack.workspace.messages(CHANNEL)] == ["hi"]


def test_json_without_charset_is_answered_with_slacks_warning(slack: SlackEmulator) -> None:
    headers = {**BEARER, "Content-Type": "application/json"}
    response = httpx.post(f"{slack.api_url}auth.test", headers=headers, content="{}")
    body = response.json()
    assert body["ok"] is True
    assert body["warning"] == "missing_charset"
    assert body["response_metadata"]["warnings"] == ["missing_charset"]


def test_json_body_is_not_read_by_a_method_that_takes_only_forms(slack: SlackEmulator) -> None:
    body = json.dumps({"user": LEAD})
    response = httpx.post(f"{slack.api_url}users.info", headers=JSON_UTF8, content=body)
    assert response.json() == {"ok": False, "error": "user_not_found"}
    assert any("json_body_ignored" in w for w in slack.calls[-1].warnings)


def test_the_same_method_reads_a_form(slack: SlackEmulator) -> None:
    response = httpx.post(f"{slack.api_url}users.info", headers=BEARER, data={"user": LEAD})
    assert response.json()["user"]["id"] == LEAD


def test_get_with_query_arguments_works_like_slack(slack: SlackEmulator) -> None:
    response = httpx.get(f"{slack.api_url}users.info", headers=BEARER, params={"user": LEAD})
    assert response.json()["user"]["name"] == "lea"


def test_multipart_form_is_read(slack: SlackEmulator) -> None:
    response = httpx.post(
        f"{slack.api_url}chat.postMessage",
        headers=BEARER,
        files={"channel": (None, CHANNEL), "text": (None, "from multipart")},
    )
    assert response.json()["ok"] is True


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("application/json; charset=utf-8", b"{not json", "invalid_json"),
        ("application/json; charset=utf-8", b"[1, 2]", "invalid_json"),
        ("application/x-www-form-urlencoded", b"channel=\xff\xfe", "invalid_form_data"),
        ("multipart/form-data; boundary=zzz", b"garbage", "invalid_form_data"),
        ("text/plain", b"channel=C0ML00001", "invalid_form_data"),
    ],
)
def test_malformed_bodies_get_slacks_error_never_a_500(
    slack: SlackEmulator, content_type: str, body: bytes, error: str
) -> None:
    headers = {**BEARER, "Content-Type": content_type}
    response = httpx.post(f"{slack.api_url}chat.postMessage", headers=headers, content=body)
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": error}


@pytest.mark.parametrize(
    ("method", "arguments", "error"),
    [
        ("chat.postMessage", {"text": "hi"}, "channel_not_found"),
        ("chat.postMessage", {"channel": "", "text": "hi"}, "channel_not_found"),
        ("chat.update", {"channel": CHANNEL, "text": "hi"}, "message_not_found"),
        ("chat.delete", {"ts": "1764230400.000100"}, "channel_not_found"),
        ("chat.postEphemeral", {"channel": CHANNEL, "text": "hi"}, "user_not_in_channel"),
        ("chat.getPermalink", {"channel": CHANNEL}, "message_not_found"),
        ("chat.scheduleMessage", {"channel": CHANNEL, "text": "hi"}, "invalid_time"),
        ("conversations.replies", {"channel": CHANNEL}, "thread_not_found"),
        ("conversations.info", {}, "channel_not_found"),
        ("reactions.add", {"channel": CHANNEL, "timestamp": "1764230400.000100"}, "invalid_name"),
        ("reactions.add", {"name": "rocket", "channel": CHANNEL}, "no_item_specified"),
        ("usergroups.users.list", {}, "no_such_subteam"),
        ("users.info", {}, "user_not_found"),
        ("views.publish", {"view": "{}"}, "invalid_arguments"),
        ("views.open", {"trigger_id": "1.2.abc"}, "invalid_arguments"),
    ],
)
def test_missing_required_argument_gets_the_code_slack_answers(
    slack: SlackEmulator, method: str, arguments: dict[str, str], error: str
) -> None:
    response = httpx.post(f"{slack.api_url}{method}", headers=BEARER, data=arguments)
    assert response.json()["error"] == error


def test_invalid_arguments_says_which_one(slack: SlackEmulator) -> None:
    response = httpx.post(f"{slack.api_url}views.publish", headers=BEARER, data={"view": "{}"})
    assert response.json()["response_metadata"]["messages"] == [
        "[ERROR] missing required field: user_id"
    ]


def test_app_level_token_opens_a_socket_mode_connection_url(slack: SlackEmulator) -> None:
    response = WebClient(token="xapp-test", base_url=slack.api_url).apps_connections_open(
        app_token="xapp-test"
    )
    assert response["url"].startswith("ws://127.0.0.1:")


def test_bot_token_may_not_open_socket_mode(web: WebClient) -> None:
    response = httpx.post(f"{web.base_url}apps.connections.open", headers=BEARER)
    assert response.json() == {"ok": False, "error": "not_allowed_token_type"}


def test_app_level_token_may_not_post(slack: SlackEmulator) -> None:
    app = WebClient(token="xapp-test", base_url=slack.api_url)
    assert error_of(lambda: app.chat_postMessage(channel=CHANNEL, text="hi")) == (
        "not_allowed_token_type"
    )


def test_every_call_is_recorded_with_arguments_token_and_answer(
    slack: SlackEmulator, web: WebClient
) -> None:
    web.chat_postMessage(channel=CHANNEL, text="hello")
    call = slack.calls[-1]
    assert call.method == "chat.postMessage"
    assert call.args == {"channel": CHANNEL, "text": "hello"}
    assert call.token == BOT_TOKEN
    assert call.content_type == "application/json"
    assert call.ok
    assert call.response["ts"] == slack.workspace.messages(CHANNEL)[0].ts


def test_the_async_client_works_too(slack: SlackEmulator) -> None:
    """Bolt's async apps use AsyncWebClient (aiohttp), which sends GET methods as GETs."""

    async def scenario() -> tuple[str, str]:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        posted = await client.chat_postMessage(channel=CHANNEL, text="from async")
        user = await client.users_info(user=LEAD)
        return str(posted["ts"]), str(user["user"]["id"])

    ts, user = asyncio.run(scenario())
    assert user == LEAD
    assert slack.workspace.message(CHANNEL, ts) is not None
    assert slack.workspace.calls_to("users.info")[-1].http_method == "GET"
