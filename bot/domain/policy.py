"""A target environment's policy, and the verdict it gives a candidate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.domain.candidates import Candidate
from bot.domain.gates import Gate, GateOutcome, GateResult, evaluate_gate
from bot.domain.promotion import CandidateState


class OnFail(StrEnum):
    BLOCK = "block"  # a failing gate blocks, and nobody can lift it
    OVERRIDE = "override"  # a failing gate blocks, and a member of ``override_by`` may lift it


class NoChampion(StrEnum):
    PASS = "pass"  # the first model in an environment has nobody to beat
    BLOCK = "block"


@dataclass(frozen=True)
class DateFreeze:
    """No promotions between two instants (both timezone-aware)."""

    start: datetime
    end: datetime
    reason: str = ""

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def describe(self) -> str:
        return f"freeze {self.start:%Y-%m-%d %H:%M %Z} to {self.end:%Y-%m-%d %H:%M %Z}"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WeeklyFreeze:
    """No promotions on the given weekdays (0 = Monday) between two local times.

    An end at or before the start runs past midnight into the next day.
    """

    weekdays: frozenset[int]
    start: time
    end: time
    timezone: str = "UTC"
    reason: str = ""

    def covers(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.timezone))
        for day in (local.date(), local.date() - timedelta(days=1)):
            if day.weekday() in self.weekdays:
                begin, end = self._window(day)
                if begin <= local < end:
                    return True
        return False

    def _window(self, day: date) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.timezone)
        begin = datetime.combine(day, self.start, tzinfo=zone)
        end_day = day if self.end > self.start else day + timedelta(days=1)
        return begin, datetime.combine(end_day, self.end, tzinfo=zone)

    def describe(self) -> str:
        days = ",".join(WEEKDAYS[d] for d in sorted(self.weekdays))
        return f"weekly freeze {days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


FreezeWindow = DateFreeze | WeeklyFreeze


@dataclass(frozen=True)
class Policy:
    """How candidates for one target environment are judged, approved and rolled back."""

    gates: tuple[Gate, ...] = ()
    #: Approvals needed when every gate passes; 0 means the policy approves by itself.
    approvals: int = 1
    #: Slack user IDs (U…, W…) and user-group IDs (S…) whose approvals count.
    approvers: frozenset[str] = frozenset()
    on_fail: OnFail = OnFail.BLOCK
    override_by: frozenset[str] = frozenset()
    self_approval: bool = False
    #: Who may roll back; empty means the approvers may.
    rollback_by: frozenset[str] = frozenset()
    expires_after: timedelta | None = None
    remind_after: timedelta | None = None
    no_champion: NoChampion = NoChampion.PASS
    freeze: tuple[FreezeWindow, ...] = ()


class VerdictKind(StrEnum):
    AUTO_APPROVE = "auto_approve"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    #: Every reason for the verdict, in the order a person should read them.
    reasons: tuple[str, ...]
    gate_results: tuple[GateResult, ...] = ()
    #: Who may lift a block; empty when nobody can (or nothing is blocked).
    override_by: frozenset[str] = field(default_factory=frozenset)

    @property
    def initial_state(self) -> CandidateState:
        return {
            VerdictKind.AUTO_APPROVE: CandidateState.APPROVED,
            VerdictKind.NEEDS_APPROVAL: CandidateState.PENDING,
            VerdictKind.BLOCKED: CandidateState.BLOCKED,
        }[self.kind]


def evaluate(
    policy: Policy,
    candidate: Candidate,
    champion_metrics: Mapping[str, float] | None,
    now: datetime,
) -> Verdict:
    """Judge a candidate: every gate, its bundle and the freeze windows, each reason kept."""
    results = tuple(evaluate_gate(g, candidate.metrics, champion_metrics) for g in policy.gates)
    hard: list[str] = [f"bundle: {problem}" for problem in candidate.bundle.problems]
    soft: list[str] = []  # reasons an override may lift
    notes: list[str] = []
    for result in results:
        if result.passed:
            continue
        if result.outcome is GateOutcome.NO_CHAMPION and policy.no_champion is NoChampion.PASS:
            notes.append(f"{result.gate}: not applied, no champion yet")
            continue
        soft.append(result.explain())
    soft.extend(
        f"{window.describe()}{': ' + window.reason if window.reason else ''}"
        for window in policy.freeze
        if window.covers(now)
    )
    if hard or soft:
        overridable = not hard and policy.on_fail is OnFail.OVERRIDE and bool(policy.override_by)
        return Verdict(
            VerdictKind.BLOCKED,
            tuple(hard + soft),
            results,
            policy.override_by if overridable else frozenset(),
        )
    applied = len(results) - len(notes)
    passed = (
        f"all {applied} gate{'s' if applied != 1 else ''} pass{'' if applied != 1 else 'es'}"
        if applied
        else "no gates applied"
    )
    if policy.approvals == 0:
        reasons = (f"{passed}; the policy approves", *notes)
        return Verdict(VerdictKind.AUTO_APPROVE, reasons, results)
    needs = f"{policy.approvals} approval{'s' if policy.approvals != 1 else ''} needed"
    return Verdict(VerdictKind.NEEDS_APPROVAL, (f"{passed}; {needs}", *notes), results)
