"""A real Bolt app against the emulator: what passes here is what Bolt does against Slack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.emulator import BackgroundServer, Forgery, InteractionClient, SlackEmulator
from bot.emulator.records import Content

from .conftest import BOT_TOKEN, CHANNEL, LEAD, SIGNING_SECRET

REJECT_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "reject",
    "title": {"type": "plain_text", "text": "Reject churn v7"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "private_metadata": "7",
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


def build_app(slack: SlackEmulator) -> App:
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=slack.api_url), signing_secret=SIGNING_SECRET
    )

    @app.command("/promote")
    def promote(ack: Ack, respond: Respond, command: dict[str, Any]) -> None:
        ack(f"Looking up {command['text']}...")
        respond(text="churn-classifier v7 is pending", replace_original=True)

    @app.action("approve")
    def approve(ack: Ack, respond: Respond, body: dict[str, Any]) -> None:
        ack()
        respond(text=f"Approved by <@{body['user']['id']}>", replace_original=True)

    @app.action("reject")
    def reject(ack: Ack, client: WebClient, body: dict[str, Any]) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=REJECT_MODAL)

    @app.view("reject")
    def rejected(ack: Ack, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["text"]["value"]
        if len(reason) < 10:
            ack(response_action="errors", errors={"reason": "Say a little more"})
        else:
            ack()

    @app.event("app_home_opened")
    def home(client: WebClient, event: dict[str, Any]) -> None:
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "Nothing waits for you"}}]
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": blocks})

    return app


@pytest.fixture
def person(slack: SlackEmulator) -> Iterator[InteractionClient]:
    handler = SlackRequestHandler(build_app(slack))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    server = BackgroundServer(Starlette(routes=[Route("/slack/events", events, methods=["POST"])]))
    server.start()
    yield slack.client(f"{server.url}slack/events")
    server.stop()


def card(slack: SlackEmulator) -> str:
    buttons = [
        {"type": "button", "action_id": action, "text": {"type": "plain_text", "text": action}}
        for action in ("approve", "reject")
    ]
    blocks = [{"type": "actions", "block_id": "decision", "elements": buttons}]
    return slack.workspace.post(CHANNEL, Content("churn v7", blocks)).ts


def eventually(slack: SlackEmulator, predicate: Callable[[Any], Any]) -> Any:
    return slack.wait_for(predicate, timeout=5)


def test_bolt_started_by_checking_its_token(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    assert slack.workspace.calls_to("auth.test")[0].ok


def test_slash_command_ack_and_respond(slack: SlackEmulator, person: InteractionClient) -> None:
    delivery = person.slash_command(LEAD, "/promote", "churn-classifier", channel=CHANNEL)
    assert delivery.status == 200
    # Bolt sends respond() while Slack is still showing the ack; either may land first.
    eventually(
        slack,
        lambda ws: (
            "churn-classifier v7 is pending" in [e.text for e in ws.ephemerals(CHANNEL, LEAD)]
        ),
    )
    assert slack.workspace.response_posts[0].status == 200


def test_button_then_respond_replaces_the_card(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    ts = card(slack)
    person.click(LEAD, CHANNEL, ts, "approve")
    eventually(slack, lambda ws: ws.message(CHANNEL, ts).text == f"Approved by <@{LEAD}>")


def test_button_opens_a_modal_and_its_submission_is_judged(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    person.click(LEAD, CHANNEL, card(slack), "reject")
    [modal] = eventually(slack, lambda ws: ws.modals(LEAD))
    assert modal.callback_id == "reject"

    short = person.submit_view(LEAD, modal.id, {"reason": {"text": "meh"}})
    assert short.error is None
    still_open = slack.workspace.view(modal.id)
    assert still_open is not None
    assert not still_open.closed
    assert still_open.errors == {"reason": "Say a little more"}

    person.submit_view(LEAD, modal.id, {"reason": {"text": "accuracy regressed on EU data"}})
    assert slack.workspace.modals(LEAD) == []


def test_a_required_input_cannot_be_left_empty(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    person.click(LEAD, CHANNEL, card(slack), "reject")
    [modal] = eventually(slack, lambda ws: ws.modals(LEAD))
    with pytest.raises(ValueError, match="required"):
        person.submit_view(LEAD, modal.id, {})


def test_home_tab_published_when_opened(slack: SlackEmulator, person: InteractionClient) -> None:
    person.open_home(LEAD)
    home = eventually(slack, lambda ws: ws.home(LEAD))
    assert home.blocks[0]["text"]["text"] == "Nothing waits for you"


def test_bolt_refuses_forged_requests_and_nothing_changes(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    ts = card(slack)
    before = slack.workspace.version
    for forgery in Forgery:
        delivery = person.click(LEAD, CHANNEL, ts, "approve", forgery=forgery)
        assert delivery is not None
        assert delivery.status == 401
    assert slack.workspace.changes_since(before) == []
