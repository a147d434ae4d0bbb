"""response_url: new ephemeral or in-channel messages, replace and delete the original, limits."""

from __future__ import annotations

from typing import Any

import httpx

from bot.emulator import ManualClock, SlackEmulator
from bot.emulator.records import Content

from .conftest import CHANNEL, LEAD, SRE


def post(url: str, body: Any) -> httpx.Response:
    return httpx.post(url, json=body)


def test_default_is_an_ephemeral_to_the_person_who_acted(slack: SlackEmulator) -> None:
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    response = post(url, {"text": "You may not approve your own model"})
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == [
        "You may not approve your own model"
    ]
    assert slack.workspace.ephemerals(CHANNEL, SRE) == []
    assert slack.workspace.messages(CHANNEL) == []


def test_in_channel_posts_a_message_from_the_app_in_a_thread(slack: SlackEmulator) -> None:
    root = slack.workspace.post(CHANNEL, Content("card"))
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    post(url, {"text": "Promotion started", "response_type": "in_channel", "thread_ts": root.ts})
    [reply] = slack.workspace.thread(CHANNEL, root.ts)
    assert reply.text == "Promotion started"
    assert reply.user == "U0GATEBOT"
    assert reply.via == "response_url"


def test_replace_original_replaces_the_message_the_button_was_on(slack: SlackEmulator) -> None:
    blocks = [{"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "pending"}}]
    card = slack.workspace.post(CHANNEL, Content("pending", blocks))
    url = slack.workspace.issue_response_url(LEAD, CHANNEL, original_ts=card.ts)
    post(url, {"text": "approved", "replace_original": True})
    [shown] = slack.workspace.messages(CHANNEL)
    assert shown.ts == card.ts
    assert shown.text == "approved"
    assert shown.blocks is None


def test_replace_original_of_an_ephemeral(slack: SlackEmulator) -> None:
    ephemeral = slack.workspace.post_ephemeral(CHANNEL, LEAD, Content("choose"), via="test")
    url = slack.workspace.issue_response_url(
        LEAD, CHANNEL, original_ts=ephemeral.ts, original_is_ephemeral=True
    )
    post(url, {"text": "chosen", "replace_original": "true"})
    assert [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == ["chosen"]


def test_a_commands_second_reply_can_replace_its_first(slack: SlackEmulator) -> None:
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    post(url, {"text": "working..."})
    post(url, {"text": "done", "replace_original": True})
    assert [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == ["done"]


def test_delete_original(slack: SlackEmulator) -> None:
    card = slack.workspace.post(CHANNEL, Content("card"))
    url = slack.workspace.issue_response_url(LEAD, CHANNEL, original_ts=card.ts)
    assert post(url, {"delete_original": True}).status_code == 200
    assert slack.workspace.messages(CHANNEL) == []


def test_five_uses_then_used_url(slack: SlackEmulator) -> None:
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    statuses = [post(url, {"text": str(n)}).status_code for n in range(6)]
    assert statuses == [200] * 5 + [404]
    assert slack.workspace.response_posts[-1].response == {"ok": False, "error": "used_url"}


def test_expires_after_thirty_minutes(slack: SlackEmulator, clock: ManualClock) -> None:
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    clock.advance(30 * 60 + 1)
    response = post(url, {"text": "too late"})
    assert response.status_code == 404
    assert response.json()["error"] == "expired_url"


def test_unknown_url(slack: SlackEmulator) -> None:
    assert post(f"{slack.base_url}response/nope", {"text": "x"}).status_code == 404


def test_bad_payloads_are_refused_and_change_nothing(slack: SlackEmulator) -> None:
    url = slack.workspace.issue_response_url(LEAD, CHANNEL)
    assert httpx.post(url, content=b"{oops").json()["error"] == "invalid_payload"
    assert post(url, {"response_type": "in_channel"}).json()["error"] == "no_text"
    too_many = [{"type": "divider"}] * 51
    refused = post(url, {"text": "t", "blocks": too_many})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_blocks"
    assert slack.workspace.ephemerals() == []
    assert slack.workspace.messages(CHANNEL) == []
