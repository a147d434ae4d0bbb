"""The kinds of value gatekeeper.yaml holds (Slack IDs, URLs, durations ...), each checked alone.

Validators raise ``PydanticCustomError("gatekeeper", ...)`` whose context carries a ``message``
and a ``fix``, so ``bot.config.problems`` can tell the person what is wrong and what to write.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from bot.domain.errors import InvalidGate
from bot.domain.gates import parse_gate

#: The error type whose context holds a person-readable ``message`` and ``fix``.
PROBLEM = "gatekeeper"
FIND_SLACK_ID = "find it in the person's profile → ⋮ → Copy member ID"

ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
_TEAM = re.compile(r"^T[A-Z0-9]{2,}$")
_APP = re.compile(r"^A[A-Z0-9]{2,}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_IMAGE_PREFIX = re.compile(
    r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (7 * 86400, 86400, 3600, 60, 1)  # seconds in a w, d, h, m, s
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def problem(message: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, "fix": fix})


def _slack_id(pattern: re.Pattern[str], what: str, fix: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise problem(f"{value!r} must be {what}", fix)
        return value

    return AfterValidator(check)


SlackPrincipal = Annotated[
    str,
    _slack_id(
        re.compile(f"{_USER.pattern}|{_GROUP.pattern}"),
        "a Slack user ID (U…/W…) or user-group ID (S…)",
        FIND_SLACK_ID,
    ),
]
SlackUser = Annotated[str, _slack_id(_USER, "a Slack user ID (U…/W…)", FIND_SLACK_ID)]
SlackChannel = Annotated[
    str,
    _slack_id(
        _CHANNEL,
        "a Slack channel ID (C… or G…), not its name",
        "open the channel → its name → About, and copy the Channel ID at the bottom",
    ),
]
SlackTeam = Annotated[
    str,
    _slack_id(
        _TEAM,
        "a Slack workspace ID (T…)",
        "open Slack in a browser: it is the T… in app.slack.com/client/T…/",
    ),
]
SlackAppId = Annotated[
    str,
    _slack_id(_APP, "a Slack app ID (A…)", "copy it from api.slack.com/apps → Basic Information"),
]


def _webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise problem(
            f"{value!r} is not an http(s) URL",
            "write a URL like https://cd.example.com/hooks/gatekeeper",
        )
    return value


def _mlflow_uri(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme in ("file", "sqlite") and parts.path:
        return value
    if parts.scheme in ("http", "https") and parts.netloc:
        return value
    raise problem(
        f"{value!r} is not an MLflow tracking URI",
        "write the server's http(s) URL, e.g. http://127.0.0.1:5001, or for local use a "
        "file:///path or sqlite:///path URI",
    )


def _kfp_host(value: str) -> str:
    parts = urlsplit(value)
    if value == "local" or (parts.scheme in ("http", "https") and parts.netloc):
        return value
    raise problem(
        f"{value!r} is neither 'local' nor an http(s) URL",
        "write kfp: local (runs with kfp.local) or the KFP API URL, e.g. https://kfp.example.com",
    )


def _snapshot_store(value: str) -> str:
    scheme, separator, rest = value.partition("://")
    if not (separator and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) and rest.strip("/")):
        raise problem(
            f"{value!r} is not a storage URL",
            "write a URL with a scheme, e.g. file:///srv/dev, s3://bucket/prefix or gs://bucket",
        )
    return value


def _image_prefix(value: str) -> str:
    if "://" in value or not _IMAGE_PREFIX.fullmatch(value):
        raise problem(
            f"{value!r} is not a registry namespace",
            "write host[:port]/prefix without a scheme, e.g. 127.0.0.1:5000/dev",
        )
    return value


def _model_name_template(value: str) -> str:
    try:
        rendered = value.format(model="\0")
    except (KeyError, IndexError, ValueError):
        rendered = ""
    if "\0" not in rendered:
        raise problem(
            f"{value!r} is not a model name template",
            'include {model} and no other braces, e.g. "staging.{model}"',
        )
    return value


def _champion_alias(value: str) -> str:
    if not _ALIAS.fullmatch(value) or _RESERVED_ALIAS.fullmatch(value):
        raise problem(
            f"{value!r} cannot be an MLflow alias",
            "use letters, digits, '_' and '-' (not 'latest' or 'v<number>'), e.g. champion",
        )
    return value


def _gate(value: str) -> str:
    try:
        parse_gate(value)
    except InvalidGate as error:
        raise problem(
            str(error), "gates look like 'accuracy >= 0.90' or 'latency_ms <= champion * 1.10'"
        ) from None
    return value


def _duration(value: object) -> timedelta:
    seconds = _seconds(value)
    if seconds is None:
        raise problem(
            f"{value!r} is not a duration",
            'write a number with a unit (w, d, h, m, s), e.g. "30m", "72h", "1h30m", or seconds',
        )
    if seconds <= 0:
        raise problem(f"{value!r} is not longer than zero", 'use a positive duration, e.g. "24h"')
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise problem(f"{value!r} is too long", 'use at most a few years, e.g. "52w"') from None


def _seconds(value: object) -> int | None:
    # bool is an int to Python, but "expires_after: yes" is never a number of seconds.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) and value.strip() else None
    if match is None:
        return None
    return sum(int(n or 0) * unit for n, unit in zip(match.groups(), _UNITS, strict=True))


def _clock(value: object) -> time:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise problem(f"{value!r} is not a time of day", 'write "HH:MM" in quotes, e.g. "16:00"')
    return time(int(match[1]), int(match[2]))


def _end_clock(value: object) -> time:
    # A window ending at or before it starts runs past midnight, so "24:00" is "00:00".
    return time(0) if value == "24:00" else _clock(value)


def _instant(value: object) -> datetime:
    instant: datetime | None = None
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            instant = None
    if instant is None or instant.utcoffset() is None:
        raise problem(
            f"{value!r} is not a date and time with a UTC offset",
            "write an ISO 8601 date, time and offset, e.g. 2025-12-24T00:00:00+01:00",
        )
    return instant


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise problem(
            f"{value!r} is not a known time zone",
            "use an IANA time zone name, e.g. UTC or Europe/Berlin",
        ) from None
    return value


def _crontab(value: str) -> str:
    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as error:
        raise problem(
            f"{value!r} is not a crontab expression ({error})",
            'write five fields: minute hour day month weekday, e.g. "0 9 * * mon-fri"',
        ) from None
    return value


MLflowURI = Annotated[str, AfterValidator(_mlflow_uri)]
ImagePrefix = Annotated[str, AfterValidator(_image_prefix)]
KfpHost = Annotated[str, AfterValidator(_kfp_host)]
SnapshotStore = Annotated[str, AfterValidator(_snapshot_store)]
ModelNameTemplate = Annotated[str, AfterValidator(_model_name_template)]
WebhookURL = Annotated[str, AfterValidator(_webhook_url)]
ChampionAlias = Annotated[str, AfterValidator(_champion_alias)]
GateText = Annotated[str, AfterValidator(_gate)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Clock = Annotated[time, BeforeValidator(_clock)]
EndClock = Annotated[time, BeforeValidator(_end_clock)]
Instant = Annotated[datetime, BeforeValidator(_instant)]
Timezone = Annotated[str, AfterValidator(_timezone)]
Crontab = Annotated[str, AfterValidator(_crontab)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SlackPrincipals = tuple[SlackPrincipal, ...]
