"""Copies a model version into the next environment's MLflow: artifacts, tags, metrics, lineage."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from mlflow.entities import Metric, Param
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from bot.adapters.mlflow_registry import (
    _MISSING,
    _first_line,
    _logged_model_id,
    _network_failure,
    _shorten_http_retries,
    _without_credentials,
    translate_error,
)
from bot.domain.candidates import LINEAGE_TAG
from bot.services.registry import (
    ModelNotFound,
    RegistryError,
    RegistryUnreachable,
    VersionNotFound,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

PROMOTION_ID_TAG = f"{LINEAGE_TAG}promotion_id"
SOURCE_VERSION_TAG = f"{LINEAGE_TAG}source_version"
SOURCE_RUN_TAG = f"{LINEAGE_TAG}source_run"

_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
#: Messages name a server's environment; a server the copier was not told about has none.
_UNNAMED = "an unnamed environment"
_DEFAULT_EXPERIMENT = "0"
#: MLflow's per-request limits for log_batch.
_BATCH_METRICS, _BATCH_PARAMS = 1000, 100
#: Names a run on the source server; meaningless, and misleading, on the target.
_RUN_TAGS_LEFT_BEHIND = frozenset({"mlflow.parentRunId"})


class ArtifactsMissing(RegistryError):
    def __init__(self, environment: str, url: str, name: str, version: str, where: str) -> None:
        super().__init__(
            environment,
            url,
            f"version {version} of '{name}' in {environment}'s MLflow at {url} has no artifacts "
            f"at {where}; there is nothing to promote",
        )


class ArtifactStoreMismatch(RegistryError):
    def __init__(self, environment: str, url: str, store: str) -> None:
        super().__init__(
            environment,
            url,
            f"files copied into {environment}'s artifact store {store} are not served by its "
            f"MLflow at {url}: the configured store is not the one that server uses",
        )


class ArtifactCopyFailed(RegistryError):
    def __init__(self, environment: str, url: str, store: str, reason: str) -> None:
        super().__init__(
            environment,
            url,
            f"copying artifacts into {environment}'s artifact store {store} failed: {reason}",
        )


@dataclass(frozen=True)
class MlflowServer:
    """One environment's MLflow server, as the copier needs to know it."""

    environment: str
    tracking_uri: str
    #: Where the server keeps proxied artifacts (its ``--artifacts-destination``), when this
    #: process can reach it as a local path: artifacts are then copied file to file.
    artifact_store: str | None = None


