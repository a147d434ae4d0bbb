"""A digest reaches its channel with what waits, once per run: every open candidate counted,
the shown ones chosen by the database, in a fixed number of queries reading only what is shown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, event, insert

from bot.blockkit import message_problems
from bot.domain.approvals import Decision, Vote
from bot.domain.policy import Policy, VerdictKind
from bot.domain.promotion import OPEN_STATES
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.services.digests import (
    DIGEST_LINES,
    ENVIRONMENTS_SHOWN,
    Digest,
    lines_per_environment,
    models_in,
    post_digest,
    read_digest,
    read_open,
)
from bot.store.models import CandidateRow, SlackMessageRow, VoteRow
from bot.store.repositories import UnitOfWork
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

    assert [e.id for environment in digest.environments for e in environment.shown] == [kept]
    assert digest.total == 1
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
    [environment] = digest.environments
    entries = environment.shown
    assert len(entries) == environment.pending == 30
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


def test_shown_lines_are_shared_in_turn_so_no_environment_is_crowded_out() -> None:
    assert lines_per_environment([9_990, 10]) == [DIGEST_LINES - 10, 10]
    assert lines_per_environment([1, 100, 100]) == [1, 20, 19]
    assert lines_per_environment([3, 4]) == [3, 4]
    assert lines_per_environment([100] * 10) == [5] * ENVIRONMENTS_SHOWN + [0, 0]
    assert lines_per_environment([]) == []


# Ten target environments, two past those shown; staging's hundreds against production's few.
SIZES = {
    "staging": 400,
    "production": 3,
    "edge0": 1,
    "edge1": 60,
    "edge2": 10,
    "edge3": 10,
    "edge4": 10,
    "edge5": 10,
    "edge6": 5,
    "edge7": 5,
}
MODELS = ("churn-classifier", "fraud-detector", "ltv-regressor")
COVERED = frozenset({"churn-classifier", "ltv-regressor"})


def policy_for(environment: str) -> Policy:
    return POLICIES.get(environment, Policy(approvals=1, approvers=frozenset({LEADS, SRE})))


def many_candidates(engine: Engine, scale: int = 1) -> list[dict[str, Any]]:
    """``scale`` times ``SIZES`` candidates in every state, with votes and cards, inserted in bulk.

    Ids run against creation order and creation times repeat in fours, so that "oldest first"
    has to break ties by id; some have a message besides their card; some are approved or past their expiry (left out), one in three is
    for a model the channel does not cover.
    """
    plan = [env for env, size in SIZES.items() for _ in range(size * scale)]
    rows: list[dict[str, Any]] = []
    for n, env in enumerate(plan, start=1):
        state = "approved" if n % 7 == 0 else "blocked" if n % 5 == 0 else "pending"
        rows.append(
            {
                "id": len(plan) - n + 1,
                "model": MODELS[n % 3],
                "version": str(n),
                "source_env": "dev",
                "target_env": env,
                "state": state,
                "requester": REQUESTER if n % 2 else None,
                "author": "U0AUTHOR1" if n % 3 else None,
                "bundle": {},
                "metrics": {"accuracy": 0.93},
                "verdict": {
                    "kind": state,
                    "reasons": [f"reason {n}", "another"],
                    "override_by": ["S0MLOPS"],
                },
                "reason": "gates failed" if n % 10 == 0 else None,
                "created_at": NOW - timedelta(minutes=(len(plan) - n) // 4),
                "updated_at": NOW,
                "expires_at": (
                    NOW - timedelta(seconds=1)
                    if n % 11 == 0
                    else NOW + timedelta(days=1)
                    if n % 4
                    else None
                ),
            }
        )
    votes = [
        {
            "candidate_id": row["id"],
            "voter": voter,
            "decision": decision,
            "reason": None,
            "at": NOW,
        }
        for index, row in enumerate(rows)
        for voter, decision in ((LEAD, "approve"), (SRE, "reject" if index % 4 else "approve"))
        if index % 3 == 0 or (voter == LEAD and index % 2)
    ]
    cards = [
        {
            "candidate_id": row["id"],
            "kind": kind,
            "channel": CHANNEL,
            "ts": f"176423040{digit}.{row['id']:06d}",
        }
        for index, row in enumerate(rows)
        for kind, digit in (("card", 0), ("progress", 1))
        if index % 4 and (kind == "card" or index % 5 == 0)
    ]
    with engine.begin() as connection:
        connection.execute(insert(CandidateRow), rows)
        connection.execute(insert(VoteRow), votes)
        connection.execute(insert(SlackMessageRow), cards)
    return rows


def is_open(row: dict[str, Any], now: datetime) -> bool:
    return (
        row["state"] in {s.value for s in OPEN_STATES}
        and row["model"] in COVERED
        and (row["expires_at"] is None or row["expires_at"] > now)
    )


def test_far_more_candidates_than_shown_are_counted_exactly_and_the_oldest_shown(
    engine: Engine, uow: Callable[[], UnitOfWork]
) -> None:
    rows = many_candidates(engine)
    open_rows = sorted(
        (row for row in rows if is_open(row, NOW)), key=lambda r: (r["created_at"], r["id"])
    )
    environments = list(SIZES)  # already in digest order: the path's, then by name
    by_env = {env: [r for r in open_rows if r["target_env"] == env] for env in environments}
    quotas = lines_per_environment([len(by_env[env]) for env in environments])

    with uow() as unit:
        digest = read_digest(unit.session, CHANNEL, COVERED, policy_for, PATH, NOW)
        everything = {e.id: e for e in read_open(unit.session, COVERED, policy_for, NOW)}

    assert [e.name for e in digest.environments] == environments
    for environment, quota in zip(digest.environments, quotas, strict=True):
        expected = by_env[environment.name]
        assert environment.pending == sum(r["state"] == "pending" for r in expected)
        assert environment.blocked == sum(r["state"] == "blocked" for r in expected)
        assert [e.id for e in environment.shown] == [r["id"] for r in expected[:quota]]
        # Each shown line is what reading every open candidate would have said of it.
        assert list(environment.shown) == [everything[e.id] for e in environment.shown]
    assert digest.total == len(open_rows) == len(everything)
    assert sum(len(e.shown) for e in digest.environments) == DIGEST_LINES
    assert digest.environments[0].hidden > 100
    assert [e.shown for e in digest.environments[ENVIRONMENTS_SHOWN:]] == [(), ()]
    shown = [e for environment in digest.environments for e in environment.shown]
    # The data exercise what a line shows: votes, threads, blocks, ties in creation time.
    assert any(e.approvals for e in shown)
    assert any(e.blocked_by for e in shown)
    assert any(e.thread is None for e in shown)
    assert any(e.thread is not None for e in shown)
    assert len({e.created_at for e in shown}) < len(shown)


def read_counting(
    engine: Engine, uow: Callable[[], UnitOfWork]
) -> tuple[Digest, list[tuple[str, Any]]]:
    """The digest, and the SELECTs it sent with their parameters."""
    sent: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # not the BEGIN on SQLite
            sent.append((statement, parameters))

    with uow() as unit:
        event.listen(engine, "before_cursor_execute", keep)
        try:
            digest = read_digest(unit.session, CHANNEL, COVERED, policy_for, PATH, NOW)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
    return digest, sent


def rows_returned(engine: Engine, sent: list[tuple[str, Any]]) -> int:
    """How many rows those SELECTs return, run again on the bare driver connection."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        count = 0
        for statement, parameters in sent:
            cursor.execute(statement, parameters)
            count += len(cursor.fetchall())
        cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return count


def test_reading_takes_three_queries_and_reads_only_the_shown_rows_however_many_wait(
    engine: Engine, uow: Callable[[], UnitOfWork]
) -> None:
    many_candidates(engine)
    digest, sent = read_counting(engine, uow)
    groups = len(SIZES) * 2  # (environment, state) counts
    votes_at_most = 2 * DIGEST_LINES
    assert len(sent) == 3
    assert rows_returned(engine, sent) <= groups + DIGEST_LINES + votes_at_most

    with engine.begin() as connection:
        for table in (SlackMessageRow, VoteRow, CandidateRow):
            connection.execute(table.__table__.delete())
    many_candidates(engine, scale=10)
    bigger, sent_bigger = read_counting(engine, uow)
    assert bigger.total > 9 * digest.total
    assert len(sent_bigger) == 3
    assert rows_returned(engine, sent_bigger) <= groups + DIGEST_LINES + votes_at_most


def test_nothing_open_takes_one_query(engine: Engine, uow: Callable[[], UnitOfWork]) -> None:
    digest, sent = read_counting(engine, uow)

    assert digest.environments == ()
    assert digest.total == 0
    assert len(sent) == 1
