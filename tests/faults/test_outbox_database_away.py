"""The database goes away between Slack taking a message and the outbox recording it.

The message is not sent again, and the rest of its thread is not held up for the claim's five
minutes: the sender keeps Slack's answer and records it once the database is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.adapters.slack import make_web_client
from bot.domain.candidates import Bundle, Candidate
from bot.domain.policy import Verdict, VerdictKind
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.store.database import make_engine, make_session_factory
from bot.store.migrations import upgrade
from bot.store.models import OutboxRow, SlackMessageRow
from bot.store.repositories import UnitOfWork
from tests.conftest import NOW
from tests.faults.postgres import PrivatePostgres, private_postgres

CHANNEL, BOT_TOKEN = "C0ML00001", "xoxb-outbox-away"
AWAY_S = 2.0


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        upgrade(server.url)
        yield server


class StopsTheDatabase(WebClient):
    """The bot's client, except that the database stops as Slack answers its first call."""

    def __init__(self, postgres: PrivatePostgres, slack: SlackEmulator) -> None:
        real = make_web_client(BOT_TOKEN, slack.api_url)
        super().__init__(
            token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=real.retry_handlers
        )
        self._postgres = postgres
        self.restarted = threading.Event()
        self._stopped = False

    def api_call(self, *args: Any, **kwargs: Any) -> SlackResponse:
        answer = super().api_call(*args, **kwargs)
        if not self._stopped:
            self._stopped = True
            self._postgres.stop()
            threading.Timer(AWAY_S, self._start_again).start()
        return answer

    def _start_again(self) -> None:
        self._postgres.start()
        self.restarted.set()


def test_a_message_slack_took_while_the_database_went_away_is_recorded_not_resent(
    postgres: PrivatePostgres,
) -> None:
    engine = make_engine(postgres.url)
    factory = make_session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    with uow() as unit:
        candidate = Candidate("churn-classifier", "7", "staging", "production",
                              {"accuracy": 0.93}, Bundle(), requester="U0REQUEST")  # fmt: skip
        verdict = Verdict(VerdictKind.NEEDS_APPROVAL, ("needs approval",))
        candidate_id = unit.candidates.add(candidate, verdict, actor="U0REQUEST", now=NOW).id
        key = f"candidate:{candidate_id}"
        card = unit.outbox.enqueue("chat.postMessage", {"channel": CHANNEL, "text": "card",
                                   "_remember_as": "card"}, ordering_key=key, now=NOW,
                                   candidate_id=candidate_id)  # fmt: skip
        reply = unit.outbox.enqueue("chat.postMessage", {"text": "step 1", "_thread_of": "card"},
                                    ordering_key=key, now=NOW, candidate_id=candidate_id)  # fmt: skip
        unit.commit()
        assert card is not None
        assert reply is not None
        card_id, reply_id = card.id, reply.id

    with SlackEmulator(bot_token=BOT_TOKEN) as slack:
        slack.workspace.add_channel(CHANNEL, "ml-models")
        client = StopsTheDatabase(postgres, slack)
        started = time.monotonic()
        report = deliver_due(uow, client, NOW)
        took = time.monotonic() - started

        assert client.restarted.is_set()
        assert took >= AWAY_S  # it waited for the database rather than giving the row up
        assert report.sent == 2
        [posted] = slack.workspace.messages(CHANNEL)
        assert posted.text == "card"
        assert [m.text for m in slack.workspace.thread(CHANNEL, posted.ts)] == ["step 1"]
        assert [c.status for c in slack.workspace.calls_to("chat.postMessage")] == [200, 200]

    with uow() as unit:
        for outbox_id in (card_id, reply_id):
            row = unit.session.get(OutboxRow, outbox_id)
            assert row is not None
            assert (row.attempts, row.last_error) == (1, None)
            assert row.delivered_at is not None
        remembered = unit.slack_messages.find(candidate_id, "card")
        assert isinstance(remembered, SlackMessageRow)
        assert (remembered.channel, remembered.ts) == (CHANNEL, posted.ts)
    engine.dispose()