class MlflowCopier:
    """Moves model versions between environments' MLflow servers, each through its own client."""

    def __init__(self, servers: Iterable[MlflowServer] = (), workdir: str | None = None) -> None:
        _shorten_http_retries()
        self._known = {_same_server_key(server.tracking_uri): server for server in servers}
        self._servers: dict[str, _Server] = {}
        self._workdir = workdir

    def copy_version(
        self,
        source_uri: str,
        source_name: str,
        version: str,
        target_uri: str,
        target_name: str,
        lineage_tags: Mapping[str, str],
    ) -> str:
        """The target's version for this promotion: found when already copied, else made now."""
        promotion_id = lineage_tags.get(PROMOTION_ID_TAG)
        if not promotion_id or any(not key.startswith(LINEAGE_TAG) for key in lineage_tags):
            raise ValueError(f"lineage tags must all be {LINEAGE_TAG}* and name a promotion id")
        source, target = self._server(source_uri), self._server(target_uri)
        done = target.promoted_version(target_name, promotion_id, version)
        if done is not None:
            logger.info("%s version %s already copied as %s", source_name, version, done)
            return done
        found = source.version(source_name, version)
        tags = _version_tags(found, lineage_tags)
        if source is target:
            # What copy_model_version records (the new version reads the source version's
            # artifacts, nothing is copied), but with the tags in the same call: a version found
            # by its promotion id is then always complete, even after a crash.
            reference = f"models:/{source_name}/{version}"
            return target.register(target_name, reference, tags, found, run_id=found.run_id)
        return _Transfer(source, target, found, self._workdir).run(target_name, tags)

    def set_tags(self, uri: str, name: str, version: str, tags: Mapping[str, str]) -> None:
        """Set tags on a version (each write is idempotent, so a retried step is harmless)."""
        server = self._server(uri)
        for key, value in tags.items():
            server.ask(partial(server.client.set_model_version_tag, name, version, key, value))

    def set_alias(self, uri: str, name: str, alias: str, version: str) -> None:
        """Point the alias at the version: the cut-over, a single registry write."""
        server = self._server(uri)
        server.version(name, version)
        server.ask(lambda: server.client.set_registered_model_alias(name, alias, version))

    def current_alias(self, uri: str, name: str, alias: str) -> str | None:
        """The version the alias points at; None when it is unset or the model does not exist."""
        server = self._server(uri)
        model = server.ask(lambda: server.client.get_registered_model(name), lambda: None)
        if model is None:
            return None
        version = model.aliases.get(alias)
        return None if version is None else str(version)

    def version_exists(self, uri: str, name: str, version: str) -> bool:
        """Whether the version is registered and its artifacts can be listed."""
        server = self._server(uri)
        if not (version.isascii() and version.isdigit()):
            return False
        location = server.ask(
            lambda: server.client.get_model_version_download_uri(name, version), lambda: None
        )
        return location is not None and bool(server.list_artifacts(str(location)))

    def _server(self, tracking_uri: str) -> _Server:
        key = _same_server_key(tracking_uri)
        if key not in self._servers:
            known = self._known.get(key)
            environment = known.environment if known else _UNNAMED
            store = known.artifact_store if known else None
            self._servers[key] = _Server(environment, tracking_uri, store)
        return self._servers[key]


