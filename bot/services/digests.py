"""The scheduled digest: what waits in a channel, read in three queries however much waits.

A digest covers the models whose cards are posted in its channel; a channel that hosts no
model's cards (a leads' overview channel, say) gets every model's candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, null, select
from sqlalchemy.orm import Session

from bot.domain.approvals import Decision, is_user_group
from bot.domain.policy import Policy
from bot.domain.promotion import OPEN_STATES, CandidateState
from bot.services.notify import Notifier
from bot.store.models import CandidateRow, SlackMessageRow, VoteRow
from bot.store.repositories import UnitOfWork


@dataclass(frozen=True)
class ThreadRef:
    """Where a candidate's card (and so its thread) was posted."""

    channel: str
    ts: str


@dataclass(frozen=True)
class DigestEntry:
    """One open candidate as the digest shows it."""

    id: int
    model: str
    version: str
    source_env: str
    target_env: str
    state: CandidateState
    requester: str | None
    author: str | None
    created_at: datetime
    expires_at: datetime | None
    approvals: tuple[str, ...]
    approvals_required: int
    #: Approvers (users and user groups) who may still approve: not voted, not self-approving.
    waiting_for: tuple[str, ...]
    #: Why it is blocked, most important first; empty when pending.
    blocked_by: tuple[str, ...]
    override_by: frozenset[str]
    thread: ThreadRef | None

    @property
    def missing_approvals(self) -> int:
        return max(self.approvals_required - len(self.approvals), 0)


@dataclass(frozen=True)
class Digest:
    channel: str
    at: datetime
    #: Open candidates by target environment (promotion order), oldest first in each.
    environments: tuple[tuple[str, tuple[DigestEntry, ...]], ...]

    @property
    def total(self) -> int:
        return sum(len(entries) for _, entries in self.environments)

    def count(self, state: CandidateState) -> int:
        return sum(e.state is state for _, entries in self.environments for e in entries)


def models_in(channel: str, channels: Mapping[str, str]) -> frozenset[str] | None:
    """The models whose cards go to ``channel``; None (every model) when none do."""
    models = frozenset(model for model, posted_in in channels.items() if posted_in == channel)
    return models or None


def read_digest(
    session: Session,
    channel: str,
    models: Collection[str] | None,
    policy_for: Callable[[str], Policy],
    environment_order: Sequence[str],
    now: datetime,
) -> Digest:
    """The digest for ``channel``: open candidates of ``models`` (or all), by environment."""
    grouped: dict[str, list[DigestEntry]] = {}
    for entry in read_open(session, models, policy_for, now):
        grouped.setdefault(entry.target_env, []).append(entry)
    order = {env: index for index, env in enumerate(environment_order)}
    environments = sorted(grouped, key=lambda env: (order.get(env, len(order)), env))
    return Digest(channel, now, tuple((env, tuple(grouped[env])) for env in environments))


def read_open(
    session: Session,
    models: Collection[str] | None,
    policy_for: Callable[[str], Policy],
    now: datetime,
    states: Collection[CandidateState] = OPEN_STATES,
) -> list[DigestEntry]:
    """Candidates in ``states`` not yet past their expiry, oldest first, with votes and threads.

    Three queries whatever the number of candidates: candidates, their votes, their cards. They
    run on the session's connection without the ORM: tens of thousands of rows, few columns.
    """
    connection = session.connection()
    open_now = _open(models, states, now)
    blocked = CandidateState.BLOCKED.value
    candidates = connection.execute(
        select(
            CandidateRow.id,
            CandidateRow.model,
            CandidateRow.version,
            CandidateRow.source_env,
            CandidateRow.target_env,
            CandidateRow.state,
            CandidateRow.requester,
            CandidateRow.author,
            # Only a blocked candidate's verdict is read: why, and who may override.
            case((CandidateRow.state == blocked, CandidateRow.verdict), else_=null()).label(
                "verdict"
            ),
            CandidateRow.reason,
            CandidateRow.created_at,
            CandidateRow.expires_at,
        )
        .where(*open_now)
        .order_by(CandidateRow.created_at, CandidateRow.id)
    ).all()
    ids = select(CandidateRow.id).where(*open_now).scalar_subquery()
    voters: dict[int, list[tuple[str, str]]] = {}
    for candidate_id, voter, decision in connection.execute(
        select(VoteRow.candidate_id, VoteRow.voter, VoteRow.decision)
        .where(VoteRow.candidate_id.in_(ids))
        .order_by(VoteRow.id)
    ):
        voters.setdefault(candidate_id, []).append((voter, decision))
    threads = {
        candidate_id: ThreadRef(card_channel, ts)
        for candidate_id, card_channel, ts in connection.execute(
            select(SlackMessageRow.candidate_id, SlackMessageRow.channel, SlackMessageRow.ts).where(
                SlackMessageRow.kind == "card", SlackMessageRow.candidate_id.in_(ids)
            )
        )
    }
    approvers: dict[str, _Approvers] = {}
    entries: list[DigestEntry] = []
    for row in candidates:
        target = row[4]
        found = approvers.get(target)
        if found is None:
            found = approvers[target] = _Approvers(policy_for(target))
        entries.append(_entry(row, found, voters.get(row[0], ()), threads.get(row[0])))
    return entries


