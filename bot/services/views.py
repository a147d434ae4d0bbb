"""What a person sees of a candidate: a read model built from the store, rendered by handlers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.approvals import Decision, Vote
from bot.domain.candidates import Bundle
from bot.domain.gates import GateOutcome
from bot.domain.policy import Policy, VerdictKind
from bot.domain.promotion import CandidateState
from bot.store.codec import bundle_from_json
from bot.store.models import CandidateRow


@dataclass(frozen=True)
class GateLine:
    gate: str
    outcome: GateOutcome
    explanation: str

    @property
    def passed(self) -> bool:
        return self.outcome is GateOutcome.PASSED


@dataclass(frozen=True)
class CandidateSummary:
    id: int
    model: str
    version: str
    source_env: str
    target_env: str
    state: CandidateState
    requester: str | None
    author: str | None
    metrics: Mapping[str, float]
    champion_version: str | None
    champion_metrics: Mapping[str, float] | None
    verdict: VerdictKind
    reasons: tuple[str, ...]
    gates: tuple[GateLine, ...]
    bundle: Bundle
    approvals: tuple[str, ...]
    approvals_required: int
    rejection: Vote | None
    #: Who may lift a block; empty when nobody can.
    override_by: frozenset[str]
    created_at: datetime
    expires_at: datetime | None
    #: The state's reason: who approved, why it was rejected, what failed.
    reason: str | None = None

    @property
    def missing_approvals(self) -> int:
        return max(self.approvals_required - len(self.approvals), 0)


def summarize(row: CandidateRow, votes: Sequence[Vote], policy: Policy) -> CandidateSummary:
    """The candidate as its card shows it: verdict, gates, bundle and votes so far."""
    verdict = row.verdict
    approvals = tuple(dict.fromkeys(v.voter for v in votes if v.decision is Decision.APPROVE))
    return CandidateSummary(
        id=row.id,
        model=row.model,
        version=row.version,
        source_env=row.source_env,
        target_env=row.target_env,
        state=CandidateState(row.state),
        requester=row.requester,
        author=row.author,
        metrics=row.metrics,
        champion_version=row.champion_version,
        champion_metrics=row.champion_metrics,
        verdict=VerdictKind(verdict["kind"]),
        reasons=tuple(verdict.get("reasons", ())),
        gates=tuple(
            GateLine(g["gate"], GateOutcome(g["outcome"]), g["explanation"])
            for g in verdict.get("gates", ())
        ),
        bundle=bundle_from_json(row.bundle),
        approvals=approvals,
        approvals_required=policy.approvals,
        rejection=next((v for v in votes if v.decision is Decision.REJECT), None),
        override_by=frozenset(verdict.get("override_by", ())),
        created_at=row.created_at,
        expires_at=row.expires_at,
        reason=row.reason,
    )
