"""What ``GET /metrics`` reports, in Prometheus's text format.

Counters here count what happened in this process (webhook deliveries it received, Slack calls
it made). Figures every process shares — candidates by state, promotions and their steps, the
outbox — are read from the database when scraped, so any replica reports the same numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, literal_column, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.domain.promotion import CandidateState
from bot.store.models import CandidateRow, OutboxRow, PromotionRow, PromotionStepRow

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

WEBHOOK_DELIVERIES = Counter(
    "gatekeeper_webhook_deliveries",
    "MLflow webhook deliveries received, by outcome (accepted, or why refused).",
    ["outcome"],
    registry=REGISTRY,
)
SLACK_API_CALLS = Counter(
    "gatekeeper_slack_api_calls",
    "Slack Web API calls the outbox delivery made, by method and outcome (ok, rate_limited, "
    "unavailable: a 5xx or a transient error, unreachable: no answer, error: refused for good).",
    ["method", "outcome"],
    registry=REGISTRY,
)
SLACK_API_RETRIES = Counter(
    "gatekeeper_slack_api_retries",
    "Slack Web API calls scheduled again after a rate limit or an outage.",
    ["method"],
    registry=REGISTRY,
)

#: The values the promotions table's check constraints allow; every pair is reported, zero too.
PROMOTION_KINDS = ("promote", "rollback")
PROMOTION_STATES = ("running", "succeeded", "failed", "compensated")
#: How the delivery loop marks a message Slack refused for good (kept, tried again hourly).
PERMANENT_FAILURE_MARK = "permanent: "


def render(engine: Engine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> bytes:
    """The scrape's text: this process's counters, then the database's figures.

    Blocking (it queries the database): web handlers call it off the event loop.
    """
    return generate_latest(_Scrape(engine, clock))


class _Scrape(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        up = GaugeMetricFamily(
            "gatekeeper_database_up",
            "1 when the database answered this scrape; its figures are missing when 0.",
        )
        try:
            with Session(self._engine) as session:
                shared = list(_database_figures(session, self._clock()))
        except SQLAlchemyError as error:
            # A probe reports; it never fails. The error names the database, not its password.
            logger.warning("metrics: the database did not answer: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        except Exception:
            logger.exception("metrics: reading the database's figures failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from shared


def _database_figures(session: Session, now: datetime) -> Iterator[Metric]:
    """Aggregates only: a scrape costs a few grouped counts however many rows there are."""
    by_state = {
        state: n
        for state, n in session.execute(
            select(CandidateRow.state, func.count()).group_by(CandidateRow.state)
        )
    }
    candidates = GaugeMetricFamily(
        "gatekeeper_candidates", "Promotion candidates, by state.", labels=["state"]
    )
    for state in CandidateState:
        candidates.add_metric([state.value], by_state.get(state.value, 0))
    yield candidates

    counted = {
        (kind, status): n
        for kind, status, n in session.execute(
            select(PromotionRow.kind, PromotionRow.state, func.count()).group_by(
                PromotionRow.kind, PromotionRow.state
            )
        )
    }
    # A gauge, not a counter: a promotion leaves "running" when it ends, so a series falls.
    promotions = GaugeMetricFamily(
        "gatekeeper_promotions",
        "Promotions and rollbacks recorded, by kind and state.",
        labels=["kind", "state"],
    )
    for kind in PROMOTION_KINDS:
        for status in PROMOTION_STATES:
            promotions.add_metric([kind, status], counted.get((kind, status), 0))
    yield promotions

    durations = SummaryMetricFamily(
        "gatekeeper_promotion_step_duration_seconds",
        "Time promotion steps took from start to finish, by step and final status.",
        labels=["step", "status"],
    )
    seconds = _step_seconds(session)
    for step, status, count, total in session.execute(
        select(PromotionStepRow.step, PromotionStepRow.status, func.count(), func.sum(seconds))
        .where(PromotionStepRow.started_at.is_not(None), PromotionStepRow.finished_at.is_not(None))
        .group_by(PromotionStepRow.step, PromotionStepRow.status)
    ):
        durations.add_metric([step, status], count_value=count, sum_value=float(total or 0.0))
    yield durations

    undelivered, oldest = session.execute(
        select(func.count(), func.min(OutboxRow.created_at)).where(OutboxRow.delivered_at.is_(None))
    ).one()
    yield GaugeMetricFamily(
        "gatekeeper_outbox_undelivered",
        "Slack messages stored and not yet delivered.",
        value=undelivered,
    )
    yield GaugeMetricFamily(
        "gatekeeper_outbox_oldest_undelivered_age_seconds",
        "Age of the oldest message not yet delivered to Slack; 0 when none waits.",
        value=max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
    )
    failed = session.scalar(
        select(func.count()).where(
            OutboxRow.delivered_at.is_(None),
            OutboxRow.last_error.startswith(PERMANENT_FAILURE_MARK),
        )
    )
    yield GaugeMetricFamily(
        "gatekeeper_slack_messages_failed",
        "Slack messages Slack refused for good (no such channel, not in it ...); kept, retried "
        "hourly until a person fixes the cause.",
        value=failed or 0,
    )


def _step_seconds(session: Session) -> ColumnElement[Any]:
    """A step's ``finished_at - started_at`` in seconds, in the SQL of the database at hand."""
    start, end = PromotionStepRow.started_at, PromotionStepRow.finished_at
    if session.get_bind().dialect.name == "sqlite":
        # Stored as ISO text; julianday() reads it, in days.
        return (func.julianday(end) - func.julianday(start)) * literal_column("86400.0")
    return func.extract("epoch", end - start)
