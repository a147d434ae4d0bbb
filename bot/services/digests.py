"""The scheduled digest: what waits in a channel, counted in full, the oldest shown.

A digest covers the models whose cards are posted in its channel; a channel that hosts no
model's cards (a leads' overview channel, say) gets every model's candidates. However much
waits, it reads in three queries and builds only the lines it shows: the database counts
every open candidate by environment and state, then hands over the shown ones and their votes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, null, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.domain.approvals import Decision, is_user_group
from bot.domain.policy import Policy
from bot.domain.promotion import OPEN_STATES, CandidateState
from bot.services.notify import Notifier
from bot.store.models import CandidateRow, SlackMessageRow, VoteRow
from bot.store.repositories import UnitOfWork

#: Candidates shown one line each; a reader scans a few dozen, /promote list has the rest.
DIGEST_LINES = 40
#: Environments whose candidates are shown; the others are only counted.
ENVIRONMENTS_SHOWN = 8


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
class EnvironmentDigest:
    """What waits to enter one environment: every candidate counted, the oldest shown."""

    name: str
    pending: int
    blocked: int
    #: The oldest (by creation, then id), as many as ``lines_per_environment`` gives it.
    shown: tuple[DigestEntry, ...]

    @property
    def total(self) -> int:
        return self.pending + self.blocked

    @property
    def hidden(self) -> int:
        return self.total - len(self.shown)


@dataclass(frozen=True)
class Digest:
    channel: str
    at: datetime
    #: Every environment something waits for, in promotion order.
    environments: tuple[EnvironmentDigest, ...]

    @property
    def total(self) -> int:
        return sum(environment.total for environment in self.environments)

    @property
    def pending(self) -> int:
        return sum(environment.pending for environment in self.environments)

    @property
    def blocked(self) -> int:
        return sum(environment.blocked for environment in self.environments)


def models_in(channel: str, channels: Mapping[str, str]) -> frozenset[str] | None:
    """The models whose cards go to ``channel``; None (every model) when none do."""
    models = frozenset(model for model, posted_in in channels.items() if posted_in == channel)
    return models or None


def lines_per_environment(totals: Sequence[int]) -> list[int]:
    """Candidates shown per environment, given how many wait in each (in digest order).

    ``DIGEST_LINES`` handed out one each in turn while any are left, so no environment is
    crowded out by another's thousands; none past the first ``ENVIRONMENTS_SHOWN``.
    """
    quotas = [0] * len(totals)
    shown = totals[:ENVIRONMENTS_SHOWN]
    budget = DIGEST_LINES
    while budget > 0 and any(q < s for q, s in zip(quotas, shown, strict=False)):
        for index, size in enumerate(shown):
            if budget > 0 and quotas[index] < size:
                quotas[index] += 1
                budget -= 1
    return quotas


def read_digest(
    session: Session,
    channel: str,
    models: Collection[str] | None,
    policy_for: Callable[[str], Policy],
    environment_order: Sequence[str],
    now: datetime,
) -> Digest:
    """The digest for ``channel``: open candidates of ``models`` (or all), by environment.

    Three queries whatever the number of candidates: counts by environment and state; the
    shown candidates with their cards; their votes. Rows are read for the shown ones only.
    """
    connection = session.connection()
    open_now = _open(models, OPEN_STATES, now)
    counts: dict[str, dict[str, int]] = {}
    for target, state, number in connection.execute(
        select(CandidateRow.target_env, CandidateRow.state, func.count())
        .where(*open_now)
        .group_by(CandidateRow.target_env, CandidateRow.state)
    ):
        counts.setdefault(target, {})[state] = number
    order = {env: index for index, env in enumerate(environment_order)}
    names = sorted(counts, key=lambda env: (order.get(env, len(order)), env))
    totals = [sum(counts[name].values()) for name in names]
    quotas = {name: q for name, q in zip(names, lines_per_environment(totals), strict=True) if q}
    shown: dict[str, list[DigestEntry]] = {}
    if quotas:
        for entry in _entries(connection, _oldest(open_now, quotas), policy_for):
            shown.setdefault(entry.target_env, []).append(entry)
    pending, blocked = CandidateState.PENDING.value, CandidateState.BLOCKED.value
    return Digest(
        channel,
        now,
        tuple(
            EnvironmentDigest(
                name,
                counts[name].get(pending, 0),
                counts[name].get(blocked, 0),
                tuple(shown.get(name, ())),
            )
            for name in names
        ),
    )


def read_open(
    session: Session,
    models: Collection[str] | None,
    policy_for: Callable[[str], Policy],
    now: datetime,
    states: Collection[CandidateState] = OPEN_STATES,
) -> list[DigestEntry]:
    """Candidates in ``states`` not yet past their expiry, oldest first, with votes and threads.

    Two queries whatever the number of candidates: candidates with their cards, their votes.
    They run on the session's connection without the ORM: tens of thousands of rows, few columns.
    """
    open_now = _open(models, states, now)
    candidates = _with_cards(select(*_columns()).where(*open_now))
    ids = select(CandidateRow.id).where(*open_now).scalar_subquery()
    return _entries(session.connection(), candidates, policy_for, ids)


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


def _columns() -> tuple[Any, ...]:
    blocked = CandidateState.BLOCKED.value
    return (
        CandidateRow.id,
        CandidateRow.model,
        CandidateRow.version,
        CandidateRow.source_env,
        CandidateRow.target_env,
        CandidateRow.state,
        CandidateRow.requester,
        CandidateRow.author,
        # Only a blocked candidate's verdict is read: why, and who may override.
        case((CandidateRow.state == blocked, CandidateRow.verdict), else_=null()).label("verdict"),
        CandidateRow.reason,
        CandidateRow.created_at,
        CandidateRow.expires_at,
        SlackMessageRow.channel,
        SlackMessageRow.ts,
    )


def _with_cards(candidates: Select[Any]) -> Select[Any]:
    """``candidates`` with their card's channel and ts (a candidate has at most one card)."""
    card = (SlackMessageRow.candidate_id == CandidateRow.id) & (SlackMessageRow.kind == "card")
    return candidates.outerjoin(SlackMessageRow, card).order_by(
        CandidateRow.created_at, CandidateRow.id
    )


