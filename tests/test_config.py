"""gatekeeper.yaml and the environment, as an operator writes them: every mistake named and fixed."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.config import (
    ConfigError,
    ConfigProblem,
    GatekeeperConfig,
    Settings,
    SettingsError,
    load_config,
    load_settings,
    parse_config,
)
from bot.domain.gates import parse_gate
from bot.domain.policy import DateFreeze, NoChampion, OnFail, Policy, WeeklyFreeze

EXAMPLE = Path(__file__).resolve().parents[1] / "gatekeeper.example.yaml"
DELETE = object()
BERLIN = "Europe/Berlin"


def example_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    return data


def edited(changes: dict[str, Any]) -> dict[str, Any]:
    """The example with each dotted key path set to a value (or removed, for DELETE)."""
    data = copy.deepcopy(example_data())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        index: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[index]
        else:
            node[index] = value
    return data


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def problems_in(path: Path) -> tuple[ConfigProblem, ...]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# --- the example ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> GatekeeperConfig:
    return load_config(EXAMPLE)


def test_example_environments_and_path(example: GatekeeperConfig) -> None:
    assert list(example.environments) == ["dev", "staging", "production"]
    assert example.promotion_path == ("dev", "staging", "production")
    assert example.next_environment("dev") == "staging"
    assert example.next_environment("production") is None
    assert example.previous_environment("staging") == "dev"
    assert example.previous_environment("dev") is None
    dev, production = example.environments["dev"], example.environments["production"]
    assert (dev.mlflow, dev.images, dev.kfp) == (
        "http://127.0.0.1:5001",
        "127.0.0.1:5000/dev",
        "local",
    )
    assert production.kfp == "https://kfp.example.com"
    assert production.snapshots == "s3://ml-prod/snapshots"
    assert production.registered_name("churn-classifier") == "churn-classifier"


def test_example_model(example: GatekeeperConfig) -> None:
    model = example.models["churn-classifier"]
    assert (model.channel, model.champion_alias) == ("C0ML00001", "champion")


def test_example_staging_policy_approves_on_gates(example: GatekeeperConfig) -> None:
    assert example.policy_for("staging") == Policy(
        gates=(parse_gate("accuracy >= 0.90"), parse_gate("accuracy >= champion - 0.005")),
        approvals=0,
        no_champion=NoChampion.PASS,
    )


def test_example_production_policy(example: GatekeeperConfig) -> None:
    assert example.policy_for("production") == Policy(
        gates=(
            parse_gate("accuracy >= champion"),
            parse_gate("latency_p95_ms <= champion * 1.10"),
        ),
        approvals=2,
        approvers=frozenset({"S0MLLEADS", "U0SRE0001"}),
        on_fail=OnFail.BLOCK,
        self_approval=False,
        rollback_by=frozenset({"S0MLOPS"}),
        expires_after=timedelta(hours=72),
        remind_after=timedelta(hours=24),
        freeze=(
            WeeklyFreeze(frozenset({4}), time(16), time(0), BERLIN, "weekend"),
            WeeklyFreeze(frozenset({5, 6}), time(0), time(0), BERLIN, "weekend"),
            DateFreeze(
                datetime(2025, 12, 22, tzinfo=ZoneInfo(BERLIN)),
                datetime(2026, 1, 5, tzinfo=ZoneInfo(BERLIN)),
                "year-end change freeze",
            ),
        ),
    )


def test_example_weekend_freeze_covers_friday_evening_to_monday(example: GatekeeperConfig) -> None:
    windows = example.policy_for("production").freeze[:2]

    def frozen(day: int, hour: int, minute: int) -> bool:
        at = datetime(2025, 6, day, hour, minute, tzinfo=ZoneInfo(BERLIN))
        return any(window.covers(at) for window in windows)

    assert not frozen(13, 15, 59)  # Friday
    assert frozen(13, 16, 0)
    assert frozen(15, 23, 59)  # Sunday
    assert not frozen(16, 0, 0)  # Monday


def test_example_schedules_and_no_policy_for_dev(example: GatekeeperConfig) -> None:
    (digest,) = example.schedules.digests
    assert (digest.channel, digest.cron, digest.timezone) == (
        "C0ML00001",
        "0 9 * * mon-fri",
        BERLIN,
    )
    assert digest.trigger() is not None
    assert set(example.policies) == {"staging", "production"}
    with pytest.raises(KeyError, match="dev"):
        example.policy_for("dev")


# --- one mistake at a time ------------------------------------------------------------------

SLACK_ID_FIX = "Copy member ID"


def case(name: str, changes: dict[str, Any], fix: str, *paths: str) -> Any:
    """A broken copy of the example; its problems are at ``paths``, or else at the key changed."""
    return pytest.param(changes, list(paths or changes), fix, id=name)


BROKEN = [
    case("missing-key", {"environments.staging.mlflow": DELETE}, "add it"),
    case("misspelt-key", {"environments.staging.mlfow": "http://x"}, "known keys: mlflow, images"),
    case("mlflow-scheme", {"environments.staging.mlflow": "ftp://x"}, "http://127.0.0.1:5001"),
    case(
        "images-with-scheme",
        {"environments.staging.images": "https://reg/stg"},
        "host[:port]/prefix",
    ),
    case("kfp", {"environments.staging.kfp": "remote"}, "kfp: local"),
    case(
        "snapshots-no-scheme", {"environments.staging.snapshots": "/srv/stg"}, "s3://bucket/prefix"
    ),
    case("model-name-template", {"environments.staging.model_name": "staging.{name}"}, "{model}"),
    case("webhook-url", {"environments.staging.deploy_webhook": "cd.example.com"}, "https://"),
    case("environment-name", {"environments.Stg": {"mlflow": "http://x"}}, "lowercase"),
    case(
        "environments-list",
        {"environments": ["dev", "staging"]},
        "expected a mapping",
        "environments",
    ),
    case(
        "path-undefined",
        {"promotion_path": ["dev", "stg", "production"]},
        "define environments.stg",
        "promotion_path.1",
    ),
    case(
        "path-repeat",
        {"promotion_path": ["dev", "staging", "staging", "production"]},
        "each environment once",
        "promotion_path.2",
    ),
    case("path-too-short", {"promotion_path": ["dev"]}, "in promotion order"),
    case("path-item", {"promotion_path": ["dev", 3]}, "expected text", "promotion_path.1"),
    case("policy-missing", {"policies.staging": DELETE}, "add policies.staging"),
    case("policy-for-first", {"policies.dev": {"approvals": 0}}, "remove policies.dev"),
    case(
        "policy-undefined",
        {"policies.qa": {"approvals": 0}},
        "rename it to one of: dev, staging, production",
    ),
    case("approver-handle", {"policies.production.approvers.1": "@alice"}, SLACK_ID_FIX),
    case("approver-email", {"policies.production.approvers.1": "alice@example.com"}, SLACK_ID_FIX),
    case("approver-channel", {"policies.production.approvers.1": "C0ML00001"}, SLACK_ID_FIX),
    case(
        "rollback-by",
        {"policies.production.rollback_by": ["mlops"]},
        SLACK_ID_FIX,
        "policies.production.rollback_by.0",
    ),
    case(
        "owner-group",
        {"models.churn-classifier.owners": ["S0MLLEADS"]},
        SLACK_ID_FIX,
        "models.churn-classifier.owners.0",
    ),
    case("gate", {"policies.staging.gates.1": "accuracy >> 0.9"}, "accuracy >= 0.90"),
    case("gates-not-list", {"policies.staging.gates": "accuracy >= 0.9"}, "expected a list"),
    case("approvals-negative", {"policies.production.approvals": -1}, "0 or more"),
    case("approvals-text", {"policies.production.approvals": "two"}, "expected a whole number"),
    case(
        "approvals-above-users",
        {
            "policies.production.approvers": ["U0SRE0001", "U0SRE0002"],
            "policies.production.approvals": 3,
        },
        "lower approvals to 2",
        "policies.production.approvals",
    ),
    case("approvals-nobody", {"policies.production.approvers": DELETE}, "set approvals: 0"),
    case(
        "override-nobody",
        {"policies.production.on_fail": "override"},
        "list override_by",
        "policies.production.override_by",
    ),
    case(
        "override-while-block",
        {"policies.production.override_by": ["S0MLLEADS"]},
        "set on_fail: override",
    ),
    case("on-fail-choice", {"policies.production.on_fail": "warn"}, "'block' or 'override'"),
    case("self-approval", {"policies.production.self_approval": "no way"}, "true or false"),
    case("duration-text", {"policies.production.expires_after": "3 days"}, '"72h"'),
    case("duration-zero", {"policies.production.remind_after": "0m"}, "positive"),
    case(
        "freeze-day",
        {"policies.production.freeze.0.days": ["fri", "fun"]},
        "'sun'",
        "policies.production.freeze.0.days.1",
    ),
    case("freeze-clock", {"policies.production.freeze.0.from": "4pm"}, '"HH:MM"'),
    case("freeze-from-24", {"policies.production.freeze.0.from": "24:00"}, '"HH:MM"'),
    case("freeze-no-days", {"policies.production.freeze.0.days": []}, "[sat, sun]"),
    case("freeze-timezone", {"policies.production.freeze.0.timezone": "Berlin"}, "Europe/Berlin"),
    case(
        "freeze-misspelt",
        {"policies.production.freeze.0.until": "17:00"},
        "known keys: days, from, to",
    ),
    case("freeze-naive", {"policies.production.freeze.2.start": "2025-12-22T00:00:00"}, "offset"),
    case(
        "freeze-backwards",
        {"policies.production.freeze.2.end": "2025-12-01T00:00:00+01:00"},
        "end later than start",
        "policies.production.freeze.2",
    ),
    case("freeze-kind", {"policies.production.freeze.2": {"reason": "?"}}, "days: [sat, sun]"),
    case("channel-name", {"models.churn-classifier.channel": "#ml-alerts"}, "Channel ID"),
    case("alias-latest", {"models.churn-classifier.champion_alias": "latest"}, "e.g. champion"),
    case("alias-version", {"models.churn-classifier.champion_alias": "v1"}, "v<number>"),
    case("no-models", {"models": {}}, "expected a mapping"),
    case("cron-fields", {"schedules.digests.0.cron": "0 9 * *"}, "five fields"),
    case("cron-hour", {"schedules.digests.0.cron": "0 25 * * *"}, "five fields"),
    case("schedule-timezone", {"schedules.digests.0.timezone": "Mars/Base"}, "IANA"),
    case(
        "schedules-misspelt",
        {"schedules.reminder": {"cron": "0 10 * * *"}},
        "known keys: digests, reminders, expiry",
    ),
    case(
        "slack-team",
        {"slack": {"team_ids": ["acme"]}},
        "app.slack.com/client/T…",
        "slack.team_ids.0",
    ),
    case("slack-app", {"slack": {"app_id": "gatekeeper"}}, "api.slack.com/apps", "slack.app_id"),
    case("top-level-misspelt", {"polices": {}}, "known keys: environments, promotion_path"),
    case("top-level-missing", {"models": DELETE}, "add it"),
    case("no-policies", {"policies": DELETE}, "add it"),
    case("no-environments", {"environments": DELETE}, "add it"),
]


@pytest.mark.parametrize(("changes", "paths", "fix"), BROKEN)
def test_each_mistake_is_named_with_its_key_path_and_fix(
    tmp_path: Path, changes: dict[str, Any], paths: list[str], fix: str
) -> None:
    problems = problems_in(write(tmp_path, edited(changes)))
    assert [p.path for p in problems] == paths, "\n".join(map(str, problems))
    assert fix in problems[0].fix, str(problems[0])
    assert str(problems[0]) == f"{problems[0].path}: {problems[0].message} — {problems[0].fix}"


def test_a_gate_problem_is_the_gate_parsers_message(tmp_path: Path) -> None:
    (problem,) = problems_in(write(tmp_path, edited({"policies.staging.gates.0": "accuracy"})))
    assert problem.message.startswith("gate 'accuracy': expected '<metric> <op> <number>'")


@pytest.mark.parametrize(
    "changes",
    [
        {"policies.production.approvers": ["S0MLLEADS"], "policies.production.approvals": 5},
        {"policies.production.approvers": ["U0A1", "U0A2"], "policies.production.approvals": 2},
        {"policies.production.on_fail": "override", "policies.production.override_by": ["U0X1"]},
        {"environments.staging.model_name": "staging.{model}", "environments.dev.kfp": DELETE},
        {"environments.dev.mlflow": "sqlite:///mlflow.db", "schedules": DELETE},
        {"environments.dev.mlflow": "file:///srv/mlruns", "slack": {"team_ids": ["T0AB"]}},
    ],
    ids=["group-count-unknown", "users-enough", "override", "shared-mlflow", "sqlite", "file"],
)
def test_valid_variations_load(tmp_path: Path, changes: dict[str, Any]) -> None:
    load_config(write(tmp_path, edited(changes)))


def test_shared_mlflow_server_names_models_per_environment(tmp_path: Path) -> None:
    path = write(tmp_path, edited({"environments.staging.model_name": "staging.{model}"}))
    staging = load_config(path).environments["staging"]
    assert staging.registered_name("churn-classifier") == "staging.churn-classifier"


# --- every problem at once -----------------------------------------------------------------

MANY_PROBLEMS = """\
environments:
  dev: {mlflow: "ftp://x", images: "http://reg/dev", kfp: maybe}
  staging: {mlflow: "http://127.0.0.1:5002", mlflw: x}
  production: {mlflow: "http://127.0.0.1:5003"}
