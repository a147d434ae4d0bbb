"""Intake against real MLflow servers: webhook deliveries and polling offer each version once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient

from bot.adapters.mlflow_registry import MlflowRegistry
from bot.config import GatekeeperConfig, parse_config
from bot.domain.candidates import Candidate, parse_bundle
from bot.domain.intake import parse_event
from bot.domain.promotion import CandidateState
from bot.services.candidates import propose
from bot.services.intake import Intake, Outcome
from bot.store.models import AuditRow, CandidateRow, IntakeOfferRow, WebhookDeliveryRow
from bot.store.repositories import AlreadyReceived, UnitOfWork
from handlers.notifier import SlackNotifier
from tests.mlflow_fixtures import Server

CHANNEL = "C0ML00001"
LEAD = "U0LEAD001"
DIGEST = "sha256:" + "cd" * 32
BUNDLE = {
    "gatekeeper.image.serving": f"127.0.0.1:5000/dev/churn-serving@{DIGEST}",
    "gatekeeper.pipeline": "pipeline/churn.yaml",
}


def _config(servers: dict[str, str], model: str, staging_approvals: int = 1) -> GatekeeperConfig:
    return parse_config(
        {
            "environments": {name: {"mlflow": url} for name, url in servers.items()},
            "promotion_path": ["dev", "staging", "production"],
            "models": {model: {"channel": CHANNEL}},
            "policies": {
                "staging": {
                    "gates": ["accuracy >= 0.90"],
                    "approvals": staging_approvals,
                    "approvers": [LEAD],
                },
                "production": {"approvals": 1, "approvers": [LEAD]},
            },
        }
    )


@dataclass
class World:
    """An intake over the session's MLflow servers, one fresh model name, and a database."""

    model: str
    clients: dict[str, MlflowClient]
    uow: Callable[[], UnitOfWork]
    servers: dict[str, str]
    promoted: list[int] = field(default_factory=list)

    def intake(self, staging_approvals: int = 1, **servers: str) -> Intake:
        config = _config({**self.servers, **servers}, self.model, staging_approvals)
        registries = {n: MlflowRegistry(n, s.mlflow) for n, s in config.environments.items()}
        notifier = SlackNotifier(lambda _: CHANNEL, config.policy_for)
        return Intake(config, registries, self.uow, notifier, promote_later=self.promoted.append)

    def register(
        self,
        environment: str = "dev",
        tags: dict[str, str] | None = None,
        accuracy: float = 0.94,
    ) -> str:
        client = self.clients[environment]
        if not client.search_registered_models(filter_string=f"name = '{self.model}'"):
            client.create_registered_model(self.model)
        experiment = client.get_experiment_by_name("intake")
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment("intake")
        )
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "accuracy", accuracy)
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(
            self.model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
            tags=BUNDLE if tags is None else tags,
        )  # fmt: skip
        return str(version.version)

    def deliver(
        self, intake: Intake, data: dict[str, Any], entity: str = "model_version",
        action: str = "created", environment: str = "dev",
    ) -> str:  # fmt: skip
        """Keep a delivery as the endpoint does after verifying it; its id."""
        payload = {"entity": entity, "action": action, "timestamp": "now", "data": data}
        delivery_id = str(uuid.uuid4())
        intake.receive(environment, delivery_id, parse_event(payload), payload, _now())
        return delivery_id

    def candidates(self) -> list[CandidateRow]:
        with self.uow() as uow:
            return list(uow.session.scalars(sa.select(CandidateRow).order_by(CandidateRow.id)))

    def offers(self) -> list[IntakeOfferRow]:
        with self.uow() as uow:
            return list(uow.session.scalars(sa.select(IntakeOfferRow)))

    def delivery(self, delivery_id: str) -> WebhookDeliveryRow:
        with self.uow() as uow:
            row = uow.session.get(WebhookDeliveryRow, delivery_id)
            assert row is not None
            return row

    def audit(self, action: str) -> list[AuditRow]:
        with self.uow() as uow:
            return list(uow.session.scalars(sa.select(AuditRow).where(AuditRow.action == action)))


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def world(mlflow_environments: dict[str, Server], uow: Callable[[], UnitOfWork]) -> Iterator[World]:
    return World(
        model=f"intake-{uuid.uuid4().hex[:10]}",
        clients={name: server.client for name, server in mlflow_environments.items()},
        uow=uow,
        servers={name: server.url for name, server in mlflow_environments.items()},
    )


