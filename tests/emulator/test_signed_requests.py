"""What the signed client sends an app: Slack's signature, forms, payloads, events and retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.emulator import Forgery, InteractionClient, SlackEmulator

from .conftest import CHANNEL, LEAD, SIGNING_SECRET, RecordingApp


def verified(headers: dict[str, str], body: bytes) -> bool:
    return SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)


def test_slash_command_is_a_signed_form_slack_sdk_verifies(
    person: InteractionClient, app: tuple[RecordingApp, str]
) -> None:
    delivery = person.slash_command(LEAD, "/promote", "status churn-classifier", channel=CHANNEL)
    recording, _ = app
    headers, body = recording.requests[-1]
    assert delivery.status == 200
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert verified(headers, body)
    form = recording.last_form
    assert form["command"] == "/promote"
    assert form["text"] == "status churn-classifier"
    assert form["user_id"] == LEAD
    assert form["user_name"] == "lea"
    assert form["channel_id"] == CHANNEL
    assert form["channel_name"] == "ml-models"
    assert form["team_id"] == "T0GATEKPR"
    assert form["trigger_id"] == delivery.trigger_id
    assert form["response_url"] == delivery.response_url
    assert form["response_url"].startswith(f"{person.workspace.base_url}response/")


@pytest.mark.parametrize("forgery", list(Forgery))
def test_each_forgery_fails_slack_sdks_verification(
    person: InteractionClient, app: tuple[RecordingApp, str], forgery: Forgery
) -> None:
    person.slash_command(LEAD, "/promote", "help", channel=CHANNEL, forgery=forgery)
    headers, body = app[0].requests[-1]
    assert not verified(headers, body)


def test_another_team_can_be_claimed(slack: SlackEmulator, app: tuple[RecordingApp, str]) -> None:
    slack.client(app[1], team_id="T0ELSEWHERE").slash_command(LEAD, "/promote", "", channel=CHANNEL)
    assert app[0].last_form["team_id"] == "T0ELSEWHERE"


def test_button_press_carries_the_stored_message_and_the_pressed_button(
    slack: SlackEmulator, person: InteractionClient, app: tuple[RecordingApp, str]
) -> None:
    card = slack.workspace.post(CHANNEL, content_with_buttons())
    delivery = person.click(LEAD, CHANNEL, card.ts, "approve")
    assert delivery is not None
    assert delivery.status == 200
    headers, body = app[0].requests[-1]
    assert verified(headers, body)
    payload = app[0].last_payload
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": LEAD, "username": "lea", "name": "lea", "team_id": "T0GATEKPR"}
    assert payload["team"]["id"] == "T0GATEKPR"
    assert payload["container"] == {
        "type": "message",
        "message_ts": card.ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert payload["channel"] == {"id": CHANNEL, "name": "ml-models"}
    assert payload["message"] == card.to_slack()
    assert payload["trigger_id"] == delivery.trigger_id
    assert payload["response_url"] == delivery.response_url
    [pressed] = payload["actions"]
    assert pressed["action_id"] == "approve"
    assert pressed["block_id"] == "decision"
    assert pressed["value"] == '{"candidate": 7}'
    assert pressed["type"] == "button"
    assert pressed["action_ts"]


def test_a_cancelled_confirm_dialog_sends_nothing(
    slack: SlackEmulator, person: InteractionClient, app: tuple[RecordingApp, str]
) -> None:
    card = slack.workspace.post(CHANNEL, content_with_buttons())
    assert person.click(LEAD, CHANNEL, card.ts, "reject", confirm=False) is None
    assert app[0].requests == []


def test_pressing_a_button_that_is_not_there_is_a_test_error(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    card = slack.workspace.post(CHANNEL, content_with_buttons())
    with pytest.raises(LookupError):
        person.click(LEAD, CHANNEL, card.ts, "rollback")


def test_events_are_signed_json_envelopes(
    person: InteractionClient, app: tuple[RecordingApp, str]
) -> None:
    person.open_home(LEAD)
    headers, body = app[0].requests[-1]
    assert headers["content-type"] == "application/json"
    assert verified(headers, body)
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback"
    assert envelope["team_id"] == "T0GATEKPR"
    assert envelope["event_id"].startswith("Ev")
    assert envelope["authorizations"][0]["user_id"] == "U0GATEBOT"
    assert envelope["event"]["type"] == "app_home_opened"
    assert envelope["event"]["user"] == LEAD
    assert envelope["event"]["channel"].startswith("D")


def test_a_retry_resends_the_same_event_with_retry_headers(
    person: InteractionClient, app: tuple[RecordingApp, str]
) -> None:
    first = person.send_event(
        {"type": "app_mention", "user": LEAD, "text": "<@U0GATEBOT> status", "channel": CHANNEL}
    )
    second = person.retry(first, reason="http_timeout")
    headers, body = app[0].requests[-1]
    assert body == first.body
    assert headers["x-slack-retry-num"] == "1"
    assert headers["x-slack-retry-reason"] == "http_timeout"
    assert verified(headers, body)
    assert person.retry(second).retry_num == 2
    assert app[0].requests[-1][0]["x-slack-retry-num"] == "2"


def test_commands_are_not_retried_by_slack(person: InteractionClient) -> None:
    delivery = person.slash_command(LEAD, "/promote", "", channel=CHANNEL)
    with pytest.raises(ValueError, match="does not retry"):
        person.retry(delivery)


def test_url_verification_expects_the_challenge_back(person: InteractionClient) -> None:
    assert person.verify_url().error == "challenge_not_echoed"


def test_an_app_that_is_not_listening_is_dispatch_failed(slack: SlackEmulator) -> None:
    client = slack.client("http://127.0.0.1:9/slack/events")
    delivery = client.slash_command(LEAD, "/promote", "", channel=CHANNEL)
    assert delivery.status is None
    assert delivery.error == "dispatch_failed"
    [notice] = slack.workspace.ephemerals(CHANNEL, LEAD)
    assert notice.text == '/promote failed with the error "dispatch_failed"'


def content_with_buttons() -> Any:
    from bot.emulator.records import Content

    return Content(
        "Candidate churn v7",
        blocks=[
            {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*churn v7*"}},
            {
                "type": "actions",
                "block_id": "decision",
                "elements": [
                    {"type": "button", "action_id": "approve", "style": "primary",
                     "text": {"type": "plain_text", "text": "Approve"}, "value": '{"candidate": 7}'},
                    {"type": "button", "action_id": "reject", "style": "danger",
                     "text": {"type": "plain_text", "text": "Reject"}, "value": '{"candidate": 7}',
                     "confirm": {"title": {"type": "plain_text", "text": "Sure?"},
                                 "text": {"type": "plain_text", "text": "Reject churn v7"},
                                 "confirm": {"type": "plain_text", "text": "Reject"},
                                 "deny": {"type": "plain_text", "text": "Cancel"}}},
                ],
            },
        ],
    )  # fmt: skip