class _Server:
    """One MLflow server: its client, its name in messages, and MLflow's errors translated."""

    def __init__(self, environment: str, tracking_uri: str, artifact_store: str | None) -> None:
        self.environment = environment
        self.uri = tracking_uri
        self.url = _without_credentials(tracking_uri)
        self.store = Path(_local_path(artifact_store)) if artifact_store else None
        # Explicit URIs: environments live side by side in one process.
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def ask(self, call: Callable[[], T], missing: Callable[[], T] | None = None) -> T:
        try:
            return call()
        except MlflowException as error:
            if missing is not None and error.error_code == _MISSING:
                return missing()
            raise self._translate(error) from error
        except OSError as error:
            if _on_this_machine(error):
                raise
            reason = _network_failure(error) or _first_line(str(error))
            raise RegistryUnreachable(self.environment, self.url, reason) from error

    def version(self, name: str, version: str) -> ModelVersion:
        def no_model() -> None:
            raise ModelNotFound(self.environment, self.url, name, name)

        def missing() -> ModelVersion:
            # MLflow says the same for a missing model as for a missing version.
            self.ask(lambda: self.client.get_registered_model(name), no_model)
            raise VersionNotFound(self.environment, self.url, name, name, version)

        if not (version.isascii() and version.isdigit()):
            raise VersionNotFound(self.environment, self.url, name, name, version)
        return self.ask(lambda: self.client.get_model_version(name, version), missing)

    def promoted_version(self, name: str, promotion_id: str, source_version: str) -> str | None:
        """The version an earlier attempt of this promotion registered, if it got that far."""
        query = f"tags.`{PROMOTION_ID_TAG}` = {_quoted(promotion_id)}"
        found = self.ask(lambda: self.client.search_model_versions(query))
        versions = [
            int(candidate.version)
            for candidate in found
            if candidate.name == name and candidate.tags.get(SOURCE_VERSION_TAG) == source_version
        ]
        return str(min(versions)) if versions else None

    def register(
        self,
        name: str,
        source: str,
        tags: Mapping[str, str],
        copied: ModelVersion,
        *,
        run_id: str | None,
        model_id: str | None = None,
    ) -> str:
        """A new version of ``name``; its tags arrive with it, so a version found is complete."""
        self.ask(lambda: self._create_model(name))
        made = self.ask(
            lambda: self.client.create_model_version(
                name,
                source,
                run_id=run_id or None,
                tags=dict(tags),
                description=copied.description or None,
                # The server creates versions READY; polling would only add a round trip.
                await_creation_for=0,
                model_id=model_id,
            )
        )
        return str(made.version)

    def _create_model(self, name: str) -> None:
        try:
            self.client.create_registered_model(name)
        except MlflowException as error:
            if error.error_code != _ALREADY_EXISTS:
                raise

    def list_artifacts(self, location: str) -> list[Any]:
        repository = self.ask(lambda: self.repository(location))
        return list(self.ask(lambda: repository.list_artifacts("")))

    def repository(self, location: str) -> Any:
        return get_artifact_repository(location, tracking_uri=self.uri, registry_uri=self.uri)

    def local_path(self, location: str) -> Path | None:
        """Where an artifact location lies on this machine, when it does."""
        parts = urlsplit(location)
        if parts.scheme in ("", "file"):
            return Path(unquote(parts.path))
        if parts.scheme == "mlflow-artifacts" and not parts.netloc and self.store is not None:
            return self.store / unquote(parts.path).lstrip("/")
        return None

    def run(self, run_id: str | None) -> Any:
        # A run deleted for good leaves the version promotable; only its metrics stay behind.
        if not run_id:
            return None
        return self.ask(lambda: self.client.get_run(run_id), lambda: None)

    def experiment(self, name: str | None) -> str:
        """The id of the experiment called ``name``, made if it is missing."""
        if not name:
            return _DEFAULT_EXPERIMENT
        found = self.ask(lambda: self.client.get_experiment_by_name(name))
        if found is None:
            try:
                return str(self.client.create_experiment(name))
            except MlflowException as error:
                if error.error_code != _ALREADY_EXISTS:
                    raise self._translate(error) from error
            # Someone else made it in between.
            found = self.ask(lambda: self.client.get_experiment_by_name(name))
        if found is None or found.lifecycle_stage != "active":
            # A deleted experiment takes no runs, and its name stays taken.
            return _DEFAULT_EXPERIMENT
        return str(found.experiment_id)

    def log_batch(self, run_id: str, metrics: Sequence[Metric], params: Sequence[Param]) -> None:
        """All of them, in as many requests as MLflow's per-request limits need."""
        for start in range(0, len(metrics), _BATCH_METRICS):
            chunk = list(metrics[start : start + _BATCH_METRICS])
            self.ask(partial(self.client.log_batch, run_id, metrics=chunk))
        for start in range(0, len(params), _BATCH_PARAMS):
            chunk_params = list(params[start : start + _BATCH_PARAMS])
            self.ask(partial(self.client.log_batch, run_id, params=chunk_params))

    def _translate(self, error: MlflowException) -> RegistryError:
        return translate_error(self.environment, self.url, error)


