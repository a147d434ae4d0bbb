"""Pins the verdict a policy gives a candidate: gates, bundle problems, champions and freezes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.candidates import Bundle, Candidate
from bot.domain.gates import Gate, parse_gate
from bot.domain.policy import (
    DateFreeze,
    NoChampion,
    OnFail,
    Policy,
    Verdict,
    VerdictKind,
    WeeklyFreeze,
    evaluate,
)
from bot.domain.promotion import CandidateState

NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # a Wednesday
BERLIN = ZoneInfo("Europe/Berlin")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

GOOD = {"accuracy": 0.93, "latency_p95_ms": 100.0}
CHAMPION = {"accuracy": 0.92, "latency_p95_ms": 100.0}


def gates(*expressions: str) -> tuple[Gate, ...]:
    return tuple(parse_gate(e) for e in expressions)


def candidate(metrics: Mapping[str, float] = GOOD, bundle: Bundle | None = None) -> Candidate:
    return Candidate(
        model="churn-classifier",
        version="7",
        source_env="staging",
        target_env="production",
        metrics=metrics,
        bundle=bundle or Bundle(),
        requester="U0REQ0001",
    )


STAGING = gates("accuracy >= 0.90", "accuracy >= champion - 0.005")
PRODUCTION = gates("accuracy >= champion", "latency_p95_ms <= champion * 1.10")

# policy, candidate metrics, champion metrics, verdict kind, fragments the reasons must contain
VERDICTS = [
    pytest.param(
        Policy(gates=STAGING, approvals=0),
        GOOD,
        CHAMPION,
        VerdictKind.AUTO_APPROVE,
        ["all 2 gates pass", "the policy approves"],
        id="all-pass-auto-approve",
    ),
    pytest.param(
        Policy(gates=PRODUCTION, approvals=2),
        GOOD,
        CHAMPION,
        VerdictKind.NEEDS_APPROVAL,
        ["all 2 gates pass", "2 approvals needed"],
        id="all-pass-two-approvals",
    ),
    pytest.param(
        Policy(gates=PRODUCTION, approvals=1),
        GOOD,
        CHAMPION,
        VerdictKind.NEEDS_APPROVAL,
        ["1 approval needed"],
        id="all-pass-one-approval",
    ),
    pytest.param(
        Policy(approvals=0),
        GOOD,
        None,
        VerdictKind.AUTO_APPROVE,
        ["no gates applied"],
        id="no-gates-auto-approve",
    ),
    pytest.param(
        Policy(gates=STAGING, approvals=0),
        {"accuracy": 0.89},
        CHAMPION,
        VerdictKind.BLOCKED,
        ["accuracy >= 0.90: accuracy 0.89 fails against 0.9"],
        id="failing-gate",
    ),
    pytest.param(
        Policy(gates=PRODUCTION, approvals=0),
        {"accuracy": 0.93},
        CHAMPION,
        VerdictKind.BLOCKED,
        ["latency_p95_ms <= champion * 1.10: the candidate has no metric 'latency_p95_ms'"],
        id="missing-metric",
    ),
    pytest.param(
        Policy(gates=PRODUCTION, approvals=0),
        GOOD,
        {"accuracy": 0.92},
        VerdictKind.BLOCKED,
        ["the champion has no metric 'latency_p95_ms'"],
        id="champion-missing-metric",
    ),
    pytest.param(
        Policy(gates=STAGING, approvals=0, no_champion=NoChampion.PASS),
        GOOD,
        None,
        VerdictKind.AUTO_APPROVE,
        ["all 1 gate passes", "accuracy >= champion - 0.005: not applied, no champion yet"],
        id="no-champion-passes",
    ),
    pytest.param(
        Policy(gates=STAGING, approvals=2, no_champion=NoChampion.PASS),
        GOOD,
        None,
        VerdictKind.NEEDS_APPROVAL,
        ["2 approvals needed", "not applied, no champion yet"],
        id="no-champion-passes-to-approvers",
    ),
    pytest.param(
        Policy(gates=STAGING, approvals=0, no_champion=NoChampion.BLOCK),
        GOOD,
        None,
        VerdictKind.BLOCKED,
        ["accuracy >= champion - 0.005: there is no champion to compare with"],
        id="no-champion-blocks",
    ),
    pytest.param(
        Policy(gates=STAGING, approvals=0, no_champion=NoChampion.PASS),
        {"accuracy": 0.85},
        None,
        VerdictKind.BLOCKED,
        ["accuracy >= 0.90: accuracy 0.85 fails"],
        id="no-champion-still-judges-absolute-gates",
    ),
]


@pytest.mark.parametrize(("policy", "metrics", "champion", "kind", "fragments"), VERDICTS)
def test_evaluate(
    policy: Policy,
    metrics: Mapping[str, float],
    champion: Mapping[str, float] | None,
    kind: VerdictKind,
    fragments: list[str],
) -> None:
    verdict = evaluate(policy, candidate(metrics), champion, NOW)

    assert verdict.kind is kind
    text = "\n".join(verdict.reasons)
    for fragment in fragments:
        assert fragment in text
    assert len(verdict.gate_results) == len(policy.gates)


def test_a_blocked_verdict_lists_exactly_the_failing_gates() -> None:
    policy = Policy(
        gates=gates("accuracy >= 0.90", "recall >= 0.8", "latency_p95_ms <= champion * 1.10"),
        approvals=0,
    )
    metrics = {"accuracy": 0.85, "recall": 0.9, "latency_p95_ms": 120.0}

    verdict = evaluate(policy, candidate(metrics), CHAMPION, NOW)

    assert verdict.kind is VerdictKind.BLOCKED
    failing = [r for r in verdict.gate_results if not r.passed]
    assert [str(r.gate) for r in failing] == [
        "accuracy >= 0.90",
        "latency_p95_ms <= champion * 1.10",
    ]
    assert verdict.reasons == tuple(r.explain() for r in failing)


@pytest.mark.parametrize(
    "on_fail",
    [pytest.param(OnFail.BLOCK, id="block"), pytest.param(OnFail.OVERRIDE, id="override")],
)
def test_bundle_problems_block_and_cannot_be_overridden(on_fail: OnFail) -> None:
    policy = Policy(gates=STAGING, approvals=0, on_fail=on_fail, override_by=frozenset({"S0MLOPS"}))
    bundle = Bundle(problems=("tag gatekeeper.pipeline: must be a relative path",))

    verdict = evaluate(policy, candidate(GOOD, bundle), CHAMPION, NOW)

    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reasons == ("bundle: tag gatekeeper.pipeline: must be a relative path",)
    assert verdict.override_by == frozenset()


def test_bundle_problems_come_first_and_keep_a_failing_gate_unliftable() -> None:
    policy = Policy(
        gates=STAGING, approvals=0, on_fail=OnFail.OVERRIDE, override_by=frozenset({"S0MLOPS"})
    )
    bundle = Bundle(problems=("tag gatekeeper.promote: empty",))

    verdict = evaluate(policy, candidate({"accuracy": 0.5}, bundle), CHAMPION, NOW)

    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reasons[0] == "bundle: tag gatekeeper.promote: empty"
    assert len(verdict.reasons) == 3  # the bundle, then both gates
    assert verdict.override_by == frozenset()


# on_fail, override_by, who may lift the block
OVERRIDES = [
    pytest.param(
        OnFail.OVERRIDE,
        frozenset({"S0MLOPS", "U0SRE0001"}),
        frozenset({"S0MLOPS", "U0SRE0001"}),
        id="override-by-named",
    ),
    pytest.param(OnFail.OVERRIDE, frozenset(), frozenset(), id="override-but-nobody-named"),
    pytest.param(OnFail.BLOCK, frozenset({"S0MLOPS"}), frozenset(), id="block-ignores-named"),
]


@pytest.mark.parametrize(("on_fail", "override_by", "expected"), OVERRIDES)
def test_who_may_lift_a_failing_gate(
    on_fail: OnFail, override_by: frozenset[str], expected: frozenset[str]
) -> None:
    policy = Policy(gates=STAGING, approvals=2, on_fail=on_fail, override_by=override_by)

    verdict = evaluate(policy, candidate({"accuracy": 0.85}), CHAMPION, NOW)

    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.override_by == expected


@pytest.mark.parametrize("approvals", [0, 2])
def test_a_passing_verdict_has_nobody_to_override(approvals: int) -> None:
    policy = Policy(
        gates=STAGING,
        approvals=approvals,
        on_fail=OnFail.OVERRIDE,
        override_by=frozenset({"S0MLOPS"}),
    )

    verdict = evaluate(policy, candidate(), CHAMPION, NOW)

    assert verdict.kind is not VerdictKind.BLOCKED
    assert verdict.override_by == frozenset()


CHRISTMAS = DateFreeze(
    start=datetime(2024, 12, 20, tzinfo=UTC),
    end=datetime(2025, 1, 6, tzinfo=UTC),
    reason="holiday freeze",
)

# freeze, now, covered
DATE_FREEZES = [
    pytest.param(CHRISTMAS, datetime(2024, 12, 19, 23, 59, tzinfo=UTC), False, id="just-before"),
    pytest.param(CHRISTMAS, datetime(2024, 12, 20, tzinfo=UTC), True, id="at-start"),
    pytest.param(CHRISTMAS, datetime(2024, 12, 31, 12, tzinfo=UTC), True, id="inside"),
    pytest.param(CHRISTMAS, datetime(2025, 1, 5, 23, 59, 59, tzinfo=UTC), True, id="last-second"),
    pytest.param(CHRISTMAS, datetime(2025, 1, 6, tzinfo=UTC), False, id="at-end"),
    pytest.param(
        CHRISTMAS, datetime(2025, 1, 6, 0, 30, tzinfo=BERLIN), True, id="other-zone-inside"
    ),
]


@pytest.mark.parametrize(("freeze", "now", "covered"), DATE_FREEZES)
def test_date_freeze_covers(freeze: DateFreeze, now: datetime, covered: bool) -> None:
    assert freeze.covers(now) is covered


def test_a_date_freeze_blocks_with_its_reason() -> None:
    policy = Policy(gates=STAGING, approvals=0, freeze=(CHRISTMAS,))

    verdict = evaluate(policy, candidate(), CHAMPION, datetime(2024, 12, 24, tzinfo=UTC))

    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reasons == (f"{CHRISTMAS.describe()}: holiday freeze",)
    assert "2024-12-20" in verdict.reasons[0]
    assert "2025-01-06" in verdict.reasons[0]


def test_a_date_freeze_that_is_over_does_not_block() -> None:
    policy = Policy(gates=STAGING, approvals=0, freeze=(CHRISTMAS,))

    verdict = evaluate(policy, candidate(), CHAMPION, NOW)

    assert verdict.kind is VerdictKind.AUTO_APPROVE


def test_a_freeze_reason_follows_failing_gates() -> None:
    policy = Policy(gates=STAGING, approvals=0, freeze=(CHRISTMAS,))

    verdict = evaluate(
        policy, candidate({"accuracy": 0.85}), CHAMPION, datetime(2024, 12, 24, tzinfo=UTC)
    )

    assert verdict.kind is VerdictKind.BLOCKED
    assert len(verdict.reasons) == 3
    assert verdict.reasons[-1].endswith("holiday freeze")


FRIDAY_EVENING = WeeklyFreeze(frozenset({FRI}), time(16), time(23), reason="weekend")
OVERNIGHT = WeeklyFreeze(frozenset({FRI}), time(22), time(6))
WEEKNIGHTS = WeeklyFreeze(frozenset({MON, TUE, WED, THU}), time(22), time(6))
BERLIN_WEEKEND = WeeklyFreeze(frozenset({FRI}), time(17), time(9), timezone="Europe/Berlin")
BERLIN_SATURDAY_NIGHT = WeeklyFreeze(frozenset({SAT}), time(0), time(1), timezone="Europe/Berlin")
WHOLE_MONDAY = WeeklyFreeze(frozenset({MON}), time(9), time(9))


def utc(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    """A time in January 2025 (or ``month``); 2025-01-10 is a Friday."""
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


# freeze, now, covered
WEEKLY_FREEZES = [
    pytest.param(FRIDAY_EVENING, utc(10, 15, 59), False, id="same-day-before"),
    pytest.param(FRIDAY_EVENING, utc(10, 16), True, id="same-day-at-start"),
    pytest.param(FRIDAY_EVENING, utc(10, 22, 59), True, id="same-day-last-minute"),
    pytest.param(FRIDAY_EVENING, utc(10, 23), False, id="same-day-at-end"),
    pytest.param(FRIDAY_EVENING, utc(9, 17), False, id="same-day-other-weekday"),
    pytest.param(FRIDAY_EVENING, utc(17, 17), True, id="same-day-next-week"),
    pytest.param(OVERNIGHT, utc(10, 21, 59), False, id="overnight-before"),
    pytest.param(OVERNIGHT, utc(10, 22), True, id="overnight-at-start"),
    pytest.param(OVERNIGHT, utc(10, 23, 59), True, id="overnight-before-midnight"),
    pytest.param(OVERNIGHT, utc(11, 0), True, id="overnight-at-midnight"),
    pytest.param(OVERNIGHT, utc(11, 5, 59), True, id="overnight-next-morning"),
    pytest.param(OVERNIGHT, utc(11, 6), False, id="overnight-at-end"),
    pytest.param(OVERNIGHT, utc(10, 2), False, id="overnight-morning-of-the-weekday"),
    pytest.param(OVERNIGHT, utc(11, 22), False, id="overnight-next-evening"),
    pytest.param(WEEKNIGHTS, utc(14, 3), True, id="weeknights-tuesday-morning"),
    pytest.param(WEEKNIGHTS, utc(13, 3), False, id="weeknights-monday-morning"),
    pytest.param(WEEKNIGHTS, utc(17, 3), True, id="weeknights-friday-morning"),
    pytest.param(WEEKNIGHTS, utc(17, 22), False, id="weeknights-friday-night"),
    pytest.param(BERLIN_WEEKEND, utc(10, 15, 59), False, id="berlin-winter-before"),
    pytest.param(BERLIN_WEEKEND, utc(10, 16), True, id="berlin-winter-at-start"),
    pytest.param(BERLIN_WEEKEND, utc(11, 7, 59), True, id="berlin-winter-last-minute"),
    pytest.param(BERLIN_WEEKEND, utc(11, 8), False, id="berlin-winter-at-end"),
    pytest.param(BERLIN_WEEKEND, utc(11, 14, 59, month=7), False, id="berlin-summer-before"),
    pytest.param(BERLIN_WEEKEND, utc(11, 15, month=7), True, id="berlin-summer-at-start"),
    pytest.param(BERLIN_WEEKEND, utc(12, 6, 59, month=7), True, id="berlin-summer-last-minute"),
    pytest.param(BERLIN_WEEKEND, utc(12, 7, month=7), False, id="berlin-summer-at-end"),
    pytest.param(
        BERLIN_WEEKEND,
        datetime(2025, 1, 10, 11, 0, tzinfo=ZoneInfo("America/New_York")),
        True,
        id="berlin-asked-in-new-york",  # 17:00 in Berlin
    ),
    pytest.param(
        BERLIN_SATURDAY_NIGHT, utc(10, 23, 30), True, id="berlin-weekday-differs-from-utc"
    ),
    pytest.param(BERLIN_SATURDAY_NIGHT, utc(11, 0, 30), False, id="berlin-utc-saturday-too-late"),
    pytest.param(WHOLE_MONDAY, utc(13, 9), True, id="end-equals-start-at-start"),
    pytest.param(WHOLE_MONDAY, utc(14, 8, 59), True, id="end-equals-start-runs-a-day"),
    pytest.param(WHOLE_MONDAY, utc(14, 9), False, id="end-equals-start-at-end"),
]


@pytest.mark.parametrize(("freeze", "now", "covered"), WEEKLY_FREEZES)
def test_weekly_freeze_covers(freeze: WeeklyFreeze, now: datetime, covered: bool) -> None:
    assert freeze.covers(now) is covered


def test_a_weekly_freeze_blocks_with_its_reason() -> None:
    policy = Policy(gates=STAGING, approvals=2, freeze=(FRIDAY_EVENING,))

    verdict = evaluate(policy, candidate(), CHAMPION, utc(10, 18))

    assert verdict.kind is VerdictKind.BLOCKED
    assert verdict.reasons == ("weekly freeze fri 16:00-23:00 UTC: weekend",)


def test_weekly_freeze_describe_names_days_hours_and_zone() -> None:
    assert WEEKNIGHTS.describe() == "weekly freeze mon,tue,wed,thu 22:00-06:00 UTC"
    assert BERLIN_WEEKEND.describe() == "weekly freeze fri 17:00-09:00 Europe/Berlin"


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        pytest.param(VerdictKind.AUTO_APPROVE, CandidateState.APPROVED, id="auto-approve"),
        pytest.param(VerdictKind.NEEDS_APPROVAL, CandidateState.PENDING, id="needs-approval"),
        pytest.param(VerdictKind.BLOCKED, CandidateState.BLOCKED, id="blocked"),
    ],
)
def test_verdict_initial_state(kind: VerdictKind, state: CandidateState) -> None:
    assert Verdict(kind, reasons=()).initial_state is state


def test_every_verdict_kind_has_an_initial_state() -> None:
    assert {Verdict(kind, ()).initial_state for kind in VerdictKind} == {
        CandidateState.APPROVED,
        CandidateState.PENDING,
        CandidateState.BLOCKED,
    }


def test_a_freeze_far_in_the_past_is_harmless() -> None:
    old = DateFreeze(NOW - timedelta(days=30), NOW - timedelta(days=29))
    policy = Policy(approvals=0, freeze=(old,))

    assert evaluate(policy, candidate(), None, NOW).kind is VerdictKind.AUTO_APPROVE
