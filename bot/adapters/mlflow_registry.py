"""The model registry port over one environment's MLflow server, through its own MlflowClient."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

from mlflow.entities import Metric, Run
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.environment_variables import (
    MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES,
    MLFLOW_HTTP_REQUEST_TIMEOUT,
)
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from bot.services.registry import (
    ListedVersion,
    ModelNotFound,
    ModelVersionInfo,
    RegistryError,
    RegistryFailed,
    RegistryRefused,
    RegistryUnreachable,
    VersionNotFound,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: MLflow's defaults (7 retries with exponential backoff, 120 s a request) ride out a rate-limited
#: hosted server; here they would keep a person in Slack waiting minutes for a server that is down.
#: Two quick retries still cover a restart blip: a closed port fails in about three seconds.
_HTTP_RETRIES = 2
_HTTP_BACKOFF_FACTOR = 1
_HTTP_TIMEOUT_SECONDS = 10

#: MLflow numbers versions from 1 in an INTEGER column (32 bits on PostgreSQL and MySQL): no
#: version is larger, and asking for one fails the server's query (HTTP 500) instead of "none".
_MAX_VERSION = 2**31 - 1
_REFUSED = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "CUSTOMER_UNAUTHORIZED"})
_MISSING = "RESOURCE_DOES_NOT_EXIST"
_USER_TAG = "mlflow.user"


def _shorten_http_retries() -> None:
    """Make MLflow give up on an unreachable server in seconds, unless the operator said otherwise.

    MLflow reads its retry policy from the process environment on every request and offers no
    per-client setting, so this is process-wide; its own setter is the only supported way in.
    """
    for variable, value in (
        (MLFLOW_HTTP_REQUEST_MAX_RETRIES, _HTTP_RETRIES),
        (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, _HTTP_BACKOFF_FACTOR),
        (MLFLOW_HTTP_REQUEST_TIMEOUT, _HTTP_TIMEOUT_SECONDS),
    ):
        if not variable.defined:
            variable.set(value)  # type: ignore[no-untyped-call]  # MLflow left it unannotated


class MlflowRegistry:
    """One environment's MLflow registry; Gatekeeper's model names map through a name template."""

    def __init__(
        self, environment: str, tracking_uri: str, model_name_template: str = "{model}"
    ) -> None:
        _shorten_http_retries()
        self._environment = environment
        self._url = _without_credentials(tracking_uri)
        self._template = model_name_template
        # Explicit URIs: environments live side by side in one process, so the process-wide
        # tracking URI must never decide which server is asked.
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @property
    def environment(self) -> str:
        return self._environment

    def get_version(self, model: str, version: str) -> ModelVersionInfo:
        """The version, or ModelNotFound / VersionNotFound."""
        name = self._registered_name(model)
        if not (version.isascii() and version.isdigit()) or int(version) > _MAX_VERSION:
            raise VersionNotFound(self._environment, self._url, model, name, version)

        def missing() -> NoReturn:
            # MLflow says the same for a missing model as for a missing version.
            self._registered_model(model)
            raise VersionNotFound(self._environment, self._url, model, name, version)

        found = self._ask(lambda: self._client.get_model_version(name, version), missing)
        return self._describe(model, found)

    def get_by_alias(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version the alias points at; None when the alias is not set."""
        # The registered model lists its aliases; asking for an unset alias directly fails with
        # an error code MLflow also uses for malformed aliases.
        version = self._registered_model(model).aliases.get(alias)
        if version is None:
            return None
        return self.get_version(model, str(version))

    def latest_version(self, model: str) -> ModelVersionInfo:
        """The highest-numbered version; VersionNotFound when the model has none."""
        # latest_versions holds the newest version of each stage, so its highest is the newest
        # overall; unlike a search, it needs no quoting of the name and tells a missing model.
        registered = self._registered_model(model)
        versions = [str(found.version) for found in registered.latest_versions or ()]
        if not versions:
            name = self._registered_name(model)
            raise VersionNotFound(self._environment, self._url, model, name, None)
        return self.get_version(model, max(versions, key=int))

    def champion(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version serving under the champion alias; None before the first promotion."""
        return self.get_by_alias(model, alias)

    def recent_versions(self, model: str, since: datetime, limit: int) -> list[ListedVersion]:
        """Versions created at or after ``since``, newest first, at most ``limit``; none when
        the model is not registered here."""
        name = self._registered_name(model)
        try:
            # Searches do not fill in aliases; the registered model lists them all at once.
            aliases = self._registered_model(model).aliases
        except ModelNotFound:
            return []
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(str(alias))
        found = self._ask(
            lambda: self._client.search_model_versions(
                f"name = {_quoted(name)}",
                max_results=limit,
                order_by=["creation_timestamp DESC"],
            ),
            lambda: [],
        )
        listed = []
        for version in found:
            created_at = datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC)
            if created_at < since:
                break
            listed.append(
                ListedVersion(
                    model=model,
                    version=str(version.version),
                    tags=MappingProxyType({str(k): str(v) for k, v in version.tags.items()}),
                    aliases=tuple(sorted(by_version.get(str(version.version), ()))),
                    created_at=created_at,
                )
            )
        return listed

    def _registered_name(self, model: str) -> str:
        return self._template.format(model=model)

    def _registered_model(self, model: str) -> RegisteredModel:
        name = self._registered_name(model)

        def missing() -> NoReturn:
            raise ModelNotFound(self._environment, self._url, model, name)

        return self._ask(lambda: self._client.get_registered_model(name), missing)

    def _describe(self, model: str, version: ModelVersion) -> ModelVersionInfo:
        # Over REST, MLflow sends an absent run as "".
        run_id = str(version.run_id) if version.run_id else None
        run = self._run(run_id) if run_id else None
        metrics = _numbers(run.data.metrics) if run else {}
        if not metrics and (model_id := _logged_model_id(version)):
            metrics = self._logged_model_metrics(model_id)
        author = version.user_id or (run.data.tags.get(_USER_TAG) if run else None)
        return ModelVersionInfo(
            model=model,
            version=str(version.version),
            run_id=run_id,
            source=str(version.source or ""),
            tags=MappingProxyType({str(k): str(v) for k, v in version.tags.items()}),
            aliases=tuple(sorted(str(alias) for alias in version.aliases)),
            metrics=MappingProxyType(metrics),
            created_at=datetime.fromtimestamp(int(version.creation_timestamp) / 1000, UTC),
            author=str(author) if author else None,
        )

    def _run(self, run_id: str) -> Run | None:
        # A run deleted for good leaves the version usable; it only has no metrics to show.
        return self._ask(lambda: self._client.get_run(run_id), lambda: None)

    def _logged_model_metrics(self, model_id: str) -> dict[str, float]:
        logged = self._ask(lambda: self._client.get_logged_model(model_id), lambda: None)
        if logged is None:
            return {}
        latest: dict[str, Metric] = {}
        # The same rule MLflow uses for a run's metrics: the highest step, then the newest.
        for metric in logged.metrics or ():
            held = latest.get(metric.key)
            if held is None or (metric.step, metric.timestamp) >= (held.step, held.timestamp):
                latest[metric.key] = metric
        return {str(key): float(metric.value) for key, metric in latest.items()}

    def _ask(self, call: Callable[[], T], missing: Callable[[], T]) -> T:
        """MLflow's answer, with "does not exist" decided by ``missing`` and failures translated."""
        try:
            return call()
        except MlflowException as error:
            if error.error_code == _MISSING:
                return missing()
            raise self._translate(error) from error

    def _translate(self, error: MlflowException) -> RegistryError:
        return translate_error(self._environment, self._url, error)


def translate_error(environment: str, url: str, error: MlflowException) -> RegistryError:
    """MLflow's error as one a person can act on, naming the environment and its server."""
    code = str(error.error_code)
    if code in _REFUSED:
        return RegistryRefused(environment, url, _first_line(error.message))
    if code == "ENDPOINT_NOT_FOUND":
        return RegistryUnreachable(environment, url, "it does not serve MLflow's API at that URL")
    reason = _network_failure(error)
    if reason is not None:
        return RegistryUnreachable(environment, url, reason)
    logger.warning("%s's MLflow at %s failed", environment, url, exc_info=error)
    return RegistryFailed(environment, url, _first_line(error.message))


def _quoted(name: str) -> str:
    """A name as a search filter's string literal: MLflow's filters take either quote."""
    return f'"{name}"' if "'" in name else f"'{name}'"


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {str(key): float(value) for key, value in metrics.items()}


def _logged_model_id(version: ModelVersion) -> str | None:
    """The MLflow 3 LoggedModel a version was registered from, if any."""
    if version.model_id:
        return str(version.model_id)
    # MLflow's REST API does not send model_id yet; the source still names it: models:/m-<hex>.
    parts = urlsplit(str(version.source or ""))
    if parts.scheme != "models":
        return None
    path = parts.path.strip("/")
    # models:/<name>/<version> and models:/<name>@<alias> name registered models, not a LoggedModel.
    if not path or "/" in path or "@" in path:
        return None
    return path


def _network_failure(error: BaseException) -> str | None:
    """Why the server did not answer, when that is what went wrong."""
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "its host name does not resolve"
        if isinstance(cause, TimeoutError):
            return "no answer in time"
    # MLflow's HTTP client raises requests' errors, which are all OSErrors.
    if any(isinstance(cause, OSError) for cause in causes):
        return "no answer"
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(message: str) -> str:
    line = message.strip().splitlines()[0] if message.strip() else "no details"
    return line if len(line) <= 300 else f"{line[:299]}…"


def _without_credentials(url: str) -> str:
    """The URL as people may see it: no user name or password."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))
