"""The outbox reaches Slack (the emulator, over HTTP) in order, once, through rate limits and outages."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.adapters.slack import make_web_client
from bot.emulator import SlackEmulator
from bot.services.delivery import (
    CARD_WAIT,
    PERMANENT_BACKOFF,
    DeliveryLoop,
    DeliveryReport,
    deliver_due,
)
from bot.store.models import OutboxRow
from bot.store.repositories import UnitOfWork
from tests.conftest import NOW

CHANNEL = "C0ML00001"
LEAD = "U0LEAD001"
BOT_TOKEN = "xoxb-delivery-test"

Outbox = Callable[..., int]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    # A fixed port, so that Slack can go away and come back where the client expects it.
    with SlackEmulator(bot_token=BOT_TOKEN, port=_free_port()) as emulator:
        emulator.workspace.add_user(LEAD, "lea", real_name="Lea Lead")
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    """A client without slack_sdk's rate-limit retries: 429s reach the outbox."""
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


@pytest.fixture
def enqueue(uow: Callable[[], UnitOfWork]) -> Outbox:
    """Queue a Web API call as the services do; return the outbox row's id."""

    def add(
        method: str, candidate_id: int | None = None, key: str | None = None, **payload: Any
    ) -> int:
        with uow() as unit:
            row = unit.outbox.enqueue(
                method,
                payload,
                ordering_key=key or f"candidate:{candidate_id}",
                now=NOW,
                candidate_id=candidate_id,
            )
            unit.commit()
            assert row is not None
            return row.id

    return add


def outbox_row(uow: Callable[[], UnitOfWork], outbox_id: int) -> OutboxRow:
    with uow() as unit:
        row = unit.session.get(OutboxRow, outbox_id)
        assert row is not None
        return row


def card_and_replies(enqueue: Outbox, candidate_id: int, replies: int = 3) -> list[int]:
    ids = [
        enqueue("chat.postMessage", candidate_id, channel=CHANNEL, text="card", _remember_as="card")
    ]
    for n in range(1, replies + 1):
        ids.append(enqueue("chat.postMessage", candidate_id, text=f"step {n}", _thread_of="card"))
    return ids


def thread_texts(slack: SlackEmulator, ts: str) -> list[str]:
    return [m.text for m in slack.workspace.thread(CHANNEL, ts)]


