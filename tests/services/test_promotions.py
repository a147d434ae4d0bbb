"""An approved candidate's promotion as Slack sees it: steps in the thread, card, rollback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.domain.candidates import Candidate, parse_bundle
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState, PromotionStep, StepStatus
from bot.emulator import SlackEmulator
from bot.services.candidates import Champion, propose
from bot.services.delivery import deliver_due
from bot.services.promotions import (
    Progress,
    Promoted,
    Promotions,
    Report,
    RollbackRefused,
    StepFailed,
)
from bot.store.repositories import UnitOfWork
from handlers.blocks import Action
from handlers.notifier import SlackNotifier
from tests.conftest import NOW

CHANNEL = "C0ML00001"
SRE = "U0SRE0001"
LEAD = "U0LEAD001"
TOKEN = "xoxb-promotions-test"
POLICY = Policy(approvals=0, approvers=frozenset({LEAD}), rollback_by=frozenset({SRE}))


class FakeEngine:
    """Our own port's fake: reports each step as a real engine would, moving nothing."""

    def __init__(self, fail_at: PromotionStep | None = None) -> None:
        self.fail_at = fail_at
        self.rolled_back: list[tuple[str, str, str]] = []

    def promote(self, candidate_id: int, report: Report) -> Promoted:
        for step in PromotionStep:
            report(Progress(step, StepStatus.RUNNING))
            if step is self.fail_at:
                report(Progress(step, StepStatus.FAILED, 0.2, "registry answered 503"))
                raise StepFailed(step, "registry answered 503 three times")
            report(Progress(step, StepStatus.SUCCEEDED, 0.1, f"{step.value} done"))
        return Promoted("12", {"serving": "127.0.0.1:5000/prod/churn@sha256:" + "ab" * 32})

    def roll_back(self, model: str, environment: str, to_version: str, report: Report) -> None:
        report(
            Progress(PromotionStep.CUT_OVER, StepStatus.SUCCEEDED, 0.05, f"alias → v{to_version}")
        )
        self.rolled_back.append((model, environment, to_version))


class NoGroups:
    def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


def _run(uow: Callable[[], UnitOfWork], engine: FakeEngine) -> tuple[Promotions, int]:
    notifier = SlackNotifier(lambda _: CHANNEL, lambda _: POLICY)
    clock = iter(NOW + timedelta(seconds=n) for n in range(10_000))
    promotions = Promotions(
        uow, notifier, engine, lambda _: POLICY, NoGroups(), lambda: next(clock)
    )
    with uow() as unit:  # v5 became the champion in production before this candidate
        unit.champions.record("churn-classifier", "production", "5", cause="promotion",
                              actor=SRE, now=NOW)  # fmt: skip
        unit.commit()
    candidate = Candidate("churn-classifier", "7", "staging", "production", {"accuracy": 0.9},
                          parse_bundle({}), requester=LEAD)  # fmt: skip
    candidate_id = propose(uow, lambda _: POLICY, notifier, candidate, Champion("5", {}),
                           actor=LEAD, now=NOW)  # fmt: skip
    return promotions, candidate_id


def _thread(slack: SlackEmulator, uow: Callable[[], UnitOfWork]) -> list[str]:
    deliver_due(uow, WebClient(token=TOKEN, base_url=slack.api_url), NOW + timedelta(days=1))
    (card,) = slack.workspace.messages(CHANNEL)
    return [m.text for m in slack.workspace.thread(CHANNEL, card.ts)]


def test_each_step_is_announced_and_the_card_offers_rollback(
    slack: SlackEmulator, uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    promotions, candidate_id = _run(uow, FakeEngine())
    assert promotions.promote(candidate_id) is CandidateState.PROMOTED

    thread = _thread(slack, uow)
    assert len(thread) == len(PromotionStep) + 1
    assert all("✅" in line for line in thread[:-1])
    assert "is the champion in" in thread[-1]
    (card,) = slack.workspace.messages(CHANNEL)
    assert Action.ROLLBACK in str(card.content.blocks)
    with uow() as unit:
        assert unit.champions.current("churn-classifier", "production").version == "12"  # type: ignore[union-attr]
    with engine.connect() as connection:
        steps = connection.execute(sa.text("SELECT step, status, attempts FROM promotion_steps"))
        assert {(s, st, a) for s, st, a in steps} == {
            (step.value, "succeeded", 1) for step in PromotionStep
        }


def test_a_failed_step_is_said_in_the_thread_and_the_candidate_fails(
    slack: SlackEmulator, uow: Callable[[], UnitOfWork]
) -> None:
    promotions, candidate_id = _run(uow, FakeEngine(fail_at=PromotionStep.COPY_IMAGES))
    assert promotions.promote(candidate_id) is CandidateState.FAILED
    thread = _thread(slack, uow)
    assert "❌" in thread[-2]
    assert "failed at" in thread[-1]
    assert "registry answered 503" in thread[-1]
    with uow() as unit:
        assert unit.champions.current("churn-classifier", "production").version == "5"  # type: ignore[union-attr]


@pytest.mark.parametrize("fail_at", [None, PromotionStep.COPY_IMAGES])
def test_the_last_word_names_the_champion_as_it_is_not_as_it_was_at_proposal(
    slack: SlackEmulator, uow: Callable[[], UnitOfWork], fail_at: PromotionStep | None
) -> None:
    promotions, candidate_id = _run(uow, FakeEngine(fail_at=fail_at))
    with uow() as unit:  # another candidate, v9, was promoted while this one waited
        unit.champions.record("churn-classifier", "production", "9", cause="promotion",
                              actor=SRE, now=NOW)  # fmt: skip
        unit.commit()

    promotions.promote(candidate_id)

    last = _thread(slack, uow)[-1]
    if fail_at is None:
        assert "is the champion in" in last
        assert "(was v9)" in last
    else:
        assert "v9 is still the champion" in last
    assert "v5" not in last


def test_rollback_is_for_the_named_people_and_returns_the_previous_champion(
    slack: SlackEmulator, uow: Callable[[], UnitOfWork], engine: Engine
) -> None:
    fake = FakeEngine()
    promotions, candidate_id = _run(uow, fake)
    promotions.promote(candidate_id)

    with pytest.raises(RollbackRefused, match="may roll back"):
        promotions.roll_back(candidate_id, LEAD)
    assert fake.rolled_back == []

    assert promotions.roll_back_environment("churn-classifier", "production", SRE) == "5"
    assert fake.rolled_back == [("churn-classifier", "production", "5")]
    assert "rolled back" in _thread(slack, uow)[-1]
    with uow() as unit:
        assert unit.candidates.get(candidate_id).state == CandidateState.ROLLED_BACK
        assert unit.champions.current("churn-classifier", "production").version == "5"  # type: ignore[union-attr]
    with pytest.raises(RollbackRefused, match="not promoted"):
        promotions.roll_back(candidate_id, SRE)
    with engine.connect() as connection:
        refused = connection.scalar(
            sa.text("SELECT count(*) FROM audit_log WHERE action = 'rollback.refused'")
        )
    assert refused == 1
