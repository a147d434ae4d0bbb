"""The figures `/metrics` reads from the database, on SQLite and PostgreSQL, and what a scrape
answers when the database is away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot import metrics
from bot.bootstrap import build
from bot.config import load_config, load_settings
from bot.domain.policy import VerdictKind
from bot.domain.promotion import PromotionStep, StepStatus
from bot.emulator import SlackEmulator
from bot.services.delivery import deliver_due
from bot.store.repositories import UnitOfWork
from bot.web import create_web_app
from handlers.app import build_app
from tests.conftest import NOW
from tests.e2e.conftest import CONFIG

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse(text: bytes) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def calls(samples: Samples, outcome: str) -> float:
    found = samples.get("gatekeeper_slack_api_calls_total", {})
    return found.get((("method", "chat.postMessage"), ("outcome", outcome)), 0.0)


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(bot_token="xoxb-metrics") as emulator:
        emulator.workspace.add_channel("C0ML00001", "ml-models")
        yield emulator


def test_the_database_figures_follow_what_is_stored(
    engine: Engine,
    uow: Callable[[], UnitOfWork],
    new_candidate: Callable[..., int],
    slack: SlackEmulator,
) -> None:
    first = new_candidate("7")
    new_candidate("8")
    new_candidate("9", kind=VerdictKind.BLOCKED)
    with uow() as unit:
        promotion = unit.promotions.start(
            first, kind="promote", model="churn-classifier", target_env="production",
            previous_champion=None, now=NOW,
        )  # fmt: skip
        for step, begun, ended, status in [
            (PromotionStep.VERIFY, 0.0, 0.25, StepStatus.SUCCEEDED),
            (PromotionStep.COPY_IMAGES, 0.25, 12.25, StepStatus.SUCCEEDED),
        ]:
            unit.promotions.record_step(
                promotion.id, step, StepStatus.RUNNING, NOW + timedelta(seconds=begun)
            )
            unit.promotions.record_step(promotion.id, step, status, NOW + timedelta(seconds=ended))
        # A step under way has no duration yet.
        unit.promotions.record_step(
            promotion.id, PromotionStep.COPY_SNAPSHOTS, StepStatus.RUNNING, NOW
        )
        unit.outbox.enqueue(
            "chat.postMessage", {"channel": "C0ML00001", "text": "hello"},
            ordering_key="a", now=NOW - timedelta(seconds=30),
        )  # fmt: skip
        unit.outbox.enqueue(
            "chat.postMessage", {"channel": "C0NOWHERE", "text": "lost"},
            ordering_key="b", now=NOW - timedelta(seconds=90),
        )  # fmt: skip
        unit.commit()
    before = parse(metrics.render(engine, lambda: NOW))

    report = deliver_due(uow, WebClient(token="xoxb-metrics", base_url=slack.api_url), NOW)
    assert (report.sent, len(report.failed)) == (1, 1)
    after = parse(metrics.render(engine, lambda: NOW + timedelta(seconds=10)))

    candidates = after["gatekeeper_candidates"]
    assert candidates[(("state", "pending"),)] == 2
    assert candidates[(("state", "blocked"),)] == 1
    assert candidates[(("state", "promoted"),)] == 0
    assert after["gatekeeper_promotions"][(("kind", "promote"), ("state", "running"))] == 1
    counts = after["gatekeeper_promotion_step_duration_seconds_count"]
    sums = after["gatekeeper_promotion_step_duration_seconds_sum"]
    verify = (("status", "succeeded"), ("step", "verify"))
    copy_images = (("status", "succeeded"), ("step", "copy_images"))
    assert counts == {verify: 1, copy_images: 1}
    assert sums[verify] == pytest.approx(0.25, abs=1e-3)
    assert sums[copy_images] == pytest.approx(12.0, abs=1e-3)

    assert before["gatekeeper_outbox_undelivered"][()] == 2
    assert before["gatekeeper_outbox_oldest_undelivered_age_seconds"][()] == 90
    assert before["gatekeeper_slack_messages_failed"][()] == 0
    assert after["gatekeeper_outbox_undelivered"][()] == 1
    assert after["gatekeeper_outbox_oldest_undelivered_age_seconds"][()] == 100
    assert after["gatekeeper_slack_messages_failed"][()] == 1
    # This process's counters moved by what deliver_due did.
    assert calls(after, "ok") - calls(before, "ok") == 1
    assert calls(after, "error") - calls(before, "error") == 1
    assert after["gatekeeper_database_up"][()] == 1


def test_a_scrape_without_the_database_still_answers(tmp_path: Path, closed_port: int) -> None:
    """The web app over a database nobody answers at: /metrics 200, /readyz 503 naming it."""
    config = tmp_path / "gatekeeper.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with SlackEmulator(bot_token="xoxb-metrics") as slack:
        settings = load_settings(
            slack_bot_token="xoxb-metrics",
            slack_signing_secret="secret",
            slack_api_url=slack.api_url,
            database_url=f"postgresql+psycopg://nobody@127.0.0.1:{closed_port}/gatekeeper",
        )
        gatekeeper = build(settings, load_config(config))
        app = create_web_app(gatekeeper, build_app(gatekeeper))

        async def ask() -> tuple[httpx.Response, httpx.Response]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bot") as web:
                return await web.get("/metrics"), await web.get("/readyz")

        try:
            scraped, ready = asyncio.run(ask())
        finally:
            gatekeeper.close()
    assert scraped.status_code == 200
    samples = parse(scraped.content)
    assert samples["gatekeeper_database_up"][()] == 0
    assert "gatekeeper_candidates" not in samples  # unknown, rather than a made-up zero
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"] == {"ok": False, "reason": "the database did not answer "
                                  "(OperationalError)"}  # fmt: skip
    assert checks["slack"] == {"ok": True}
