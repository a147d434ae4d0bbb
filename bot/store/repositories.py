"""Repositories over one session, and the unit of work that commits them together."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.approvals import Decision, Vote
from bot.domain.candidates import Candidate
from bot.domain.errors import AlreadyVoted, GatekeeperError, IllegalTransition
from bot.domain.policy import Verdict
from bot.domain.promotion import (
    LIVE_STATES,
    STEP_DONE,
    CandidateState,
    PromotionStep,
    StepStatus,
    check_transition,
)
from bot.store.audit import AuditLog
from bot.store.codec import bundle_to_json, verdict_to_json
from bot.store.database import READ_ONLY
from bot.store.models import (
    CandidateRow,
    ChampionRow,
    IntakeOfferRow,
    OutboxRow,
    PromotionRow,
    PromotionStepRow,
    SlackMessageRow,
    TransitionRow,
    VoteRow,
    WebhookDeliveryRow,
)


class CandidateNotFound(GatekeeperError):
    pass


class CandidateExists(GatekeeperError):
    """The same model version is already a live candidate for that environment."""

    def __init__(self, existing: CandidateRow) -> None:
        super().__init__(
            f"{existing.model} version {existing.version} is already a candidate for "
            f"{existing.target_env} (#{existing.id}, {existing.state})"
        )
        self.existing = existing


class PromotionInProgress(GatekeeperError):
    pass


class Candidates:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        candidate: Candidate,
        verdict: Verdict,
        *,
        actor: str,
        now: datetime,
        champion_version: str | None = None,
        champion_metrics: dict[str, float] | None = None,
        expires_at: datetime | None = None,
    ) -> CandidateRow:
        """Store a new candidate in the state its verdict gives; refuse a live duplicate."""
        existing = self.find_live(candidate.model, candidate.version, candidate.target_env)
        if existing is not None:
            raise CandidateExists(existing)
        state = verdict.initial_state
        row = CandidateRow(
            model=candidate.model,
            version=candidate.version,
            source_env=candidate.source_env,
            target_env=candidate.target_env,
            state=state.value,
            requester=candidate.requester,
            author=candidate.author,
            bundle=bundle_to_json(candidate.bundle),
            metrics=dict(candidate.metrics),
            champion_version=champion_version,
            champion_metrics=champion_metrics,
            verdict=verdict_to_json(verdict),
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            # Lost a race with another process proposing the same version.
            found = self.find_live(candidate.model, candidate.version, candidate.target_env)
            if found is None:
                raise
            raise CandidateExists(found) from None
        self._session.add(
            TransitionRow(
                candidate_id=row.id,
                from_state=None,
                to_state=state.value,
                actor=actor,
                reason="; ".join(verdict.reasons),
                at=now,
            )
        )
        return row

    def get(self, candidate_id: int, *, for_update: bool = False) -> CandidateRow:
        """The candidate, locked against concurrent changes when ``for_update``."""
        query = select(CandidateRow).where(CandidateRow.id == candidate_id)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        if row is None:
            raise CandidateNotFound(f"there is no candidate #{candidate_id}")
        return row

    def approvers_of(self, candidate_id: int) -> tuple[str, frozenset[str]]:
        """Where the candidate goes, and who may override its block: two columns, not the row."""
        found = self._session.execute(
            select(CandidateRow.target_env, CandidateRow.verdict).where(
                CandidateRow.id == candidate_id
            )
        ).one_or_none()
        if found is None:
            raise CandidateNotFound(f"there is no candidate #{candidate_id}")
        target_env, verdict = found
        return target_env, frozenset(verdict.get("override_by", ()))

    def find_live(self, model: str, version: str, target_env: str) -> CandidateRow | None:
        return self._session.scalars(
            select(CandidateRow).where(
                CandidateRow.model == model,
                CandidateRow.version == version,
                CandidateRow.target_env == target_env,
                CandidateRow.state.in_([s.value for s in LIVE_STATES]),
            )
        ).one_or_none()

    def in_states(self, states: Iterable[CandidateState]) -> Sequence[CandidateRow]:
        return self._session.scalars(
            select(CandidateRow)
            .where(CandidateRow.state.in_([s.value for s in states]))
            .order_by(CandidateRow.id)
        ).all()

    def transition(
        self,
        row: CandidateRow,
        to_state: CandidateState,
        *,
        actor: str,
        now: datetime,
        reason: str | None = None,
    ) -> CandidateRow:
        """Move a candidate to ``to_state`` if the lifecycle allows it and nobody moved it first."""
        from_state = CandidateState(row.state)
        check_transition(from_state, to_state)
        values: dict[str, Any] = {"state": to_state.value, "updated_at": now}
        if reason is not None:
            values["reason"] = reason
        result = self._session.execute(
            update(CandidateRow)
            .where(CandidateRow.id == row.id, CandidateRow.state == from_state.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        current = self._session.get(CandidateRow, row.id, populate_existing=True)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            # Someone moved it first; judge the change against where it really is now.
            raise IllegalTransition(current.state if current else "gone", to_state.value)
        self._session.add(
            TransitionRow(
                candidate_id=row.id,
                from_state=from_state.value,
                to_state=to_state.value,
                actor=actor,
                reason=reason,
                at=now,
            )
        )
        assert current is not None
        return current

    def transitions(self, candidate_id: int) -> Sequence[TransitionRow]:
        return self._session.scalars(
            select(TransitionRow)
            .where(TransitionRow.candidate_id == candidate_id)
            .order_by(TransitionRow.id)
        ).all()


class Votes:
    def __init__(self, session: Session) -> None:
        self._session = session

    def for_candidate(self, candidate_id: int) -> list[Vote]:
        rows = self._session.scalars(
            select(VoteRow).where(VoteRow.candidate_id == candidate_id).order_by(VoteRow.id)
        )
        return [Vote(r.voter, Decision(r.decision), r.reason or "", r.at) for r in rows]

    def add(self, candidate_id: int, vote: Vote, now: datetime) -> None:
        """Record a vote; the database's one-vote-per-person constraint is the final word."""
        try:
            with self._session.begin_nested():
                self._session.add(
                    VoteRow(
                        candidate_id=candidate_id,
                        voter=vote.voter,
                        decision=vote.decision.value,
                        reason=vote.reason or None,
                        at=vote.at or now,
                    )
                )
        except IntegrityError:
            raise AlreadyVoted("you already voted on this candidate") from None


