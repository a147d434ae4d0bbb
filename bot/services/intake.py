"""Intake: versions registered in MLflow become candidates, by webhook or by polling, once each.

A webhook delivery is kept before MLflow is answered and acted on afterwards; polling lists
recent versions and retries deliveries that were never acted on. Both re-read the version from
MLflow, apply ``bot.domain.intake``'s rules, and offer it: one ``intake_offers`` row per version
and target, written in the candidate's own transaction, so whoever comes second does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.config import GatekeeperConfig
from bot.domain.candidates import PROMOTE_TAG, Candidate, parse_bundle
from bot.domain.intake import (
    Answer,
    Asks,
    BadAsk,
    MalformedEvent,
    NotAsking,
    RegistryEvent,
    parse_event,
    requested_target,
    worth_a_look,
)
from bot.domain.promotion import CandidateState
from bot.services.candidates import Champion, propose
from bot.services.notify import Notifier
from bot.services.registry import (
    ModelNotFound,
    ModelRegistry,
    ModelVersionInfo,
    RegistryError,
    VersionNotFound,
)
from bot.store.models import CandidateRow
from bot.store.repositories import AlreadyOffered, CandidateExists, UnitOfWork

logger = logging.getLogger(__name__)

#: How many of a model's newest versions one poll looks at, per environment.
POLL_LIMIT = 50
#: A delivery younger than this is left to the request that received it.
RETRY_AFTER = timedelta(minutes=1)


class Outcome(StrEnum):
    PROPOSED = "proposed"
    DUPLICATE = "duplicate"  # offered before, or already a live candidate
    IGNORED = "ignored"  # not a model Gatekeeper promotes, or the version asks for nothing
    INVALID = "invalid"  # the version asks for something impossible (a bad gatekeeper.promote)
    FAILED = "failed"  # MLflow could not be read; tried again by the next poll


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str
    candidate_id: int | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Intake:
    config: GatekeeperConfig
    registries: Mapping[str, ModelRegistry]
    unit_of_work: Callable[[], UnitOfWork]
    notifier: Notifier
    #: An approved candidate waits: wake the promotion runner, if this process has one.
    promote_later: Callable[[int], None] = lambda candidate_id: None
    #: Messages wait in the outbox: deliver them now rather than at the next tick.
    told: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = _utc_now

    def environment_named(self, name: str | None) -> str | None:
        """The environment a webhook URL names (the path's first when none); None if unknown."""
        if name is None or name == "":
            return self.config.promotion_path[0]
        return name if name in self.config.promotion_path else None

    def receive(
        self,
        environment: str,
        delivery_id: str,
        event: RegistryEvent,
        payload: dict[str, Any],
        now: datetime,
    ) -> None:
        """Keep a verified delivery, before MLflow is answered; ``AlreadyReceived`` for a replay."""
        with self.unit_of_work() as uow:
            uow.webhook_deliveries.add(delivery_id, environment, event.kind, payload, now)
            uow.commit()

    def refuse(self, source: str, delivery_id: str | None, reason: str, now: datetime) -> None:
        """Audit a delivery turned away; it changes nothing else."""
        with self.unit_of_work() as uow:
            uow.audit.append(
                source, "webhook.refused", f"delivery:{delivery_id or 'unknown'}",
                {"reason": reason, "delivery_id": delivery_id}, at=now,
            )  # fmt: skip
            uow.commit()

    def process(self, delivery_id: str, now: datetime | None = None) -> Result | None:
        """Act on a kept delivery not yet acted on; None when there is nothing to do."""
        now = now or self.clock()
        with self.unit_of_work().reading() as uow:
            row = uow.webhook_deliveries.get(delivery_id)
            if row is None or row.processed_at is not None:
                return None
            environment, payload = row.environment, dict(row.payload)
        try:
            result = self._act_on(environment, parse_event(payload), delivery_id, now)
        except MalformedEvent as error:  # checked when received; only an edited row gets here
            result = Result(Outcome.IGNORED, str(error))
        except RegistryError as error:
            result = Result(Outcome.FAILED, str(error))
        except Exception as error:
            logger.exception("acting on MLflow delivery %s failed", delivery_id)
            result = Result(Outcome.FAILED, f"unexpected error: {error}")
        with self.unit_of_work() as uow:
            row = uow.webhook_deliveries.get(delivery_id)
            assert row is not None, "deliveries are never deleted"
            done = None if result.outcome is Outcome.FAILED else now
            uow.webhook_deliveries.settle(row, result.outcome.value, result.detail, done)
            uow.commit()
        return result

    def poll(self, now: datetime) -> int:
        """Offer every recent version that asks for a candidate; how many were proposed."""
        since = now - self.config.intake.poll_lookback
        proposed = 0
        with self.unit_of_work().reading() as uow:
            left = uow.webhook_deliveries.unprocessed(since, now - RETRY_AFTER)
        for delivery_id in left:
            result = self.process(delivery_id, now)
            proposed += result is not None and result.outcome is Outcome.PROPOSED
        for environment in self.config.promotion_path[:-1]:
            for model in self.config.models:
                proposed += self._poll_model(environment, model, since, now)
        return proposed

    def _poll_model(self, environment: str, model: str, since: datetime, now: datetime) -> int:
        registry = self.registries[environment]
        try:
            listed = registry.recent_versions(model, since, POLL_LIMIT)
        except RegistryError as error:
            logger.warning("polling %s for %s: %s", environment, model, error)
            return 0
        proposed = 0
        for version in listed:
            answer = self._answer(environment, model, version.tags, version.aliases)
            if not isinstance(answer, Asks) or self._offered(
                environment, model, version.version, answer.target
            ):
                continue
            try:
                info = registry.get_version(model, version.version)
            except RegistryError as error:
                logger.warning("polling %s for %s: %s", environment, model, error)
                continue
            result = self._offer_if_asked(environment, info, "poll", now)
            proposed += result.outcome is Outcome.PROPOSED
        return proposed

    def _act_on(
        self, environment: str, event: RegistryEvent, delivery_id: str, now: datetime
    ) -> Result:
        if not event.about_a_version or event.name is None or event.version is None:
            return Result(Outcome.IGNORED, f"{event.kind} events are not about model versions")
        model = self._model_named(environment, event.name)
        if model is None:
            return Result(Outcome.IGNORED, f"{event.name!r} is not a model Gatekeeper promotes")
        alias = self.config.models[model].champion_alias
        if not worth_a_look(event, self.config.intake.request_alias, alias):
            asked = event.key or event.alias
            return Result(Outcome.IGNORED, f"{event.kind} ({asked!r}) asks for nothing")
        try:
            info = self.registries[environment].get_version(model, event.version)
        except (ModelNotFound, VersionNotFound) as error:
            return Result(Outcome.IGNORED, f"gone since: {error}")
        result = self._offer_if_asked(environment, info, "webhook", now)
        if result.outcome is Outcome.INVALID:
            with self.unit_of_work() as uow:
                uow.audit.append(
                    f"mlflow:{environment}", "webhook.invalid_request",
                    f"delivery:{delivery_id}",
                    {"model": model, "version": info.version, "reason": result.detail}, at=now,
                )  # fmt: skip
                uow.commit()
        return result

    def _offer_if_asked(
        self, environment: str, info: ModelVersionInfo, via: str, now: datetime
    ) -> Result:
        answer = self._answer(environment, info.model, info.tags, info.aliases)
        match answer:
            case NotAsking(reason=reason):
                return Result(Outcome.IGNORED, reason)
            case BadAsk(reason=reason):
                return Result(Outcome.INVALID, reason)
            case Asks(target=target):
                return self.offer(environment, info, target, via, now)

    def offer(
        self, environment: str, info: ModelVersionInfo, target: str, via: str, now: datetime
    ) -> Result:
        """Propose the version for ``target``, unless offered before or already a candidate."""
        model, version = info.model, info.version
        if self._offered(environment, model, version, target):
            return Result(Outcome.DUPLICATE, f"already offered for {target}")
        alias = self.config.models[model].champion_alias
        try:
            held = self.registries[target].champion(model, alias)
        except ModelNotFound:
            held = None  # the first promotion into the target creates the model there
        candidate = Candidate(
            model=model,
            version=version,
            source_env=environment,
            target_env=target,
            metrics=dict(info.metrics),
            bundle=parse_bundle(_bundle_tags(info.tags)),
            created_at=info.created_at,
        )
        states: list[str] = []

        def keep_offer(uow: UnitOfWork, row: CandidateRow) -> None:
            uow.intake_offers.add(
                environment, model, version, target, via=via, candidate_id=row.id, now=now
            )
            states.append(row.state)

        try:
            candidate_id = propose(
                self.unit_of_work, self.config.policy_for, self.notifier, candidate,
                Champion(held.version, dict(held.metrics)) if held else None,
                actor=f"mlflow:{environment}", now=now, on_stored=keep_offer,
            )  # fmt: skip
        except AlreadyOffered:
            return Result(Outcome.DUPLICATE, f"already offered for {target}")
        except CandidateExists as error:
            self._remember_offer(environment, model, version, target, via, error.existing.id, now)
            return Result(Outcome.DUPLICATE, str(error), error.existing.id)
        self.told()
        if states == [CandidateState.APPROVED.value]:
            self.promote_later(candidate_id)
        return Result(
            Outcome.PROPOSED, f"candidate #{candidate_id} for {target} ({states[0]})", candidate_id
        )

    def _remember_offer(
        self,
        environment: str,
        model: str,
        version: str,
        target: str,
        via: str,
        candidate_id: int,
        now: datetime,
    ) -> None:
        """A live candidate answered the request already: do not read MLflow for it again."""
        with self.unit_of_work() as uow:
            try:
                uow.intake_offers.add(
                    environment, model, version, target, via=via, candidate_id=candidate_id,
                    now=now,
                )  # fmt: skip
            except AlreadyOffered:
                return
            uow.commit()

    def _offered(self, environment: str, model: str, version: str, target: str) -> bool:
        with self.unit_of_work().reading() as uow:
            return uow.intake_offers.find(environment, model, version, target) is not None

    def _answer(
        self, environment: str, model: str, tags: Mapping[str, str], aliases: tuple[str, ...]
    ) -> Answer:
        return requested_target(
            self.config.promotion_path, environment, tags, aliases,
            request_alias=self.config.intake.request_alias,
            champion_alias=self.config.models[model].champion_alias,
        )  # fmt: skip

    def _model_named(self, environment: str, registered_name: str) -> str | None:
        """Gatekeeper's model registered under that name in the environment's MLflow."""
        spec = self.config.environments[environment]
        for model in self.config.models:
            if spec.registered_name(model) == registered_name:
                return model
        return None


def _bundle_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags the bundle is read from: an empty ``gatekeeper.promote`` already meant "next"."""
    return {k: v for k, v in tags.items() if not (k == PROMOTE_TAG and not v.strip())}
