"""The shape of gatekeeper.yaml: one pydantic model per section, turned into domain values.

Each model forbids unknown keys and is frozen; the values in it are checked by the types in
``bot.config.values``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Self

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from bot.config.values import (
    PROBLEM,
    ChampionAlias,
    Clock,
    Crontab,
    Duration,
    EndClock,
    GateText,
    ImagePrefix,
    Instant,
    KfpHost,
    MLflowURI,
    ModelNameTemplate,
    SlackAppId,
    SlackChannel,
    SlackPrincipals,
    SlackTeam,
    SlackUser,
    SnapshotStore,
    Timezone,
    WebhookURL,
    Weekday,
    problem,
)
from bot.domain.gates import parse_gate
from bot.domain.policy import (
    WEEKDAYS,
    DateFreeze,
    FreezeWindow,
    NoChampion,
    OnFail,
    Policy,
    WeeklyFreeze,
)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(Section):
    """Where one environment keeps its models, images, pipelines and data."""

    mlflow: MLflowURI
    images: ImagePrefix | None = None
    kfp: KfpHost | None = None
    snapshots: SnapshotStore | None = None
    #: One shared MLflow server keeps environments apart by name, e.g. "staging.{model}".
    model_name: ModelNameTemplate = "{model}"
    deploy_webhook: WebhookURL | None = None

    def registered_name(self, model: str) -> str:
        """The name ``model`` is registered under in this environment's MLflow."""
        return self.model_name.format(model=model)


class RegisteredModel(Section):
    """A model Gatekeeper promotes: where its candidates are posted and which alias serves."""

    channel: SlackChannel
    champion_alias: ChampionAlias = "champion"
    owners: tuple[SlackUser, ...] = ()


class DateFreezeWindow(Section):
    start: Instant
    end: Instant
    reason: str = ""

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.end <= self.start:
            raise problem("the freeze ends before it starts", "make end later than start")
        return self

    def to_domain(self) -> DateFreeze:
        return DateFreeze(self.start, self.end, self.reason)


def _some_days(days: tuple[str, ...]) -> tuple[str, ...]:
    if not days:
        raise problem("no days listed", "list the weekdays, e.g. [sat, sun]")
    return days


class WeeklyFreezeWindow(Section):
    days: Annotated[tuple[Weekday, ...], AfterValidator(_some_days)]
    from_: Clock = Field(alias="from")
    to: EndClock
    timezone: Timezone = "UTC"
    reason: str = ""

    def to_domain(self) -> WeeklyFreeze:
        weekdays = frozenset(WEEKDAYS.index(day) for day in self.days)
        return WeeklyFreeze(weekdays, self.from_, self.to, self.timezone, self.reason)


#: Union tags; ``bot.config.problems`` leaves them out of key paths, since no one writes them.
DATE_WINDOW, WEEKLY_WINDOW = "date window", "weekly window"


def _freeze_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "days" in value:
            return WEEKLY_WINDOW
        if "start" in value or "end" in value:
            return DATE_WINDOW
    return None


FreezeWindowSpec = Annotated[
    Annotated[DateFreezeWindow, Tag(DATE_WINDOW)]
    | Annotated[WeeklyFreezeWindow, Tag(WEEKLY_WINDOW)],
    Discriminator(
        _freeze_kind,
        custom_error_type=PROBLEM,
        custom_error_message="{message}",
        custom_error_context={
            "message": "a freeze window needs either start/end or days/from/to",
            "fix": "write {start: 2025-12-24T00:00:00+01:00, end: 2026-01-02T00:00:00+01:00} or "
            '{days: [sat, sun], from: "00:00", to: "24:00", timezone: Europe/Berlin}',
        },
    ),
]


class PolicySpec(Section):
    """A target environment's policy as written; ``to_domain`` gives the domain's ``Policy``."""

    gates: tuple[GateText, ...] = ()
    approvals: int = Field(default=1, ge=0, strict=True)
    approvers: SlackPrincipals = ()
    on_fail: OnFail = OnFail.BLOCK
    override_by: SlackPrincipals = ()
    self_approval: bool = Field(default=False, strict=True)
    rollback_by: SlackPrincipals = ()
    expires_after: Duration | None = None
    remind_after: Duration | None = None
    no_champion: NoChampion = NoChampion.PASS
    freeze: tuple[FreezeWindowSpec, ...] = ()

    def to_domain(self) -> Policy:
        windows: tuple[FreezeWindow, ...] = tuple(window.to_domain() for window in self.freeze)
        return Policy(
            gates=tuple(parse_gate(gate) for gate in self.gates),
            approvals=self.approvals,
            approvers=frozenset(self.approvers),
            on_fail=self.on_fail,
            override_by=frozenset(self.override_by),
            self_approval=self.self_approval,
            rollback_by=frozenset(self.rollback_by),
            expires_after=self.expires_after,
            remind_after=self.remind_after,
            no_champion=self.no_champion,
            freeze=windows,
        )


class Schedule(Section):
    cron: Crontab
    timezone: Timezone = "UTC"

    def trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=self.timezone)


class Digest(Schedule):
    """A summary of pending candidates posted to a channel on a schedule."""

    channel: SlackChannel


class Schedules(Section):
    digests: tuple[Digest, ...] = ()
    #: None leaves the cadence to the worker's default.
    reminders: Schedule | None = None
    expiry: Schedule | None = None


class Intake(Section):
    """How versions registered in MLflow become candidates without anyone typing /promote."""

    #: Setting this alias on a version requests its promotion to the next environment.
    request_alias: ChampionAlias | None = "challenger"
    #: Polling fallback for MLflow servers without webhooks; off when left out.
    poll_every: Duration | None = None
    #: How far back polling looks for versions it has not yet offered.
    poll_lookback: Duration = timedelta(days=7)


class SlackOrigin(Section):
    """The workspaces and app whose requests are accepted; empty accepts any that is signed."""

    team_ids: tuple[SlackTeam, ...] = ()
    app_id: SlackAppId | None = None


def _two_or_more(path: tuple[str, ...]) -> tuple[str, ...]:
    # Checked after the items, so that one bad item is not also reported as "too short".
    if len(path) < 2:
        raise problem(
            "a promotion path needs at least two environments",
            "list them in promotion order, e.g. [dev, staging, production]",
        )
    return path


PromotionPath = Annotated[tuple[str, ...], AfterValidator(_two_or_more)]
