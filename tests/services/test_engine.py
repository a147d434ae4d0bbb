"""A promotion for real: MLflow versions, images in an OCI registry, snapshots on disk."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
import sqlalchemy as sa
from kfp import compiler
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

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


def _logged_model_version(
    client: MlflowClient, name: str, tags: dict[str, str], pipeline: Path, folder: Path
) -> tuple[str, list[int]]:
    """A scikit-learn model logged as an MLflow 3 LoggedModel and registered, as a pipeline would."""
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    saved = folder / "model"
    mlflow.sklearn.save_model(model, str(saved), serialization_format="cloudpickle",
                              pip_requirements=["scikit-learn"])  # fmt: skip
    experiment = client.get_experiment_by_name("engine") or None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("engine")
    run_id = client.create_run(experiment_id, tags={"mlflow.user": "dana"}).info.run_id
    logged = client.create_logged_model(experiment_id, name="churn", source_run_id=run_id)
    client.log_model_artifacts(logged.model_id, str(saved))
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_batch(run_id, metrics=[Metric("accuracy", 0.93, 1000, 0, model_id=logged.model_id)])
    client.log_artifact(run_id, str(pipeline), "pipeline")
    client.set_terminated(run_id)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, f"models:/{logged.model_id}", run_id=run_id,
                                          tags=tags, model_id=logged.model_id)  # fmt: skip
    return str(version.version), [int(p) for p in model.predict(np.array([[0.5], [2.5]]))]


def test_a_candidate_is_rebuilt_in_staging_then_production_and_rolled_back(
    world: tuple[GatekeeperConfig, str], ml: dict[str, MlflowClient],
    oci_source: RunningRegistry, oci_target: RunningRegistry, uow: Callable[[], UnitOfWork],
    tmp_path: Path,
) -> None:  # fmt: skip
    config, tag = world
    pusher = Pusher(oci_source.url)
    images = {
        name: pusher.image(f"{tag}dev/churn-{name}", [layer(4096, tag + name), layer(2048, name)])
        for name in ("serving", "batch")
    }
    dev_store = Path(config.environments["dev"].snapshots.removeprefix("file://"))  # type: ignore[union-attr]
    data = {"train": b"id,churned\n" + b"1,0\n" * 1000, "features": b"id,tenure\n" + b"1,7\n" * 500}
    for name, content in data.items():
        (dev_store / name).mkdir(parents=True)
        (dev_store / name / "2026-11.csv").write_bytes(content)
    pipeline = tmp_path / "churn.yaml"
    compiler.Compiler().compile(churn_pipeline, str(pipeline))
    bundle = {
        "gatekeeper.pipeline": "pipeline/churn.yaml",
        **{f"gatekeeper.image.{name}": f"{oci_source.host}/{image.repository}@{image.digest}"
           for name, image in images.items()},
        **{f"gatekeeper.snapshot.{name}": f"{(dev_store / name / '2026-11.csv').as_uri()}"
           f"#sha256={hashlib.sha256(content).hexdigest()}" for name, content in data.items()},
    }  # fmt: skip
    version, predictions = _logged_model_version(
        ml["dev"], f"{tag}-dev.churn-classifier", bundle, pipeline, tmp_path
    )
    promotions, requests = _engine(config, uow)
    _, _, planned = requests.plan(Wanted("churn-classifier", version, None, "staging"),
                                  datetime.now(UTC))  # fmt: skip

    to_staging = requests.request(Wanted("churn-classifier", version, None, "staging"), SRE, SRE,
                                  datetime.now(UTC))  # fmt: skip
    assert promotions.promote(to_staging) is CandidateState.PROMOTED, _reason(uow, to_staging)

    staged = ml["staging"].get_model_version_by_alias(f"{tag}-stg.churn-classifier", "champion")
    assert staged.tags["gatekeeper.lineage.source_env"] == "dev"
    assert staged.tags["gatekeeper.lineage.source_version"] == version
    stg_store = Path(config.environments["staging"].snapshots.removeprefix("file://"))  # type: ignore[union-attr]
    for name, image in images.items():
        moved = parse_image(f"{oci_source.host}/{tag}stg/churn-{name}@{image.digest}")
        assert moved is not None
        assert ImageRegistries().exists(moved)  # same digest under staging's prefix
        assert staged.tags[f"gatekeeper.image.{name}"] == str(moved)  # the bundle moved too
    for name, content in data.items():
        assert (stg_store / name / "2026-11.csv").read_bytes() == content
        assert staged.tags[f"gatekeeper.snapshot.{name}"].startswith(stg_store.as_uri())
    # The model itself crossed servers: staging's copy loads and predicts as dev's did.
    copy = mlflow.artifacts.download_artifacts(
        artifact_uri=ml["staging"].get_model_version_download_uri(staged.name, staged.version),
        dst_path=str(tmp_path / "staging-copy"),
        tracking_uri=config.environments["staging"].mlflow,
    )
    reloaded = mlflow.sklearn.load_model(copy)
    assert [int(p) for p in reloaded.predict(np.array([[0.5], [2.5]]))] == predictions
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

    # The staging version goes on to production as it is: its bundle names staging's copies.
    to_production = requests.request(Wanted("churn-classifier", staged.version, None, "production"),
                                     SRE, SRE, datetime.now(UTC))  # fmt: skip
    assert promotions.promote(to_production) is CandidateState.PROMOTED, _reason(uow, to_production)
    first = ml["production"].get_model_version_by_alias(f"{tag}-prod.churn-classifier", "champion")
    for image in images.values():
        repository = image.repository.replace(f"{tag}dev/", f"{tag}prod/", 1)
        across = parse_image(f"{oci_target.host}/{repository}@{image.digest}")
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