def _open(
    models: Collection[str] | None, states: Collection[CandidateState], now: datetime
) -> list[Any]:
    conditions: list[Any] = [
        CandidateRow.state.in_(sorted(s.value for s in states)),
        (CandidateRow.expires_at.is_(None)) | (CandidateRow.expires_at > now),
    ]
    if models is not None:
        conditions.append(CandidateRow.model.in_(sorted(models)))
    return conditions


class _Approvers:
    """A policy's approvers, sorted once for every candidate judged by it."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.all = tuple(sorted(policy.approvers))
        self.users = frozenset(a for a in self.all if not is_user_group(a))

    def still(
        self, voted: Sequence[str], requester: str | None, author: str | None
    ) -> tuple[str, ...]:
        """User groups always (a member may still approve), users unless they voted or would
        approve their own promotion."""
        excluded = set(voted)
        if not self.policy.self_approval:
            excluded.update(who for who in (requester, author) if who)
        if excluded.isdisjoint(self.users):
            return self.all
        return tuple(a for a in self.all if a not in excluded or is_user_group(a))


def _entry(
    row: Any, approvers: _Approvers, votes: Sequence[tuple[str, str]], thread: ThreadRef | None
) -> DigestEntry:
    # Unpacked once: reading a Row's fields by name costs more than the rest of this together.
    (id_, model, version, source, target, state_value, requester, author, verdict, reason,
     created_at, expires_at) = row  # fmt: skip
    state = CandidateState(state_value)
    approve = Decision.APPROVE.value
    approvals = tuple(dict.fromkeys(v for v, d in votes if d == approve)) if votes else ()
    blocked_by: tuple[str, ...] = ()
    override_by: frozenset[str] = frozenset()
    if verdict is not None:  # blocked
        reasons = tuple(verdict.get("reasons", ()))
        blocked_by = (reason, *reasons) if reason else reasons
        override_by = frozenset(verdict.get("override_by", ()))
    return DigestEntry(
        id=id_,
        model=model,
        version=version,
        source_env=source,
        target_env=target,
        state=state,
        requester=requester,
        author=author,
        created_at=created_at,
        expires_at=expires_at,
        approvals=approvals,
        approvals_required=approvers.policy.approvals,
        waiting_for=approvers.still([v for v, _ in votes] if votes else (), requester, author),
        blocked_by=blocked_by,
        override_by=override_by,
        thread=thread,
    )


def post_digest(
    unit_of_work: Callable[[], UnitOfWork],
    notifier: Notifier,
    policy_for: Callable[[str], Policy],
    channel: str,
    models: Collection[str] | None,
    environment_order: Sequence[str],
    *,
    now: datetime,
    key: str,
    workspace_url: str | None,
) -> Digest:
    """Queue the digest for ``channel``; a second run with the same ``key`` posts nothing more."""
    with unit_of_work() as uow:
        digest = read_digest(uow.session, channel, models, policy_for, environment_order, now)
        notifier.digest(uow, digest, now, key=key, workspace_url=workspace_url)
        uow.commit()
    return digest
