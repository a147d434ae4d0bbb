"""Reminders reach exactly the approvers who could still approve, once per remind_after period."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.adapters.slack import SlackMembership
from bot.domain.approvals import Decision, Vote
from bot.domain.policy import Policy, VerdictKind
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.services.reminders import Reminder, send_reminders
from bot.store.models import AuditRow
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier
from tests.conftest import NOW

CHANNEL = "C0ML00001"
TOKEN = "xoxb-reminder-test"
LEADS, LEAD, LEAD2, SRE = "S0MLLEADS", "U0LEAD001", "U0LEAD002", "U0SRE0001"
REQUESTER, OUTSIDER = "U0REQUEST", "U0OUTSIDE"
PEOPLE = (LEAD, LEAD2, SRE, REQUESTER, OUTSIDER)
POLICIES = {
    # The requester is an approver too, but may not approve their own request.
    "production": Policy(
        approvals=2, approvers=frozenset({LEADS, SRE, REQUESTER}), remind_after=timedelta(hours=24)
    ),
    "staging": Policy(approvals=1, approvers=frozenset({SRE})),  # no reminders
}


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token=TOKEN) as emulator:
        for user in PEOPLE:
            emulator.workspace.add_user(user, user.lower())
        emulator.workspace.add_usergroup(LEADS, "ml-leads", [LEAD, LEAD2])
        emulator.workspace.add_channel(CHANNEL, "ml-models")
        yield emulator


@pytest.fixture
def web(slack: SlackEmulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=slack.api_url)


@pytest.fixture
def remind(uow: Callable[[], UnitOfWork], web: WebClient) -> Callable[[datetime], list[Reminder]]:
    notifier = SlackNotifier(lambda model: CHANNEL, POLICIES.__getitem__)
    membership = SlackMembership(web)

    def run(now: datetime) -> list[Reminder]:
        sent = send_reminders(
            uow, notifier, POLICIES.__getitem__, membership, now=now,
            workspace_url=web.auth_test()["url"],
        )  # fmt: skip
        deliver_due(uow, web, now)
        return sent

    return run


def direct_messages(slack: SlackEmulator) -> dict[str, list[str]]:
    """Each person's direct messages from the app, by user ID."""
    found: dict[str, list[str]] = {}
    for user in PEOPLE:
        channel = slack.workspace.channel("D" + user[1:])
        if channel is not None:
            found[user] = [m.text for m in slack.workspace.messages(channel.id)]
    return {user: texts for user, texts in found.items() if texts}


def test_the_approvers_who_have_not_voted_are_reminded_and_nobody_else(
    slack: SlackEmulator,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    remind: Callable[[datetime], list[Reminder]],
) -> None:
    candidate = new_candidate("7", requester=REQUESTER)
    with uow() as unit:
        unit.votes.add(candidate, Vote(LEAD, Decision.APPROVE), NOW)
        unit.commit()

    sent = remind(NOW + timedelta(hours=25))

    assert sorted(r.user for r in sent) == [LEAD2, SRE]
    expected = "Reminder: churn-classifier v7 (staging → production) waits for your approval"
    assert direct_messages(slack) == {LEAD2: [expected], SRE: [expected]}
    with uow() as unit:
        audit = unit.session.scalars(
            select(AuditRow).where(AuditRow.action == "reminder.sent").order_by(AuditRow.seq)
        ).all()
    assert sorted((row.subject, row.details["to"]) for row in audit) == [
        (f"candidate:{candidate}", LEAD2),
        (f"candidate:{candidate}", SRE),
    ]


def test_once_per_period_however_often_the_job_runs(
    slack: SlackEmulator,
    new_candidate: Callable[..., int],
    remind: Callable[[datetime], list[Reminder]],
) -> None:
    new_candidate("7")

    assert remind(NOW + timedelta(hours=23)) == []  # not waited long enough
    assert len(remind(NOW + timedelta(hours=24))) == 3
    assert remind(NOW + timedelta(hours=24, minutes=1)) == []
    assert remind(NOW + timedelta(hours=47)) == []
    second = remind(NOW + timedelta(hours=48))

    assert sorted(r.user for r in second) == [LEAD, LEAD2, SRE]
    assert {r.period for r in second} == {2}
    assert {user: len(texts) for user, texts in direct_messages(slack).items()} == {
        LEAD: 2,
        LEAD2: 2,
        SRE: 2,
    }


def test_decided_blocked_and_unreminded_candidates_remind_nobody(
    slack: SlackEmulator,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    remind: Callable[[datetime], list[Reminder]],
) -> None:
    new_candidate("1", kind=VerdictKind.AUTO_APPROVE)
    new_candidate("2", kind=VerdictKind.BLOCKED, override_by=frozenset({LEADS}))
    new_candidate("3", target_env="staging")
    enough = new_candidate("4")
    with uow() as unit:
        unit.votes.add(enough, Vote(LEAD, Decision.APPROVE), NOW)
        unit.votes.add(enough, Vote(SRE, Decision.APPROVE), NOW)  # approvals complete
        unit.commit()

    assert remind(NOW + timedelta(days=3)) == []
    assert direct_messages(slack) == {}


def test_a_reminder_links_the_candidates_card(
    slack: SlackEmulator,
    web: WebClient,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    remind: Callable[[datetime], list[Reminder]],
) -> None:
    candidate = new_candidate("7")
    with uow() as unit:
        unit.slack_messages.remember(candidate, "card", CHANNEL, "1764230400.000100")
        unit.commit()

    remind(NOW + timedelta(hours=24))

    [message] = slack.workspace.messages("D" + SRE[1:])
    blocks = str(message.content.blocks)
    assert f"{slack.api_url.removesuffix('api/')}archives/{CHANNEL}/p1764230400000100" in blocks