class Champions:
    """Where each model's champion alias pointed in each environment, newest last."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(
        self,
        model: str,
        environment: str,
        version: str,
        *,
        cause: str,
        actor: str,
        now: datetime,
        images: dict[str, str] | None = None,
        promotion_id: int | None = None,
    ) -> ChampionRow:
        current = self.current(model, environment)
        row = ChampionRow(
            model=model,
            environment=environment,
            version=version,
            previous_version=current.version if current else None,
            images=images or {},
            promotion_id=promotion_id,
            cause=cause,
            actor=actor,
            at=now,
        )
        self._session.add(row)
        self._session.flush()
        return row

    def history(self, model: str, environment: str) -> Sequence[ChampionRow]:
        return self._session.scalars(
            select(ChampionRow)
            .where(ChampionRow.model == model, ChampionRow.environment == environment)
            .order_by(ChampionRow.id)
        ).all()

    def current(self, model: str, environment: str) -> ChampionRow | None:
        history = self.history(model, environment)
        return history[-1] if history else None

    def serving_candidate(self, model: str, environment: str) -> int | None:
        """The candidate whose promotion made the current champion, even after rollbacks."""
        history = self.history(model, environment)
        if not history:
            return None
        version = history[-1].version
        for row in reversed(history):
            if row.cause == "promotion" and row.version == version and row.promotion_id:
                return self._session.get_one(PromotionRow, row.promotion_id).candidate_id
        return None

    def rollback_target(self, model: str, environment: str) -> ChampionRow | None:
        """The champion before the current one; rolling back twice goes two champions back."""
        stack: list[ChampionRow] = []
        for row in self.history(model, environment):
            if row.cause == "rollback":
                # A rollback undoes the champions above the version it returned to.
                while stack and stack[-1].version != row.version:
                    stack.pop()
                if stack:
                    stack.pop()
            stack.append(row)
        return stack[-2] if len(stack) >= 2 else None


class Promotions:
    def __init__(self, session: Session) -> None:
        self._session = session

    def start(
        self,
        candidate_id: int,
        *,
        kind: str,
        model: str,
        target_env: str,
        previous_champion: str | None,
        now: datetime,
    ) -> PromotionRow:
        """Open a promotion; refused while another one runs for the same model and environment."""
        row = PromotionRow(
            candidate_id=candidate_id,
            kind=kind,
            state="running",
            model=model,
            target_env=target_env,
            previous_champion=previous_champion,
            started_at=now,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            raise PromotionInProgress(
                f"a promotion of {model} to {target_env} is already running"
            ) from None
        return row

    def finish(
        self, row: PromotionRow, state: str, now: datetime, error: str | None = None
    ) -> None:
        row.state, row.finished_at, row.error = state, now, error
        self._session.flush()

    def running_for(self, candidate_id: int) -> PromotionRow | None:
        """The candidate's promotion still running (a restart finds it here), if any."""
        return self._session.scalars(
            select(PromotionRow).where(
                PromotionRow.candidate_id == candidate_id,
                PromotionRow.kind == "promote",
                PromotionRow.state == "running",
            )
        ).one_or_none()

    def finished_steps(self, promotion_id: int) -> dict[PromotionStep, dict[str, Any]]:
        """Steps done (succeeded or skipped), with the details they recorded."""
        rows = self._session.scalars(
            select(PromotionStepRow).where(
                PromotionStepRow.promotion_id == promotion_id,
                PromotionStepRow.status.in_([s.value for s in STEP_DONE]),
            )
        )
        return {PromotionStep(r.step): dict(r.details) for r in rows}

    def step_statuses(self, promotion_id: int) -> dict[PromotionStep, StepStatus]:
        rows = self._session.scalars(
            select(PromotionStepRow).where(PromotionStepRow.promotion_id == promotion_id)
        )
        return {PromotionStep(r.step): StepStatus(r.status) for r in rows}

    def record_step(
        self,
        promotion_id: int,
        step: PromotionStep,
        status: StepStatus,
        now: datetime,
        *,
        details: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> PromotionStepRow:
        """Persist a step's progress: started (RUNNING, one more attempt) or its outcome."""
        row = self._session.scalars(
            select(PromotionStepRow).where(
                PromotionStepRow.promotion_id == promotion_id,
                PromotionStepRow.step == step.value,
            )
        ).one_or_none()
        if row is None:
            row = PromotionStepRow(
                promotion_id=promotion_id, step=step.value, status=status.value, attempts=0,
                details={},
            )  # fmt: skip
            self._session.add(row)
        row.status = status.value
        if status is StepStatus.RUNNING:
            row.attempts += 1
            row.started_at = now
        else:
            row.finished_at = now
        if details:
            row.details = {**row.details, **details}
        row.error = error
        self._session.flush()
        return row


class SlackMessages:
    def __init__(self, session: Session) -> None:
        self._session = session

    def remember(self, candidate_id: int, kind: str, channel: str, ts: str) -> None:
        self._session.add(
            SlackMessageRow(candidate_id=candidate_id, kind=kind, channel=channel, ts=ts)
        )
        self._session.flush()

    def find(self, candidate_id: int, kind: str = "card") -> SlackMessageRow | None:
        return self._session.scalars(
            select(SlackMessageRow).where(
                SlackMessageRow.candidate_id == candidate_id, SlackMessageRow.kind == kind
            )
        ).one_or_none()


class Outbox:
    """Messages stored with the change that caused them, delivered later and in order."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def enqueue(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        ordering_key: str,
        now: datetime,
        candidate_id: int | None = None,
        dedupe_key: str | None = None,
    ) -> OutboxRow | None:
        """Queue a Web API call; None when ``dedupe_key`` was queued before."""
        if (
            dedupe_key is not None
            and self._session.scalars(
                select(OutboxRow.id).where(OutboxRow.dedupe_key == dedupe_key)
            ).first()
        ):
            return None
        row = OutboxRow(
            ordering_key=ordering_key,
            method=method,
            payload=payload,
            candidate_id=candidate_id,
            dedupe_key=dedupe_key,
            created_at=now,
            deliver_after=now,
            attempts=0,
        )
        self._session.add(row)
        self._session.flush()
        return row

    def due(self, now: datetime, limit: int = 100) -> list[OutboxRow]:
        """The oldest undelivered message of each ordering key, if it is due."""
        # Found in SQL: a backlog (Slack away for a while) must not be loaded on every pass.
        heads = (
            select(func.min(OutboxRow.id))
            .where(OutboxRow.delivered_at.is_(None))
            .group_by(OutboxRow.ordering_key)
        )
        return list(
            self._session.scalars(
                select(OutboxRow)
                .where(OutboxRow.id.in_(heads), OutboxRow.deliver_after <= now)
                .order_by(OutboxRow.id)
                .limit(limit)
            )
        )

    def delivered(self, row: OutboxRow, now: datetime) -> None:
        row.delivered_at = now
        row.attempts += 1
        self._session.flush()

    def retry_later(self, row: OutboxRow, now: datetime, after: timedelta, error: str) -> None:
        row.attempts += 1
        row.deliver_after = now + after
        row.last_error = error
        self._session.flush()


class AlreadyReceived(GatekeeperError):
    """A webhook delivery with this id was stored before: a replay, or MLflow retrying."""


class AlreadyOffered(GatekeeperError):
    """The version was offered for that target before, by a webhook or by polling."""


class WebhookDeliveries:
    """MLflow webhook deliveries, kept before they are acted on; their ids refuse replays."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        delivery_id: str,
        environment: str,
        event: str,
        payload: dict[str, Any],
        now: datetime,
    ) -> WebhookDeliveryRow:
        """Keep a delivery; ``AlreadyReceived`` when its id was kept before."""
        if self._session.get(WebhookDeliveryRow, delivery_id) is not None:
            raise AlreadyReceived(f"delivery {delivery_id} was already received")
        row = WebhookDeliveryRow(
            delivery_id=delivery_id,
            environment=environment,
            event=event,
            payload=payload,
            received_at=now,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            # The same delivery arriving twice at once, at two replicas.
            raise AlreadyReceived(f"delivery {delivery_id} was already received") from None
        return row

    def get(self, delivery_id: str) -> WebhookDeliveryRow | None:
        return self._session.get(WebhookDeliveryRow, delivery_id)

    def unprocessed(self, received_after: datetime, received_before: datetime) -> list[str]:
        """Ids of deliveries received in that span and not acted on yet, oldest first."""
        return list(
            self._session.scalars(
                select(WebhookDeliveryRow.delivery_id)
                .where(
                    WebhookDeliveryRow.processed_at.is_(None),
                    WebhookDeliveryRow.received_at >= received_after,
                    WebhookDeliveryRow.received_at < received_before,
                )
                .order_by(WebhookDeliveryRow.received_at)
            )
        )

    def settle(
        self, row: WebhookDeliveryRow, outcome: str, detail: str, now: datetime | None
    ) -> None:
        """Record what came of a delivery; ``now`` None leaves it to be tried again."""
        row.outcome, row.detail, row.processed_at = outcome, detail, now
        self._session.flush()


class IntakeOffers:
    """Which versions were offered for which target: each once, whoever noticed it first."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def find(
        self, environment: str, model: str, version: str, target_env: str
    ) -> IntakeOfferRow | None:
        return self._session.scalars(
            select(IntakeOfferRow).where(
                IntakeOfferRow.environment == environment,
                IntakeOfferRow.model == model,
                IntakeOfferRow.version == version,
                IntakeOfferRow.target_env == target_env,
            )
        ).one_or_none()

    def add(
        self,
        environment: str,
        model: str,
        version: str,
        target_env: str,
        *,
        via: str,
        candidate_id: int | None,
        now: datetime,
    ) -> IntakeOfferRow:
        """Record the offer; ``AlreadyOffered`` when someone recorded it first."""
        row = IntakeOfferRow(
            environment=environment,
            model=model,
            version=version,
            target_env=target_env,
            via=via,
            candidate_id=candidate_id,
            at=now,
        )
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:
            raise AlreadyOffered(
                f"{model} version {version} in {environment} was already offered for {target_env}"
            ) from None
        return row


class UnitOfWork:
    """One transaction over every repository; nothing is kept unless ``commit`` is called."""

    session: Session

    def __init__(self, session_factory: sessionmaker[Session], *, read_only: bool = False) -> None:
        self._session_factory = session_factory
        self._read_only = read_only

    def reading(self) -> UnitOfWork:
        """Promise to only read: on SQLite the transaction then waits for no writer."""
        self._read_only = True
        return self

    def __enter__(self) -> UnitOfWork:
        self.session = self._session_factory()
        self.session.begin()
        if self._read_only:
            self.session.connection(execution_options={READ_ONLY: True})
        self.candidates = Candidates(self.session)
        self.votes = Votes(self.session)
        self.champions = Champions(self.session)
        self.promotions = Promotions(self.session)
        self.slack_messages = SlackMessages(self.session)
        self.outbox = Outbox(self.session)
        self.audit = AuditLog(self.session)
        self.webhook_deliveries = WebhookDeliveries(self.session)
        self.intake_offers = IntakeOffers(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() discards an uncommitted transaction without expiring the loaded rows, so
        # callers can still read what they fetched.
        self.session.close()

    def commit(self) -> None:
        self.session.commit()