def test_a_version_with_bundle_tags_becomes_a_candidate_for_the_next_environment(
    world: World,
) -> None:
    intake = world.intake()
    version = world.register()
    delivery = world.deliver(intake, {"name": world.model, "version": version, "tags": BUNDLE})

    result = intake.process(delivery)

    assert result is not None
    assert result.outcome is Outcome.PROPOSED
    [candidate] = world.candidates()
    assert (candidate.model, candidate.version) == (world.model, version)
    assert (candidate.source_env, candidate.target_env) == ("dev", "staging")
    assert candidate.state == CandidateState.PENDING.value
    assert candidate.metrics == {"accuracy": 0.94}  # re-read from MLflow, not the payload
    assert candidate.bundle["images"]["serving"].endswith(DIGEST)
    [offer] = world.offers()
    assert (offer.via, offer.candidate_id, offer.target_env) == ("webhook", candidate.id, "staging")
    settled = world.delivery(delivery)
    assert settled.outcome == "proposed"
    assert settled.processed_at is not None
    assert f"candidate #{candidate.id}" in (settled.detail or "")
    assert world.promoted == []  # it waits for an approver
    assert intake.process(delivery) is None  # acted on once


def test_polling_finds_a_version_no_webhook_announced_and_offers_it_once(world: World) -> None:
    intake = world.intake()
    version = world.register()

    assert intake.poll(_now()) == 1
    assert intake.poll(_now()) == 0

    [candidate] = world.candidates()
    assert candidate.version == version
    [offer] = world.offers()
    assert offer.via == "poll"


def test_a_webhook_and_a_poll_for_one_version_give_one_candidate(world: World) -> None:
    intake = world.intake()
    version = world.register()
    delivery = world.deliver(intake, {"name": world.model, "version": version})
    first = intake.process(delivery)

    assert first is not None
    assert first.outcome is Outcome.PROPOSED
    assert intake.poll(_now()) == 0
    # And the other way round: the webhook arriving after the poll offered the version.
    later = world.register()
    assert intake.poll(_now()) == 1
    second = intake.process(world.deliver(intake, {"name": world.model, "version": later}))

    assert second is not None
    assert second.outcome is Outcome.DUPLICATE
    assert [c.version for c in world.candidates()] == [version, later]
    assert sorted((o.version, o.via) for o in world.offers()) == [
        (version, "webhook"), (later, "poll"),
    ]  # fmt: skip


def test_an_auto_approved_candidate_is_handed_to_the_promotion_runner(world: World) -> None:
    intake = world.intake(staging_approvals=0)
    version = world.register()

    result = intake.process(world.deliver(intake, {"name": world.model, "version": version}))

    assert result is not None
    assert result.outcome is Outcome.PROPOSED
    [candidate] = world.candidates()
    assert candidate.state == CandidateState.APPROVED.value
    assert world.promoted == [candidate.id]


def test_a_failing_gate_is_proposed_blocked_with_its_reason(world: World) -> None:
    intake = world.intake()
    world.register(accuracy=0.5)

    assert intake.poll(_now()) == 1

    [candidate] = world.candidates()
    assert candidate.state == CandidateState.BLOCKED.value
    assert "accuracy" in " ".join(candidate.verdict["reasons"])


