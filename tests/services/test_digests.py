"""A digest reaches its channel with what waits, read in a fixed number of queries, once per run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, event, insert

from bot.blockkit import message_problems
from bot.domain.approvals import Decision, Vote
from bot.domain.policy import Policy, VerdictKind
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.services.digests import models_in, post_digest, read_digest
from bot.store.models import CandidateRow
from bot.store.repositories import UnitOfWork
from handlers.blocks.digest import DIGEST_LINES
from handlers.notifier import SlackNotifier
from tests.conftest import NOW

CHANNEL = "C0ML00001"
TOKEN = "xoxb-digest-test"
LEADS, LEAD, SRE, REQUESTER = "S0MLLEADS", "U0LEAD001", "U0SRE0001", "U0REQUEST"
PATH = ("dev", "staging", "production")
POLICIES = {
    "staging": Policy(approvals=1, approvers=frozenset({LEAD})),
    "production": Policy(approvals=2, approvers=frozenset({LEADS, SRE, REQUESTER})),
}


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        for user in (LEAD, SRE, REQUESTER):
            emulator.workspace.add_user(user, user.lower())
        emulator.workspace.add_usergroup(LEADS, "ml-leads", [LEAD])
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


notifier = SlackNotifier(lambda model: CHANNEL, POLICIES.__getitem__)


def post(uow: Callable[[], UnitOfWork], key: str, url: str | None) -> None:
    post_digest(
        uow, notifier, POLICIES.__getitem__, CHANNEL, None, PATH, now=NOW, key=key,
        workspace_url=url,
    )  # fmt: skip


def body(message: Any) -> str:
    return json.dumps(message.content.blocks, ensure_ascii=False)


def test_the_digest_shows_each_open_candidate_with_votes_waiting_approvers_and_thread_link(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
) -> None:
    waiting = new_candidate("7")
    blocked = new_candidate("8", kind=VerdictKind.BLOCKED, override_by=frozenset({"S0MLOPS"}))
    staging = new_candidate("9", target_env="staging")
    with uow() as unit:
        unit.votes.add(waiting, Vote(LEAD, Decision.APPROVE), NOW)
        for candidate in (waiting, blocked, staging):
            notifier.card_changed(unit, candidate, NOW)
        unit.commit()
    deliver_due(uow, web, NOW)
    cards = {m.ts: m for m in slack.workspace.messages(CHANNEL)}

    post(uow, "digest:t1", web.auth_test()["url"])
    deliver_due(uow, web, NOW)

    digest = slack.workspace.messages(CHANNEL)[-1]
    assert digest.text == "Gatekeeper digest: 3 waiting (1 in staging, 2 in production)"
    assert message_problems({"text": digest.text, "blocks": digest.content.blocks}) == []
    text = body(digest)
    # Staging before production, as the promotion path goes.
    assert text.index("`staging`*") < text.index("`production`*")
    with uow() as unit:
        card = unit.slack_messages.find(waiting)
        assert card is not None
        assert card.ts in cards
    link = f"{slack.api_url.removesuffix('api/')}archives/{CHANNEL}/p{card.ts.replace('.', '')}"
    assert f"<{link}|churn-classifier v7>" in text
    # The requester may not approve their own; the lead voted; the group still may.
    assert f"1 of 2 approvals, waiting for <!subteam^{LEADS}>, <@{SRE}>" in text
    assert "⛔ blocked: test verdict blocked" in text
    assert "<!subteam^S0MLOPS> may override" in text
    assert "0 of 1 approval, waiting for <@U0LEAD001>" in text


def test_each_run_posts_once_however_often_it_is_repeated(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
) -> None:
    new_candidate()

    post(uow, "digest:C0ML00001:2026-11-27T09:00:00+00:00", None)
    post(uow, "digest:C0ML00001:2026-11-27T09:00:00+00:00", None)
    deliver_due(uow, web, NOW)
    assert len(slack.workspace.messages(CHANNEL)) == 1

    post(uow, "digest:C0ML00001:2026-11-28T09:00:00+00:00", None)
    deliver_due(uow, web, NOW)
    assert len(slack.workspace.messages(CHANNEL)) == 2


def test_decided_and_expired_candidates_are_left_out(
    uow: Callable[[], UnitOfWork], new_candidate: Callable[..., int]
) -> None:
    kept = new_candidate("1")
    approved = new_candidate("2", kind=VerdictKind.AUTO_APPROVE)
    stale = new_candidate("3")
    with uow() as unit:
        unit.candidates.get(stale).expires_at = NOW - timedelta(minutes=1)
        unit.commit()

    with uow() as unit:
        digest = read_digest(unit.session, CHANNEL, None, POLICIES.__getitem__, PATH, NOW)

    assert [e.id for _, entries in digest.environments for e in entries] == [kept]
    assert approved != kept


def test_a_channel_gets_its_own_models_or_every_model_when_it_hosts_none() -> None:
    channels = {"churn": CHANNEL, "fraud": "C0FRAUD01", "ltv": CHANNEL}

    assert models_in(CHANNEL, channels) == frozenset({"churn", "ltv"})
    assert models_in("C0LEADS01", channels) is None


def test_reading_takes_three_queries_however_many_candidates_and_votes(
    engine: Engine, uow: Callable[[], UnitOfWork], new_candidate: Callable[..., int]
) -> None:
    ids = [new_candidate(str(n)) for n in range(30)]
    with uow() as unit:
        for candidate in ids[:10]:
            unit.votes.add(candidate, Vote(SRE, Decision.APPROVE), NOW)
            unit.slack_messages.remember(candidate, "card", CHANNEL, f"1764230400.{candidate:06d}")
        unit.commit()
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not the BEGIN on SQLite
            statements.append(str(args[2]))

    with uow() as unit:
        event.listen(engine, "before_cursor_execute", count)
        try:
            digest = read_digest(
                unit.session, CHANNEL, {"churn-classifier"}, POLICIES.__getitem__, PATH, NOW
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)

    assert len(statements) == 3
    [(_, entries)] = digest.environments
    assert len(entries) == 30
    assert sum(e.approvals == (SRE,) for e in entries) == 10
    assert sum(e.thread is not None for e in entries) == 10


def test_ten_thousand_pending_candidates_make_one_message_within_limits(
    engine: Engine, uow: Callable[[], UnitOfWork]
) -> None:
    rows = [
        {
            "model": "churn-classifier",
            "version": str(n),
            "source_env": "dev" if n % 1000 else "staging",
            "target_env": "staging" if n % 1000 else "production",
            "state": "pending",
            "requester": REQUESTER,
            "author": None,
            "bundle": {},
            "metrics": {"accuracy": 0.93},
            "verdict": {"kind": "needs_approval", "reasons": ["1 approval needed"]},
            "created_at": NOW - timedelta(minutes=n),
            "updated_at": NOW,
            "expires_at": None,
        }
        for n in range(1, 10_001)
    ]
    with engine.begin() as connection:
        connection.execute(insert(CandidateRow), rows)

    post(uow, "digest:big", "https://acme.slack.com/")

    with uow() as unit:
        [queued] = unit.outbox.due(NOW)
    assert message_problems(queued.payload) == []
    text = json.dumps(queued.payload["blocks"], ensure_ascii=False)
    assert queued.payload["text"] == (
        "Gatekeeper digest: 10,000 waiting (9,990 in staging, 10 in production)"
    )
    assert text.count("• *<https://") == 0  # no card posted yet: names without links
    assert text.count("• *churn-classifier v") == DIGEST_LINES
    assert f"and {9_990 - (DIGEST_LINES - 10):,} more in `staging`" in text
