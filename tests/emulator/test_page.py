"""The emulator page's API on the emulator's own server: what each person sees, kept current,
and what they do sent to the app as Slack sends it."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.emulator import Person, SlackEmulator
from bot.emulator.page.actions import REQUIRED, TROUBLE_CONNECTING
from bot.emulator.records import Content

from .conftest import CHANNEL, LEAD, SCIENTIST, SIGNING_SECRET, SRE, RecordingApp
from .test_with_bolt import build_app, card

OUTSIDER = "U0OUTSIDE"
PEOPLE = [
    Person(SCIENTIST, "dana", "requester"),
    Person(LEAD, "lea", "approver"),
    Person(SRE, "sam", "approver"),
    Person(OUTSIDER, "ovid", "outsider"),
]
CARD = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*churn v7* for <@U0LEAD001>"}},
    {
        "type": "actions",
        "block_id": "card",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "7",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
            }
        ],
    },
]
MODAL = {
    "type": "modal",
    "callback_id": "reject",
    "title": {"type": "plain_text", "text": "Reject churn v7"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "text", "max_length": 20},
        }
    ],
}


@pytest.fixture
def page(slack: SlackEmulator, app: tuple[RecordingApp, str]) -> str:
    return slack.open_page(request_url=app[1], people=PEOPLE, channel=CHANNEL)


def state(slack: SlackEmulator, user: str, **query: Any) -> dict[str, Any]:
    response = httpx.get(f"{slack.base_url}app/api/state", params={"user": user, **query})
    assert response.status_code == 200, response.text
    shown: dict[str, Any] = response.json()
    return shown


def act(slack: SlackEmulator, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{slack.base_url}app/api/{action}", json=body, timeout=10)


def test_open_page_serves_the_page_beside_the_web_api(
    slack: SlackEmulator, page: str, web: WebClient
) -> None:
    assert page == f"{slack.base_url}app/"
    index = httpx.get(page)
    assert index.status_code == 200
    assert 'data-testid="user-switcher"' in index.text
    assert httpx.get(f"{page}static/page.js").status_code == 200
    root = httpx.get(slack.base_url)
    assert root.status_code == 307
    assert root.headers["location"] == "/app/"
    assert web.auth_test()["ok"] is True  # the Web API is still served on the same port
    added = slack.workspace.user(OUTSIDER)
    assert added is not None
    assert added.name == "ovid"


def test_each_person_sees_the_channel_and_only_their_own_ephemerals(
    slack: SlackEmulator, page: str
) -> None:
    card = slack.workspace.post(CHANNEL, Content("churn v7", CARD))
    slack.workspace.post_ephemeral(CHANNEL, LEAD, Content("only for lea"), via="chat.postEphemeral")

    lea = state(slack, LEAD)
    assert lea["channel"] == CHANNEL
    assert [p["role"] for p in lea["people"]] == ["requester", "approver", "approver", "outsider"]
    assert {"id": CHANNEL, "name": "ml-models", "dm": False} in lea["channels"]
    assert lea["messages"][0]["key"] == f"m{card.ts}"
    assert f'data-ts="{card.ts}"' in lea["messages"][0]["html"]
    assert "<b>churn v7</b>" in lea["messages"][0]["html"]
    assert "only for lea" in lea["messages"][1]["html"]
    assert "Only visible to you" in lea["messages"][1]["html"]

    sam = state(slack, SRE)
    assert len(sam["messages"]) == 1
    assert "only for lea" not in json.dumps(sam)

    refused = httpx.get(f"{slack.base_url}app/api/state", params={"user": "U0NOBODY"})
    assert refused.status_code == 400
    assert refused.json() == {"error": "no person 'U0NOBODY' in the workspace"}


def test_a_state_request_waits_for_the_next_change(slack: SlackEmulator, page: str) -> None:
    version = state(slack, LEAD)["version"]

    started = time.monotonic()
    unchanged = state(slack, LEAD, since=version, wait=0.3)
    assert time.monotonic() - started >= 0.3
    assert unchanged["version"] == version

    timer = threading.Timer(0.3, lambda: slack.workspace.post(CHANNEL, Content("news")))
    timer.start()
    started = time.monotonic()
    changed = state(slack, LEAD, since=version, wait=10)
    waited = time.monotonic() - started
    timer.join()
    assert 0.25 <= waited < 5
    assert changed["version"] > version
    assert "news" in changed["messages"][-1]["html"]


def test_a_press_reaches_the_app_signed_as_slack_signs_it(
    slack: SlackEmulator, page: str, app: tuple[RecordingApp, str]
) -> None:
    card = slack.workspace.post(CHANNEL, Content("churn v7", CARD))
    pressed = act(slack, "press", user=LEAD, channel=CHANNEL, ts=card.ts, action_id="approve")
    assert pressed.status_code == 200
    assert pressed.json()["toast"] is None  # Slack shows nothing when the app acks in time
    assert pressed.json()["delivery"]["status"] == 200

    recording, _ = app
    headers, body = recording.requests[-1]
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)
    payload = recording.last_payload
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == LEAD
    assert payload["container"]["message_ts"] == card.ts
    assert payload["actions"][0]["action_id"] == "approve"
    assert payload["actions"][0]["block_id"] == "card"
    assert payload["actions"][0]["value"] == "7"


def test_a_press_the_app_does_not_acknowledge_shows_slacks_warning(
    slack: SlackEmulator, page: str, app: tuple[RecordingApp, str]
) -> None:
    card = slack.workspace.post(CHANNEL, Content("churn v7", CARD))
    recording, _ = app
    recording.answer(b"", status=500)
    failed = act(slack, "press", user=LEAD, channel=CHANNEL, ts=card.ts, action_id="approve")
    assert failed.json()["toast"] == "⚠️ gatekeeper failed to respond (http_status_500). Try again?"

    slack.open_page(request_url="http://127.0.0.1:9/slack/events", people=PEOPLE)
    down = act(slack, "press", user=LEAD, channel=CHANNEL, ts=card.ts, action_id="approve")
    assert down.json()["toast"] == "⚠️ gatekeeper could not be reached. Try again?"


def test_a_modal_is_submitted_only_when_slack_would_let_it(
    slack: SlackEmulator, page: str, app: tuple[RecordingApp, str], web: WebClient
) -> None:
    recording, _ = app
    opened = web.views_open(trigger_id=slack.workspace.issue_trigger(LEAD), view=MODAL)
    view_id = opened["view"]["id"]
    shown = state(slack, LEAD)["modal"]
    assert shown["id"] == view_id
    assert "Reject churn v7" in shown["html"]
    assert state(slack, SRE)["modal"] is None

    def submit(reason: str) -> dict[str, Any]:
        values = {"reason": {"text": reason}}
        response = act(slack, "submit", user=LEAD, view_id=view_id, values=values)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    assert submit("  ")["invalid"] == {"reason": REQUIRED}
    assert submit("x" * 21)["invalid"] == {"reason": "Please enter at most 20 characters."}
    assert recording.requests == []  # Slack's client stops these before the app hears of them

    recording.answer({"response_action": "errors", "errors": {"reason": "say more"}})
    assert submit("too slow")["invalid"] == {}
    assert (
        recording.last_payload["view"]["state"]["values"]["reason"]["text"]["value"] == "too slow"
    )
    kept = state(slack, LEAD)["modal"]["html"]
    assert ">say more</div>" in kept
    assert 'value="too slow"' in kept

    recording.answer(b"", status=500)
    assert submit("too slow")["modal_error"] == TROUBLE_CONNECTING
    assert state(slack, LEAD)["modal"] is not None

    recording.answer(b"")
    submit("too slow")
    assert state(slack, LEAD)["modal"] is None


def test_closing_a_modal_closes_it(slack: SlackEmulator, page: str, web: WebClient) -> None:
    opened = web.views_open(trigger_id=slack.workspace.issue_trigger(LEAD), view=MODAL)
    closed = act(slack, "close", user=LEAD, view_id=opened["view"]["id"])
    assert closed.status_code == 200
    assert state(slack, LEAD)["modal"] is None


def test_the_composer_sends_slash_commands_and_nothing_else(
    slack: SlackEmulator, page: str, app: tuple[RecordingApp, str]
) -> None:
    recording, _ = app
    said = act(slack, "command", user=LEAD, channel=CHANNEL, text="hello")
    assert (
        said.json()["notice"]
        == "Only slash commands reach gatekeeper from here: try /promote help."
    )
    unknown = act(slack, "command", user=LEAD, channel=CHANNEL, text="/deploy now")
    assert unknown.json()["notice"] == "/deploy is not a valid command."
    assert recording.requests == []

    recording.answer({"text": "Usage: /promote plan ..."})
    sent = act(slack, "command", user=LEAD, channel=CHANNEL, text="/promote   help ")
    assert sent.json()["notice"] is None
    assert recording.last_form["command"] == "/promote"
    assert recording.last_form["text"] == "help"
    ephemeral = state(slack, LEAD)["messages"][-1]["html"]
    assert "Usage: /promote plan ..." in ephemeral
    assert "Only visible to you" in ephemeral


def test_opening_home_tells_the_app_and_shows_what_it_publishes(
    slack: SlackEmulator, page: str, app: tuple[RecordingApp, str], web: WebClient
) -> None:
    recording, _ = app
    assert act(slack, "home", user=LEAD).json()["delivery"]["status"] == 200
    event = json.loads(recording.requests[-1][1])["event"]
    assert event["type"] == "app_home_opened"
    assert event["user"] == LEAD
    assert state(slack, LEAD)["home"] is None

    home = {
        "type": "home",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Waiting for you"}}],
    }
    web.views_publish(user_id=LEAD, view=home)
    shown = state(slack, LEAD)["home"]
    assert 'data-testid="home-tab"' in shown["html"]
    assert "Waiting for you" in shown["html"]
    assert state(slack, SRE)["home"] is None


@pytest.mark.parametrize(
    ("action", "body", "status", "error"),
    [
        ("press", {"user": LEAD, "channel": CHANNEL, "action_id": "approve"}, 400, "`ts` is missing"),
        ("press", {"user": "U0NOBODY", "channel": CHANNEL, "ts": "1.0", "action_id": "a"}, 400,
         "no person U0NOBODY in the workspace"),
        ("press", {"user": LEAD, "channel": CHANNEL, "ts": "1.000001", "action_id": "a"}, 400,
         "U0LEAD001 sees no message 1.000001 in C0ML00001"),
        ("submit", {"user": LEAD, "view_id": "V0000000099"}, 400, "U0LEAD001 has no open view V0000000099"),
        ("launch", {"user": LEAD}, 404, "no action 'launch'"),
    ],
)  # fmt: skip
def test_requests_the_page_would_never_send_are_refused_plainly(
    slack: SlackEmulator,
    page: str,
    app: tuple[RecordingApp, str],
    action: str,
    body: dict[str, Any],
    status: int,
    error: str,
) -> None:
    refused = act(slack, action, **body)
    assert refused.status_code == status
    assert refused.json() == {"error": error}
    assert app[0].requests == []


def test_a_body_that_is_not_json_is_refused(slack: SlackEmulator, page: str) -> None:
    refused = httpx.post(f"{slack.base_url}app/api/press", content=b"{not json")
    assert refused.status_code == 400
    assert refused.json() == {"error": "the body must be JSON"}


def test_a_page_reaches_an_app_in_socket_mode_over_its_socket(slack: SlackEmulator) -> None:
    handler = SocketModeHandler(build_app(slack), "xapp-test")
    handler.connect()
    try:
        slack.socket_mode.wait_for_connections(1)
        slack.open_page(request_url=None, people=PEOPLE, channel=CHANNEL)
        ts = card(slack)
        pressed = act(slack, "press", user=LEAD, channel=CHANNEL, ts=ts, action_id="approve")
        assert pressed.json()["toast"] is None
        assert pressed.json()["delivery"]["kind"] == "block_actions"
        slack.wait_for(lambda ws: ws.message(CHANNEL, ts).text == f"Approved by <@{LEAD}>")
        assert (
            'Approved by <span class="mention" data-mention="user"'
            in state(slack, LEAD)["messages"][0]["html"]
        )
    finally:
        handler.close()
