"""Everything Gatekeeper is told at start: the environment (``Settings``) and gatekeeper.yaml.

Settings is the one object that reads ``os.environ``. gatekeeper.yaml is read whole and checked
whole: ``load_config`` reports every problem at once, each with its key path and fix::

    SettingsError    an environment variable is invalid; one line per variable
    ConfigError      gatekeeper.yaml is invalid; ``problems`` holds every ConfigProblem
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Self, TypeVar
from urllib.parse import urlsplit

import pydantic_settings
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config.files import read_yaml
from bot.config.problems import FILE, ConfigError, ConfigProblem, check_consistency, problems_from
from bot.config.schema import (
    Environment,
    Intake,
    PolicySpec,
    PromotionPath,
    RegisteredModel,
    Schedules,
    SlackOrigin,
)
from bot.config.values import ENVIRONMENT_NAME
from bot.domain.errors import GatekeeperError
from bot.domain.policy import Policy

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Environment",
    "GatekeeperConfig",
    "Intake",
    "RegisteredModel",
    "RegistryAuth",
    "Schedules",
    "Settings",
    "SettingsError",
    "SlackOrigin",
    "load_config",
    "load_settings",
    "parse_config",
]


class RegistryAuth(BaseModel):
    """Credentials for one environment's container registry: a token, or a username and password."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        basic = self.username is not None and self.password is not None
        if self.token is not None and (self.username is not None or self.password is not None):
            raise ValueError("give either token, or username and password, not both")
        if self.token is None and not basic:
            raise ValueError("give either token, or both username and password")
        return self


class Settings(BaseSettings):
    """Gatekeeper's environment variables, named exactly as the product documents them."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_file=None,
        # An empty variable (SLACK_APP_TOKEN= in a compose file) means "not set", not "".
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode
    # Read only to refuse them: Bolt itself switches to OAuth when both are set (see handlers.app).
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # The URL may hold a password, so it stays out of repr; ``redacted_database_url`` shows it.
    database_url: str = Field(default="sqlite:///gatekeeper.db", repr=False)
    gatekeeper_config: Path = Path("gatekeeper.yaml")
    mlflow_webhook_secret: SecretStr | None = None
    port: int = Field(default=3000, ge=1, le=65535)
    #: Container registry credentials per environment name.
    registry_auth: Annotated[dict[str, RegistryAuth], NoDecode] = Field(
        default_factory=dict, validation_alias="GATEKEEPER_REGISTRY_AUTH"
    )

    @field_validator("slack_api_url")
    @classmethod
    def _api_base(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL, e.g. https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Heroku-style platforms hand out postgres:// URLs; psycopg 3 is the driver installed.
        scheme, separator, rest = value.partition("://")
        if separator and scheme in ("postgres", "postgresql"):
            value = f"postgresql+psycopg://{rest}"
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                "must be a database URL, e.g. sqlite:///gatekeeper.db or "
                "postgresql://user:password@host:5432/gatekeeper"
            ) from None
        return value

    @field_validator("registry_auth", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                'must be JSON, e.g. {"staging": {"username": "ci", "password": "..."}} '
                'or {"production": {"token": "..."}}'
            ) from None

    @property
    def redacted_database_url(self) -> str:
        return make_url(self.database_url).render_as_string(hide_password=True)


#: Said instead of pydantic's wording, whatever the error, for settings with a simple rule.
_SETTING_RULES = {"port": "must be a whole number between 1 and 65535"}


class SettingsError(Exception):
    """One or more environment variables are invalid; ``problems`` has one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid environment:\n" + "\n".join(f"  {p}" for p in self.problems))


def load_settings(**values: Any) -> Settings:
    """Read the environment (``values`` take precedence); ``SettingsError`` names each bad one."""
    try:
        return Settings(**values)
    except ValidationError as error:
        raise SettingsError([_setting_problem(details) for details in error.errors()]) from None
    except pydantic_settings.SettingsError as error:
        raise SettingsError([str(error)]) from None


def _setting_problem(details: ErrorDetails) -> str:
    # Inputs are never echoed: any of these values may be a secret.
    name, *inner = details["loc"]
    where = ".".join(str(part) for part in inner)
    variable = str(name).upper() + (f" ({where})" if where else "")
    if name in _SETTING_RULES:
        return f"{variable}: {_SETTING_RULES[name]}"
    if details["type"] == "extra_forbidden":
        return f"{variable}: unknown key; remove it or fix its spelling"
    reason = details.get("ctx", {}).get("error")
    text = str(reason) if isinstance(reason, ValueError) else details["msg"]
    return f"{variable}: {text}"


class UnknownModel(GatekeeperError):
    pass


@dataclass(frozen=True)
class GatekeeperConfig:
    """A valid gatekeeper.yaml, with policies already turned into the domain's ``Policy``."""

    environments: Mapping[str, Environment]
    promotion_path: tuple[str, ...]
    models: Mapping[str, RegisteredModel]
    policies: Mapping[str, Policy]
    schedules: Schedules = field(default_factory=Schedules)
    slack: SlackOrigin = field(default_factory=SlackOrigin)
    intake: Intake = field(default_factory=Intake)

    def model(self, name: str) -> RegisteredModel:
        """The model as configured; ``UnknownModel`` names the ones Gatekeeper does promote."""
        registered = self.models.get(name)
        if registered is None:
            known = ", ".join(sorted(self.models)) or "none"
            raise UnknownModel(f"Gatekeeper does not promote {name!r}; it knows: {known}")
        return registered

    def policy_for(self, environment: str) -> Policy:
        """The policy candidates promoted into ``environment`` are judged by."""
        try:
            return self.policies[environment]
        except KeyError:
            raise KeyError(f"no policy for environment {environment!r}") from None

    def next_environment(self, environment: str) -> str | None:
        """Where ``environment``'s models are promoted to; None at the end of the path."""
        index = self._position(environment) + 1
        return self.promotion_path[index] if index < len(self.promotion_path) else None

    def previous_environment(self, environment: str) -> str | None:
        """Where ``environment``'s candidates come from; None at the start of the path."""
        index = self._position(environment) - 1
        return self.promotion_path[index] if index >= 0 else None

    def _position(self, environment: str) -> int:
        try:
            return self.promotion_path.index(environment)
        except ValueError:
            raise KeyError(f"{environment!r} is not on the promotion path") from None


