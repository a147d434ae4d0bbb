"""The port to one environment's model registry: versions, their aliases, tags and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.domain.errors import GatekeeperError


@dataclass(frozen=True)
class ModelVersionInfo:
    """One model version as Gatekeeper reads it, under Gatekeeper's name for the model."""

    model: str
    version: str
    run_id: str | None
    source: str
    tags: Mapping[str, str]
    aliases: tuple[str, ...]
    metrics: Mapping[str, float]
    created_at: datetime
    #: Who registered it, in the registry's own terms (an MLflow user name, not a Slack ID).
    author: str | None


@dataclass(frozen=True)
class ListedVersion:
    """A version as a listing shows it: enough to tell whether it asks to be promoted."""

    model: str
    version: str
    tags: Mapping[str, str]
    aliases: tuple[str, ...]
    created_at: datetime


class ModelRegistry(Protocol):
    """One environment's registry, addressed by Gatekeeper's model names."""

    @property
    def environment(self) -> str: ...

    def get_version(self, model: str, version: str) -> ModelVersionInfo:
        """The version, or ModelNotFound / VersionNotFound."""
        ...

    def get_by_alias(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version the alias points at; None when the alias is not set."""
        ...

    def latest_version(self, model: str) -> ModelVersionInfo:
        """The highest-numbered version; VersionNotFound when the model has none."""
        ...

    def champion(self, model: str, alias: str) -> ModelVersionInfo | None:
        """The version serving under the champion alias; None before the first promotion."""
        ...

    def recent_versions(self, model: str, since: datetime, limit: int) -> list[ListedVersion]:
        """Versions created at or after ``since``, newest first, at most ``limit``; none when
        the model is not registered here."""
        ...


class RegistryError(GatekeeperError):
    """A registry could not answer as asked; the message names the environment and its URL.

    RegistryError
    ├── ModelNotFound
    ├── VersionNotFound      no such version, or no versions at all
    ├── RegistryUnreachable  refused, timed out, or not a registry at that URL
    ├── RegistryRefused      Gatekeeper's credentials were not accepted
    └── RegistryFailed       any other error, in the registry's own words
    """

    def __init__(self, environment: str, url: str, message: str) -> None:
        super().__init__(message)
        self.environment = environment
        self.url = url


def _where(environment: str, url: str) -> str:
    return f"{environment}'s MLflow at {url}"


def _called(model: str, registered_name: str) -> str:
    if registered_name == model:
        return f"'{model}'"
    return f"'{registered_name}' (Gatekeeper's '{model}')"


class ModelNotFound(RegistryError):
    def __init__(self, environment: str, url: str, model: str, registered_name: str) -> None:
        super().__init__(
            environment,
            url,
            f"there is no model {_called(model, registered_name)} in {_where(environment, url)}",
        )
        self.model = model
        self.registered_name = registered_name


class VersionNotFound(RegistryError):
    def __init__(
        self,
        environment: str,
        url: str,
        model: str,
        registered_name: str,
        version: str | None,
    ) -> None:
        if version is None:
            missing = "has no versions yet"
        elif version.isascii() and version.isdigit():
            missing = f"has no version {version}"
        else:
            missing = f"has no version '{version}' (versions are whole numbers)"
        super().__init__(
            environment,
            url,
            f"model {_called(model, registered_name)} {missing} in {_where(environment, url)}",
        )
        self.model = model
        self.registered_name = registered_name
        #: None when the model has no versions at all.
        self.version = version


class RegistryUnreachable(RegistryError):
    def __init__(self, environment: str, url: str, reason: str) -> None:
        super().__init__(
            environment, url, f"{_where(environment, url)} cannot be reached: {reason}"
        )
        self.reason = reason


class RegistryRefused(RegistryError):
    def __init__(self, environment: str, url: str, answer: str) -> None:
        super().__init__(
            environment,
            url,
            f"{_where(environment, url)} refused Gatekeeper's credentials: {answer}",
        )
        self.answer = answer


class RegistryFailed(RegistryError):
    def __init__(self, environment: str, url: str, answer: str) -> None:
        super().__init__(environment, url, f"{_where(environment, url)} failed: {answer}")
        self.answer = answer