class _Transfer:
    """One version carried across servers: a run and a LoggedModel in the target, then a version."""

    def __init__(
        self, source: _Server, target: _Server, version: ModelVersion, workdir: str | None
    ) -> None:
        self.source, self.target, self.found, self.workdir = source, target, version, workdir

    def run(self, name: str, tags: Mapping[str, str]) -> str:
        src, dst, found = self.source, self.target, self.found
        location = str(
            src.ask(lambda: src.client.get_model_version_download_uri(found.name, found.version))
        )
        source_dir = self._source_dir(location)
        if not (source_dir or src.list_artifacts(location)):
            raise ArtifactsMissing(src.environment, src.url, found.name, found.version, location)
        run = src.run(found.run_id)
        source_model_id = _logged_model_id(found)
        logged = None
        if source_model_id:
            logged = src.ask(lambda: src.client.get_logged_model(source_model_id), lambda: None)
        experiment_id = dst.experiment(self._experiment_name(run, logged))
        lineage = {key: value for key, value in tags.items() if key.startswith(LINEAGE_TAG)}
        self._abandon_earlier(experiment_id, lineage[PROMOTION_ID_TAG])
        run_tags = {**_run_tags(run), **lineage}
        made = dst.ask(
            lambda: dst.client.create_run(
                experiment_id,
                start_time=run.info.start_time if run else None,
                tags=run_tags,
                run_name=run.info.run_name if run else None,
            )
        )
        run_id = str(made.info.run_id)
        model_id: str | None = None
        try:
            model = dst.ask(
                lambda: dst.client.create_logged_model(
                    experiment_id,
                    name=(logged.name if logged else None) or "model",
                    source_run_id=run_id,
                    tags={**_user_tags(logged.tags if logged else {}), **lineage},
                    params=dict(logged.params) if logged and logged.params else None,
                    model_type=logged.model_type if logged else None,
                )
            )
            model_id = str(model.model_id)
            dst.log_batch(run_id, *_run_record(run, logged, model_id))
            self._copy_artifacts(location, source_dir, model_id, str(model.artifact_location))
            dst.ask(lambda: dst.client.finalize_logged_model(model_id, "READY"))
            # Not set_terminated: it prints links to stdout, a server's log.
            dst.ask(lambda: dst.client.update_run(run_id, status="FINISHED"))
        except BaseException:
            self._abandon(run_id, model_id)
            raise
        return dst.register(
            name, f"models:/{model_id}", tags, found, run_id=run_id, model_id=model_id
        )

    def _source_dir(self, location: str) -> Path | None:
        path = self.source.local_path(location)
        if path is None:
            return None
        if path.is_dir():
            return path
        if urlsplit(location).scheme == "mlflow-artifacts":
            # The configured store is not where this server keeps its artifacts: its own
            # proxy still knows, so ask it, and say so for whoever fixes the configuration.
            logger.warning(
                "%s's artifact store has no %s; reading through its MLflow server instead",
                self.source.environment,
                path,
            )
        return None

    def _copy_artifacts(
        self, location: str, source_dir: Path | None, model_id: str, target_location: str
    ) -> None:
        src, dst = self.source, self.target
        target_dir = dst.local_path(target_location)
        try:
            if source_dir and target_dir:
                _copy_tree(source_dir, target_dir)
            elif source_dir:
                dst.ask(lambda: dst.client.log_model_artifacts(model_id, str(source_dir)))
            elif target_dir:
                target_dir.mkdir(parents=True, exist_ok=True)
                repository = src.ask(lambda: src.repository(location))
                src.ask(lambda: repository.download_artifacts("", dst_path=str(target_dir)))
            else:
                with tempfile.TemporaryDirectory(prefix="gatekeeper-", dir=self.workdir) as work:
                    repository = src.ask(lambda: src.repository(location))
                    src.ask(lambda: repository.download_artifacts("", dst_path=work))
                    dst.ask(lambda: dst.client.log_model_artifacts(model_id, work))
        except OSError as error:
            where = str(target_dir or self.workdir or tempfile.gettempdir())
            reason = error.strerror or _first_line(str(error))
            raise ArtifactCopyFailed(dst.environment, dst.url, where, reason) from error
        if target_dir is not None:
            self._check_served(model_id, target_dir)

    def _check_served(self, model_id: str, target_dir: Path) -> None:
        """Fail loudly when files written straight into the store are not what the server sees."""
        dst = self.target
        served = dst.ask(lambda: dst.client.list_logged_model_artifacts(model_id))
        names = {PurePosixPath(str(info.path)).name for info in served}
        if not names or not {entry.name for entry in target_dir.iterdir()} <= names:
            raise ArtifactStoreMismatch(dst.environment, dst.url, str(dst.store))

    def _experiment_name(self, run: Any, logged: Any) -> str | None:
        experiment_id = run.info.experiment_id if run else logged.experiment_id if logged else None
        if experiment_id is None:
            return None
        src = self.source
        found = src.ask(lambda: src.client.get_experiment(experiment_id), lambda: None)
        return str(found.name) if found is not None else None

    def _abandon_earlier(self, experiment_id: str, promotion_id: str) -> None:
        """Mark failed what earlier attempts of this promotion left: a process killed mid-copy
        never reached ``_abandon``, and no version uses their runs (none was found)."""
        dst = self.target
        query = (
            f"tags.`{PROMOTION_ID_TAG}` = {_quoted(promotion_id)} and attributes.status != 'FAILED'"
        )
        for earlier in dst.ask(lambda: dst.client.search_runs([experiment_id], query)):
            run_id = str(earlier.info.run_id)
            made_by = f"source_run_id = '{run_id}'"
            models = dst.ask(
                partial(dst.client.search_logged_models, [experiment_id], filter_string=made_by)
            )
            # One LoggedModel per attempt: this class makes it, with the run.
            self._abandon(run_id, str(models[0].model_id) if models else None)

    def _abandon(self, run_id: str, model_id: str | None) -> None:
        """Mark what an interrupted copy left behind as failed; never hide the first error."""
        dst = self.target
        try:
            if model_id is not None:
                dst.client.finalize_logged_model(model_id, "FAILED")
            dst.client.update_run(run_id, status="FAILED")
        except Exception:
            logger.warning("could not mark run %s in %s failed", run_id, dst.url, exc_info=True)