promotion_path: [dev, stg, production]
models:
  churn: {channel: "#ml", champion_alias: latest}
policies:
  dev: {approvals: 0}
  production:
    gates: ["accuracy >= champion", "accuracy >> 3"]
    approvers: [U0A1, "@alice"]
    expires_after: soon
  qa: {approvals: 1, approvers: [U0B1], on_fail: override}
schedules:
  digests: [{channel: C0ML1, cron: "0 9 * *", timezone: Mars/Base}]
extra: 1
"""


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(MANY_PROBLEMS, encoding="utf-8")
    assert {p.path for p in problems_in(path)} == {
        "extra",
        "environments.dev.mlflow",
        "environments.dev.images",
        "environments.dev.kfp",
        "environments.staging.mlflw",
        "models.churn.channel",
        "models.churn.champion_alias",
        "policies.production.gates.1",
        "policies.production.approvers.1",
        "policies.production.expires_after",
        "schedules.digests.0.cron",
        "schedules.digests.0.timezone",
        "promotion_path.1",
        "policies.dev",
        "policies.qa",
        "policies.qa.override_by",
    }


def test_config_error_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"environments": {}, "extra": 1})
    text = str(caught.value)
    for problem in caught.value.problems:
        assert str(problem) in text


# --- the file itself -----------------------------------------------------------------------


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text("environments:\n  dev: {mlflow: x\npolicies: []\n", encoding="utf-8")
    (problem,) = problems_in(path)
    assert problem.path == "(file)"
    assert "YAML syntax error at line 3, column 9" in problem.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("# nothing yet\n", "the file is empty"),
        ("- dev\n- staging\n", "the top level is a list, not a mapping of keys"),
        ("just text\n", "the top level is text, not a mapping of keys"),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(text, encoding="utf-8")
    (problem,) = problems_in(path)
    assert (problem.path, problem.message) == ("(file)", message)


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    (problem,) = problems_in(tmp_path / "nope.yaml")
    assert problem.path == "(file)"
    assert "does not exist" in problem.message
    assert "gatekeeper.example.yaml" in problem.fix
    assert "GATEKEEPER_CONFIG" in problem.fix


def test_unreadable_paths_are_problems_too(tmp_path: Path) -> None:
    (problem,) = problems_in(tmp_path)
    assert problem.message.startswith(f"cannot read {tmp_path}")
    binary = tmp_path / "gatekeeper.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    (problem,) = problems_in(binary)
    assert "not UTF-8" in problem.message


def test_a_repeated_key_is_reported_not_silently_replaced(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8") + "promotion_path: [dev, production]\n"
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(text, encoding="utf-8")
    problems = problems_in(path)
    assert any("'promotion_path' appears twice" in p.message for p in problems)


def test_unquoted_times_are_read_as_times_not_base_60_numbers(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('"16:00"', "16:00")
    assert "from: 16:00" in text
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(text, encoding="utf-8")
    window = load_config(path).policy_for("production").freeze[0]
    assert isinstance(window, WeeklyFreeze)
    assert window.start == time(16)


# --- durations and freeze windows ----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "duration"),
    [
        ("30m", timedelta(minutes=30)),
        ("72h", timedelta(hours=72)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("45s", timedelta(seconds=45)),
        (3600, timedelta(hours=1)),
    ],
)
def test_durations(tmp_path: Path, written: str | int, duration: timedelta) -> None:
    path = write(tmp_path, edited({"policies.production.expires_after": written}))
    assert load_config(path).policy_for("production").expires_after == duration


@pytest.mark.parametrize("written", ["", "h", "1.5h", "72 hours", "1m1h", True, -60, 0])
def test_bad_durations(tmp_path: Path, written: object) -> None:
    path = write(tmp_path, edited({"policies.production.remind_after": written}))
    assert [p.path for p in problems_in(path)] == ["policies.production.remind_after"]


def test_freeze_windows(tmp_path: Path) -> None:
    freeze = [
        {"start": "2025-12-24T00:00:00+01:00", "end": "2025-12-27T00:00:00Z", "reason": "xmas"},
        {"days": ["mon", "wed"], "from": "22:00", "to": "06:00", "timezone": "America/New_York"},
        {"days": ["sun"], "from": "00:00", "to": "23:59"},
    ]
    path = write(tmp_path, edited({"policies.production.freeze": freeze}))
    dates, nights, sundays = load_config(path).policy_for("production").freeze
    assert dates == DateFreeze(
        datetime(2025, 12, 23, 23, tzinfo=UTC), datetime(2025, 12, 27, tzinfo=UTC), "xmas"
    )
    assert nights == WeeklyFreeze(frozenset({0, 2}), time(22), time(6), "America/New_York")
    assert sundays == WeeklyFreeze(frozenset({6}), time(0), time(23, 59), "UTC")
    new_york = ZoneInfo("America/New_York")
    assert nights.covers(datetime(2025, 6, 3, 5, 59, tzinfo=new_york))  # Tuesday, before 06:00
    assert not nights.covers(datetime(2025, 6, 3, 22, 0, tzinfo=new_york))  # Tuesday night


# --- settings from the environment ----------------------------------------------------------

VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "GATEKEEPER_CONFIG",
    "MLFLOW_WEBHOOK_SECRET",
    "PORT",
    "GATEKEEPER_REGISTRY_AUTH",
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment with none of Gatekeeper's variables set."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_settings_defaults(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.slack_bot_token is None
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite:///gatekeeper.db"
    assert settings.gatekeeper_config == Path("gatekeeper.yaml")
    assert settings.port == 3000
    assert settings.registry_auth == {}


def test_settings_read_the_documented_variables(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    environment.setenv("SLACK_SIGNING_SECRET", "sign")
    environment.setenv("SLACK_APP_TOKEN", "xapp-1")
    environment.setenv("SLACK_API_URL", "http://127.0.0.1:8080/api")
    environment.setenv("GATEKEEPER_CONFIG", "/etc/gatekeeper/gatekeeper.yaml")
    environment.setenv("MLFLOW_WEBHOOK_SECRET", "hook")
    environment.setenv("port", "8080")  # names are case-insensitive
    settings = Settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "sign"
    assert settings.slack_app_token is not None
    assert settings.mlflow_webhook_secret is not None
    assert settings.slack_api_url == "http://127.0.0.1:8080/api/"
    assert settings.gatekeeper_config == Path("/etc/gatekeeper/gatekeeper.yaml")
    assert settings.port == 8080


def test_an_empty_variable_is_not_set(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SLACK_APP_TOKEN", "")
    environment.setenv("PORT", "")
    settings = load_settings()
    assert settings.slack_app_token is None
    assert settings.port == 3000


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://gk:pw@db:5432/gatekeeper", "postgresql+psycopg://gk:pw@db:5432/gatekeeper"),
        ("postgresql://gk:pw@db/gatekeeper", "postgresql+psycopg://gk:pw@db/gatekeeper"),
        ("postgresql+psycopg://gk@db/gatekeeper", "postgresql+psycopg://gk@db/gatekeeper"),
        ("sqlite:////var/lib/gatekeeper.db", "sqlite:////var/lib/gatekeeper.db"),
    ],
)
def test_database_url_uses_psycopg_3(
    environment: pytest.MonkeyPatch, given: str, used: str
) -> None:
    environment.setenv("DATABASE_URL", given)
    assert load_settings().database_url == used


def test_database_password_is_hidden(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("DATABASE_URL", "postgres://gk:s3cret-pw@db:5432/gatekeeper")
    settings = load_settings()
    assert settings.redacted_database_url == "postgresql+psycopg://gk:***@db:5432/gatekeeper"
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings)


@pytest.mark.parametrize("port", ["abc", "0", "65536", "3000.5", "-1"])
def test_bad_port_names_the_variable_and_rule(environment: pytest.MonkeyPatch, port: str) -> None:
    environment.setenv("PORT", port)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.problems == ("PORT: must be a whole number between 1 and 65535",)


def test_every_bad_variable_is_named(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("PORT", "http")
    environment.setenv("SLACK_API_URL", "ftp://slack.example.com")
    environment.setenv("DATABASE_URL", "not a url")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    named = [problem.split(":")[0] for problem in caught.value.problems]
    assert sorted(named) == ["DATABASE_URL", "PORT", "SLACK_API_URL"]
    assert "SLACK_API_URL: must be an http(s) URL" in str(caught.value)


def test_secrets_stay_out_of_repr_str_and_logs(
    environment: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = {
        "SLACK_BOT_TOKEN": "xoxb-top-secret-bot",
        "SLACK_SIGNING_SECRET": "top-secret-signing",
        "SLACK_APP_TOKEN": "xapp-top-secret-app",
        "MLFLOW_WEBHOOK_SECRET": "top-secret-hook",
    }
    for name, value in secrets.items():
        environment.setenv(name, value)
    environment.setenv(
        "GATEKEEPER_REGISTRY_AUTH",
        '{"staging": {"username": "ci", "password": "top-secret-pw"},'
        ' "production": {"token": "top-secret-token"}}',
    )
    settings = load_settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("gatekeeper.test").info("settings: %s %r", settings, settings)
    for shown in (repr(settings), str(settings), caplog.text):
        assert "top-secret" not in shown
        assert "**********" in shown


def test_registry_auth_from_json(environment: pytest.MonkeyPatch) -> None:
    environment.setenv(
        "GATEKEEPER_REGISTRY_AUTH",
        '{"staging": {"username": "ci", "password": "pw"}, "production": {"token": "tok"}}',
    )
    auth = load_settings().registry_auth
    assert auth["staging"].username == "ci"
    assert auth["staging"].password is not None
    assert auth["staging"].password.get_secret_value() == "pw"
    assert auth["production"].token is not None
    assert auth["production"].token.get_secret_value() == "tok"


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("staging=ci:pw", "GATEKEEPER_REGISTRY_AUTH: must be JSON"),
        ('{"staging": {"username": "ci"}}', "GATEKEEPER_REGISTRY_AUTH (staging): give either"),
        ('{"staging": {"token": "t", "password": "p"}}', "not both"),
        ('{"staging": {"tokn": "t"}}', "GATEKEEPER_REGISTRY_AUTH (staging.tokn): unknown key"),
        ('["staging"]', "GATEKEEPER_REGISTRY_AUTH: "),
    ],
)
def test_bad_registry_auth(environment: pytest.MonkeyPatch, value: str, said: str) -> None:
    environment.setenv("GATEKEEPER_REGISTRY_AUTH", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert said in str(caught.value)
