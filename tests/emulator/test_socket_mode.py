"""Socket Mode: a real Bolt app connects out to the emulator and gets what HTTP would carry."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from bot.emulator import Forgery, InteractionClient, SlackEmulator

from .conftest import CHANNEL, LEAD
from .test_with_bolt import build_app, card, eventually

APP_TOKEN = "xapp-test"


def socket_url(slack: SlackEmulator) -> str:
    url: str = WebClient(base_url=slack.api_url).apps_connections_open(app_token=APP_TOKEN)["url"]
    return url


@pytest.fixture
def bolt(slack: SlackEmulator) -> Iterator[App]:
    """The Bolt app of the HTTP tests (test_with_bolt), connected over Socket Mode instead."""
    app = build_app(slack)
    handler = SocketModeHandler(app, APP_TOKEN)
    handler.connect()
    slack.socket_mode.wait_for_connections(1)
    yield app
    handler.close()


@pytest.fixture
def person(slack: SlackEmulator, bolt: App) -> InteractionClient:
    return slack.socket_client()


def envelope_of(delivery: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(delivery.body)
    return envelope


def test_a_connection_url_works_once_and_is_greeted_with_hello(slack: SlackEmulator) -> None:
    url = socket_url(slack)
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/socket-mode/[\w-]+", url)
    with connect(url) as socket:
        hello = json.loads(socket.recv(timeout=5))
        assert hello["type"] == "hello"
        assert hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": slack.workspace.identity.app_id}
        assert "host" in hello["debug_info"]
        slack.socket_mode.wait_for_connections(1)
    with pytest.raises(InvalidStatus) as refused:
        connect(url)
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        connect(url.rsplit("/", 1)[0] + "/never-issued")
    slack.socket_mode.wait_for_connections(0)


def test_slash_command_is_acked_over_the_socket_and_the_ack_shown(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    delivery = person.slash_command(LEAD, "/promote", "churn-classifier", channel=CHANNEL)
    assert delivery.status == 200
    assert delivery.error is None
    assert delivery.headers == {}  # Slack signs no Socket Mode envelope
    envelope = envelope_of(delivery)
    assert envelope["type"] == "slash_commands"
    assert envelope["accepts_response_payload"] is True
    assert envelope["payload"]["command"] == "/promote"
    assert delivery.json() == {"text": "Looking up churn-classifier..."}
    # Shown as an HTTP reply is; respond() may already have replaced it, as over HTTP.
    assert [e.via for e in slack.workspace.ephemerals(CHANNEL, LEAD)].count("command_reply") == 1
    eventually(
        slack,
        lambda ws: (
            "churn-classifier v7 is pending" in [e.text for e in ws.ephemerals(CHANNEL, LEAD)]
        ),
    )


def test_button_press_is_acked_and_its_respond_replaces_the_card(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    ts = card(slack)
    delivery = person.click(LEAD, CHANNEL, ts, "approve")
    assert delivery is not None
    assert delivery.status == 200
    envelope = envelope_of(delivery)
    assert envelope["type"] == "interactive"
    assert envelope["accepts_response_payload"] is False
    assert envelope["payload"]["actions"][0]["action_id"] == "approve"
    eventually(slack, lambda ws: ws.message(CHANNEL, ts).text == f"Approved by <@{LEAD}>")


def test_a_submission_ack_with_errors_keeps_the_modal_open(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    person.click(LEAD, CHANNEL, card(slack), "reject")
    [modal] = eventually(slack, lambda ws: ws.modals(LEAD))

    short = person.submit_view(LEAD, modal.id, {"reason": {"text": "meh"}})
    assert short.error is None
    assert short.json() == {"response_action": "errors", "errors": {"reason": "Say a little more"}}
    still_open = slack.workspace.view(modal.id)
    assert still_open is not None
    assert still_open.errors == {"reason": "Say a little more"}

    person.submit_view(LEAD, modal.id, {"reason": {"text": "accuracy regressed on EU data"}})
    assert slack.workspace.modals(LEAD) == []


def test_events_come_as_events_api_envelopes_and_retries_say_so(
    slack: SlackEmulator, bolt: App, person: InteractionClient
) -> None:
    retry_headers: list[Any] = []

    @bolt.middleware
    def note_retry(request: BoltRequest, next: Any) -> Any:
        retry_headers.append(request.headers.get("x-slack-retry-num"))
        return next()

    first = person.open_home(LEAD)
    assert first.status == 200
    envelope = envelope_of(first)
    assert envelope["type"] == "events_api"
    assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
    assert envelope["payload"]["event"]["type"] == "app_home_opened"
    eventually(slack, lambda ws: ws.home(LEAD))

    again = person.retry(first)
    assert (envelope_of(again)["retry_attempt"], envelope_of(again)["retry_reason"]) == (
        1,
        "timeout",
    )
    assert envelope_of(again)["envelope_id"] != envelope["envelope_id"]
    # Bolt turns retry_attempt into the header HTTP carries, 0 included.
    assert retry_headers == [["0"], ["1"]]


def test_no_ack_in_time_is_an_ack_timeout_shown_to_the_person(
    slack: SlackEmulator, bolt: App
) -> None:
    impatient = slack.socket_client(timeout=0.5)
    delivery = impatient.slash_command(LEAD, "/nobody-listens", channel=CHANNEL)
    assert delivery.status is None
    assert delivery.error == "ack_timeout"
    notices = [e.text for e in slack.workspace.ephemerals(CHANNEL, LEAD)]
    assert notices == ['/nobody-listens failed with the error "ack_timeout"']


def test_without_an_open_socket_delivery_fails(slack: SlackEmulator) -> None:
    delivery = slack.socket_client().slash_command(LEAD, "/promote", channel=CHANNEL)
    assert (delivery.status, delivery.error) == (None, "dispatch_failed")


def test_socket_mode_is_neither_signed_nor_verified(slack: SlackEmulator) -> None:
    person = slack.socket_client()
    with pytest.raises(ValueError, match="signature"):
        person.send_event({"type": "app_home_opened", "user": LEAD}, forgery=next(iter(Forgery)))
    with pytest.raises(ValueError, match="request URLs"):
        person.verify_url()


def test_after_a_refresh_the_app_reconnects_and_is_still_reached(
    slack: SlackEmulator, person: InteractionClient
) -> None:
    assert slack.socket_mode.refresh() == 1
    # The app opens its new socket before it closes the old one (slack_sdk's client reads the
    # new one only once the old one is closed, up to 3 s later).
    slack.socket_mode.wait_for_connections(2)
    slack.socket_mode.wait_for_connections(1, timeout=10)
    assert len(slack.workspace.calls_to("apps.connections.open")) == 2
    ts = card(slack)
    delivery = person.click(LEAD, CHANNEL, ts, "approve")
    assert delivery is not None
    assert delivery.status == 200


def test_shutdown_leaves_no_thread_and_no_connection() -> None:
    threads_before = set(threading.enumerate())
    slack = SlackEmulator().start()
    try:
        app = App(
            client=WebClient(token="xoxb-test", base_url=slack.api_url),
            signing_secret="unused-in-socket-mode",
            process_before_response=True,  # no listener thread pool left behind
        )

        @app.command("/promote")
        def promote(ack: Ack) -> None:
            ack()

        handler = SocketModeHandler(app, APP_TOKEN)
        handler.connect()
        slack.socket_mode.wait_for_connections(1)
        handler.close()
        slack.socket_mode.wait_for_connections(0)

        with connect(socket_url(slack)) as still_open:
            assert json.loads(still_open.recv(timeout=5))["type"] == "hello"
            slack.stop()
            with pytest.raises(ConnectionClosed) as closed:
                still_open.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012  # service restart: reconnect later
    finally:
        slack.stop()
    assert set(threading.enumerate()) <= threads_before
