"""Running an approved candidate's promotion, and rolling a champion back, behind a port.

The engine that moves models, images, pipelines and snapshots is a ``PromotionEngine``; this
module records what it reports, step by step, and tells the candidate's thread as it goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.domain.approvals import Membership, may_roll_back, mentions
from bot.domain.errors import GatekeeperError
from bot.domain.policy import Policy
from bot.domain.promotion import CandidateState, PromotionStep, StepStatus
from bot.services.notify import Notifier
from bot.store.models import PromotionRow
from bot.store.repositories import UnitOfWork

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    step: PromotionStep
    status: StepStatus
    duration_s: float | None = None
    detail: str | None = None
    #: What a restarted promotion needs of this step (the copied version, the previous alias).
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Promoted:
    """What a promotion left in the target: the new version and its images by digest."""

    version: str
    images: Mapping[str, str] = field(default_factory=dict)


Report = Callable[[Progress], None]


class StepFailed(GatekeeperError):
    """A step could not be done; whatever was cut over has been moved back."""

    def __init__(self, step: PromotionStep, message: str) -> None:
        super().__init__(message)
        self.step = step


class PromotionEngine(Protocol):
    def promote(self, candidate_id: int, report: Report) -> Promoted:
        """Run (or resume) every step for a candidate; what it left in the target, or StepFailed."""
        ...

    def roll_back(self, model: str, environment: str, to_version: str, report: Report) -> None:
        """Move the champion alias (and image tags) back to ``to_version``."""
        ...


class RollbackRefused(GatekeeperError):
    pass


@dataclass
class Promotions:
    unit_of_work: Callable[[], UnitOfWork]
    notifier: Notifier
    engine: PromotionEngine
    policy_for: Callable[[str], Policy]
    membership: Membership
    clock: Callable[[], datetime]

    def promote(self, candidate_id: int, actor: str = "gatekeeper") -> CandidateState:
        """Promote an approved candidate, recording and announcing each step as it ends."""
        with self.unit_of_work() as uow:
            row = uow.candidates.get(candidate_id, for_update=True)
            running = uow.promotions.running_for(candidate_id)
            if running is None:  # a fresh start; otherwise a restart resumes the same promotion
                current = uow.champions.current(row.model, row.target_env)
                uow.candidates.transition(
                    row, CandidateState.PROMOTING, actor=actor, now=self.clock()
                )
                running = uow.promotions.start(
                    candidate_id, kind="promote", model=row.model, target_env=row.target_env,
                    previous_champion=current.version if current else None, now=self.clock(),
                )  # fmt: skip
                uow.audit.append(
                    actor, "promotion.started", f"candidate:{candidate_id}", at=self.clock()
                )
                self.notifier.card_changed(uow, candidate_id, self.clock())
            uow.commit()
            model, target, promotion_id = row.model, row.target_env, running.id

        started = time.monotonic()
        try:
            promoted = self.engine.promote(candidate_id, self._reporter(candidate_id, promotion_id))
        except StepFailed as failure:
            # Verify changes nothing: the candidate goes back to blocked, with the reason.
            outcome = (
                CandidateState.BLOCKED
                if failure.step is PromotionStep.VERIFY
                else CandidateState.FAILED
            )
            return self._finish(candidate_id, promotion_id, outcome, str(failure),
                                step=failure.step)  # fmt: skip
        with self.unit_of_work() as uow:
            promotion = uow.session.get_one(PromotionRow, promotion_id)
            # Set with the champion row, in one commit: a process killed after that commit and
            # restarted has recorded the champion already.
            if promotion.target_version is None:
                promotion.target_version = promoted.version
                uow.champions.record(
                    model, target, promoted.version, cause="promotion", actor=actor,
                    now=self.clock(), promotion_id=promotion_id, images=dict(promoted.images),
                )  # fmt: skip
            uow.commit()
        return self._finish(candidate_id, promotion_id, CandidateState.PROMOTED,
                            duration_s=time.monotonic() - started)  # fmt: skip

    def roll_back(self, candidate_id: int, actor: str, to_version: str | None = None) -> str:
        """Give the environment its previous champion back; the version it returned to."""
        with self.unit_of_work() as uow:
            row = uow.candidates.get(candidate_id)
            policy = self.policy_for(row.target_env)
            allowed = policy.rollback_by or policy.approvers
            if not may_roll_back(policy, actor, self.membership):
                refusal = RollbackRefused(
                    f"only {mentions(allowed) or 'nobody'} may roll back "
                    f"{row.model} in {row.target_env}"
                )
                uow.audit.append(actor, "rollback.refused", f"candidate:{candidate_id}",
                                 {"why": str(refusal)}, at=self.clock())  # fmt: skip
                uow.commit()
                raise refusal
            if row.state != CandidateState.PROMOTED:
                raise RollbackRefused(f"candidate #{candidate_id} is {row.state}, not promoted")
            if uow.champions.serving_candidate(row.model, row.target_env) != candidate_id:
                raise RollbackRefused(
                    f"candidate #{candidate_id} is no longer the champion in {row.target_env}; "
                    f"roll back the one that is (/promote status {row.model})"
                )
            target = uow.champions.rollback_target(row.model, row.target_env)
            version = to_version or (target.version if target else None)
            if version is None:
                raise RollbackRefused(
                    f"{row.model} has no earlier champion in {row.target_env} to return to"
                )
            model, environment = row.model, row.target_env

        with self.unit_of_work() as uow:
            promotion = uow.promotions.start(
                candidate_id, kind="rollback", model=model, target_env=environment,
                previous_champion=None, now=self.clock(),
            )  # fmt: skip
            uow.commit()
            promotion_id = promotion.id
        self.engine.roll_back(
            model, environment, version, self._reporter(candidate_id, promotion_id)
        )
        with self.unit_of_work() as uow:
            uow.champions.record(
                model, environment, version, cause="rollback", actor=actor, now=self.clock(),
                promotion_id=promotion_id,
            )  # fmt: skip
            uow.commit()
        self._finish(candidate_id, promotion_id, CandidateState.ROLLED_BACK, actor=actor)
        return version

    def roll_back_environment(
        self, model: str, environment: str, actor: str, to_version: str | None = None
    ) -> str:
        """Roll back the candidate that made ``model``'s current champion in ``environment``."""
        with self.unit_of_work() as uow:
            candidate_id = uow.champions.serving_candidate(model, environment)
        if candidate_id is None:
            raise RollbackRefused(
                f"Gatekeeper has promoted no champion of {model} in {environment}"
            )
        return self.roll_back(candidate_id, actor, to_version)

    def _reporter(self, candidate_id: int, promotion_id: int) -> Report:
        def report(progress: Progress) -> None:
            now = self.clock()
            with self.unit_of_work() as uow:
                details = dict(progress.details or {})
                if progress.detail:
                    details["detail"] = progress.detail
                uow.promotions.record_step(
                    promotion_id, progress.step, progress.status, now, details=details or None
                )
                if progress.status is not StepStatus.RUNNING:
                    self.notifier.progress(uow, candidate_id, progress, now)
                uow.commit()

        return report

    def _finish(
        self,
        candidate_id: int,
        promotion_id: int,
        outcome: CandidateState,
        error: str | None = None,
        *,
        step: PromotionStep | None = None,
        duration_s: float | None = None,
        actor: str = "gatekeeper",
    ) -> CandidateState:
        now = self.clock()
        with self.unit_of_work() as uow:
            row = uow.candidates.get(candidate_id, for_update=True)
            promotion = uow.session.get_one(PromotionRow, promotion_id)
            uow.promotions.finish(promotion, "failed" if error else "succeeded", now, error)
            uow.candidates.transition(row, outcome, actor=actor, now=now, reason=error)
            uow.audit.append(actor, f"candidate.{outcome.value}", f"candidate:{candidate_id}",
                             {"error": error, "step": step}, at=now)  # fmt: skip
            self.notifier.card_changed(uow, candidate_id, now)
            self.notifier.outcome(uow, candidate_id, outcome, actor, error, step, duration_s, now)
            uow.commit()
        return outcome
