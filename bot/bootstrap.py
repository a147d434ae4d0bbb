"""The one wiring point: settings and config in, a running Gatekeeper's parts out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.adapters.kfp import PipelineHostUnavailable
from bot.adapters.mlflow_copy import MlflowCopier, MlflowServer
from bot.adapters.mlflow_registry import MlflowRegistry
from bot.adapters.oci import ImageRegistries, ImageRegistry
from bot.adapters.oci.errors import RegistryUnavailable
from bot.adapters.pipelines import KfpRebuilder
from bot.adapters.slack import SlackMembership, make_web_client
from bot.adapters.snapshots import SnapshotStoreFailed, copy_snapshot
from bot.config import GatekeeperConfig, Settings
from bot.domain.approvals import Membership
from bot.domain.policy import Policy
from bot.scheduler import Scheduling, job_specs
from bot.services.delivery import DeliveryLoop
from bot.services.engine import Engine as PromotionSteps
from bot.services.intake import Intake
from bot.services.promotions import PromotionEngine, Promotions
from bot.services.registry import ModelRegistry, RegistryUnreachable
from bot.services.requests import Requests
from bot.services.runner import PromotionRunner
from bot.store.database import make_engine, make_session_factory
from bot.store.repositories import UnitOfWork
from bot.store.scheduler_lock import scheduler_lock
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
    intake: Intake
    #: Set in the process that promotes (the worker, or serve run as one process).
    promotions: Promotions | None = None
    runner: PromotionRunner | None = None
    #: Set in the process that may run digests, reminders and expiry (see ``bot.scheduler``).
    scheduling: Scheduling | None = None

    def promote_later(self, candidate_id: int) -> None:
        """An approved candidate is waiting: the runner (here or in the worker) picks it up."""
        if self.runner is not None:
            self.runner.wake()

    def now(self) -> datetime:
        return self.clock()

    def policy_for(self, environment: str) -> Policy:
        return self.config.policy_for(environment)

    def channel_for(self, model: str) -> str:
        return self.config.model(model).channel

    def start_working(self) -> None:
        """The worker's part (serve's too when it is alone): the schedule and promotions, both
        only while this process holds the schedule's lock. Two workers never run one promotion
        twice over: the one that stands by resumes what the other left, after it stopped."""
        self.start_scheduling()
        scheduling = self.scheduling
        assert scheduling is not None
        self.start_promoting(may_run=scheduling.active.is_set)

    def start_promoting(self, may_run: Callable[[], bool] = lambda: True) -> None:
        """Run promotions in this process while ``may_run`` says so (``start_working`` ties it
        to the schedule's lock; alone, this process is assumed to be the only promoter)."""
        assert self.promotions is not None
        self.runner = PromotionRunner(
            self.promotions, self.unit_of_work, after_each=self.delivery.wake, may_run=may_run
        ).start()
        self.runner.wake()  # finish whatever a stopped process left approved or promoting

    def start_scheduling(self) -> None:
        """Run the scheduled jobs here while no other process does; stand by while one does."""
        lock = scheduler_lock(self.engine)
        self.scheduling = Scheduling(self, job_specs(self.config), lock).start()

    def close(self) -> None:
        if self.scheduling is not None:
            self.scheduling.stop()
        if self.runner is not None:
            self.runner.stop()
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
        intake=Intake(
            config,
            registries,
            unit_of_work,
            notifier,
            promote_later=lambda candidate_id: gatekeeper.promote_later(candidate_id),
            told=lambda: gatekeeper.delivery.wake(),
            clock=clock,
        ),
    )
    gatekeeper.promotions = Promotions(
        unit_of_work, gatekeeper.notifier,
        promotion_engine or _engine(settings, config, unit_of_work, registries, clock),
        config.policy_for, gatekeeper.membership, clock,
    )  # fmt: skip
    return gatekeeper


def _engine(
    settings: Settings,
    config: GatekeeperConfig,
    unit_of_work: Callable[[], UnitOfWork],
    registries: Mapping[str, ModelRegistry],
    clock: Callable[[], datetime],
) -> PromotionSteps:
    """The real engine: each environment's MLflow, image registry (with its credentials),
    snapshot store and KFP."""
    hosts: dict[str, ImageRegistry] = {}
    for name, spec in config.environments.items():
        if spec.images is None:
            continue
        host = spec.images.partition("/")[0]
        auth = settings.registry_auth.get(name)
        if auth is None:
            hosts.setdefault(host, ImageRegistry(host))
            continue
        hosts[host] = ImageRegistry(
            host,
            username=auth.username,
            password=auth.password.get_secret_value() if auth.password else None,
            token=auth.token.get_secret_value() if auth.token else None,
        )
    servers = [MlflowServer(name, spec.mlflow) for name, spec in config.environments.items()]
    return PromotionSteps(
        config, unit_of_work, registries, MlflowCopier(servers), ImageRegistries(hosts.values()),
        copy_snapshot, KfpRebuilder(config), _transient, clock,
    )  # fmt: skip


def _transient(error: Exception) -> bool:
    return isinstance(
        error, RegistryUnavailable | RegistryUnreachable | SnapshotStoreFailed |
        PipelineHostUnavailable,
    )  # fmt: skip
