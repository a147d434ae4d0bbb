"""MlflowCopier between two real MLflow servers: artifacts, tags, metrics, lineage, aliases."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from mlflow.entities import Metric, Param
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from sklearn.linear_model import LogisticRegression

from bot.adapters.mlflow_copy import (
    PROMOTION_ID_TAG,
    ArtifactsMissing,
    ArtifactStoreMismatch,
    MlflowCopier,
    MlflowServer,
)
from bot.adapters.mlflow_registry import MlflowRegistry
from bot.services.registry import ModelNotFound, RegistryUnreachable, VersionNotFound
from tests.mlflow_fixtures import Server

BUNDLE = {
    "gatekeeper.image.serving": "127.0.0.1:5000/dev/churn-serving@sha256:" + "a" * 64,
    "gatekeeper.pipeline": "pipeline/churn.yaml",
    "gatekeeper.snapshot.train": "file:///srv/dev/churn/train.parquet#sha256=" + "b" * 64,
}
#: What an earlier hop wrote on the source version; the next hop's lineage replaces it.
EARLIER_LINEAGE = {
    "gatekeeper.lineage.source_env": "sandbox",
    "gatekeeper.lineage.approvers": "U0SOMEONE",
}
FEATURES = np.array([[0.0], [1.0], [2.0], [3.0]])


@pytest.fixture(scope="session")
def mlflow_pair(mlflow_environments: dict[str, Server]) -> tuple[Server, Server]:
    """Two of the session's servers (dev and staging), artifact stores reachable from here."""
    return mlflow_environments["dev"], mlflow_environments["staging"]


@pytest.fixture(scope="session")
def dev(mlflow_pair: tuple[Server, Server]) -> Server:
    return mlflow_pair[0]


@pytest.fixture(scope="session")
def staging(mlflow_pair: tuple[Server, Server]) -> Server:
    return mlflow_pair[1]


@dataclass(frozen=True)
class SourceVersion:
    name: str
    version: str
    run_id: str
    files: dict[str, str]  # relative path -> sha256
    predictions: list[int]


