"""Promotions, their steps, champion history, Slack references and the outbox, as stored."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.domain.promotion import PromotionStep, StepStatus, next_step
from bot.store.repositories import PromotionInProgress, UnitOfWork
from tests.conftest import NOW


def test_champion_history_says_what_rollback_returns_to(uow: Callable[[], UnitOfWork]) -> None:
    with uow() as unit:
        assert unit.champions.rollback_target("churn-classifier", "production") is None
        for n, version in enumerate(["3", "5", "7"]):
            unit.champions.record(
                "churn-classifier", "production", version, cause="promotion", actor="U0SRE0001",
                now=NOW + timedelta(hours=n), images={"serving": f"reg/prod/churn@sha256:{n}"},
            )  # fmt: skip
        unit.champions.record(
            "churn-classifier", "staging", "9", cause="promotion", actor="U0SRE0001", now=NOW
        )
        unit.commit()
    with uow() as unit:
        current = unit.champions.current("churn-classifier", "production")
        target = unit.champions.rollback_target("churn-classifier", "production")
        assert current is not None
        assert target is not None
        assert (current.version, current.previous_version) == ("7", "5")
        assert (target.version, target.images) == ("5", {"serving": "reg/prod/churn@sha256:1"})
        # Rolled back to 5: the next rollback goes to 3, the champion 5 had replaced.
        unit.champions.record(
            "churn-classifier", "production", "5", cause="rollback", actor="U0SRE0001", now=NOW
        )
        again = unit.champions.rollback_target("churn-classifier", "production")
        assert again is not None
        assert again.version == "3"
        unit.champions.record(
            "churn-classifier", "production", "3", cause="rollback", actor="U0SRE0001", now=NOW
        )
        assert unit.champions.rollback_target("churn-classifier", "production") is None


def test_one_running_promotion_per_model_and_environment(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    first, second = new_candidate(version="7"), new_candidate(version="8")
    with uow() as unit:
        running = unit.promotions.start(
            first, kind="promote", model="churn-classifier", target_env="production",
            previous_champion="5", now=NOW,
        )  # fmt: skip
        unit.commit()
    with uow() as unit, pytest.raises(PromotionInProgress, match="already running"):
        unit.promotions.start(
            second, kind="promote", model="churn-classifier", target_env="production",
            previous_champion="5", now=NOW,
        )  # fmt: skip
    with uow() as unit:
        unit.promotions.start(  # another environment is not blocked
            second, kind="promote", model="churn-classifier", target_env="staging",
            previous_champion=None, now=NOW,
        )  # fmt: skip
        row = unit.session.merge(running)
        unit.promotions.finish(row, "succeeded", NOW)
        unit.commit()
    with uow() as unit:
        unit.promotions.start(
            second, kind="promote", model="churn-classifier", target_env="production",
            previous_champion="7", now=NOW,
        )  # fmt: skip
        unit.commit()


def test_steps_are_recorded_so_a_restart_resumes_where_it_stopped(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    candidate_id = new_candidate()
    with uow() as unit:
        promotion = unit.promotions.start(
            candidate_id, kind="promote", model="churn-classifier", target_env="production",
            previous_champion=None, now=NOW,
        )  # fmt: skip
        for step in (PromotionStep.VERIFY, PromotionStep.COPY_IMAGES):
            unit.promotions.record_step(promotion.id, step, StepStatus.RUNNING, NOW)
            unit.promotions.record_step(
                promotion.id, step, StepStatus.SUCCEEDED, NOW, details={"copied": 2}
            )
        unit.promotions.record_step(
            promotion.id, PromotionStep.COPY_SNAPSHOTS, StepStatus.RUNNING, NOW
        )
        unit.commit()
    # The process died during copy_snapshots; a new one reads where to resume.
    with uow() as unit:
        statuses = unit.promotions.step_statuses(promotion.id)
        assert next_step(statuses) is PromotionStep.COPY_SNAPSHOTS
        retry = unit.promotions.record_step(
            promotion.id, PromotionStep.COPY_SNAPSHOTS, StepStatus.RUNNING, NOW
        )
        assert retry.attempts == 2
        unit.commit()


def test_slack_references_are_found_again(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    candidate_id = new_candidate()
    with uow() as unit:
        unit.slack_messages.remember(candidate_id, "card", "C0ML00001", "1764230400.000100")
        unit.commit()
    with uow() as unit:
        card = unit.slack_messages.find(candidate_id)
        assert card is not None
        assert (card.channel, card.ts) == ("C0ML00001", "1764230400.000100")
        assert unit.slack_messages.find(candidate_id, "digest") is None


def test_the_outbox_delivers_each_thread_in_order_and_once(
    new_candidate: Callable[..., int], uow: Callable[[], UnitOfWork]
) -> None:
    candidate_id = new_candidate()
    with uow() as unit:
        for text in ("copying images", "copying snapshots"):
            unit.outbox.enqueue(
                "chat.postMessage", {"channel": "C0ML00001", "text": text},
                ordering_key=f"candidate:{candidate_id}", now=NOW, candidate_id=candidate_id,
                dedupe_key=f"{candidate_id}:{text}",
            )  # fmt: skip
        again = unit.outbox.enqueue(
            "chat.postMessage", {"channel": "C0ML00001", "text": "copying images"},
            ordering_key=f"candidate:{candidate_id}", now=NOW,
            dedupe_key=f"{candidate_id}:copying images",
        )  # fmt: skip
        assert again is None
        unit.outbox.enqueue(
            "chat.postMessage", {"channel": "C0ML00002", "text": "digest"},
            ordering_key="digest:C0ML00002", now=NOW,
        )  # fmt: skip
        unit.commit()

    with uow() as unit:
        due = unit.outbox.due(NOW)
        assert [r.payload["text"] for r in due] == ["copying images", "digest"]
        # Slack said 429: the head waits, and so does the message queued behind it.
        unit.outbox.retry_later(due[0], NOW, timedelta(seconds=30), "ratelimited")
        unit.outbox.delivered(due[1], NOW)
        unit.commit()
    with uow() as unit:
        assert unit.outbox.due(NOW + timedelta(seconds=10)) == []
        later = unit.outbox.due(NOW + timedelta(seconds=30))
        assert [(r.payload["text"], r.attempts) for r in later] == [("copying images", 1)]
        unit.outbox.delivered(later[0], NOW)
        unit.commit()
    with uow() as unit:
        assert [r.payload["text"] for r in unit.outbox.due(NOW)] == ["copying snapshots"]
