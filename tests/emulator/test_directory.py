"""People, user groups and channels, answered in the shapes of Slack's reference examples."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import SlackEmulator

from .conftest import CHANNEL, LEAD, LEADS_GROUP, SRE


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["error"])


def test_users_info_has_the_reference_shape(slack: SlackEmulator, web: WebClient) -> None:
    user = web.users_info(user=LEAD)["user"]
    example = slack.references["users.info"].example()["user"]
    assert set(example) == set(user)
    assert set(example["profile"]) - set(user["profile"]) <= {"avatar_hash"} | {
        k for k in example["profile"] if k.startswith("image_")
    }
    assert user["profile"]["email"] == "lea@example.com"
    assert user["real_name"] == "Lea Lead"
    assert user["is_bot"] is False


def test_users_info_of_the_apps_bot_user(web: WebClient) -> None:
    assert web.users_info(user="U0GATEBOT")["user"]["is_bot"] is True


def test_users_info_of_a_stranger(web: WebClient) -> None:
    assert error_of(lambda: web.users_info(user="U0NOBODY")) == "user_not_found"


def test_usergroups_list_with_users_and_count(slack: SlackEmulator, web: WebClient) -> None:
    slack.workspace.add_usergroup("S0RETIRED", "retired", [LEAD], disabled=True)
    groups = web.usergroups_list(include_users=True, include_count=True)["usergroups"]
    assert [g["id"] for g in groups] == [LEADS_GROUP]
    assert groups[0]["handle"] == "ml-leads"
    assert groups[0]["users"] == [LEAD, SRE]
    assert groups[0]["user_count"] == "2"
    example = slack.references["usergroups.list"].example()["usergroups"][0]
    assert set(example) <= set(groups[0])
    every = web.usergroups_list(include_disabled=True)["usergroups"]
    assert [g["id"] for g in every] == [LEADS_GROUP, "S0RETIRED"]
    assert "users" not in every[0]


def test_usergroups_users_list(web: WebClient) -> None:
    assert web.usergroups_users_list(usergroup=LEADS_GROUP)["users"] == [LEAD, SRE]
    assert error_of(lambda: web.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


def test_conversations_info(slack: SlackEmulator, web: WebClient) -> None:
    channel = web.conversations_info(channel=CHANNEL, include_num_members=True)["channel"]
    assert channel["name"] == "ml-models"
    assert channel["is_channel"] is True
    assert channel["num_members"] == 3
    assert error_of(lambda: web.conversations_info(channel="C0NOPE")) == "channel_not_found"


def test_auth_test_names_the_bot(web: WebClient, slack: SlackEmulator) -> None:
    response = web.auth_test()
    assert response["user_id"] == "U0GATEBOT"
    assert response["bot_id"] == "B0GATEKPR"
    assert response["team_id"] == "T0GATEKPR"
    assert response["url"] == slack.base_url