@pytest.fixture(scope="session")
def churn(dev: Server, tmp_path_factory: pytest.TempPathFactory) -> SourceVersion:
    """A scikit-learn model logged and registered in dev as an MLflow 3 pipeline would."""
    model = LogisticRegression().fit(FEATURES, np.array([0, 0, 1, 1]))
    saved = tmp_path_factory.mktemp("churn-model") / "model"
    # Named requirements: inferring them would import every package in the environment.
    mlflow.sklearn.save_model(
        model, str(saved), serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    client = dev.client
    experiment_id = client.create_experiment(unique("churn-training"))
    run = client.create_run(experiment_id, tags={"mlflow.user": "dana"}, run_name="train")
    run_id = run.info.run_id
    logged = client.create_logged_model(
        experiment_id, name="churn", source_run_id=run_id, params={"C": "1.0"}
    )
    client.log_model_artifacts(logged.model_id, str(saved))
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_batch(
        run_id,
        metrics=[
            Metric("accuracy", 0.93, 1000, 0, model_id=logged.model_id),
            Metric("latency_p95_ms", 41.5, 1000, 0),
        ],
        params=[Param("penalty", "l2")],
    )
    client.set_terminated(run_id)
    name = unique()
    client.create_registered_model(name)
    version = client.create_model_version(
        name,
        f"models:/{logged.model_id}",
        run_id=run_id,
        tags={**BUNDLE, **EARLIER_LINEAGE},
        model_id=logged.model_id,
    )
    return SourceVersion(
        name, str(version.version), run_id, _hashes(saved), model.predict(FEATURES).tolist()
    )


def unique(prefix: str = "churn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def lineage(promotion_id: str | None = None) -> dict[str, str]:
    return {
        "gatekeeper.lineage.source_env": "dev",
        PROMOTION_ID_TAG: promotion_id or uuid.uuid4().hex,
        "gatekeeper.lineage.approvers": "U0LEAD001,U0SRE0001",
    }


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def download(server: Server, name: str, version: str) -> Path:
    """The version's artifacts as the target server serves them, through its own URI."""
    location = server.client.get_model_version_download_uri(name, version)
    repository = get_artifact_repository(location, tracking_uri=server.url)
    return Path(repository.download_artifacts("", dst_path=tempfile.mkdtemp()))


def copier(dev: Server, staging: Server, *, dev_store: bool, staging_store: bool) -> MlflowCopier:
    return MlflowCopier(
        [
            MlflowServer("dev", dev.url, str(dev.store) if dev_store else None),
            MlflowServer(
                "staging", staging.url, f"file://{staging.store}" if staging_store else None
            ),
        ]
    )


@pytest.mark.parametrize(
    ("dev_store", "staging_store"),
    [(False, False), (True, True), (True, False), (False, True)],
    ids=["through-both-servers", "store-to-store", "from-dev-store", "into-staging-store"],
)
def test_a_version_crosses_servers_with_its_artifacts_tags_metrics_and_lineage(
    dev: Server, staging: Server, churn: SourceVersion, dev_store: bool, staging_store: bool
) -> None:
    target = unique("churn-staging")
    tags = lineage()

    version = copier(dev, staging, dev_store=dev_store, staging_store=staging_store).copy_version(
        dev.url, churn.name, churn.version, staging.url, target, tags
    )

    assert version == "1"
    copied = staging.client.get_model_version(target, version)
    assert copied.tags == {
        **BUNDLE,
        **tags,
        "gatekeeper.lineage.source_version": churn.version,
        "gatekeeper.lineage.source_run": churn.run_id,
    }
    local = download(staging, target, version)
    assert _hashes(local) == churn.files
    assert mlflow.pyfunc.load_model(str(local)).predict(FEATURES).tolist() == churn.predictions
    # Gates relative to the champion read the target's own run, as the registry adapter does.
    info = MlflowRegistry("staging", staging.url, "{model}").get_version(target, version)
    assert dict(info.metrics) == {"accuracy": 0.93, "latency_p95_ms": 41.5}
    assert info.author == "dana"
    assert info.run_id is not None
    assert info.run_id != churn.run_id
    run = staging.client.get_run(info.run_id)
    assert run.data.params == {"penalty": "l2"}
    assert run.info.status == "FINISHED"
    assert run.data.tags[PROMOTION_ID_TAG] == tags[PROMOTION_ID_TAG]


def test_a_restarted_promotion_finds_its_copy_instead_of_making_another(
    dev: Server, staging: Server, churn: SourceVersion
) -> None:
    models = MlflowCopier()
    target = unique("churn-staging")
    tags = lineage()

    first = models.copy_version(dev.url, churn.name, churn.version, staging.url, target, tags)
    again = models.copy_version(dev.url, churn.name, churn.version, staging.url, target, tags)
    other = models.copy_version(dev.url, churn.name, churn.version, staging.url, target, lineage())

    assert (first, again, other) == ("1", "1", "2")
    versions = staging.client.search_model_versions(f"name = '{target}'")
    assert sorted(v.version for v in versions) == ["1", "2"]


def test_a_restarted_promotion_marks_what_its_killed_attempts_left_failed(
    dev: Server, staging: Server, churn: SourceVersion
) -> None:
    tags = lineage()
    source_run = dev.client.get_run(churn.run_id)
    name = dev.client.get_experiment(source_run.info.experiment_id).name
    found = staging.client.get_experiment_by_name(name)
    experiment = found.experiment_id if found else staging.client.create_experiment(name)

    def attempt(promotion_id: str, finished: bool) -> tuple[str, str]:
        # What a copy killed by SIGKILL leaves: a run and a LoggedModel, no version.
        run = staging.client.create_run(experiment, tags={PROMOTION_ID_TAG: promotion_id})
        model = staging.client.create_logged_model(
            experiment, source_run_id=run.info.run_id, tags={PROMOTION_ID_TAG: promotion_id}
        )
        if finished:  # killed between the run's end and the version's registration
            staging.client.finalize_logged_model(model.model_id, "READY")
            staging.client.update_run(run.info.run_id, status="FINISHED")
        return run.info.run_id, model.model_id

    killed = [attempt(tags[PROMOTION_ID_TAG], finished) for finished in (False, True)]
    elsewhere = attempt(uuid.uuid4().hex, False)  # another promotion's, still under way

    target = unique("churn-staging")
    version = MlflowCopier().copy_version(
        dev.url, churn.name, churn.version, staging.url, target, tags
    )

    status = {run: staging.client.get_run(run).info.status for run, _ in [*killed, elsewhere]}
    models = {model: str(staging.client.get_logged_model(model).status)
              for _, model in [*killed, elsewhere]}  # fmt: skip
    assert [status[run] for run, _ in killed] == ["FAILED", "FAILED"]
    assert [models[model] for _, model in killed] == ["FAILED", "FAILED"]
    assert (status[elsewhere[0]], models[elsewhere[1]]) == ("RUNNING", "PENDING")
    copied = staging.client.get_model_version(target, version)
    assert staging.client.get_run(copied.run_id).info.status == "FINISHED"


def test_within_one_server_the_version_is_copied_as_copy_model_version_does(
    dev: Server, churn: SourceVersion
) -> None:
    models = MlflowCopier([MlflowServer("dev", dev.url), MlflowServer("staging", f"{dev.url}/")])
    target = unique("churn-staging")
    tags = lineage()

    version = models.copy_version(dev.url, churn.name, churn.version, f"{dev.url}/", target, tags)
    again = models.copy_version(dev.url, churn.name, churn.version, dev.url, target, tags)

    assert version == again == "1"
    copied = dev.client.get_model_version(target, version)
    # No artifacts moved: the new version reads the source version's, as copy_model_version's do.
    assert copied.source == f"models:/{churn.name}/{churn.version}"
    assert copied.run_id == churn.run_id
    assert copied.tags == {
        **BUNDLE,
        **tags,
        "gatekeeper.lineage.source_version": churn.version,
        "gatekeeper.lineage.source_run": churn.run_id,
    }
    assert models.version_exists(dev.url, target, version)
    assert _hashes(download(dev, target, version)) == churn.files


def test_the_alias_is_the_cut_over(dev: Server, staging: Server, churn: SourceVersion) -> None:
    models = copier(dev, staging, dev_store=False, staging_store=False)
    target = unique("churn-staging")
    assert models.current_alias(staging.url, target, "champion") is None
    first = models.copy_version(dev.url, churn.name, churn.version, staging.url, target, lineage())
    second = models.copy_version(dev.url, churn.name, churn.version, staging.url, target, lineage())
    assert models.current_alias(staging.url, target, "champion") is None

    models.set_alias(staging.url, target, "champion", first)
    before = models.current_alias(staging.url, target, "champion")
    models.set_alias(staging.url, target, "champion", second)

    assert (before, models.current_alias(staging.url, target, "champion")) == (first, second)
    with pytest.raises(VersionNotFound, match=r"has no version 9 in staging's MLflow at http://"):
        models.set_alias(staging.url, target, "champion", "9")


def test_a_version_exists_only_while_its_artifacts_do(
    dev: Server, staging: Server, churn: SourceVersion
) -> None:
    models = copier(dev, staging, dev_store=False, staging_store=False)
    target = unique("churn-staging")
    version = models.copy_version(
        dev.url, churn.name, churn.version, staging.url, target, lineage()
    )
    assert models.version_exists(staging.url, target, version)
    assert not models.version_exists(staging.url, target, "7")
    assert not models.version_exists(staging.url, unique("nothing"), "1")

    location = staging.client.get_model_version_download_uri(target, version)
    shutil.rmtree(staging.store / location.removeprefix("mlflow-artifacts:/"))

    assert not models.version_exists(staging.url, target, version)


def test_a_missing_source_is_named(dev: Server, staging: Server, churn: SourceVersion) -> None:
    models = copier(dev, staging, dev_store=True, staging_store=True)
    with pytest.raises(VersionNotFound) as missing:
        models.copy_version(dev.url, churn.name, "99", staging.url, unique(), lineage())
    assert str(missing.value) == (
        f"model '{churn.name}' has no version 99 in dev's MLflow at {dev.url}"
    )
    with pytest.raises(ModelNotFound, match=r"there is no model 'nothing' in dev's MLflow"):
        models.copy_version(dev.url, "nothing", "1", staging.url, unique(), lineage())


def test_a_version_without_artifacts_is_refused_before_anything_is_made(
    dev: Server, staging: Server
) -> None:
    name, target = unique(), unique("churn-staging")
    run = dev.client.create_run("0")
    dev.client.create_registered_model(name)
    # A pipeline that registered its run's model path before (or without) logging the model.
    dev.client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)

    with pytest.raises(ArtifactsMissing, match=r"has no artifacts at mlflow-artifacts:/.*/model;"):
        copier(dev, staging, dev_store=False, staging_store=False).copy_version(
            dev.url, name, "1", staging.url, target, lineage()
        )

    assert staging.client.search_registered_models(f"name = '{target}'") == []


def test_a_source_store_without_the_version_is_read_through_its_server_instead(
    dev: Server,
    staging: Server,
    churn: SourceVersion,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = unique("churn-staging")
    models = MlflowCopier([MlflowServer("dev", dev.url, str(tmp_path))])

    version = models.copy_version(
        dev.url, churn.name, churn.version, staging.url, target, lineage()
    )

    assert _hashes(download(staging, target, version)) == churn.files
    assert "dev's artifact store has no" in caplog.text


def test_a_wrong_store_fails_loudly_and_registers_nothing(
    dev: Server, staging: Server, churn: SourceVersion, tmp_path: Path
) -> None:
    target = unique("churn-staging")
    models = MlflowCopier([MlflowServer("staging", staging.url, str(tmp_path))])

    with pytest.raises(ArtifactStoreMismatch, match=r"not served by its MLflow at http://"):
        models.copy_version(dev.url, churn.name, churn.version, staging.url, target, lineage())

    assert staging.client.search_model_versions(f"name = '{target}'") == []


def test_an_unreachable_target_is_named(
    dev: Server, churn: SourceVersion, closed_port: int
) -> None:
    nowhere = f"http://127.0.0.1:{closed_port}"
    models = MlflowCopier([MlflowServer("production", nowhere)])
    with pytest.raises(RegistryUnreachable, match=r"production's MLflow at .* cannot be reached"):
        models.copy_version(dev.url, churn.name, churn.version, nowhere, "churn", lineage())


def test_lineage_must_name_the_promotion(dev: Server, staging: Server) -> None:
    with pytest.raises(ValueError, match="promotion id"):
        MlflowCopier().copy_version(dev.url, "m", "1", staging.url, "m", {"owner": "dana"})
