"""The one wiring point: settings and config in, a running Gatekeeper's parts out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.adapters.mlflow_registry import MlflowRegistry
from bot.adapters.slack import SlackMembership, make_web_client
from bot.config import GatekeeperConfig, Settings
from bot.domain.approvals import Membership
from bot.domain.policy import Policy
from bot.services.delivery import DeliveryLoop
from bot.services.promotions import PromotionEngine, Promotions
from bot.services.requests import Requests
from bot.store.database import make_engine, make_session_factory
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier

logger = logging.getLogger("gatekeeper")


@dataclass
class Gatekeeper:
    settings: Settings
    config: GatekeeperConfig
    engine: Engine
    unit_of_work: Callable[[], UnitOfWork]
    slack: WebClient
    membership: Membership
    notifier: SlackNotifier
    delivery: DeliveryLoop
    clock: Callable[[], datetime]
    requests: Requests
    #: None until an engine is configured: approved candidates then wait, and rollback says so.
    promotions: Promotions | None = None
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="promotion")
    )

    def promote_later(self, candidate_id: int) -> None:
        """Run an approved candidate's promotion off the request thread."""
        if self.promotions is not None:
            self.background.submit(self._promote, candidate_id)

    def _promote(self, candidate_id: int) -> None:
        assert self.promotions is not None
        try:
            self.promotions.promote(candidate_id)
        except Exception:
            logger.exception("promotion of candidate %s stopped unexpectedly", candidate_id)
        self.delivery.wake()

    def now(self) -> datetime:
        return self.clock()

    def policy_for(self, environment: str) -> Policy:
        return self.config.policy_for(environment)

    def channel_for(self, model: str) -> str:
        return self.config.model(model).channel

    def close(self) -> None:
        self.background.shutdown(wait=True)
        self.delivery.stop()
        self.engine.dispose()


def build(
    settings: Settings,
    config: GatekeeperConfig,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    promotion_engine: PromotionEngine | None = None,
) -> Gatekeeper:
    """Wire every part from settings and config; nothing starts until ``delivery.start()``."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    slack = make_web_client(token, settings.slack_api_url)
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)

    def unit_of_work() -> UnitOfWork:
        return UnitOfWork(sessions)

    notifier = SlackNotifier(lambda m: gatekeeper.channel_for(m), config.policy_for)
    registries = {
        name: MlflowRegistry(name, spec.mlflow, spec.model_name)
        for name, spec in config.environments.items()
    }
    gatekeeper = Gatekeeper(
        settings=settings,
        config=config,
        engine=engine,
        unit_of_work=unit_of_work,
        slack=slack,
        membership=SlackMembership(slack),
        notifier=notifier,
        delivery=DeliveryLoop(unit_of_work, slack),
        clock=clock,
        requests=Requests(config, registries, unit_of_work, notifier),
    )
    if promotion_engine is not None:
        gatekeeper.promotions = Promotions(
            unit_of_work, gatekeeper.notifier, promotion_engine, config.policy_for,
            gatekeeper.membership, clock,
        )  # fmt: skip
    return gatekeeper
