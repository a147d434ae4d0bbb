"""Holds the Slack app manifests in deploy/ to Slack's schema and to the least scopes the bot needs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

REPO = Path(__file__).parents[2]
SLACK_REF = REPO.parent / "shared" / "slack-ref"
SCHEMA = SLACK_REF / "manifest" / "manifest.schema.1.0.0.json"
METHODS = SLACK_REF / "methods"
HTTP_MANIFEST = REPO / "deploy" / "slack-manifest.yaml"
SOCKET_MANIFEST = REPO / "deploy" / "slack-manifest.socket-mode.yaml"

EVENTS_URL = "https://gatekeeper.example.com/slack/events"
BOT_SCOPES = {"chat:write", "commands", "usergroups:read", "users:read"}
# The Web API methods Gatekeeper calls; the scopes they need (per Slack's method references),
# plus `commands` for the slash command, must be exactly the scopes the manifest asks for.
METHODS_CALLED = [
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "chat.getPermalink",
    "views.open",
    "views.update",
    "views.publish",
    "usergroups.users.list",
    "users.info",
]


def _reference(path: Path) -> Path:
    if not path.exists():
        pytest.fail(
            f"needs {path}: Slack's reference data, which lives in shared/slack-ref beside this "
            "repository (in development and in CI alike)"
        )
    return path


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def _method(name: str) -> dict[str, Any]:
    loaded = json.loads(_reference(METHODS / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _problems(validator: Draft7Validator, manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    schema = json.loads(_reference(SCHEMA).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.fixture(scope="module")
def http() -> dict[str, Any]:
    return _load(HTTP_MANIFEST)


@pytest.fixture(scope="module")
def socket() -> dict[str, Any]:
    return _load(SOCKET_MANIFEST)


@pytest.mark.parametrize("path", [HTTP_MANIFEST, SOCKET_MANIFEST], ids=["http", "socket-mode"])
def test_manifest_follows_slacks_schema(validator: Draft7Validator, path: Path) -> None:
    assert _problems(validator, _load(path)) == []


@pytest.mark.parametrize("path", [HTTP_MANIFEST, SOCKET_MANIFEST], ids=["http", "socket-mode"])
def test_manifest_declares_gatekeeper_with_home_tab_and_bot_scopes(path: Path) -> None:
    manifest = _load(path)
    assert manifest["display_information"]["name"] == "Gatekeeper"
    assert manifest["features"]["bot_user"]["display_name"] == "Gatekeeper"
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    scopes = manifest["oauth_config"]["scopes"]
    assert set(scopes) == {"bot"}, "no user scopes: Gatekeeper never acts as a person"
    assert sorted(scopes["bot"]) == sorted(BOT_SCOPES)
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/promote"
    assert command["should_escape"] is False
    assert command["usage_hint"]


def test_http_manifest_sends_everything_to_the_one_endpoint(http: dict[str, Any]) -> None:
    (command,) = http["features"]["slash_commands"]
    assert command["url"] == EVENTS_URL
    assert http["settings"]["interactivity"]["request_url"] == EVENTS_URL
    assert http["settings"]["event_subscriptions"]["request_url"] == EVENTS_URL
    assert http["settings"]["socket_mode_enabled"] is False


def test_socket_mode_manifest_has_socket_mode_and_no_request_urls(
    socket: dict[str, Any],
) -> None:
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "url" not in socket["features"]["slash_commands"][0]
    assert "request_url" not in socket["settings"]["interactivity"]
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    assert "https://" not in SOCKET_MANIFEST.read_text(encoding="utf-8")


def test_the_two_manifests_differ_only_in_transport(
    http: dict[str, Any], socket: dict[str, Any]
) -> None:
    as_socket = copy.deepcopy(http)
    del as_socket["features"]["slash_commands"][0]["url"]
    del as_socket["settings"]["interactivity"]["request_url"]
    del as_socket["settings"]["event_subscriptions"]["request_url"]
    as_socket["settings"]["socket_mode_enabled"] = True
    assert as_socket == socket


def test_bot_scopes_are_exactly_what_the_methods_called_need() -> None:
    needed = {"commands"}
    for name in METHODS_CALLED:
        method = _method(name)
        required = method.get("scope", {}).get("bot", [])
        assert method.get("no_scope_required") or len(required) == 1, (
            f"{name} accepts any of {required}; name the one Gatekeeper relies on"
        )
        needed.update(required)
    assert needed == BOT_SCOPES


def _known_scopes() -> set[str]:
    """Every scope some method in Slack's references asks for, and `commands`."""
    return {"commands"} | {
        scope
        for path in _reference(METHODS).glob("*.json")
        for kind in json.loads(path.read_text(encoding="utf-8")).get("scope", {}).values()
        for scope in kind
    }


@pytest.mark.parametrize("path", [HTTP_MANIFEST, SOCKET_MANIFEST], ids=["http", "socket-mode"])
def test_every_scope_is_one_slack_knows(path: Path) -> None:
    unknown = set(_load(path)["oauth_config"]["scopes"]["bot"]) - _known_scopes()
    assert not unknown, f"not a scope any Slack method asks for: {sorted(unknown)}"


def test_a_misspelled_scope_would_be_caught() -> None:
    assert {"chat:writ", "user:read", "usergroup:read"}.isdisjoint(_known_scopes())


DELETE = object()


def _changed(manifest: dict[str, Any], path: tuple[str | int, ...], value: object) -> Any:
    changed = copy.deepcopy(manifest)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        pytest.param(
            ("slash_commands",), [], "'slash_commands' was unexpected", id="unknown-top-level-key"
        ),
        pytest.param(
            ("settings", "socket_mode"),
            True,
            "'socket_mode' was unexpected",
            id="misspelled-setting",
        ),
        pytest.param(
            ("features", "app_home", "home_tab"),
            True,
            "'home_tab' was unexpected",
            id="misspelled-home-tab",
        ),
        # `- chat: write` (a space after the colon) is a YAML mapping, not a scope
        pytest.param(
            ("oauth_config", "scopes", "bot", 0),
            {"chat": "write"},
            "is not of type 'string'",
            id="scope-as-mapping",
        ),
        pytest.param(
            ("oauth_config", "scopes", "bot", 0),
            "chat:write:" + "x" * 50,
            "is too long",
            id="scope-too-long",
        ),
        pytest.param(
            ("oauth_config", "scopes", "bot"),
            "chat:write",
            "is not of type 'array'",
            id="scopes-not-a-list",
        ),
        pytest.param(
            ("features", "slash_commands", 0, "command"),
            "promote",
            "does not match",
            id="command-without-slash",
        ),
        pytest.param(
            ("settings", "interactivity", "is_enabled"),
            DELETE,
            "'is_enabled' is a required property",
            id="interactivity-without-is-enabled",
        ),
        pytest.param(
            ("settings", "interactivity", "request_url"),
            "gatekeeper.example.com/slack/events",
            "does not match",
            id="url-without-scheme",
        ),
        pytest.param(
            ("display_information",),
            DELETE,
            "'display_information' is a required property",
            id="no-display-information",
        ),
    ],
)
def test_a_broken_manifest_fails_validation(
    validator: Draft7Validator,
    http: dict[str, Any],
    path: tuple[str | int, ...],
    value: object,
    fragment: str,
) -> None:
    problems = _problems(validator, _changed(http, path, value))
    assert any(fragment in problem for problem in problems), problems


def test_missing_reference_data_fails_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "shared" / "slack-ref" / "manifest" / "manifest.schema.1.0.0.json"
    with pytest.raises(pytest.fail.Exception, match=f"needs {missing}"):
        _reference(missing)