@pytest.mark.parametrize(
    ("tags", "detail"),
    [
        ({"owner": "dana"}, "no gatekeeper.* tags"),
        ({**BUNDLE, "gatekeeper.lineage.promotion_id": "7"}, "Gatekeeper's own copy"),
    ],
)
def test_versions_asking_for_nothing_are_ignored(
    world: World, tags: dict[str, str], detail: str
) -> None:
    intake = world.intake()
    version = world.register(tags=tags)

    result = intake.process(world.deliver(intake, {"name": world.model, "version": version}))

    assert result is not None
    assert result.outcome is Outcome.IGNORED
    assert detail in result.detail
    assert intake.poll(_now()) == 0
    assert world.candidates() == []
    assert world.offers() == []


def test_models_gatekeeper_does_not_promote_and_other_events_are_ignored(world: World) -> None:
    intake = world.intake()
    version = world.register()
    other = world.deliver(intake, {"name": "someone-elses-model", "version": "1"})
    prompt = world.deliver(intake, {"name": "a-prompt"}, entity="prompt", action="created")
    tag = world.deliver(
        intake, {"name": world.model, "version": version, "key": "owner", "value": "dana"},
        entity="model_version_tag", action="set",
    )  # fmt: skip
    alias = world.deliver(
        intake, {"name": world.model, "version": version, "alias": "nightly"},
        entity="model_version_alias", action="created",
    )  # fmt: skip

    outcomes = {d: intake.process(d) for d in (other, prompt, tag, alias)}

    assert {d: r.outcome if r else None for d, r in outcomes.items()} == dict.fromkeys(
        outcomes, Outcome.IGNORED
    )
    assert "is not a model Gatekeeper promotes" in (world.delivery(other).detail or "")
    assert world.candidates() == []


@pytest.mark.parametrize("odd", ["owner\x00", "\ud800"], ids=["nul", "lone-surrogate"])
def test_an_event_with_text_no_database_keeps_is_ignored_all_the_same(
    world: World, odd: str
) -> None:
    # The detail kept with the delivery quotes what was asked: PostgreSQL keeps no NUL, and
    # neither database a lone surrogate (JSON's "\\ud800" reads as one).
    intake = world.intake()
    version = world.register()
    tag = world.deliver(
        intake, {"name": world.model, "version": version, "key": odd, "value": ""},
        entity="model_version_tag", action="set",
    )  # fmt: skip
    alias = world.deliver(
        intake, {"name": world.model, "version": version, "alias": odd},
        entity="model_version_alias", action="created",
    )  # fmt: skip

    for delivery_id in (tag, alias):
        result = intake.process(delivery_id)
        assert result is not None
        assert result.outcome is Outcome.IGNORED
        assert world.delivery(delivery_id).processed_at is not None
        assert "asks for nothing" in (world.delivery(delivery_id).detail or "")


def test_the_promote_tag_and_the_request_alias_ask_for_the_next_environment(world: World) -> None:
    intake = world.intake()
    client = world.clients["dev"]
    tagged = world.register(tags={})
    client.set_model_version_tag(world.model, tagged, "gatekeeper.promote", "")
    aliased = world.register(tags={})
    client.set_registered_model_alias(world.model, "challenger", aliased)

    tag_result = intake.process(
        world.deliver(
            intake,
            {"name": world.model, "version": tagged, "key": "gatekeeper.promote", "value": ""},
            entity="model_version_tag",
            action="set",
        )
    )
    alias_result = intake.process(
        world.deliver(
            intake,
            {"name": world.model, "version": aliased, "alias": "challenger"},
            entity="model_version_alias",
            action="created",
        )
    )

    assert tag_result is not None
    assert tag_result.outcome is Outcome.PROPOSED
    assert alias_result is not None
    assert alias_result.outcome is Outcome.PROPOSED
    by_version = {c.version: c for c in world.candidates()}
    assert {v: c.target_env for v, c in by_version.items()} == {
        tagged: "staging", aliased: "staging",
    }  # fmt: skip
    # An empty gatekeeper.promote meant "the next environment": not a problem in the bundle.
    assert by_version[tagged].bundle["problems"] == []


