"""A promotion for real: MLflow versions, images in an OCI registry, snapshots on disk."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from kfp import compiler
from mlflow.tracking import MlflowClient

from bot.adapters.mlflow_copy import MlflowCopier
from bot.adapters.mlflow_registry import MlflowRegistry
from bot.adapters.oci import ImageRegistries
from bot.adapters.oci.errors import RegistryUnavailable
from bot.adapters.pipelines import KfpRebuilder
from bot.adapters.snapshots import copy_snapshot
from bot.config import GatekeeperConfig, parse_config
from bot.domain.candidates import parse_image
from bot.domain.promotion import CandidateState, PromotionStep
from bot.services.engine import Engine
from bot.services.promotions import Promotions
from bot.services.requests import Requests, Wanted
from bot.store.models import PromotionRow, PromotionStepRow
from bot.store.repositories import UnitOfWork
from handlers.notifier import SlackNotifier
from tests.adapters.pipelines.churn_pipeline import churn_pipeline
from tests.mlflow_fixtures import Server
from tests.oci_fixtures import Pusher, RunningRegistry, layer

SRE = "U0SRE0001"


class NoGroups:
    def members(self, group_id: str) -> frozenset[str]:
        return frozenset()


@pytest.fixture
def world(
    mlflow_environments: dict[str, Server], oci_source: RunningRegistry,
    oci_target: RunningRegistry, tmp_path: Path,
) -> tuple[GatekeeperConfig, str]:  # fmt: skip
    """dev → staging → production: an MLflow server each, dev and staging sharing a registry."""
    tag = uuid.uuid4().hex[:6]  # the server and registry are shared by the session
    stores = {env: tmp_path / env for env in ("dev", "stg", "prod")}
    config = parse_config({
        "environments": {
            # dev and staging share a registry (blobs mounted); production has its own.
            env: {"mlflow": mlflow_environments[env].url, "model_name": f"{tag}-{short}.{{model}}",
                  "images": f"{registry.host}/{tag}{short}", "snapshots": stores[short].as_uri(),
                  "kfp": "local"}
            for env, short, registry in (("dev", "dev", oci_source), ("staging", "stg", oci_source),
                                         ("production", "prod", oci_target))
        },
        "promotion_path": ["dev", "staging", "production"],
        "models": {"churn-classifier": {"channel": "C0ML00001"}},
        "policies": {
            "staging": {"gates": ["accuracy >= 0.90", "accuracy >= champion - 0.005"],
                        "approvals": 0},
            "production": {"gates": ["accuracy >= champion"], "approvals": 0,
                           "rollback_by": [SRE], "approvers": [SRE]},
        },
    })  # fmt: skip
    return config, tag


@pytest.fixture
def ml(mlflow_environments: dict[str, Server]) -> dict[str, MlflowClient]:
    """A client per environment's own MLflow server."""
    return {name: server.client for name, server in mlflow_environments.items()}


def _engine(config: GatekeeperConfig, uow: Callable[[], UnitOfWork]) -> tuple[Promotions, Requests]:
    registries = {
        n: MlflowRegistry(n, s.mlflow, s.model_name) for n, s in config.environments.items()
    }
    notifier = SlackNotifier(lambda m: config.model(m).channel, config.policy_for)
    images = ImageRegistries()
    engine = Engine(
        config, uow, registries, MlflowCopier(), images,
        lambda src, sha, dst: copy_snapshot(src, sha, dst), KfpRebuilder(config),
        lambda error: isinstance(error, RegistryUnavailable), lambda: datetime.now(UTC),
        backoff_s=0.01,
    )  # fmt: skip
    promotions = Promotions(uow, notifier, engine, config.policy_for, NoGroups(),
                            lambda: datetime.now(UTC))  # fmt: skip
    return promotions, Requests(config, registries, uow, notifier)


def _dev_version(
    client: MlflowClient, name: str, accuracy: float, tags: dict[str, str],
    pipeline: Path | None = None,
) -> str:  # fmt: skip
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    experiment = client.get_experiment_by_name("engine") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("engine")
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "accuracy", accuracy)
    client.log_text(run.info.run_id, "weights for " + name, "model/weights.txt")
    if pipeline is not None:
        client.log_artifact(run.info.run_id, str(pipeline), "pipeline")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(name, f"{run.info.artifact_uri}/model",
                                          run_id=run.info.run_id, tags=tags)  # fmt: skip
    return str(version.version)


