"""What Slack does with the app's answers, and interactions beyond a button on a message."""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulator import InteractionClient, SlackEmulator
from bot.emulator.records import Content

from .conftest import CHANNEL, LEAD, RecordingApp

App = tuple[RecordingApp, str]


def modal(title: str = "Reject", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "reject",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            },
            {
                "type": "input",
                "block_id": "severity",
                "optional": True,
                "label": {"type": "plain_text", "text": "How bad?"},
                "element": {
                    "type": "static_select",
                    "action_id": "level",
                    "options": [
                        {"text": {"type": "plain_text", "text": name}, "value": name}
                        for name in ("minor", "major")
                    ],
                },
            },
        ],
        **extra,
    }


def open_modal(slack: SlackEmulator, **extra: Any) -> str:
    return slack.workspace.open_view(LEAD, modal(**extra)).id


def test_command_reply_json_in_channel_is_posted(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    app[0].answer({"text": "Promotion requested", "response_type": "in_channel"})
    person.slash_command(LEAD, "/promote", "churn", channel=CHANNEL)
    assert [m.text for m in slack.workspace.messages(CHANNEL)] == ["Promotion requested"]


def test_command_reply_plain_text_is_an_ephemeral(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    app[0].reply_type = "text/plain"
    app[0].answer(b"Usage: /promote <model>")
    person.slash_command(LEAD, "/promote", "", channel=CHANNEL)
    assert [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == [
        "Usage: /promote <model>"
    ]


def test_command_reply_breaking_block_kit_is_reported(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    app[0].answer({"text": "t", "blocks": [{"type": "divider"}] * 51})
    delivery = person.slash_command(LEAD, "/promote", "", channel=CHANNEL)
    assert delivery.error is not None
    assert "invalid_blocks" in delivery.error
    assert slack.workspace.ephemerals() == []


def test_command_answered_with_401_shows_slacks_failure_notice(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    app[0].answer(b"", status=401)
    delivery = person.slash_command(LEAD, "/promote", "", channel=CHANNEL)
    assert delivery.error == "http_status_401"
    assert [e.via for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == ["slack"]


def test_submission_state_values_and_metadata(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    view_id = open_modal(slack, private_metadata="candidate=7")
    person.submit_view(
        LEAD, view_id, {"reason": {"text": "too slow"}, "severity": {"level": "major"}}
    )
    payload = app[0].last_payload
    assert payload["type"] == "view_submission"
    assert payload["view"]["id"] == view_id
    assert payload["view"]["private_metadata"] == "candidate=7"
    assert payload["view"]["callback_id"] == "reject"
    assert payload["view"]["hash"]
    values = payload["view"]["state"]["values"]
    assert values["reason"]["text"] == {"type": "plain_text_input", "value": "too slow"}
    assert values["severity"]["level"]["selected_option"]["value"] == "major"
    assert slack.workspace.modals(LEAD) == []  # an empty 200 closes it


def test_optional_inputs_left_empty_are_reported_empty(
    person: InteractionClient, slack: SlackEmulator, app: App
) -> None:
    person.submit_view(LEAD, open_modal(slack), {"reason": {"text": "x"}})
    assert (
        app[0].last_payload["view"]["state"]["values"]["severity"]["level"]["selected_option"]
        is None
    )


def test_submitting_an_option_that_is_not_offered_is_a_test_error(
    person: InteractionClient, slack: SlackEmulator
) -> None:
    with pytest.raises(ValueError, match="no option"):
        person.submit_view(
            LEAD, open_modal(slack), {"reason": {"text": "x"}, "severity": {"level": "fatal"}}
        )


def test_response_action_update_and_push_and_clear(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    view_id = open_modal(slack)
    app[0].answer({"response_action": "update", "view": modal("Rejecting")})
    assert person.submit_view(LEAD, view_id, {"reason": {"text": "x"}}).error is None
    updated = slack.workspace.view(view_id)
    assert updated is not None
    assert updated.definition["title"]["text"] == "Rejecting"

    app[0].answer({"response_action": "push", "view": modal("Are you sure?")})
    person.submit_view(LEAD, view_id, {"reason": {"text": "x"}})
    stack = slack.workspace.modals(LEAD)
    assert [v.definition["title"]["text"] for v in stack] == ["Rejecting", "Are you sure?"]
    assert stack[1].previous_view_id == view_id
    assert stack[1].root_view_id == view_id

    app[0].answer({"response_action": "clear"})
    person.submit_view(LEAD, stack[1].id, {"reason": {"text": "x"}})
    assert slack.workspace.modals(LEAD) == []


@pytest.mark.parametrize(
    "reply",
    [
        {"response_action": "errors", "errors": {"nope": "not an input"}},
        {"response_action": "update", "view": modal("t" * 25)},
        {"response_action": "explode"},
    ],
)
def test_a_broken_response_action_is_reported_and_the_modal_stays(
    slack: SlackEmulator, person: InteractionClient, app: App, reply: dict[str, Any]
) -> None:
    view_id = open_modal(slack)
    app[0].answer(reply)
    delivery = person.submit_view(LEAD, view_id, {"reason": {"text": "x"}})
    assert delivery.error is not None
    assert [v.id for v in slack.workspace.modals(LEAD)] == [view_id]


def test_only_the_top_modal_can_be_submitted(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    root = open_modal(slack)
    slack.workspace.push_view(LEAD, modal("Second"))
    with pytest.raises(LookupError):
        person.submit_view(LEAD, root, {"reason": {"text": "x"}})


def test_closing_tells_the_app_only_if_it_asked(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    assert person.close_view(LEAD, open_modal(slack)) is None
    assert app[0].requests == []
    view_id = open_modal(slack, notify_on_close=True)
    assert person.close_view(LEAD, view_id) is not None
    assert app[0].last_payload["type"] == "view_closed"
    assert slack.workspace.modals(LEAD) == []


def test_button_on_the_home_tab(slack: SlackEmulator, person: InteractionClient, app: App) -> None:
    button = {
        "type": "button",
        "action_id": "open_waiting",
        "text": {"type": "plain_text", "text": "Open"},
    }
    home = slack.workspace.publish_home(
        LEAD, {"type": "home", "blocks": [{"type": "actions", "elements": [button]}]}
    )
    person.click_in_view(LEAD, home.id, "open_waiting")
    payload = app[0].last_payload
    assert payload["container"] == {"type": "view", "view_id": home.id}
    assert payload["view"]["type"] == "home"
    assert "response_url" not in payload
    assert payload["actions"][0]["block_id"] == home.blocks[0]["block_id"]


def test_button_on_an_ephemeral_message(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    button = {
        "type": "button",
        "action_id": "confirm",
        "text": {"type": "plain_text", "text": "OK"},
        "value": "1",
    }
    blocks = [{"type": "actions", "block_id": "a", "elements": [button]}]
    ephemeral = slack.workspace.post_ephemeral(CHANNEL, LEAD, Content("sure?", blocks), via="test")
    person.click(LEAD, CHANNEL, ephemeral.ts, "confirm")
    payload = app[0].last_payload
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload
    with pytest.raises(LookupError):
        person.click("U0SRE0001", CHANNEL, ephemeral.ts, "confirm")  # not theirs to see


def test_menu_choice_on_a_message(
    slack: SlackEmulator, person: InteractionClient, app: App
) -> None:
    menu = {"type": "overflow", "action_id": "more", "options": [
        {"text": {"type": "plain_text", "text": n}, "value": n} for n in ("details", "rollback")]}  # fmt: skip
    card = slack.workspace.post(
        CHANNEL,
        Content(
            "card",
            [
                {
                    "type": "section",
                    "block_id": "s",
                    "text": {"type": "mrkdwn", "text": "v7"},
                    "accessory": menu,
                }
            ],
        ),
    )
    person.click(LEAD, CHANNEL, card.ts, "more", value="rollback")
    [chosen] = app[0].last_payload["actions"]
    assert chosen["type"] == "overflow"
    assert chosen["selected_option"]["value"] == "rollback"
    assert chosen["block_id"] == "s"
