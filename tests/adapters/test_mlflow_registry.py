"""MlflowRegistry against a real MLflow server: versions, aliases, metrics, names and failures."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from mlflow.entities import Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from bot.adapters.mlflow_registry import MlflowRegistry
from bot.domain.candidates import parse_bundle
from bot.services.registry import (
    ModelNotFound,
    ModelRegistry,
    RegistryUnreachable,
    VersionNotFound,
)

SERVING = "127.0.0.1:5000/dev/churn-serving@sha256:" + "a" * 64
BUNDLE = {
    "gatekeeper.image.serving": SERVING,
    "gatekeeper.pipeline": "pipeline/churn.yaml",
    "gatekeeper.snapshot.train": "file:///srv/dev/churn/train.parquet#sha256=" + "b" * 64,
}
DEFAULT_EXPERIMENT = "0"


def _now_ms() -> int:
    return int(time.time() * 1000)


def register(
    client: MlflowClient,
    name: str,
    *,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    user: str = "dana",
) -> ModelVersion:
    """A version of ``name`` from a fresh run that logged ``metrics``, as a pipeline would."""
    run = client.create_run(DEFAULT_EXPERIMENT, tags={"mlflow.user": user})
    now = _now_ms()
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(key, value, now, 0) for key, value in (metrics or {}).items()],
    )
    return client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=dict(tags or {})
    )


def unique(prefix: str = "churn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def model(mlflow_client: MlflowClient) -> str:
    """A registered model with no versions yet, named for this test alone."""
    name = unique()
    mlflow_client.create_registered_model(name)
    return name


@pytest.fixture
def dev(mlflow_server: str) -> MlflowRegistry:
    return MlflowRegistry("dev", mlflow_server)


def test_it_is_a_model_registry(dev: MlflowRegistry) -> None:
    registry: ModelRegistry = dev
    assert registry.environment == "dev"


def test_a_version_carries_its_run_metrics_bundle_tags_aliases_and_author(
    dev: MlflowRegistry, mlflow_client: MlflowClient, model: str
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    registered = register(
        mlflow_client, model, metrics={"accuracy": 0.93, "latency_p95_ms": 41.5}, tags=BUNDLE
    )
    mlflow_client.set_registered_model_alias(model, "champion", registered.version)

    info = dev.get_version(model, "1")

    assert info.model == model
    assert info.version == "1"
    assert info.run_id == registered.run_id
    assert info.source == registered.source
    assert info.source.endswith("/model")
    assert dict(info.tags) == BUNDLE
    assert info.aliases == ("champion",)
    assert dict(info.metrics) == {"accuracy": 0.93, "latency_p95_ms": 41.5}
    # The MLflow user who ran the pipeline, not a Slack ID: the registry has no user of its own.
    assert info.author == "dana"
    assert before <= info.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert info.created_at.tzinfo is not None
    bundle = parse_bundle(info.tags)
    assert bundle.problems == ()
    assert str(bundle.images["serving"]) == SERVING


def test_the_alias_names_its_version_and_the_latest_is_the_newest(
    dev: MlflowRegistry, mlflow_client: MlflowClient, model: str
) -> None:
    for accuracy in (0.91, 0.92, 0.95):
        register(mlflow_client, model, metrics={"accuracy": accuracy})
    mlflow_client.set_registered_model_alias(model, "champion", "2")

    by_alias = dev.get_by_alias(model, "champion")
    champion = dev.champion(model, "champion")
    latest = dev.latest_version(model)

    assert by_alias is not None
    assert (by_alias.version, by_alias.aliases, dict(by_alias.metrics)) == (
        "2",
        ("champion",),
        {"accuracy": 0.92},
    )
    assert champion == by_alias
    assert (latest.version, latest.aliases, dict(latest.metrics)) == ("3", (), {"accuracy": 0.95})
    assert dev.get_by_alias(model, "challenger") is None


def test_there_is_no_champion_before_the_first_promotion(
    dev: MlflowRegistry, mlflow_client: MlflowClient, model: str
) -> None:
    register(mlflow_client, model, metrics={"accuracy": 0.9})

    assert dev.champion(model, "champion") is None


def test_a_model_without_versions_says_so(
    dev: MlflowRegistry, mlflow_server: str, model: str
) -> None:
    with pytest.raises(VersionNotFound) as raised:
        dev.latest_version(model)

    assert (
        str(raised.value)
        == f"model '{model}' has no versions yet in dev's MLflow at {mlflow_server}"
    )
    assert raised.value.version is None


@pytest.mark.parametrize(
    "ask",
    [
        pytest.param(lambda registry, model: registry.get_version(model, "1"), id="get_version"),
        pytest.param(
            lambda registry, model: registry.get_by_alias(model, "champion"), id="get_by_alias"
        ),
        pytest.param(lambda registry, model: registry.champion(model, "champion"), id="champion"),
        pytest.param(lambda registry, model: registry.latest_version(model), id="latest_version"),
    ],
)
def test_a_missing_model_is_named_with_its_environment_and_url(
    dev: MlflowRegistry, mlflow_server: str, ask: Callable[[MlflowRegistry, str], object]
) -> None:
    with pytest.raises(ModelNotFound) as raised:
        ask(dev, "no-such-model")

    assert (
        str(raised.value) == f"there is no model 'no-such-model' in dev's MLflow at {mlflow_server}"
    )


@pytest.mark.parametrize(
    ("version", "missing"),
    [
        ("7", "has no version 7"),
        ("v1", "has no version 'v1' (versions are whole numbers)"),
        # Past what MLflow's version column holds: its server fails the query rather than
        # answering "no such version".
        (str(2**64), f"has no version {2**64}"),
        ("9" * 30, f"has no version {'9' * 30}"),
    ],
)
def test_a_missing_version_is_named_with_its_model(
    dev: MlflowRegistry,
    mlflow_client: MlflowClient,
    mlflow_server: str,
    model: str,
    version: str,
    missing: str,
) -> None:
    register(mlflow_client, model)

    with pytest.raises(VersionNotFound) as raised:
        dev.get_version(model, version)

    assert str(raised.value) == f"model '{model}' {missing} in dev's MLflow at {mlflow_server}"


@pytest.mark.parametrize("with_run", [False, True], ids=["no-run", "run-without-metrics"])
def test_a_version_registered_from_a_logged_model_has_that_models_metrics(
    dev: MlflowRegistry, mlflow_client: MlflowClient, model: str, with_run: bool
) -> None:
    logged = mlflow_client.create_logged_model(experiment_id=DEFAULT_EXPERIMENT, name="churn")
    training = mlflow_client.create_run(DEFAULT_EXPERIMENT)
    now = _now_ms()
    mlflow_client.log_batch(
        training.info.run_id,
        metrics=[
            Metric("accuracy", 0.91, now, 0, model_id=logged.model_id),
            Metric("accuracy", 0.94, now, 1, model_id=logged.model_id),
            Metric("auc", 0.88, now, 0, model_id=logged.model_id),
        ],
    )
    mlflow_client.finalize_logged_model(logged.model_id, "READY")
    bare_run = mlflow_client.create_run(DEFAULT_EXPERIMENT).info.run_id if with_run else None
    registered = mlflow_client.create_model_version(
        model, source=f"models:/{logged.model_id}", run_id=bare_run, model_id=logged.model_id
    )

    info = dev.get_version(model, registered.version)

    assert info.source == f"models:/{logged.model_id}"
    assert info.run_id == bare_run
    assert dict(info.metrics) == {"accuracy": 0.94, "auc": 0.88}


def test_the_name_template_maps_gatekeeper_names_to_the_environments_own(
    mlflow_client: MlflowClient, mlflow_server: str
) -> None:
    model = unique()
    mlflow_client.create_registered_model(f"staging.{model}")
    register(mlflow_client, f"staging.{model}", metrics={"accuracy": 0.92})
    staging = MlflowRegistry("staging", mlflow_server, "staging.{model}")

    info = staging.latest_version(model)

    assert (info.model, info.version, dict(info.metrics)) == (model, "1", {"accuracy": 0.92})
    with pytest.raises(ModelNotFound) as raised:
        staging.get_version("forecast", "1")
    assert str(raised.value) == (
        f"there is no model 'staging.forecast' (Gatekeeper's 'forecast') "
        f"in staging's MLflow at {mlflow_server}"
    )
    with pytest.raises(ModelNotFound):
        MlflowRegistry("dev", mlflow_server).latest_version(model)


def test_an_unreachable_server_is_named_within_seconds_and_without_credentials(
    closed_port: int,
) -> None:
    production = MlflowRegistry("production", f"http://gatekeeper:s3cret@127.0.0.1:{closed_port}")

    started = time.monotonic()
    with pytest.raises(RegistryUnreachable) as raised:
        production.latest_version("churn")
    elapsed = time.monotonic() - started

    assert str(raised.value) == (
        f"production's MLflow at http://127.0.0.1:{closed_port} cannot be reached: "
        "connection refused"
    )
    assert elapsed < 8


def test_a_url_that_is_not_an_mlflow_server_says_so(mlflow_server: str) -> None:
    with pytest.raises(RegistryUnreachable) as raised:
        MlflowRegistry("dev", f"{mlflow_server}/not-mlflow").latest_version("churn")

    assert str(raised.value) == (
        f"dev's MLflow at {mlflow_server}/not-mlflow cannot be reached: "
        "it does not serve MLflow's API at that URL"
    )
