"""The intake rules: what a webhook body is, and what a version's tags and aliases ask for."""

from __future__ import annotations

import pytest

from bot.domain.intake import (
    ALIAS_CREATED,
    TAG_SET,
    VERSION_CREATED,
    Asks,
    BadAsk,
    MalformedEvent,
    NotAsking,
    RegistryEvent,
    parse_event,
    requested_target,
    worth_a_look,
)

PATH = ("dev", "staging", "production")
IMAGE = "gatekeeper.image.serving"
LINEAGE = "gatekeeper.lineage.promotion_id"


def _asked(environment: str, tags: dict[str, str], aliases: tuple[str, ...] = ()) -> object:
    return requested_target(
        PATH, environment, tags, aliases, request_alias="challenger", champion_alias="champion"
    )


@pytest.mark.parametrize(
    ("environment", "tags", "aliases", "expected"),
    [
        ("dev", {IMAGE: "x"}, (), Asks("staging")),
        ("dev", {"gatekeeper.promote": ""}, (), Asks("staging")),
        ("dev", {"gatekeeper.promote": "production"}, (), Asks("staging")),
        ("staging", {"gatekeeper.promote": "production"}, (), Asks("production")),
        ("dev", {}, ("challenger",), Asks("staging")),
        ("dev", {"owner": "dana"}, ("nightly",), NotAsking("no gatekeeper.* tags")),
        ("production", {IMAGE: "x"}, (), NotAsking("production is the end of the promotion path")),
        ("staging", {IMAGE: "x", LINEAGE: "4"}, ("champion",), NotAsking(
            "Gatekeeper's own copy of a promoted version")),
        ("staging", {LINEAGE: "4", "gatekeeper.promote": "staging"}, ("champion",), NotAsking(
            "Gatekeeper's copy; its gatekeeper.promote asked for this environment")),
        ("staging", {LINEAGE: "4", "gatekeeper.promote": ""}, ("champion",), NotAsking(
            "Gatekeeper's copy; its gatekeeper.promote asked for this environment")),
        ("staging", {LINEAGE: "4", "gatekeeper.promote": "production"}, (), NotAsking(
            "Gatekeeper's copy; it goes on once it is the champion here")),
        ("staging", {LINEAGE: "4", "gatekeeper.promote": "production"}, ("champion",),
         Asks("production")),
        ("staging", {LINEAGE: "4"}, ("challenger",), Asks("production")),
    ],
)  # fmt: skip
def test_what_a_version_asks_for(
    environment: str, tags: dict[str, str], aliases: tuple[str, ...], expected: object
) -> None:
    assert _asked(environment, tags, aliases) == expected


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("prod", "gatekeeper.promote is 'prod', which is not on the promotion path "
                 "(dev → staging → production)"),
        ("dev", "gatekeeper.promote is 'dev', which is not after dev on the promotion path"),
    ],
)  # fmt: skip
def test_a_promote_tag_naming_an_impossible_target_is_a_bad_ask(value: str, said: str) -> None:
    asked = _asked("dev", {IMAGE: "x", "gatekeeper.promote": value})
    assert isinstance(asked, BadAsk)
    assert asked.reason.startswith(said)


def test_the_request_alias_can_be_switched_off() -> None:
    asked = requested_target(
        PATH, "dev", {}, ("challenger",), request_alias=None, champion_alias="champion"
    )
    assert asked == NotAsking("no gatekeeper.* tags")


def test_mlflows_events_are_parsed_field_by_field() -> None:
    created = {"entity": "model_version", "action": "created", "timestamp": "t",
               "data": {"name": "m", "version": "3", "tags": {}, "run_id": None}}  # fmt: skip
    tag = {"entity": "model_version_tag", "action": "set",
           "data": {"name": "m", "version": "3", "key": "k", "value": ""}}  # fmt: skip
    alias = {"entity": "model_version_alias", "action": "created",
             "data": {"name": "m", "version": "3", "alias": "challenger"}}  # fmt: skip
    prompt = {"entity": "prompt", "action": "created", "data": {"name": "p"}}

    assert parse_event(created) == RegistryEvent(VERSION_CREATED, "m", "3")
    assert parse_event(tag) == RegistryEvent(TAG_SET, "m", "3", key="k", value="")
    assert parse_event(alias) == RegistryEvent(ALIAS_CREATED, "m", "3", alias="challenger")
    assert parse_event(prompt) == RegistryEvent("prompt.created")
    assert not parse_event(prompt).about_a_version


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ([], "the body is not a JSON object"),
        ({"action": "created", "data": {}}, "'entity' is missing or not text"),
        ({"entity": "model_version", "action": 3, "data": {}}, "'action' is missing or not text"),
        ({"entity": "model_version", "action": "created"}, "'data' is missing or not an object"),
        # Kept as the kind entity.action: MLflow's lowercase names only, never past 64 characters
        # or with text a database cannot store.
        ({"entity": "model_version", "action": "\ud800", "data": {}},
         "'action' is not an MLflow name, got '\\ud800'"),
        ({"entity": "m" * 65, "action": "created", "data": {}},
         f"'entity' is not an MLflow name, got {'m' * 40!r}"),
        ({"entity": "model_version\x00", "action": "created", "data": {}},
         "'entity' is not an MLflow name, got 'model_version\\x00'"),
        ({"entity": "model_version", "action": "created", "data": {"name": "m"}},
         "model_version.created: 'data.version' is missing or not text"),
        ({"entity": "model_version", "action": "created", "data": {"name": "m", "version": 3}},
         "model_version.created: 'data.version' is missing or not text"),
        ({"entity": "model_version", "action": "created", "data": {"name": "", "version": "3"}},
         "model_version.created: 'name' is empty"),
        ({"entity": "model_version", "action": "created", "data": {"name": "m", "version": "v3"}},
         "model_version.created: 'version' must be a whole number, got 'v3'"),
        ({"entity": "model_version_tag", "action": "set",
          "data": {"name": "m", "version": "3", "key": "k"}},
         "model_version_tag.set: 'data.value' is missing or not text"),
    ],
)  # fmt: skip
def test_a_malformed_body_says_what_is_wrong(body: object, said: str) -> None:
    with pytest.raises(MalformedEvent) as malformed:
        parse_event(body)
    assert str(malformed.value) == said


@pytest.mark.parametrize(
    ("event", "looked_at"),
    [
        (RegistryEvent(VERSION_CREATED, "m", "1"), True),
        (RegistryEvent(TAG_SET, "m", "1", key="gatekeeper.promote", value=""), True),
        (RegistryEvent(TAG_SET, "m", "1", key="gatekeeper.image.x", value="y"), False),
        (RegistryEvent(ALIAS_CREATED, "m", "1", alias="challenger"), True),
        (RegistryEvent(ALIAS_CREATED, "m", "1", alias="champion"), True),
        (RegistryEvent(ALIAS_CREATED, "m", "1", alias="nightly"), False),
        (RegistryEvent("prompt.created"), False),
    ],
)
def test_which_events_are_worth_a_look(event: RegistryEvent, looked_at: bool) -> None:
    assert worth_a_look(event, "challenger", "champion") is looked_at
