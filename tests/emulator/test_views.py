"""Modals from trigger_ids (single use, three seconds), views.update, and the Home tab."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import ManualClock, SlackEmulator

from .conftest import LEAD, SRE


def modal(title: str = "Reject churn v7", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "reject",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Reject"},
        "private_metadata": '{"candidate": 7}',
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
        **extra,
    }


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["error"])


def test_views_open_answers_the_view_as_slack_shows_it(
    slack: SlackEmulator, web: WebClient
) -> None:
    view = web.views_open(trigger_id=slack.workspace.issue_trigger(LEAD), view=modal())["view"]
    assert view["id"].startswith("V")
    assert view["type"] == "modal"
    assert view["callback_id"] == "reject"
    assert view["private_metadata"] == '{"candidate": 7}'
    assert view["state"] == {"values": {}}
    assert view["root_view_id"] == view["id"]
    assert view["hash"]
    assert [v.id for v in slack.workspace.modals(LEAD)] == [view["id"]]


def test_a_trigger_id_is_single_use(slack: SlackEmulator, web: WebClient) -> None:
    trigger_id = slack.workspace.issue_trigger(LEAD)
    web.views_open(trigger_id=trigger_id, view=modal())
    assert error_of(lambda: web.views_open(trigger_id=trigger_id, view=modal())) == (
        "exchanged_trigger_id"
    )


def test_a_trigger_id_expires_after_three_seconds(
    slack: SlackEmulator, web: WebClient, clock: ManualClock
) -> None:
    fresh, stale = slack.workspace.issue_trigger(LEAD), slack.workspace.issue_trigger(SRE)
    clock.advance(2.9)
    assert web.views_open(trigger_id=fresh, view=modal())["ok"]
    clock.advance(0.2)
    assert error_of(lambda: web.views_open(trigger_id=stale, view=modal())) == "expired_trigger_id"


def test_a_made_up_trigger_id_is_invalid(web: WebClient) -> None:
    assert error_of(lambda: web.views_open(trigger_id="1.2.abc", view=modal())) == (
        "invalid_trigger_id"
    )


def test_an_invalid_view_does_not_use_up_the_trigger(slack: SlackEmulator, web: WebClient) -> None:
    trigger_id = slack.workspace.issue_trigger(LEAD)
    assert error_of(lambda: web.views_open(trigger_id=trigger_id, view=modal("t" * 30))) == (
        "invalid_arguments"
    )
    assert web.views_open(trigger_id=trigger_id, view=modal())["ok"]


def test_views_update_by_id_and_by_external_id(slack: SlackEmulator, web: WebClient) -> None:
    opened = web.views_open(
        trigger_id=slack.workspace.issue_trigger(LEAD), view=modal(external_id="reject-7")
    )["view"]
    updated = web.views_update(
        view_id=opened["id"], view=modal("Rejecting...", external_id="reject-7")
    )["view"]
    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    assert updated["title"]["text"] == "Rejecting..."
    web.views_update(external_id="reject-7", view=modal("Again", external_id="reject-7"))
    shown = slack.workspace.view(opened["id"])
    assert shown is not None
    assert shown.definition["title"]["text"] == "Again"


def test_views_update_with_a_stale_hash_conflicts(slack: SlackEmulator, web: WebClient) -> None:
    opened = web.views_open(trigger_id=slack.workspace.issue_trigger(LEAD), view=modal())["view"]
    web.views_update(view_id=opened["id"], view=modal("First"), hash=opened["hash"])
    assert error_of(
        lambda: web.views_update(view_id=opened["id"], view=modal("Second"), hash=opened["hash"])
    ) == ("hash_conflict")


def test_views_update_of_an_unknown_view_is_not_found(web: WebClient) -> None:
    assert error_of(lambda: web.views_update(view_id="V0NOPE", view=modal())) == "not_found"


def test_external_ids_are_unique(slack: SlackEmulator, web: WebClient) -> None:
    web.views_open(trigger_id=slack.workspace.issue_trigger(LEAD), view=modal(external_id="x"))
    assert error_of(
        lambda: web.views_open(
            trigger_id=slack.workspace.issue_trigger(SRE), view=modal(external_id="x")
        )
    ) == ("duplicate_external_id")


def test_home_tab_is_published_per_person_and_kept(slack: SlackEmulator, web: WebClient) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "2 waiting"}}],
    }
    first = web.views_publish(user_id=LEAD, view=home)["view"]
    again = web.views_publish(user_id=LEAD, view=home, hash=first["hash"])["view"]
    assert again["id"] == first["id"]
    assert error_of(lambda: web.views_publish(user_id=LEAD, view=home, hash=first["hash"])) == (
        "hash_conflict"
    )
    shown = slack.workspace.home(LEAD)
    assert shown is not None
    assert shown.blocks[0]["text"]["text"] == "2 waiting"
    assert slack.workspace.home(SRE) is None


def test_home_tab_for_an_unknown_person_is_refused(web: WebClient) -> None:
    home = {"type": "home", "blocks": []}
    assert error_of(lambda: web.views_publish(user_id="U0NOBODY", view=home)) == "invalid_arguments"
