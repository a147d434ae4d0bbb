"""Block Kit limits on messages and views, refused with Slack's codes and json-pointer messages."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import SlackEmulator

from .conftest import CHANNEL, LEAD

pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")


def section(text: str = "x") -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(**overrides: Any) -> dict[str, Any]:
    element = {
        "type": "button",
        "action_id": "approve",
        "text": {"type": "plain_text", "text": "Approve"},
    }
    return {**element, **overrides}


def refusal(call: object) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    data = raised.value.response.data
    assert isinstance(data, dict)
    return data


def test_fifty_blocks_are_accepted(web: WebClient) -> None:
    assert web.chat_postMessage(channel=CHANNEL, text="t", blocks=[section()] * 50)["ok"]


def test_fifty_one_blocks_are_invalid_blocks(slack: SlackEmulator, web: WebClient) -> None:
    data = refusal(lambda: web.chat_postMessage(channel=CHANNEL, text="t", blocks=[section()] * 51))
    assert data["error"] == "invalid_blocks"
    assert data["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    assert slack.workspace.messages(CHANNEL) == []


@pytest.mark.parametrize(
    ("blocks", "pointer"),
    [
        ([section("x" * 3001)], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "/blocks/0/text/text"),
        ([{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}], "/blocks/0/text/type"),
        ([{"type": "actions", "elements": [button(text={"type": "plain_text", "text": "b" * 76})]}],
         "/blocks/0/elements/0/text/text"),
        ([{"type": "actions", "elements": [button(value="v" * 2001)]}], "/blocks/0/elements/0/value"),
        ([{"type": "actions", "elements": [button(action_id="a" * 256)]}],
         "/blocks/0/elements/0/action_id"),
        ([{**section(), "block_id": "b" * 256}], "/blocks/0/block_id"),
        ([{"type": "carousel"}], "/blocks/0/type"),
        ([{"text": "no type"}], "/blocks/0"),
        ([section(""), ], "/blocks/0/text/text"),
        ([{**section(), "block_id": "same"}, {**section(), "block_id": "same"}], "/blocks/1/block_id"),
        ([{"type": "actions", "elements": [button(), button()]}], "/blocks/0/elements/1/action_id"),
        ([{"type": "actions", "elements": [button(style="green")]}], "/blocks/0/elements/0/style"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "/blocks/0/fields"),
    ],
)  # fmt: skip
def test_a_broken_limit_is_invalid_blocks_with_its_pointer(
    web: WebClient, blocks: list[dict[str, Any]], pointer: str
) -> None:
    data = refusal(lambda: web.chat_postMessage(channel=CHANNEL, text="t", blocks=blocks))
    assert data["error"] == "invalid_blocks"
    assert any(
        m.endswith(f"[json-pointer:{pointer}]") for m in data["response_metadata"]["messages"]
    )


def test_section_text_of_exactly_3000_characters_is_accepted(web: WebClient) -> None:
    assert web.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x" * 3000)])["ok"]


@pytest.mark.parametrize("blocks", ['{"type": "section"}', "[1, 2]", "not json"])
def test_blocks_that_are_not_an_array_of_objects_are_invalid_blocks_format(
    slack: SlackEmulator, blocks: str
) -> None:
    web = WebClient(token="xoxb-test", base_url=slack.api_url)
    data = refusal(
        lambda: web.api_call(
            "chat.postMessage", params={"channel": CHANNEL, "text": "t", "blocks": blocks}
        )
    )
    assert data["error"] == "invalid_blocks_format"


def test_blocks_without_text_are_accepted_with_a_warning(
    slack: SlackEmulator, web: WebClient
) -> None:
    response = web.chat_postMessage(channel=CHANNEL, blocks=[section("card")])
    assert response["ok"]
    assert response["response_metadata"]["warnings"] == ["missing_text_fallback"]
    assert slack.calls[-1].warnings == ("missing_text_fallback",)


def test_text_past_4000_characters_is_msg_too_long(web: WebClient) -> None:
    data = refusal(lambda: web.chat_postMessage(channel=CHANNEL, text="x" * 4001))
    assert data["error"] == "msg_too_long"


def test_many_full_sections_are_msg_blocks_too_long(web: WebClient) -> None:
    data = refusal(
        lambda: web.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x" * 3000)] * 5)
    )
    assert data["error"] == "msg_blocks_too_long"


def test_neither_text_nor_blocks_is_no_text(web: WebClient) -> None:
    assert refusal(lambda: web.chat_postMessage(channel=CHANNEL, text=""))["error"] == "no_text"


def test_stored_blocks_get_block_ids_like_slack_gives_them(
    slack: SlackEmulator, web: WebClient
) -> None:
    ts = web.chat_postMessage(
        channel=CHANNEL, text="t", blocks=[section(), {**section(), "block_id": "mine"}]
    )["ts"]
    message = slack.workspace.message(CHANNEL, ts)
    assert message is not None
    assert message.blocks is not None
    assert message.blocks[0]["block_id"]
    assert message.blocks[1]["block_id"] == "mine"


def modal(**overrides: Any) -> dict[str, Any]:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Reject"},
        "blocks": [section()],
    }
    return {**view, **overrides}


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal(blocks=[section()] * 101), "/view/blocks"),
        (modal(title={"type": "plain_text", "text": "t" * 25}), "/view/title/text"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(callback_id="c" * 256), "/view/callback_id"),
        (modal(blocks=[{"type": "input", "label": {"type": "plain_text", "text": "Why"},
                        "element": {"type": "plain_text_input", "action_id": "reason"}}]), "/view/submit"),
        ({**modal(), "type": "home"}, "/view/type"),
    ],
)  # fmt: skip
def test_modal_limits_are_invalid_arguments_with_pointer(
    slack: SlackEmulator, web: WebClient, view: dict[str, Any], pointer: str
) -> None:
    trigger_id = slack.workspace.issue_trigger(LEAD)
    data = refusal(lambda: web.views_open(trigger_id=trigger_id, view=view))
    assert data["error"] == "invalid_arguments"
    assert any(
        m.endswith(f"[json-pointer:{pointer}]") for m in data["response_metadata"]["messages"]
    )


def test_a_hundred_blocks_fit_a_modal_and_a_home_tab(slack: SlackEmulator, web: WebClient) -> None:
    trigger_id = slack.workspace.issue_trigger(LEAD)
    assert web.views_open(trigger_id=trigger_id, view=modal(blocks=[section()] * 100))["ok"]
    home = {"type": "home", "blocks": [section()] * 100}
    assert web.views_publish(user_id=LEAD, view=home)["ok"]
    too_many = {"type": "home", "blocks": [section()] * 101}
    assert (
        refusal(lambda: web.views_publish(user_id=LEAD, view=too_many))["error"]
        == "invalid_arguments"
    )


def test_a_view_over_250_kb_is_view_too_large(slack: SlackEmulator, web: WebClient) -> None:
    trigger_id = slack.workspace.issue_trigger(LEAD)
    huge = modal(blocks=[section("x" * 3000)] * 90)
    assert (
        refusal(lambda: web.views_open(trigger_id=trigger_id, view=huge))["error"]
        == "view_too_large"
    )