def test_a_card_and_its_replies_arrive_in_order_in_its_thread(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    candidate = new_candidate()
    card_and_replies(enqueue, candidate)

    report = deliver_due(uow, web, NOW)

    assert report == DeliveryReport(sent=4)
    [card] = slack.workspace.messages(CHANNEL)
    assert card.text == "card"
    assert thread_texts(slack, card.ts) == ["step 1", "step 2", "step 3"]
    with uow() as unit:
        remembered = unit.slack_messages.find(candidate, "card")
        assert remembered is not None
        assert (remembered.channel, remembered.ts) == (CHANNEL, card.ts)
        assert unit.outbox.due(NOW + timedelta(days=1)) == []
    # The private keys stayed home.
    assert all(not k.startswith("_") for c in slack.calls for k in c.args)


def test_delivered_messages_are_not_sent_again(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    card_and_replies(enqueue, new_candidate(), replies=1)
    deliver_due(uow, web, NOW)

    assert deliver_due(uow, web, NOW + timedelta(hours=2)) == DeliveryReport()
    assert len(slack.workspace.calls_to("chat.postMessage")) == 2


def test_an_update_of_the_card_replaces_it_in_place(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    candidate = new_candidate()
    card_and_replies(enqueue, candidate, replies=0)
    enqueue("chat.update", candidate, text="card: approved", _update_of="card")

    assert deliver_due(uow, web, NOW).sent == 2

    [card] = slack.workspace.messages(CHANNEL)
    assert card.text == "card: approved"
    assert card.edited is not None
    [update] = slack.workspace.calls_to("chat.update")
    assert (update.args["channel"], update.args["ts"]) == (CHANNEL, card.ts)


def test_ephemerals_and_home_tabs_are_delivered(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    candidate = new_candidate()
    card_and_replies(enqueue, candidate, replies=0)
    enqueue("chat.postEphemeral", candidate, user=LEAD, text="only you", _thread_of="card")
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    enqueue("views.publish", key=f"home:{LEAD}", user_id=LEAD, view=home)

    assert deliver_due(uow, web, NOW) == DeliveryReport(sent=3)

    [card] = slack.workspace.messages(CHANNEL)
    [ephemeral] = slack.workspace.ephemerals(CHANNEL, LEAD)
    assert (ephemeral.content.text, ephemeral.thread_ts) == ("only you", card.ts)
    published = slack.workspace.home(LEAD)
    assert published is not None
    assert published.definition["blocks"][0]["text"]["text"] == "hi"


def test_a_reply_waits_for_a_card_queued_under_another_key(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    candidate = new_candidate()
    reply = enqueue(
        "chat.postMessage", candidate, key="progress", text="copying", _thread_of="card"
    )

    first = deliver_due(uow, web, NOW)

    assert first.sent == 0
    assert first.failed == ()
    [waiting] = first.retried
    assert waiting.outbox_id == reply
    assert waiting.retry_at == NOW + CARD_WAIT
    assert "card" in waiting.reason

    enqueue("chat.postMessage", candidate, channel=CHANNEL, text="card", _remember_as="card")
    # The reply was judged before the card went out in the same pass; it goes in the next.
    assert deliver_due(uow, web, NOW + CARD_WAIT).sent == 1
    assert deliver_due(uow, web, NOW + 2 * CARD_WAIT) == DeliveryReport(sent=1)
    [card] = slack.workspace.messages(CHANNEL)
    assert thread_texts(slack, card.ts) == ["copying"]


def test_two_senders_at_once_send_each_message_once(
    slack: SlackEmulator, web: WebClient, uow: Callable[[], UnitOfWork], enqueue: Outbox
) -> None:
    for n in range(12):
        enqueue("chat.postMessage", key=f"digest:{n}", channel=CHANNEL, text=f"digest {n}")
        enqueue("chat.postMessage", key=f"digest:{n}", channel=CHANNEL, text=f"digest {n} again")
    reports: list[DeliveryReport] = []
    start = threading.Barrier(2)

    def sender() -> None:
        start.wait()
        reports.append(deliver_due(uow, WebClient(token=BOT_TOKEN, base_url=slack.api_url), NOW))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    texts = sorted(m.text for m in slack.workspace.messages(CHANNEL))
    assert texts == sorted(
        [f"digest {n}" for n in range(12)] + [f"digest {n} again" for n in range(12)]
    )
    assert sum(r.sent for r in reports) == 24


def test_rate_limits_delay_messages_in_the_outbox_never_drop_them(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    first, second = new_candidate("7"), new_candidate("8")
    card_and_replies(enqueue, first)
    other_card = enqueue(
        "chat.postMessage", second, channel=CHANNEL, text="other card", _remember_as="card"
    )
    slack.rate_limit("chat.postMessage", retry_after=30, times=2)

    for elapsed in (0, 30):
        report = deliver_due(uow, web, NOW + timedelta(seconds=elapsed))
        assert report.sent == 0
        assert report.failed == ()
        # The other card waits out the limit without asking Slack again.
        assert {r.outbox_id for r in report.retried} >= {other_card}
        assert {r.retry_at for r in report.retried} == {NOW + timedelta(seconds=elapsed + 30)}
        assert all("rate limited" in r.reason for r in report.retried)
        assert slack.workspace.messages(CHANNEL) == []
        assert deliver_due(uow, web, NOW + timedelta(seconds=elapsed + 29)).sent == 0

    assert deliver_due(uow, web, NOW + timedelta(seconds=60)).sent == 5

    assert [c.status for c in slack.workspace.calls_to("chat.postMessage")] == [429, 429] + [
        200
    ] * 5
    card, other = slack.workspace.messages(CHANNEL)
    assert (card.text, other.text) == ("card", "other card")
    assert thread_texts(slack, card.ts) == ["step 1", "step 2", "step 3"]
    assert outbox_row(uow, other_card).attempts == 3


def test_slack_sdks_retry_handler_absorbs_short_rate_limits(
    slack: SlackEmulator,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    card_and_replies(enqueue, new_candidate())
    slack.rate_limit("chat.postMessage", retry_after=1, times=1)

    report = deliver_due(uow, make_web_client(BOT_TOKEN, slack.api_url), NOW)

    assert report == DeliveryReport(sent=4)
    assert [c.status for c in slack.workspace.calls_to("chat.postMessage")] == [429] + [200] * 4
    [card] = slack.workspace.messages(CHANNEL)
    assert thread_texts(slack, card.ts) == ["step 1", "step 2", "step 3"]


def test_while_slack_is_unreachable_messages_wait_then_arrive(
    slack: SlackEmulator,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    client = make_web_client(BOT_TOKEN, slack.api_url)
    candidate = new_candidate()
    card_and_replies(enqueue, candidate, replies=1)
    assert deliver_due(uow, client, NOW).sent == 2

    slack.stop()
    later = [
        enqueue("chat.postMessage", candidate, text=f"step {n}", _thread_of="card") for n in (2, 3)
    ]
    report = deliver_due(uow, client, NOW)

    # The next in line waits; the one behind it is not tried out of turn.
    assert report.sent == 0
    [waiting] = report.retried
    assert waiting.outbox_id == later[0]
    assert "could not be reached" in waiting.reason
    row = outbox_row(uow, later[0])
    assert (row.delivered_at, row.attempts) == (None, 1)
    assert row.last_error == waiting.reason
    assert deliver_due(uow, client, NOW) == DeliveryReport()

    slack.start()
    assert deliver_due(uow, client, waiting.retry_at).sent == 2
    [card] = slack.workspace.messages(CHANNEL)
    assert thread_texts(slack, card.ts) == ["step 1", "step 2", "step 3"]


def test_backoff_doubles_while_slack_stays_away(
    slack: SlackEmulator, uow: Callable[[], UnitOfWork], enqueue: Outbox
) -> None:
    # No retry handler at all: the outbox's own backoff is what is measured.
    web = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    enqueue("chat.postMessage", key="digest", channel=CHANNEL, text="digest")
    slack.stop()

    now, waits = NOW, []
    for _ in range(3):
        [waiting] = deliver_due(uow, web, now).retried
        waits.append(waiting.retry_at - now)
        now = waiting.retry_at
    assert waits == [timedelta(seconds=2), timedelta(seconds=4), timedelta(seconds=8)]


def test_a_message_slack_refuses_is_kept_and_reported_while_others_flow(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    lost, fine = new_candidate("7"), new_candidate("8")
    refused = enqueue(
        "chat.postMessage", lost, channel="C0NOSUCH1", text="lost card", _remember_as="card"
    )
    enqueue("chat.postMessage", lost, text="behind it", _thread_of="card")
    card_and_replies(enqueue, fine, replies=2)

    with caplog.at_level(logging.INFO, logger="bot.services.delivery"):
        report = deliver_due(uow, web, NOW)

    assert report.sent == 3
    assert report.retried == ()
    [failure] = report.failed
    assert failure.outbox_id == refused
    assert "channel_not_found" in failure.reason
    assert failure.retry_at == NOW + PERMANENT_BACKOFF
    row = outbox_row(uow, refused)
    assert row.delivered_at is None
    assert row.last_error is not None
    assert "channel_not_found" in row.last_error
    assert any("channel_not_found" in r.getMessage() for r in caplog.records)
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)
    [card] = slack.workspace.messages(CHANNEL)
    assert thread_texts(slack, card.ts) == ["step 1", "step 2"]
    # Once a person fixed the channel, the kept message goes out in the next hour's pass.
    slack.workspace.add_channel("C0NOSUCH1", "ml-models-2")
    assert deliver_due(uow, web, NOW + PERMANENT_BACKOFF).sent == 2
    assert [m.text for m in slack.workspace.messages("C0NOSUCH1")] == ["lost card"]


def test_a_malformed_row_is_kept_and_reported(
    web: WebClient, uow: Callable[[], UnitOfWork], enqueue: Outbox
) -> None:
    odd = enqueue("chat.delete", key="odd", channel=CHANNEL, ts="1.2")
    typo = enqueue("chat.postMessage", key="typo", channel=CHANNEL, text="x", _remeber_as="card")

    report = deliver_due(uow, web, NOW)

    assert [(f.outbox_id, f.reason) for f in report.failed] == [
        (odd, "Gatekeeper does not send chat.delete"),
        (typo, "unknown outbox key _remeber_as"),
    ]


def test_the_loop_delivers_when_woken(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    enqueue: Outbox,
) -> None:
    candidate = new_candidate()
    with DeliveryLoop(uow, web, interval=60, clock=lambda: NOW) as loop:
        card_and_replies(enqueue, candidate, replies=2)
        loop.wake()
        slack.wait_for(lambda w: len(w.calls_to("chat.postMessage")) == 3)
    [card] = slack.workspace.messages(CHANNEL)
    assert thread_texts(slack, card.ts) == ["step 1", "step 2"]


def test_the_loop_survives_a_failing_pass(web: WebClient, caplog: pytest.LogCaptureFixture) -> None:
    passes: list[datetime] = []
    three_passes = threading.Event()

    def broken() -> UnitOfWork:
        passes.append(NOW)
        if len(passes) >= 3:
            three_passes.set()
        raise RuntimeError("database away")

    with caplog.at_level(logging.ERROR), DeliveryLoop(broken, web, interval=0.01):
        assert three_passes.wait(5)
    assert any("delivering the outbox failed" in r.getMessage() for r in caplog.records)
