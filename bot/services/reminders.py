"""Reminders: a direct message to each approver who could still approve a candidate that has
waited longer than its policy's ``remind_after``, once per such period.

User groups are expanded through ``Membership`` before the transaction (Slack may be slow); a
group Slack cannot list now is left out of this run and reminded on the next one. Each reminder
is keyed by candidate, person and period, so a run repeated (two schedulers, a retry) adds none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.approvals import Membership, is_user_group
from bot.domain.errors import GatekeeperError
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState
from bot.services.digests import DigestEntry, read_open
from bot.services.notify import Notifier
from bot.store.repositories import UnitOfWork

logger = logging.getLogger(__name__)

ACTOR = "gatekeeper"


@dataclass(frozen=True)
class Reminder:
    """One person to remind of one candidate, in one ``remind_after`` period of its age."""

    user: str
    #: 1 in the first period past ``remind_after``, 2 in the second, ...
    period: int
    candidate: DigestEntry

    @property
    def key(self) -> str:
        return f"remind:{self.candidate.id}:{self.user}:{self.period}"


def send_reminders(
    unit_of_work: Callable[[], UnitOfWork],
    notifier: Notifier,
    policy_for: Callable[[str], Policy],
    membership: Membership,
    *,
    now: datetime,
    workspace_url: str | None,
) -> list[Reminder]:
    """Queue every reminder due at ``now`` that was not queued before; return those queued."""
    with unit_of_work().reading() as uow:
        waiting = _waiting_long(
            read_open(uow.session, None, policy_for, now, _PENDING), policy_for, now
        )
    groups = {g for entry in waiting for g in entry.waiting_for if is_user_group(g)}
    members = _members(groups, membership)

    sent: list[Reminder] = []
    with unit_of_work() as uow:
        # Read again: votes cast and decisions made while Slack was asked count.
        fresh = _waiting_long(
            read_open(uow.session, None, policy_for, now, _PENDING), policy_for, now
        )
        for reminder in reminders_due(fresh, members, policy_for, now):
            if notifier.reminder(uow, reminder, now, workspace_url=workspace_url):
                uow.audit.append(
                    ACTOR,
                    "reminder.sent",
                    f"candidate:{reminder.candidate.id}",
                    {"to": reminder.user, "period": reminder.period},
                    at=now,
                )
                sent.append(reminder)
        uow.commit()
    return sent


_PENDING = frozenset({CandidateState.PENDING})


def _waiting_long(
    entries: Iterable[DigestEntry], policy_for: Callable[[str], Policy], now: datetime
) -> list[DigestEntry]:
    return [e for e in entries if _period(e, policy_for(e.target_env), now) >= 1]


def _period(entry: DigestEntry, policy: Policy, now: datetime) -> int:
    if policy.remind_after is None or not policy.remind_after:
        return 0
    return int((now - entry.created_at) / policy.remind_after)


def _members(groups: Collection[str], membership: Membership) -> dict[str, frozenset[str]]:
    members: dict[str, frozenset[str]] = {}
    for group in sorted(groups):
        try:
            members[group] = membership.members(group)
        except GatekeeperError as error:
            logger.warning("reminders skip user group %s this time: %s", group, error)
    return members


def reminders_due(
    entries: Iterable[DigestEntry],
    members: Mapping[str, frozenset[str]],
    policy_for: Callable[[str], Policy],
    now: datetime,
) -> list[Reminder]:
    """Who to remind of what: approvers (group members included) who may still approve."""
    due: list[Reminder] = []
    for entry in entries:
        policy = policy_for(entry.target_env)
        period = _period(entry, policy, now)
        if period < 1 or entry.missing_approvals == 0:
            continue
        excluded = set(entry.approvals)
        if not policy.self_approval:
            excluded |= {who for who in (entry.requester, entry.author) if who}
        people: set[str] = set()
        for principal in entry.waiting_for:
            people |= (
                members.get(principal, frozenset()) if is_user_group(principal) else {principal}
            )
        due.extend(Reminder(user, period, entry) for user in sorted(people - excluded))
    return due