@pytest.mark.parametrize(
    ("value", "said"),
    [("prod", "not on the promotion path"), ("dev", "not after dev")],
)
def test_a_bad_promote_tag_proposes_nothing_and_is_audited(
    world: World, value: str, said: str
) -> None:
    intake = world.intake()
    version = world.register(tags={**BUNDLE, "gatekeeper.promote": value})

    delivery = world.deliver(intake, {"name": world.model, "version": version})
    result = intake.process(delivery)

    assert result is not None
    assert result.outcome is Outcome.INVALID
    assert said in result.detail
    assert world.delivery(delivery).outcome == "invalid"
    [audited] = world.audit("webhook.invalid_request")
    assert audited.details["reason"] == result.detail
    assert audited.actor == "mlflow:dev"
    assert intake.poll(_now()) == 0
    assert world.candidates() == []


def test_gatekeepers_copy_goes_on_once_champion_when_asked_for_further(world: World) -> None:
    intake = world.intake()
    client = world.clients["staging"]
    tags = {**BUNDLE, "gatekeeper.promote": "production", "gatekeeper.lineage.promotion_id": "3"}
    version = world.register("staging", tags)
    created = world.deliver(
        intake, {"name": world.model, "version": version}, environment="staging"
    )

    waiting = intake.process(created)
    client.set_registered_model_alias(world.model, "champion", version)
    became_champion = world.deliver(
        intake, {"name": world.model, "version": version, "alias": "champion"},
        entity="model_version_alias", action="created", environment="staging",
    )  # fmt: skip
    proposed = intake.process(became_champion)

    assert waiting is not None
    assert waiting.outcome is Outcome.IGNORED
    assert "once it is the champion" in waiting.detail
    assert proposed is not None
    assert proposed.outcome is Outcome.PROPOSED
    [candidate] = world.candidates()
    assert (candidate.source_env, candidate.target_env) == ("staging", "production")


def test_a_live_candidate_made_by_a_person_makes_the_offer_a_no_op(world: World) -> None:
    intake = world.intake()
    version = world.register()
    candidate = Candidate(
        model=world.model, version=version, source_env="dev", target_env="staging",
        metrics={"accuracy": 0.94}, bundle=parse_bundle(BUNDLE), requester=LEAD,
    )  # fmt: skip
    existing = propose(
        world.uow, intake.config.policy_for, intake.notifier, candidate, None, actor=LEAD,
        now=_now(),
    )  # fmt: skip

    result = intake.process(world.deliver(intake, {"name": world.model, "version": version}))

    assert result is not None
    assert result.outcome is Outcome.DUPLICATE
    assert result.candidate_id == existing
    assert [c.id for c in world.candidates()] == [existing]
    [offer] = world.offers()
    assert offer.candidate_id == existing
    assert intake.poll(_now()) == 0


def test_an_unreachable_mlflow_leaves_the_delivery_for_the_next_poll(
    world: World, closed_port: int
) -> None:
    down = world.intake(dev=f"http://127.0.0.1:{closed_port}")
    version = world.register()
    delivery = world.deliver(down, {"name": world.model, "version": version})

    failed = down.process(delivery)

    assert failed is not None
    assert failed.outcome is Outcome.FAILED
    assert "cannot be reached" in failed.detail
    left = world.delivery(delivery)
    assert left.processed_at is None
    assert left.outcome == "failed"
    assert world.offers() == []
    assert world.candidates() == []

    # MLflow is back; the poll retries the delivery before listing versions, then finds it
    # offered already.
    assert world.intake().poll(_now() + timedelta(minutes=2)) == 1
    assert world.delivery(delivery).outcome == "proposed"
    [offer] = world.offers()
    assert offer.via == "webhook"


def test_a_delivery_id_is_kept_once(world: World) -> None:
    intake = world.intake()
    payload = {
        "entity": "model_version",
        "action": "created",
        "data": {"name": "m", "version": "1"},
    }
    intake.receive("dev", "delivery-1", parse_event(payload), payload, _now())

    with pytest.raises(AlreadyReceived, match="already received"):
        intake.receive("dev", "delivery-1", parse_event(payload), payload, _now())

    with world.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count(WebhookDeliveryRow.delivery_id))) == 1
