"""The Slack interface over Socket Mode: the same presses and commands, through the bot's socket."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handlers.blocks import Action
from tests.e2e.conftest import CHANNEL, LEAD, SRE, Bot, serving
from tests.e2e.test_slack_interface import _card, _propose, _texts, _votes


@pytest.fixture
def socket_bot(tmp_path: Path, gatekeeper_yaml: str) -> Iterator[Bot]:
    with serving(tmp_path, gatekeeper_yaml, socket_mode=True) as bot:
        yield bot


def test_a_candidate_is_approved_from_its_card_over_the_socket(socket_bot: Bot) -> None:
    _propose(socket_bot)
    card = _card(socket_bot)
    person = socket_bot.person()

    first = person.click(LEAD, CHANNEL, card.ts, Action.APPROVE)
    assert first is not None
    assert (first.status, first.error) == (200, None)
    assert json.loads(first.body)["type"] == "interactive"
    socket_bot.slack.wait_for(
        lambda ws: "1 of 2 approvals" in _texts(ws.message(CHANNEL, card.ts)), timeout=10
    )

    second = person.click(SRE, CHANNEL, card.ts, Action.APPROVE)
    assert second is not None
    assert (second.status, second.error) == (200, None)
    socket_bot.slack.wait_for(
        lambda ws: "approved" in _texts(ws.message(CHANNEL, card.ts)), timeout=10
    )
    assert _votes(socket_bot) == [(LEAD, "approve"), (SRE, "approve")]


def test_promote_help_answers_over_the_socket(socket_bot: Bot) -> None:
    delivery = socket_bot.person().slash_command(LEAD, "/promote", "help", channel=CHANNEL)
    assert (delivery.status, delivery.error) == (200, None)
    assert json.loads(delivery.body)["type"] == "slash_commands"
    assert "/promote plan" in delivery.json()["text"]
    [shown] = socket_bot.slack.workspace.ephemerals(CHANNEL, LEAD)
    assert "/promote plan" in shown.content.text


def test_home_tab_is_published_once_though_slack_retries_over_the_socket(
    socket_bot: Bot,
) -> None:
    person = socket_bot.person()
    first = person.open_home(LEAD)
    assert (first.status, first.error) == (200, None)
    # Slack numbers every Socket Mode event delivery; the first is attempt 0, not a retry.
    assert json.loads(first.body)["retry_attempt"] == 0
    socket_bot.slack.wait_for(lambda ws: ws.home(LEAD), timeout=10)
    retried = person.retry(first)
    assert (retried.status, json.loads(retried.body)["retry_attempt"]) == (200, 1)
    time.sleep(0.5)  # long enough for a listener the retry had started to publish again
    assert len(socket_bot.slack.workspace.calls_to("views.publish")) == 1
