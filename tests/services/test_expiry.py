"""A candidate nobody decided on in time is marked expired, audited, and its card updated."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.domain.policy import Policy, VerdictKind
from bot.domain.promotion import CandidateState
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.services.expiry import expire_due
from bot.store.models import AuditRow
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier
from tests.conftest import NOW

CHANNEL = "C0ML00001"
TOKEN = "xoxb-expiry-test"
POLICY = Policy(approvals=2, approvers=frozenset({"U0SRE0001"}), expires_after=timedelta(hours=72))
notifier = SlackNotifier(lambda model: CHANNEL, lambda environment: POLICY)


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


@pytest.fixture
def posted(
    uow: Callable[[], UnitOfWork], web: WebClient, new_candidate: Callable[..., int]
) -> Callable[..., int]:
    """A candidate expiring 72 h after NOW, its card posted."""

    def make(version: str, kind: VerdictKind = VerdictKind.NEEDS_APPROVAL) -> int:
        candidate = new_candidate(version, kind=kind)
        with uow() as unit:
            unit.candidates.get(candidate).expires_at = NOW + timedelta(hours=72)
            notifier.card_changed(unit, candidate, NOW)
            unit.commit()
        deliver_due(uow, web, NOW)
        return candidate

    return make


def state_of(uow: Callable[[], UnitOfWork], candidate: int) -> CandidateState:
    with uow() as unit:
        return CandidateState(unit.candidates.get(candidate).state)


def test_a_stale_candidate_is_expired_its_card_updated_and_its_thread_told(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    posted: Callable[..., int],
) -> None:
    candidate = posted("7")
    [card] = slack.workspace.messages(CHANNEL)
    assert "Approve" in json.dumps(card.content.blocks)
    later = NOW + timedelta(hours=72, minutes=3)

    assert expire_due(uow, notifier, now=later) == [candidate]
    deliver_due(uow, web, later)

    assert state_of(uow, candidate) is CandidateState.EXPIRED
    [updated] = slack.workspace.messages(CHANNEL)  # updated in place, not posted again
    assert updated.ts == card.ts
    blocks = json.dumps(updated.content.blocks, ensure_ascii=False)
    assert "⌛ expired: no decision before 2026-11-30 09:00 UTC" in blocks
    assert '"actions"' not in blocks  # no buttons left to press
    [line] = slack.workspace.thread(CHANNEL, card.ts)
    assert line.text.startswith("⌛ Expired: no decision before 2026-11-30 09:00 UTC.")
    with uow() as unit:
        [audit] = unit.session.scalars(
            select(AuditRow).where(AuditRow.action == "candidate.expired")
        ).all()
        [*_, last] = unit.candidates.transitions(candidate)
    assert (audit.actor, audit.subject, audit.details["from"]) == (
        "gatekeeper",
        f"candidate:{candidate}",
        "pending",
    )
    assert (last.from_state, last.to_state, last.at) == ("pending", "expired", later)


def test_only_open_candidates_past_their_time_expire_and_only_once(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    posted: Callable[..., int],
    new_candidate: Callable[..., int],
) -> None:
    pending = posted("1")
    blocked = posted("2", VerdictKind.BLOCKED)
    approved = posted("3", VerdictKind.AUTO_APPROVE)
    never = new_candidate("4")  # its policy sets no expiry

    assert expire_due(uow, notifier, now=NOW + timedelta(hours=71)) == []
    later = NOW + timedelta(hours=72)
    assert expire_due(uow, notifier, now=later) == [pending, blocked]
    assert expire_due(uow, notifier, now=later + timedelta(minutes=5)) == []

    states = {c: state_of(uow, c) for c in (pending, blocked, approved, never)}
    assert states == {
        pending: CandidateState.EXPIRED,
        blocked: CandidateState.EXPIRED,
        approved: CandidateState.APPROVED,
        never: CandidateState.PENDING,
    }
    deliver_due(uow, web, later)
    lines = [
        m.text
        for card in slack.workspace.messages(CHANNEL)
        for m in slack.workspace.thread(CHANNEL, card.ts)
    ]
    assert len(lines) == 2
    assert all(line.startswith("⌛ Expired") for line in lines)
