"""Messages through the official client: post, thread, update, delete, ephemeral, react, schedule."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import ManualClock, SlackEmulator
from bot.emulator.records import Content

from .conftest import CHANNEL, LEAD, SCIENTIST


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["error"])


def test_timestamps_are_unique_increasing_and_slack_shaped(web: WebClient) -> None:
    stamps = [web.chat_postMessage(channel=CHANNEL, text=str(i))["ts"] for i in range(5)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5
    assert all(len(ts) == 17 and ts[10] == "." for ts in stamps)
    assert stamps[0] == "1764230400.000000"  # the manual clock stands still: ts still grows


def test_post_answers_with_the_message_as_slack_stores_it(web: WebClient) -> None:
    response = web.chat_postMessage(channel=CHANNEL, text="Candidate churn v7")
    message = response["message"]
    assert response["channel"] == CHANNEL
    assert message["text"] == "Candidate churn v7"
    assert message["bot_id"] == "B0GATEKPR"
    assert message["user"] == "U0GATEBOT"
    assert message["ts"] == response["ts"]


def test_post_by_channel_name_and_to_a_user_opens_the_dm(
    slack: SlackEmulator, web: WebClient
) -> None:
    assert web.chat_postMessage(channel="#ml-models", text="by name")["channel"] == CHANNEL
    dm = web.chat_postMessage(channel=LEAD, text="waiting for you")["channel"]
    assert dm.startswith("D")
    assert [m.text for m in slack.workspace.messages(dm)] == ["waiting for you"]


def test_unknown_archived_and_foreign_channels_are_refused(
    slack: SlackEmulator, web: WebClient
) -> None:
    slack.workspace.add_channel("C0ARCHIVE", "old", is_archived=True)
    slack.workspace.add_channel("C0PRIVATE", "secret", is_private=True, bot_is_member=False)
    assert error_of(lambda: web.chat_postMessage(channel="C0NOPE", text="x")) == "channel_not_found"
    assert error_of(lambda: web.chat_postMessage(channel="C0ARCHIVE", text="x")) == "is_archived"
    assert error_of(lambda: web.chat_postMessage(channel="C0PRIVATE", text="x")) == "not_in_channel"


def test_thread_replies_appear_in_replies_and_count_on_the_parent(
    slack: SlackEmulator, web: WebClient
) -> None:
    parent = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    web.chat_postMessage(channel=CHANNEL, text="copying images", thread_ts=parent)
    web.chat_postMessage(channel=CHANNEL, text="done", thread_ts=parent)

    replies = web.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert [m["text"] for m in replies] == ["card", "copying images", "done"]
    assert replies[0]["reply_count"] == 2
    assert replies[0]["latest_reply"] == replies[2]["ts"]
    assert all(m["thread_ts"] == parent for m in replies)
    assert [m.text for m in slack.workspace.messages(CHANNEL)] == ["card"]
    assert [m.text for m in slack.workspace.thread(CHANNEL, parent)] == ["copying images", "done"]


def test_replies_are_paged_with_a_cursor(web: WebClient) -> None:
    parent = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    for step in range(4):
        web.chat_postMessage(channel=CHANNEL, text=f"step {step}", thread_ts=parent)
    first = web.conversations_replies(channel=CHANNEL, ts=parent, limit=3)
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = web.conversations_replies(channel=CHANNEL, ts=parent, limit=3, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["step 2", "step 3"]
    assert second["has_more"] is False


def test_replying_to_a_missing_message_is_refused(web: WebClient) -> None:
    assert error_of(
        lambda: web.chat_postMessage(channel=CHANNEL, text="x", thread_ts="1764230400.999999")
    ) == ("invalid_arguments")


def test_replies_of_an_unknown_thread(web: WebClient) -> None:
    assert error_of(lambda: web.conversations_replies(channel=CHANNEL, ts="1.000000")) == (
        "thread_not_found"
    )


def test_update_replaces_in_place_and_keeps_what_it_does_not_mention(
    slack: SlackEmulator, web: WebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*pending*"}}]
    ts = web.chat_postMessage(channel=CHANNEL, text="pending", blocks=blocks)["ts"]
    web.chat_postMessage(channel=CHANNEL, text="later")

    response = web.chat_update(channel=CHANNEL, ts=ts, text="approved")
    assert response["text"] == "approved"
    messages = slack.workspace.messages(CHANNEL)
    assert [m.text for m in messages] == ["approved", "later"]
    assert messages[0].blocks is not None
    assert messages[0].blocks[0]["text"]["text"] == "*pending*"
    assert messages[0].edited is not None

    web.chat_update(channel=CHANNEL, ts=ts, text="approved", blocks=[])
    assert slack.workspace.messages(CHANNEL)[0].blocks is None


def test_only_the_apps_own_messages_can_be_updated_or_deleted(
    slack: SlackEmulator, web: WebClient
) -> None:
    theirs = slack.workspace.post(CHANNEL, Content("I wrote this"), user=LEAD, via="user")
    assert error_of(lambda: web.chat_update(channel=CHANNEL, ts=theirs.ts, text="x")) == (
        "cant_update_message"
    )
    assert error_of(lambda: web.chat_delete(channel=CHANNEL, ts=theirs.ts)) == "cant_delete_message"
    assert error_of(lambda: web.chat_update(channel=CHANNEL, ts="1.000001", text="x")) == (
        "message_not_found"
    )


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_update_needs_something_to_say(web: WebClient) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    assert error_of(lambda: web.chat_update(channel=CHANNEL, ts=ts)) == "no_text"


def test_delete_removes_and_a_thread_root_leaves_a_tombstone(
    slack: SlackEmulator, web: WebClient
) -> None:
    lonely = web.chat_postMessage(channel=CHANNEL, text="lonely")["ts"]
    root = web.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    reply = web.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=root)["ts"]

    assert web.chat_delete(channel=CHANNEL, ts=lonely)["ts"] == lonely
    web.chat_delete(channel=CHANNEL, ts=root)
    history = slack.workspace.messages(CHANNEL)
    assert [m.ts for m in history] == [root]
    assert history[0].to_slack()["subtype"] == "tombstone"
    assert [m.ts for m in slack.workspace.thread(CHANNEL, root)] == [reply]
    assert error_of(lambda: web.chat_delete(channel=CHANNEL, ts=lonely)) == "message_not_found"


def test_deleting_a_reply_uncounts_it(web: WebClient) -> None:
    root = web.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    reply = web.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=root)["ts"]
    web.chat_delete(channel=CHANNEL, ts=reply)
    messages = web.conversations_replies(channel=CHANNEL, ts=root)["messages"]
    assert [m["text"] for m in messages] == ["root"]
    assert "reply_count" not in messages[0]


def test_ephemerals_are_kept_per_person_and_never_in_history(
    slack: SlackEmulator, web: WebClient
) -> None:
    response = web.chat_postEphemeral(channel=CHANNEL, user=LEAD, text="you may not approve")
    assert set(response.data) == {"ok", "message_ts"}  # type: ignore[arg-type]
    assert [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)] == ["you may not approve"]
    assert slack.workspace.ephemerals(CHANNEL, SCIENTIST) == []
    assert slack.workspace.messages(CHANNEL) == []


def test_ephemeral_to_someone_outside_the_channel_is_refused(
    slack: SlackEmulator, web: WebClient
) -> None:
    slack.workspace.add_channel("C0SMALL01", "small", members=[LEAD])
    assert error_of(
        lambda: web.chat_postEphemeral(channel="C0SMALL01", user=SCIENTIST, text="x")
    ) == ("user_not_in_channel")


def test_permalink_of_a_message_and_of_a_reply(web: WebClient, slack: SlackEmulator) -> None:
    root = web.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    reply = web.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=root)["ts"]
    link = web.chat_getPermalink(channel=CHANNEL, message_ts=root)["permalink"]
    assert link == f"{slack.base_url}archives/{CHANNEL}/p{root.replace('.', '')}"
    threaded = web.chat_getPermalink(channel=CHANNEL, message_ts=reply)["permalink"]
    assert threaded.endswith(f"?thread_ts={root}&cid={CHANNEL}")


def test_reactions_once_per_name_and_only_removable_if_there(
    slack: SlackEmulator, web: WebClient
) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    web.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    assert error_of(
        lambda: web.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    ) == ("already_reacted")
    message = slack.workspace.message(CHANNEL, ts)
    assert message is not None
    assert message.reactions == {"white_check_mark": ["U0GATEBOT"]}
    web.reactions_remove(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    assert error_of(
        lambda: web.reactions_remove(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    ) == ("no_reaction")
    assert error_of(lambda: web.reactions_add(channel=CHANNEL, timestamp="nope", name="x")) == (
        "bad_timestamp"
    )


def test_scheduled_message_posts_when_its_time_comes(
    slack: SlackEmulator, web: WebClient, clock: ManualClock
) -> None:
    post_at = int(clock()) + 60
    response = web.chat_scheduleMessage(channel=CHANNEL, text="digest", post_at=post_at)
    assert response["scheduled_message_id"].startswith("Q")
    assert slack.workspace.messages(CHANNEL) == []
    clock.advance(61)
    delivered = slack.wait_for(lambda ws: ws.messages(CHANNEL))
    assert [m.text for m in delivered] == ["digest"]


@pytest.mark.parametrize(
    ("offset", "error"), [(-10, "time_in_past"), (121 * 24 * 3600, "time_too_far")]
)
def test_schedule_refuses_past_and_far_future(
    web: WebClient, clock: ManualClock, offset: int, error: str
) -> None:
    post_at = int(clock()) + offset
    assert error_of(
        lambda: web.chat_scheduleMessage(channel=CHANNEL, text="x", post_at=post_at)
    ) == (error)
