"""`GET /metrics` of a running `gatekeeper serve`, scraped and parsed as Prometheus would."""

from __future__ import annotations

from datetime import timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.domain.promotion import CandidateState, PromotionStep, StepStatus
from tests.e2e.conftest import Bot
from tests.e2e.test_slack_interface import _card, _propose


def scrape(bot: Bot) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample by name, then by its labels (sorted), as Prometheus's own parser reads it."""
    assert bot.url is not None
    answer = httpx.get(f"{bot.url}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def test_a_scrape_reports_what_happened(bot: Bot) -> None:
    # Slack answers the card's first post with 429 three times: the client's own two retries
    # and then the outbox's rescheduling.
    bot.slack.rate_limit("chat.postMessage", retry_after=1, times=3)
    candidate_id = _propose(bot)
    _card(bot, timeout=20)

    gatekeeper = bot.gatekeeper
    started = gatekeeper.now()
    with gatekeeper.unit_of_work() as uow:
        promotion = uow.promotions.start(
            candidate_id, kind="promote", model="churn-classifier", target_env="production",
            previous_champion="5", now=started,
        )  # fmt: skip
        for step, begun, ended, status in [
            (PromotionStep.VERIFY, 0.0, 1.5, StepStatus.SUCCEEDED),
            (PromotionStep.COPY_IMAGES, 1.5, 5.5, StepStatus.FAILED),
        ]:
            uow.promotions.record_step(
                promotion.id, step, StepStatus.RUNNING, started + timedelta(seconds=begun)
            )
            uow.promotions.record_step(
                promotion.id, step, status, started + timedelta(seconds=ended)
            )
        uow.promotions.finish(promotion, "failed", started + timedelta(seconds=6))
        uow.commit()

    samples = scrape(bot)

    candidates = samples["gatekeeper_candidates"]
    assert {dict(labels)["state"] for labels in candidates} == {s.value for s in CandidateState}
    assert candidates[(("state", "pending"),)] == 1
    assert sum(candidates.values()) == 1

    promotions = samples["gatekeeper_promotions"]
    assert len(promotions) == 2 * 4  # every kind and state, zeros included
    assert promotions[(("kind", "promote"), ("state", "failed"))] == 1
    assert sum(promotions.values()) == 1

    counts = samples["gatekeeper_promotion_step_duration_seconds_count"]
    sums = samples["gatekeeper_promotion_step_duration_seconds_sum"]
    verify = (("status", "succeeded"), ("step", "verify"))
    copy_images = (("status", "failed"), ("step", "copy_images"))
    assert counts == {verify: 1, copy_images: 1}
    assert abs(sums[verify] - 1.5) < 0.01
    assert abs(sums[copy_images] - 4.0) < 0.01

    calls = samples["gatekeeper_slack_api_calls_total"]
    assert calls[(("method", "chat.postMessage"), ("outcome", "rate_limited"))] == 1
    assert calls[(("method", "chat.postMessage"), ("outcome", "ok"))] == 1
    retries = samples["gatekeeper_slack_api_retries_total"]
    assert retries[(("method", "chat.postMessage"),)] == 1

    assert samples["gatekeeper_database_up"][()] == 1
    assert samples["gatekeeper_outbox_undelivered"][()] == 0
    assert samples["gatekeeper_outbox_oldest_undelivered_age_seconds"][()] == 0
    assert samples["gatekeeper_slack_messages_failed"][()] == 0


def test_undelivered_and_refused_messages_are_counted(bot: Bot) -> None:
    # A channel that does not exist: Slack refuses the message for good; it stays in the outbox.
    gatekeeper = bot.gatekeeper
    with gatekeeper.unit_of_work() as uow:
        uow.outbox.enqueue(
            "chat.postMessage", {"channel": "C0NOWHERE", "text": "lost"},
            ordering_key="test", now=gatekeeper.now(),
        )  # fmt: skip
        uow.commit()

    def refused() -> bool:
        return scrape(bot)["gatekeeper_slack_messages_failed"][()] == 1

    bot.slack.wait_for(lambda _: refused(), timeout=10)
    samples = scrape(bot)
    assert samples["gatekeeper_outbox_undelivered"][()] == 1
    assert samples["gatekeeper_outbox_oldest_undelivered_age_seconds"][()] > 0
    calls = samples["gatekeeper_slack_api_calls_total"]
    assert calls[(("method", "chat.postMessage"), ("outcome", "error"))] == 1
    # Refused for good is not retried soon: no retry was counted (no sample at all).
    assert samples.get("gatekeeper_slack_api_retries_total", {}) == {}