def test_a_candidate_is_rebuilt_in_staging_then_production_and_rolled_back(
    world: tuple[GatekeeperConfig, str], ml: dict[str, MlflowClient],
    oci_source: RunningRegistry, oci_target: RunningRegistry, uow: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> None:  # fmt: skip
    config, tag = world
    pusher = Pusher(oci_source.url)
    image = pusher.image(f"{tag}dev/churn-serving", [layer(4096, tag)])
    dev_store = Path(config.environments["dev"].snapshots.removeprefix("file://"))  # type: ignore[union-attr]
    (dev_store / "train").mkdir(parents=True)
    data = b"id,churned\n" + b"1,0\n" * 1000
    (dev_store / "train" / "2026-11.csv").write_bytes(data)
    pipeline = tmp_path / "churn.yaml"
    compiler.Compiler().compile(churn_pipeline, str(pipeline))
    bundle = {
        "gatekeeper.pipeline": "pipeline/churn.yaml",
        "gatekeeper.image.serving": f"{oci_source.host}/{image.repository}@{image.digest}",
        "gatekeeper.snapshot.train": f"{(dev_store / 'train' / '2026-11.csv').as_uri()}"
                                     f"#sha256={hashlib.sha256(data).hexdigest()}",
    }  # fmt: skip
    version = _dev_version(ml["dev"], f"{tag}-dev.churn-classifier", 0.93, bundle, pipeline)
    promotions, requests = _engine(config, uow)
    _, _, planned = requests.plan(Wanted("churn-classifier", version, None, "staging"),
                                  datetime.now(UTC))  # fmt: skip

    to_staging = requests.request(Wanted("churn-classifier", version, None, "staging"), SRE, SRE,
                                  datetime.now(UTC))  # fmt: skip
    assert promotions.promote(to_staging) is CandidateState.PROMOTED, _reason(uow, to_staging)

    staged = ml["staging"].get_model_version_by_alias(f"{tag}-stg.churn-classifier", "champion")
    assert staged.tags["gatekeeper.lineage.source_env"] == "dev"
    assert staged.tags["gatekeeper.lineage.source_version"] == version
    assert staged.tags["gatekeeper.image.serving"] == bundle["gatekeeper.image.serving"]
    moved = parse_image(f"{oci_source.host}/{tag}stg/churn-serving@{image.digest}")
    assert moved is not None
    assert ImageRegistries().exists(moved)  # same digest under staging's prefix
    stg_copy = Path(config.environments["staging"].snapshots.removeprefix("file://"))  # type: ignore[union-attr]
    assert (stg_copy / "train" / "2026-11.csv").read_bytes() == data
    with uow() as unit:
        rows = unit.session.execute(
            sa.select(PromotionStepRow.step, PromotionStepRow.status)
            .join(PromotionRow, PromotionRow.id == PromotionStepRow.promotion_id)
            .where(PromotionRow.candidate_id == to_staging)
        )  # fmt: skip
        steps = {step: status for step, status in rows}
    # The dry run listed exactly the steps the engine then performed.
    assert steps == {action.step.value: "succeeded" for action in planned}
    assert "ran with kfp.local" in _step_detail(uow, to_staging, PromotionStep.REGISTER_PIPELINE)

    # The staging version (with its bundle, now pointing at staging's copies) goes on.
    ml["staging"].set_model_version_tag(staged.name, staged.version, "gatekeeper.image.serving",
                                        str(moved))  # fmt: skip
    ml["staging"].delete_model_version_tag(staged.name, staged.version, "gatekeeper.snapshot.train")
    to_production = requests.request(Wanted("churn-classifier", staged.version, None, "production"),
                                     SRE, SRE, datetime.now(UTC))  # fmt: skip
    assert promotions.promote(to_production) is CandidateState.PROMOTED
    first = ml["production"].get_model_version_by_alias(f"{tag}-prod.churn-classifier", "champion")
    across = parse_image(f"{oci_target.host}/{tag}prod/churn-serving@{image.digest}")
    assert across is not None
    assert ImageRegistries().exists(across)  # copied across registries, digest kept

    # A better model follows the same road; then production is rolled back to the first.
    better = _dev_version(ml["dev"], f"{tag}-dev.churn-classifier", 0.95, {})
    promotions.promote(requests.request(Wanted("churn-classifier", better, None, "staging"), SRE,
                                        SRE, datetime.now(UTC)))  # fmt: skip
    second_stg = ml["staging"].get_model_version_by_alias(f"{tag}-stg.churn-classifier", "champion")
    last = requests.request(Wanted("churn-classifier", second_stg.version, None, "production"),
                            SRE, SRE, datetime.now(UTC))  # fmt: skip
    assert promotions.promote(last) is CandidateState.PROMOTED
    assert ml["production"].get_model_version_by_alias(
        f"{tag}-prod.churn-classifier", "champion").version != first.version  # fmt: skip

    assert promotions.roll_back(last, SRE) == first.version
    assert ml["production"].get_model_version_by_alias(
        f"{tag}-prod.churn-classifier", "champion").version == first.version  # fmt: skip


def _reason(uow: Callable[[], UnitOfWork], candidate_id: int) -> str:
    with uow() as unit:
        return unit.candidates.get(candidate_id).reason or ""


def _step_detail(uow: Callable[[], UnitOfWork], candidate_id: int, step: PromotionStep) -> str:
    with uow() as unit:
        detail = unit.session.scalar(
            sa.select(PromotionStepRow.details)
            .join(PromotionRow, PromotionRow.id == PromotionStepRow.promotion_id)
            .where(PromotionRow.candidate_id == candidate_id, PromotionStepRow.step == step.value)
        )  # fmt: skip
    return str((detail or {}).get("detail", ""))


def test_a_missing_image_blocks_the_candidate_at_verify(
    world: tuple[GatekeeperConfig, str], ml: dict[str, MlflowClient],
    oci_source: RunningRegistry, uow: Callable[[], UnitOfWork],
) -> None:  # fmt: skip
    config, tag = world
    ghost = f"{oci_source.host}/{tag}dev/ghost@sha256:" + "0" * 64
    version = _dev_version(ml["dev"], f"{tag}-dev.churn-classifier", 0.93,
                           {"gatekeeper.image.serving": ghost})  # fmt: skip
    promotions, requests = _engine(config, uow)
    candidate = requests.request(Wanted("churn-classifier", version, None, "staging"), SRE, SRE,
                                 datetime.now(UTC))  # fmt: skip
    assert promotions.promote(candidate) is CandidateState.BLOCKED
    with uow() as unit:
        assert "images not in their registry" in (unit.candidates.get(candidate).reason or "")
    assert ml["staging"].search_model_versions(f"name = '{tag}-stg.churn-classifier'") == []


def test_a_wrong_snapshot_checksum_fails_before_cut_over(
    world: tuple[GatekeeperConfig, str], ml: dict[str, MlflowClient],
    uow: Callable[[], UnitOfWork],
) -> None:  # fmt: skip
    config, tag = world
    dev_store = Path(config.environments["dev"].snapshots.removeprefix("file://"))  # type: ignore[union-attr]
    dev_store.mkdir(parents=True, exist_ok=True)
    (dev_store / "x.csv").write_bytes(b"real bytes")
    wrong = f"{(dev_store / 'x.csv').as_uri()}#sha256=" + "1" * 64
    version = _dev_version(ml["dev"], f"{tag}-dev.churn-classifier", 0.93,
                           {"gatekeeper.snapshot.x": wrong})  # fmt: skip
    promotions, requests = _engine(config, uow)
    candidate = requests.request(Wanted("churn-classifier", version, None, "staging"), SRE, SRE,
                                 datetime.now(UTC))  # fmt: skip
    assert promotions.promote(candidate) is CandidateState.FAILED
    with uow() as unit:
        assert "sha256" in (unit.candidates.get(candidate).reason or "")
    registered = ml["staging"].search_registered_models(f"name = '{tag}-stg.churn-classifier'")
    assert not registered or "champion" not in registered[0].aliases
