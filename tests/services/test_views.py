"""The read model a card is rendered from reflects the stored verdict, bundle and votes."""

from __future__ import annotations

from collections.abc import Callable

from bot.domain.approvals import Decision
from bot.domain.candidates import Candidate, parse_bundle
from bot.domain.gates import GateOutcome, parse_gate
from bot.domain.policy import Policy, VerdictKind, evaluate
from bot.domain.promotion import CandidateState
from bot.services.views import summarize
from bot.services.voting import cast_vote
from bot.store.repositories import UnitOfWork
from tests.conftest import NOW

DIGEST = "sha256:" + "ab" * 32
POLICY = Policy(
    gates=(parse_gate("accuracy >= champion - 0.005"), parse_gate("latency_p95_ms <= 120")),
    approvals=2,
    approvers=frozenset({"U0LEAD001", "U0LEAD002"}),
)


class NoGroups:
    def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


def test_summary_of_a_stored_candidate_with_a_vote(uow: Callable[[], UnitOfWork]) -> None:
    bundle = parse_bundle(
        {
            "gatekeeper.image.serving": f"127.0.0.1:5000/stg/churn-serving@{DIGEST}",
            "gatekeeper.snapshot.train": "file:///srv/stg/train.parquet#sha256=" + "cd" * 32,
            "gatekeeper.pipeline": "pipeline/churn.yaml",
        }
    )
    candidate = Candidate(
        "churn-classifier", "7", "staging", "production",
        {"accuracy": 0.931, "latency_p95_ms": 131.0}, bundle, requester="U0DS00001",
    )  # fmt: skip
    champion = {"accuracy": 0.925, "latency_p95_ms": 118.0}
    verdict = evaluate(POLICY, candidate, champion, NOW)
    with uow() as unit:
        row = unit.candidates.add(
            candidate, verdict, actor="U0DS00001", now=NOW,
            champion_version="5", champion_metrics=champion,
        )  # fmt: skip
        unit.commit()

    with uow() as unit:
        before = summarize(unit.candidates.get(row.id), unit.votes.for_candidate(row.id), POLICY)
    assert before.state is CandidateState.BLOCKED
    assert before.verdict is VerdictKind.BLOCKED
    assert [(g.gate, g.outcome) for g in before.gates] == [
        ("accuracy >= champion - 0.005", GateOutcome.PASSED),
        ("latency_p95_ms <= 120", GateOutcome.FAILED),
    ]
    assert before.reasons == ("latency_p95_ms <= 120: latency_p95_ms 131 fails against 120",)
    assert before.bundle == bundle
    assert (before.champion_version, before.champion_metrics) == ("5", champion)
    assert (before.approvals, before.missing_approvals, before.rejection) == ((), 2, None)


def test_summary_counts_votes_so_far(uow: Callable[[], UnitOfWork]) -> None:
    candidate = Candidate(
        "churn-classifier", "8", "staging", "production", {"accuracy": 0.95,
        "latency_p95_ms": 100.0}, parse_bundle({}), requester="U0DS00001",
    )  # fmt: skip
    verdict = evaluate(POLICY, candidate, None, NOW)
    with uow() as unit:
        row = unit.candidates.add(candidate, verdict, actor="U0DS00001", now=NOW)
        unit.commit()
    cast_vote(uow, lambda _: POLICY, NoGroups(), row.id, "U0LEAD001", Decision.APPROVE, NOW)

    with uow() as unit:
        summary = summarize(unit.candidates.get(row.id), unit.votes.for_candidate(row.id), POLICY)
    assert summary.state is CandidateState.PENDING
    assert (summary.approvals, summary.missing_approvals) == (("U0LEAD001",), 1)
    assert summary.champion_version is None