def _quoted(value: str) -> str:
    """A value for MLflow's filter language, which has no escapes: in whichever quote it lacks."""
    quote = "'" if "'" not in value else '"'
    if quote in value:
        raise ValueError(f"{value!r} holds both kinds of quote")
    return f"{quote}{value}{quote}"


def _version_tags(found: ModelVersion, lineage: Mapping[str, str]) -> dict[str, str]:
    """The source version's tags, its own lineage replaced by this promotion's."""
    tags = {
        str(key): str(value)
        for key, value in found.tags.items()
        if not str(key).startswith(LINEAGE_TAG)
    }
    if found.run_id:
        tags[SOURCE_RUN_TAG] = str(found.run_id)
    tags.update(lineage)
    # The key a restarted promotion is found by: always the version actually copied.
    tags[SOURCE_VERSION_TAG] = str(found.version)
    return tags


def _run_tags(run: Any) -> dict[str, str]:
    if run is None:
        return {}
    return {
        str(key): str(value)
        for key, value in run.data.tags.items()
        if key not in _RUN_TAGS_LEFT_BEHIND
    }


def _user_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    # MLflow's own tags on a LoggedModel describe the source server's bookkeeping.
    return {
        str(key): str(value) for key, value in tags.items() if not str(key).startswith("mlflow.")
    }


def _run_record(run: Any, logged: Any, model_id: str) -> tuple[list[Metric], list[Param]]:
    """Metrics and params for the target run, so gates relative to the champion read the same."""
    metrics = [
        Metric(
            metric.key,
            metric.value,
            metric.timestamp,
            metric.step,
            model_id=model_id,
            dataset_name=metric.dataset_name,
            dataset_digest=metric.dataset_digest,
        )
        for metric in (logged.metrics or () if logged else ())
    ]
    # Only the latest value of each run metric travels: it is what gates read, and a training
    # run's full history (steps x keys) would turn a promotion into thousands of requests; the
    # history stays in the source environment, one lineage tag away.
    covered = {metric.key for metric in metrics}
    now = int(time.time() * 1000)
    if run is not None:
        metrics += [
            Metric(str(key), float(value), now, 0)
            for key, value in run.data.metrics.items()
            if key not in covered
        ]
    params = [Param(str(k), str(v)) for k, v in (run.data.params.items() if run else ())]
    return metrics, params


def _copy_tree(source: Path, target: Path) -> None:
    """Store to store, file by file: the kernel copies (sendfile), nothing passes through Python."""
    for directory, _, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copyfile(Path(directory) / file, target / relative / file)


def _on_this_machine(error: OSError) -> bool:
    """A local failure (disk full, permission denied), not a server that did not answer."""
    # requests' errors carry no errno of their own; the socket's are ConnectionErrors and kin.
    network = ConnectionError | TimeoutError | socket.gaierror
    return error.errno is not None and not isinstance(error, network)


def _local_path(location: str) -> str:
    parts = urlsplit(location)
    return unquote(parts.path) if parts.scheme == "file" else location


def _same_server_key(tracking_uri: str) -> str:
    parts = urlsplit(tracking_uri.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