_SECTIONS = (
    "environments", "promotion_path", "models", "policies", "schedules", "slack", "intake",
)  # fmt: skip
_REQUIRED = ("environments", "promotion_path", "models", "policies")
_EXAMPLE = "see gatekeeper.example.yaml"


def load_config(path: Path) -> GatekeeperConfig:
    """Read and check gatekeeper.yaml; ``ConfigError`` lists every problem found in it."""
    data, duplicates = read_yaml(path)
    if data is None:
        raise ConfigError(
            [ConfigProblem(FILE, "the file is empty", f"add {', '.join(_REQUIRED)}; {_EXAMPLE}")]
        )
    try:
        config = parse_config(data)
    except ConfigError as error:
        raise ConfigError([*duplicates, *error.problems]) from None
    if duplicates:
        raise ConfigError(duplicates)
    return config


def parse_config(data: object) -> GatekeeperConfig:
    """Check gatekeeper.yaml's already-loaded data; ``ConfigError`` lists every problem in it."""
    found: list[ConfigProblem] = []
    if not isinstance(data, Mapping):
        found.append(
            ConfigProblem(
                FILE,
                f"the top level is {_shown_type(data)}, not a mapping of keys",
                f"start with the keys {', '.join(_REQUIRED)}; {_EXAMPLE}",
            )
        )
        raise ConfigError(found)
    for key in data:
        if key not in _SECTIONS:
            found.append(
                ConfigProblem(
                    str(key),
                    "unknown top-level key",
                    f"remove it or fix its spelling; known keys: {', '.join(_SECTIONS)}",
                )
            )
    for key in _REQUIRED:
        if key not in data:
            found.append(ConfigProblem(key, "missing", f"add it; {_EXAMPLE}"))

    env_names, environments = _entries(data, "environments", Environment, found, _environment_name)
    _, models = _entries(data, "models", RegisteredModel, found, _model_name)
    policy_names, policy_specs = _entries(data, "policies", PolicySpec, found)
    promotion_path: tuple[str, ...] | None = _section(data, "promotion_path", PromotionPath, found)
    schedules: Schedules | None = _section(data, "schedules", Schedules, found)
    slack: SlackOrigin | None = _section(data, "slack", SlackOrigin, found)
    intake: Intake | None = _section(data, "intake", Intake, found)
    found += check_consistency(env_names, promotion_path, policy_names, policy_specs)
    if found or promotion_path is None:
        raise ConfigError(found)
    return GatekeeperConfig(
        environments=MappingProxyType(environments),
        promotion_path=promotion_path,
        models=MappingProxyType(models),
        policies=MappingProxyType({name: s.to_domain() for name, s in policy_specs.items()}),
        schedules=schedules or Schedules(),
        slack=slack or SlackOrigin(),
        intake=intake or Intake(),
    )


_T = TypeVar("_T")


def _validated(annotation: Any, value: object, path: str, problems: list[ConfigProblem]) -> Any:
    """``value`` as ``annotation``, or None with its problems added to ``problems``."""
    try:
        return TypeAdapter(annotation).validate_python(value)
    except ValidationError as error:
        problems += problems_from(error, path, annotation)
        return None


def _section(
    data: Mapping[Any, Any], key: str, annotation: Any, problems: list[ConfigProblem]
) -> Any:
    return _validated(annotation, data[key], key, problems) if key in data else None


def _entries(
    data: Mapping[Any, Any],
    key: str,
    spec: type[_T],
    problems: list[ConfigProblem],
    name_problem: Callable[[str, str], ConfigProblem | None] = lambda path, name: None,
) -> tuple[list[str] | None, dict[str, _T]]:
    """Every name written under ``key``, and its valid entries: each checked on its own.

    The names are None when the section is missing or not a mapping.
    """
    if key not in data:
        return None, {}
    section = data[key]
    if not isinstance(section, Mapping) or not section:
        got = "nothing" if not section else _shown_type(section)
        problems.append(
            ConfigProblem(key, f"wrong type: got {got}", f"expected a mapping; {_EXAMPLE}")
        )
        return None, {}
    names: list[str] = []
    valid: dict[str, _T] = {}
    for name, value in section.items():
        path = f"{key}.{name}"
        names.append(str(name))
        if not isinstance(name, str):
            problems.append(ConfigProblem(path, "the name is not text", "quote it"))
            continue
        bad_name = name_problem(path, name)
        if bad_name is not None:
            problems.append(bad_name)
        # "staging:" with nothing after it is an entry with every key left out.
        entry = _validated(spec, {} if value is None else value, path, problems)
        if entry is not None and bad_name is None:
            valid[name] = entry
    return names, valid


def _shown_type(value: object) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _environment_name(path: str, name: str) -> ConfigProblem | None:
    if ENVIRONMENT_NAME.fullmatch(name):
        return None
    return ConfigProblem(
        path,
        f"{name!r} is not a valid environment name",
        "use up to 32 lowercase letters, digits, '-' or '_', starting with a letter",
    )


def _model_name(path: str, name: str) -> ConfigProblem | None:
    if name.strip():
        return None
    return ConfigProblem(path, "the model name is blank", "use the model's name in MLflow")
