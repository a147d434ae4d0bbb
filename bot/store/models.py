"""Tables, as SQLAlchemy 2.0 typed models; the migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.promotion import LIVE_STATES, CandidateState
from bot.store.database import UTCDateTime

#: Candidate states in which the same model version must not be proposed twice for one target.
LIVE_STATES_SQL = "state IN ({})".format(
    ", ".join(f"'{state.value}'" for state in CandidateState if state in LIVE_STATES)
)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (
        Index(
            "uq_candidates_live",
            "model",
            "version",
            "target_env",
            unique=True,
            sqlite_where=text(LIVE_STATES_SQL),
            postgresql_where=text(LIVE_STATES_SQL),
        ),
        Index("ix_candidates_state", "state"),
        CheckConstraint(
            "state IN ('pending', 'blocked', 'approved', 'rejected', 'expired', 'promoting', "
            "'promoted', 'failed', 'rolled_back')",
            name="state",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    source_env: Mapped[str] = mapped_column(String(32))
    target_env: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    requester: Mapped[str | None] = mapped_column(String(32))
    author: Mapped[str | None] = mapped_column(String(32))
    #: Images, snapshots, pipeline and problems as parsed from the version's tags.
    bundle: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    champion_version: Mapped[str | None] = mapped_column(String(64))
    champion_metrics: Mapped[dict[str, Any] | None]
    #: The policy's verdict at evaluation: kind, reasons, override_by.
    verdict: Mapped[dict[str, Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class LegalTransitionRow(Base):
    """The lifecycle's transitions, as data the database checks every state change against."""

    __tablename__ = "legal_transitions"

    from_state: Mapped[str] = mapped_column(String(16), primary_key=True)
    to_state: Mapped[str] = mapped_column(String(16), primary_key=True)


class TransitionRow(Base):
    __tablename__ = "candidate_transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class VoteRow(Base):
    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("candidate_id", "voter", name="uq_votes_one_per_person"),
        CheckConstraint("decision IN ('approve', 'reject')", name="decision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    voter: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class PromotionRow(Base):
    """One run of the promotion steps (or of a rollback) for a candidate."""

    __tablename__ = "promotions"
    __table_args__ = (
        # One promotion per model and environment at a time, across every process.
        Index(
            "uq_promotions_running",
            "model",
            "target_env",
            unique=True,
            sqlite_where=text("state = 'running'"),
            postgresql_where=text("state = 'running'"),
        ),
        CheckConstraint("kind IN ('promote', 'rollback')", name="kind"),
        CheckConstraint("state IN ('running', 'succeeded', 'failed', 'compensated')", name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(255))
    target_env: Mapped[str] = mapped_column(String(32))
    previous_champion: Mapped[str | None] = mapped_column(String(64))
    target_version: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class PromotionStepRow(Base):
    __tablename__ = "promotion_steps"
    __table_args__ = (UniqueConstraint("promotion_id", "step", name="uq_promotion_steps_step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id"))
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    #: What the step did, enough to resume or undo it (copied digests, new version, ...).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class ChampionRow(Base):
    """Each time a champion alias moved: the history rollback returns along."""

    __tablename__ = "champion_history"
    __table_args__ = (Index("ix_champion_history_model_env", "model", "environment", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    #: Image references the environment served with this version, for re-tagging on rollback.
    images: Mapped[dict[str, Any]] = mapped_column(default=dict)
    promotion_id: Mapped[int | None] = mapped_column(ForeignKey("promotions.id"))
    cause: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class SlackMessageRow(Base):
    """Where a candidate's card (and anything else worth updating later) was posted."""

    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("candidate_id", "kind", name="uq_slack_messages_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str] = mapped_column(String(32))


class OutboxRow(Base):
    """A message to deliver to Slack, stored before anyone is told, delivered in order."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "delivered_at", "deliver_after", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Messages with the same key (a candidate's thread) are delivered one after another.
    ordering_key: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    #: Makes enqueueing idempotent: a retried step does not post its message twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    deliver_after: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    """Append-only; each row's hash covers the previous row's, so an edit breaks the chain."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class WebhookDeliveryRow(Base):
    """An MLflow webhook delivery, kept before it is acted on; its id refuses a replay."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    environment: Mapped[str] = mapped_column(String(32))
    #: ``entity.action``, e.g. ``model_version.created``.
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class IntakeOfferRow(Base):
    """A version offered for a target once, by a webhook or by polling, whichever came first."""

    __tablename__ = "intake_offers"
    __table_args__ = (
        UniqueConstraint(
            "environment", "model", "version", "target_env", name="uq_intake_offers_environment"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    environment: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(64))
    target_env: Mapped[str] = mapped_column(String(32))
    via: Mapped[str] = mapped_column(String(32))
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"))
    at: Mapped[datetime]


class SchedulerJobRow(Base):
    """APScheduler's job store table (its layout), so that migrations create it."""

    __tablename__ = "scheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


class SchedulerLeaseRow(Base):
    """Who runs the scheduler, until when: the one-scheduler lock where advisory locks are not."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