def _oldest(open_now: list[Any], quotas: Mapping[str, int]) -> Select[Any]:
    """The oldest ``quotas[env]`` open candidates of each environment, with their cards.

    Ranked on narrow rows (id, environment); only the chosen ones are read in full.
    """
    ranked = (
        select(
            CandidateRow.id,
            CandidateRow.target_env,
            func.row_number()
            .over(
                partition_by=CandidateRow.target_env,
                order_by=(CandidateRow.created_at, CandidateRow.id),
            )
            .label("place"),
        )
        .where(*open_now, CandidateRow.target_env.in_(sorted(quotas)))
        .subquery()
    )
    limit = case(dict(quotas), value=ranked.c.target_env, else_=0)
    return _with_cards(
        select(*_columns())
        .join(ranked, ranked.c.id == CandidateRow.id)
        .where(ranked.c.place <= limit)
    )


def _entries(
    connection: Connection,
    candidates: Select[Any],
    policy_for: Callable[[str], Policy],
    ids: Any = None,
) -> list[DigestEntry]:
    """Entries for ``candidates``, their votes read in one more query.

    Votes are asked for by the candidates' ``ids`` subquery when given (tens of thousands of ids
    are never sent as parameters), else by the ids of the rows read (a few dozen).
    """
    rows = connection.execute(candidates).all()
    if not rows:
        return []
    voters: dict[int, list[tuple[str, str]]] = {}
    for candidate_id, voter, decision in connection.execute(
        select(VoteRow.candidate_id, VoteRow.voter, VoteRow.decision)
        .where(VoteRow.candidate_id.in_([row[0] for row in rows] if ids is None else ids))
        .order_by(VoteRow.id)
    ):
        voters.setdefault(candidate_id, []).append((voter, decision))
    approvers: dict[str, _Approvers] = {}
    entries: list[DigestEntry] = []
    for row in rows:
        target = row[4]
        found = approvers.get(target)
        if found is None:
            found = approvers[target] = _Approvers(policy_for(target))
        entries.append(_entry(row, found, voters.get(row[0], ())))
    return entries


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


def _entry(row: Any, approvers: _Approvers, votes: Sequence[tuple[str, str]]) -> DigestEntry:
    # Unpacked once: reading a Row's fields by name costs more than the rest of this together.
    (id_, model, version, source, target, state_value, requester, author, verdict, reason,
     created_at, expires_at, card_channel, card_ts) = row  # fmt: skip
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
        thread=ThreadRef(card_channel, card_ts) if card_ts is not None else None,
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
